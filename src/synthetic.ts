/**
 * Seeded synthetic vectors, for `attnscore bench`, the benchmark scripts and the tests, so that
 * every run of a given shape and seed scores the same values.
 */

/** Returns a Mulberry32 generator: uniform values in [0, 1), the same sequence for a seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Returns a `rows` x `dim` row-major float32 matrix of bell-shaped values in (-1.5, 1.5), each
 * the sum of three uniforms from {@link seededRandom}(`seed`) minus 1.5.
 */
export function syntheticMatrix(rows: number, dim: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = next() + next() + next() - 1.5;
  return data;
}

/**
 * Returns `count` float32 values uniform in [-1, 1) from a linear congruential generator (the
 * Numerical Recipes constants): cheaper than {@link syntheticMatrix}, for kernel timings.
 */
export function uniformVectors(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state / 2 ** 31 - 1;
  }
  return data;
}
