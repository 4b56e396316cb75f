/**
 * The float64 reference that every other backend is tested against.
 *
 * Inputs are float32; every product, sum, norm and exp is computed in
 * float64 from them, so the only rounding left is float64's. It is a plain
 * triple loop, O(U x C x D), meant for correctness, not speed.
 */
import type { BlockScores, ExclusionList } from './types.js';
import { rowNorm } from './math.js';

/** Contents as the reference keeps them: the raw rows, their norms and weights. */
export interface ReferenceContents {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
  /** |c| for each row; 0 for a zero row, whose cosine is 0. */
  readonly norms: Float64Array;
  readonly weights: Float64Array;
}

export function prepareReference(
  data: Float32Array,
  rows: number,
  dim: number,
  weights?: Float64Array,
): ReferenceContents {
  const norms = new Float64Array(rows);
  for (let c = 0; c < rows; c++) norms[c] = rowNorm(data, c, dim);
  return { data, rows, dim, norms, weights: weights ?? new Float64Array(rows).fill(1) };
}

export interface ReferenceRequest {
  readonly users: Float32Array;
  readonly rows: number;
  readonly k: number;
  readonly alpha: number;
  readonly minScore: number;
  readonly exclude?: ExclusionList;
  readonly matrix?: boolean;
}

/** Scores a block of users against the contents, all in float64. */
export function scoreReference(contents: ReferenceContents, request: ReferenceRequest): BlockScores {
  const { data: content, rows: contentRows, dim, norms, weights } = contents;
  const { users, rows, alpha, minScore, exclude } = request;
  const k = Math.min(request.k, contentRows);
  const index = new Int32Array(rows * k).fill(-1);
  const score = new Float64Array(rows * k).fill(NaN);
  const count = new Int32Array(rows);
  const cx = new Float64Array(rows);
  const matrix = request.matrix ? new Float32Array(rows * contentRows) : undefined;
  const similarities = new Float64Array(contentRows);

  for (let u = 0; u < rows; u++) {
    const userNorm = rowNorm(users, u, dim);
    const userBase = u * dim;
    let sum = 0;
    for (let c = 0; c < contentRows; c++) {
      let dot = 0;
      const contentBase = c * dim;
      for (let j = 0; j < dim; j++) dot += users[userBase + j]! * content[contentBase + j]!;
      // One division by the product of the norms: with D = 1 it gives exactly +-1, so equal
      // cosines stay equal and ties keep row order.
      const normProduct = userNorm * norms[c]!;
      const a = normProduct > 0 ? dot / normProduct : 0;
      similarities[c] = a;
      sum += weights[c]! * Math.exp(alpha * a);
    }
    cx[u] = sum;
    if (matrix) matrix.set(similarities, u * contentRows);
    count[u] = selectTopK(similarities, k, minScore, excludedRows(exclude, u), index, score, u * k);
  }
  return { rows, k, count, index, score, cx, ...(matrix ? { matrix } : {}) };
}

function excludedRows(exclude: ExclusionList | undefined, user: number): Set<number> | undefined {
  if (!exclude) return undefined;
  const start = exclude.offsets[user]!;
  const end = exclude.offsets[user + 1]!;
  return end > start ? new Set(exclude.rows.subarray(start, end)) : undefined;
}

/**
 * Writes the best `k` rows of `similarities` into `index`/`score` at `base`,
 * best first, ties by lower row, and returns how many were written. Keeps a
 * sorted list and visits rows in increasing order, so an equal score never
 * displaces an earlier row.
 */
function selectTopK(
  similarities: Float64Array,
  k: number,
  minScore: number,
  excluded: Set<number> | undefined,
  index: Int32Array,
  score: Float64Array,
  base: number,
): number {
  let filled = 0;
  for (let c = 0; c < similarities.length; c++) {
    const s = similarities[c]!;
    if (s < minScore) continue;
    if (filled === k && !(s > score[base + k - 1]!)) continue;
    if (excluded?.has(c)) continue;
    let slot = filled < k ? filled++ : k - 1;
    while (slot > 0 && s > score[base + slot - 1]!) {
      score[base + slot] = score[base + slot - 1]!;
      index[base + slot] = index[base + slot - 1]!;
      slot--;
    }
    score[base + slot] = s;
    index[base + slot] = c;
  }
  return filled;
}
