/** Deterministic test data: a seeded generator and vector sets with planted edge cases. */

/** Mulberry32: a small seeded generator, uniform in [0, 1). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns a rows x dim float32 matrix of bell-shaped values (each a sum of three uniforms). */
export function randomMatrix(rows: number, dim: number, seed: number): Float32Array {
  const next = random(seed);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = next() + next() + next() - 1.5;
  return data;
}

/** Sets row `row` to zeros. */
export function zeroRow(data: Float32Array, dim: number, row: number): void {
  data.fill(0, row * dim, (row + 1) * dim);
}

/** Copies row `from` over row `to`, making an exact duplicate. */
export function copyRow(data: Float32Array, dim: number, from: number, to: number): void {
  data.copyWithin(to * dim, from * dim, (from + 1) * dim);
}
