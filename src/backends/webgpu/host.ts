/**
 * Host-side steps of the `webgpu` backend: input rows that a GPU may not
 * read faithfully, weight scaling, and turning the selected candidates and
 * CX partial sums into {@link BlockScores}.
 */

/** Smallest positive normal float32, 2^-126. */
const MIN_NORMAL_F32 = 2 ** -126;

/**
 * Returns `data`, or a copy in which every row that contains a float32
 * subnormal is multiplied by a power of two that brings its largest |value|
 * into [1, 2). GPUs may flush subnormals to zero on load (llvmpipe does), and
 * cosine does not change under scaling a row; multiplying by a power of two
 * is exact here because the scaled values are normal.
 */
export function rescaleSubnormalRows(data: Float32Array, rows: number, dim: number): Float32Array {
  let copy: Float32Array | undefined;
  for (let row = 0; row < rows; row++) {
    const base = row * dim;
    let hasSubnormal = false;
    let largest = 0;
    for (let d = 0; d < dim; d++) {
      const magnitude = Math.abs(data[base + d]!);
      if (magnitude !== 0 && magnitude < MIN_NORMAL_F32) hasSubnormal = true;
      if (magnitude > largest) largest = magnitude;
    }
    if (!hasSubnormal) continue;
    copy ??= data.slice(0, rows * dim);
    const scale = 2 ** -Math.floor(Math.log2(largest));
    for (let d = 0; d < dim; d++) copy[base + d] = data[base + d]! * scale;
  }
  return copy ?? data;
}

/** Returns the largest float32 strictly below `value`, or -Infinity for -Infinity. */
export function float32Below(value: number): number {
  if (value === -Infinity) return -Infinity;
  const rounded = Math.fround(value);
  if (rounded < value) return rounded;
  const bits = new Float32Array([rounded]);
  const integer = new Int32Array(bits.buffer);
  if (rounded === 0) {
    integer[0] = -2147483647; // 0x80000001, the negative subnormal closest to 0
  } else if (rounded > 0) {
    integer[0]! -= 1;
  } else {
    integer[0]! += 1;
  }
  return bits[0]!;
}

/**
 * Sorts the selected candidates of `users` users (pairs of float32 score
 * bits and content row, `stride` per user, `counts[u]` filled) best first,
 * ties by lower row, into `index` and `score` at `firstUser * k`.
 */
export function writeSortedLists(
  selected: Uint32Array,
  counts: Uint32Array,
  users: number,
  stride: number,
  k: number,
  firstUser: number,
  index: Int32Array,
  score: Float64Array,
  count: Int32Array,
): void {
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  const order: { row: number; score: number }[] = [];
  for (let u = 0; u < users; u++) {
    const filled = counts[u]!;
    order.length = 0;
    for (let slot = 0; slot < filled; slot++) {
      const at = (u * stride + slot) * 2;
      bits[0] = selected[at]!;
      order.push({ score: asFloat[0]!, row: selected[at + 1]! });
    }
    order.sort((a, b) => b.score - a.score || a.row - b.row);
    const base = (firstUser + u) * k;
    for (let slot = 0; slot < filled; slot++) {
      index[base + slot] = order[slot]!.row;
      score[base + slot] = order[slot]!.score;
    }
    count[firstUser + u] = filled;
  }
}

/** Adds each user's per-tile CX partials in float64 and multiplies by `weightScale`. */
export function sumPartials(
  partials: Float32Array,
  users: number,
  tiles: number,
  weightScale: number,
  firstUser: number,
  cx: Float64Array,
): void {
  for (let u = 0; u < users; u++) {
    let sum = 0;
    const base = u * tiles;
    for (let t = 0; t < tiles; t++) sum += partials[base + t]!;
    cx[firstUser + u] = sum * weightScale;
  }
}
