/**
 * gpu.js kernel: per-segment partial sums of the CX terms.
 *
 * Computes: out[u][s] = sum over the contents c of segment s of
 * weights[c] * exp(alpha * cosines[u][c]). Segment s covers tile columns
 * s * segment .. s * segment + segment - 1, cut at `contentCount`.
 * Layout: `cosines` is the U x C output of cosineTile, a texture on WebGL
 * and nested arrays in CPU mode. `weights` is the tile's C float32 weights,
 * already divided by a power of two so that the largest is at most 1.
 * Output size: [ceil(C / segment), U].
 * Precision: float32 exp and a float32 sum over at most `segment` terms. The
 * host adds the partial sums in float64. With |alpha| <= 80 every term is at
 * most exp(80.001), about 5.6e34, so a segment of 64 terms stays finite.
 * NOTE: GLSL ES leaves exp's accuracy to the driver (ES 3.0 allows
 * 3 + 2|x| ulp). Mesa's llvmpipe meets the CX target; other GPUs are
 * unmeasured.
 */
export function cxTerms(cosines, weights, alpha, contentCount, segment) {
  const start = this.thread.x * segment;
  let sum = 0;
  for (let i = 0; i < segment; i++) {
    const c = start + i;
    if (c >= contentCount) break;
    sum += weights[c] * Math.exp(alpha * cosines[this.thread.y][c]);
  }
  return sum;
}
