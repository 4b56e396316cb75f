/**
 * gpu.js kernel: one tile of cosine similarities.
 *
 * Computes: out[u][c] = sum over q of dot(users[u * quads + q],
 * contents[c * quads + q]), which is the cosine because the host passes unit
 * rows (normalised in float64, then rounded to float32; a zero row stays
 * zero, so its cosine is 0).
 * Layout: `users` and `contents` are arrays of 4-float quads (gpu.js type
 * 'Array1D(4)', one texel per fetch), row-major, each row zero-padded to
 * `quads` = ceil(dim / 4) quads. Fetching a quad at a time is about 4 times
 * faster on Mesa's llvmpipe than one float per fetch (measured in
 * bench/gpujs.mjs's set-up).
 * Output size: [C, U] (gpu.js order: x = content, y = user), set per call
 * through dynamicOutput. The host keeps C <= 1024 and U <= 256 so that the
 * output texture stays below the size where gpu.js is reported to fail.
 * Precision: float32 products and a float32 running sum (precision
 * 'single'). For unit rows the error is about sqrt(dim) * 2^-24 in practice.
 */
export function cosineTile(users, contents, quads) {
  const userBase = this.thread.y * quads;
  const contentBase = this.thread.x * quads;
  let dot = 0;
  for (let q = 0; q < quads; q++) {
    const user_f32x4 = users[userBase + q];
    const content_f32x4 = contents[contentBase + q];
    dot += user_f32x4[0] * content_f32x4[0] + user_f32x4[1] * content_f32x4[1];
    dot += user_f32x4[2] * content_f32x4[2] + user_f32x4[3] * content_f32x4[3];
  }
  return dot;
}
