/**
 * Cosine similarity of given (user, content) pairs, computed in float64 from
 * the float32 vectors, so a pair's score can differ from the engine's float32
 * top-k score by about 1e-7.
 */
import type { RowId, VectorSet } from '../scoring/types.js';
import { problem } from './problems.js';

/** Row lookup by id and float64 row norms of a vector set, built once per set. */
export interface CosineIndex {
  readonly set: VectorSet;
  /** Row of each id, keyed by `String(id)` so that JSON ids `7` and `"7"` both find row id 7. */
  readonly rowById: ReadonlyMap<string, number>;
  readonly norms: Float64Array;
}

/** Most unknown ids named in one error message. */
const MAX_NAMED_IDS = 10;

/** Indexes `set` for {@link scorePairs}. */
export function buildCosineIndex(set: VectorSet): CosineIndex {
  const rowById = new Map<string, number>();
  set.ids.forEach((id, row) => {
    const key = String(id);
    if (!rowById.has(key)) rowById.set(key, row);
  });
  const norms = new Float64Array(set.rows);
  for (let row = 0; row < set.rows; row++) {
    let sum = 0;
    const base = row * set.dim;
    for (let column = 0; column < set.dim; column++) {
      const value = set.data[base + column]!;
      sum += value * value;
    }
    norms[row] = Math.sqrt(sum);
  }
  return { set, rowById, norms };
}

/**
 * Returns the cosine of each pair in order, 0 when either vector is all
 * zeros. Throws a 400 problem naming up to {@link MAX_NAMED_IDS} ids that are
 * not among the users or contents, with a pointer to the first such pair.
 */
export function scorePairs(
  users: CosineIndex,
  contents: CosineIndex,
  pairs: readonly (readonly [RowId, RowId])[],
): Float64Array {
  const userRows = new Int32Array(pairs.length);
  const contentRows = new Int32Array(pairs.length);
  const unknown: string[] = [];
  let firstUnknown: string | undefined;
  pairs.forEach(([userId, contentId], index) => {
    const userRow = users.rowById.get(String(userId));
    const contentRow = contents.rowById.get(String(contentId));
    if (userRow === undefined) {
      firstUnknown ??= `/pairs/${index}/0`;
      if (unknown.length < MAX_NAMED_IDS) unknown.push(`user ${JSON.stringify(userId)}`);
    }
    if (contentRow === undefined) {
      firstUnknown ??= `/pairs/${index}/1`;
      if (unknown.length < MAX_NAMED_IDS) unknown.push(`content ${JSON.stringify(contentId)}`);
    }
    userRows[index] = userRow ?? -1;
    contentRows[index] = contentRow ?? -1;
  });
  if (firstUnknown !== undefined) {
    throw problem(400, 'unknown-id', `pairs name unknown ids: ${unknown.join(', ')}`, {
      pointer: firstUnknown,
      rule: 'UNKNOWN_ID',
    });
  }

  const dim = users.set.dim;
  const scores = new Float64Array(pairs.length);
  for (let index = 0; index < pairs.length; index++) {
    const userRow = userRows[index]!;
    const contentRow = contentRows[index]!;
    const norms = users.norms[userRow]! * contents.norms[contentRow]!;
    if (norms === 0) continue;
    const userBase = userRow * dim;
    const contentBase = contentRow * dim;
    let dot = 0;
    for (let column = 0; column < dim; column++) {
      dot += users.set.data[userBase + column]! * contents.set.data[contentBase + column]!;
    }
    // Rounding can carry the quotient just past 1 in magnitude.
    scores[index] = Math.max(-1, Math.min(1, dot / norms));
  }
  return scores;
}
