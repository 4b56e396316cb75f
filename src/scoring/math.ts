/**
 * Loyalty: 1 / (1 + exp(-(beta * cx + gamma))), in float64.
 *
 * The two branches keep the exponent non-positive, so `exp` never overflows
 * and the result stays in [0, 1] for every finite argument. Each branch
 * rounds only three times, so the error is a few ulp (an estimate; the tests
 * check 1e-6 against numpy). An infinite product (beta * cx overflowing)
 * gives 0 or 1.
 */
export function loyalty(cx: number, beta: number, gamma: number): number {
  const x = beta * cx + gamma;
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * Returns the Euclidean norm of one row of a row-major matrix, summed in
 * float64: the square of any float32 value fits in float64, so no scaling
 * is needed.
 */
export function rowNorm(data: Float32Array, row: number, dim: number): number {
  let sum = 0;
  const base = row * dim;
  for (let j = 0; j < dim; j++) {
    const v = data[base + j]!;
    sum += v * v;
  }
  return Math.sqrt(sum);
}

/**
 * Returns the power of two that brings every |weight| to at most 1, so that
 * float32 sums of w * exp(alpha * a) stay finite for |alpha| <= 80 over the
 * few dozen contents that a kernel sums before it widens to float64. Dividing
 * by a power of two is exact.
 * NOTE: a weight below about 2^-126 times the largest |weight| becomes a
 * float32 subnormal or 0, so its CX term loses precision or vanishes.
 */
export function weightScaleOf(weights: Float64Array | undefined): number {
  if (weights === undefined) return 1;
  let maxAbs = 0;
  for (let i = 0; i < weights.length; i++) maxAbs = Math.max(maxAbs, Math.abs(weights[i]!));
  if (maxAbs === 0) return 1;
  let scale = 2 ** Math.ceil(Math.log2(maxAbs));
  // Math.log2 may be off by an ulp, so correct the scale until maxAbs <= scale < 2 * maxAbs.
  if (scale < maxAbs) scale *= 2;
  if (scale / 2 >= maxAbs) scale /= 2;
  return scale;
}
