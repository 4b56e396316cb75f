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
