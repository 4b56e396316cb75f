/** Deterministic test data: a seeded generator and vector sets with planted edge cases. */

export { seededRandom as random, syntheticMatrix as randomMatrix } from '../../src/synthetic.js';

/** Sets row `row` to zeros. */
export function zeroRow(data: Float32Array, dim: number, row: number): void {
  data.fill(0, row * dim, (row + 1) * dim);
}

/** Copies row `from` over row `to`, making an exact duplicate. */
export function copyRow(data: Float32Array, dim: number, from: number, to: number): void {
  data.copyWithin(to * dim, from * dim, (from + 1) * dim);
}
