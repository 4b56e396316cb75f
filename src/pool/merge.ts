/**
 * Combines the scores of one block's content segments into the block's
 * scores, as if one kernel call had scored every content.
 *
 * Top-k: each segment's list contains the segment's best `k` candidates by
 * score descending, then content row ascending, so the first `k` of the
 * merged lists in that order are the block's best `k`. Each score comes from
 * the same instructions whichever segment computed it, so ids, order and
 * scores equal a single-thread run's exactly.
 * CX: the float64 segment sums are added in segment order. The single-thread
 * kernel adds the same float32 panel sums one after the other, so the two
 * totals can differ in the last bits where float64 rounding occurs.
 */
import type { BlockScores } from '../scoring/types.js';
import type { ContentSegment } from './planner.js';

/** The scores of one segment, with content rows counted from the segment's first row. */
export interface SegmentScores {
  readonly segment: ContentSegment;
  readonly scores: BlockScores;
}

/** Merges the segments of one block, given in content order, into the block's scores. */
export function mergeSegments(parts: readonly SegmentScores[], contentRows: number): BlockScores {
  const first = parts[0]!.scores;
  const { rows, k } = first;
  const count = new Int32Array(rows);
  const index = new Int32Array(rows * k).fill(-1);
  const score = new Float64Array(rows * k).fill(NaN);
  const cx = new Float64Array(rows);
  const heads = new Int32Array(parts.length);

  for (let user = 0; user < rows; user++) {
    const base = user * k;
    heads.fill(0);
    let filled = 0;
    while (filled < k) {
      const best = bestHead(parts, heads, base, user);
      if (best < 0) break;
      const slot = base + heads[best]!;
      const part = parts[best]!;
      index[base + filled] = part.scores.index[slot]! + part.segment.firstRow;
      score[base + filled] = part.scores.score[slot]!;
      heads[best]! += 1;
      filled++;
    }
    count[user] = filled;
    let sum = 0;
    for (const part of parts) sum += part.scores.cx[user]!;
    cx[user] = sum;
  }

  const merged: BlockScores = { rows, k, count, index, score, cx };
  if (first.matrix === undefined) return merged;
  return { ...merged, matrix: mergeMatrices(parts, rows, contentRows) };
}

/**
 * Returns the part whose next entry for `user` ranks first, or -1 when every
 * list is used up. On equal scores the earlier part wins: its content rows
 * are all lower, because segments are in content order.
 */
function bestHead(
  parts: readonly SegmentScores[],
  heads: Int32Array,
  base: number,
  user: number,
): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let p = 0; p < parts.length; p++) {
    const scores = parts[p]!.scores;
    if (heads[p]! >= scores.count[user]!) continue;
    const candidate = scores.score[base + heads[p]!]!;
    if (best < 0 || candidate > bestScore) {
      best = p;
      bestScore = candidate;
    }
  }
  return best;
}

/** Interleaves the segments' matrices (`rows` x segment rows) into one `rows` x `contentRows`. */
function mergeMatrices(
  parts: readonly SegmentScores[],
  rows: number,
  contentRows: number,
): Float32Array {
  const matrix = new Float32Array(rows * contentRows);
  for (const { segment, scores } of parts) {
    const columns = segment.rows;
    for (let user = 0; user < rows; user++) {
      const from = scores.matrix!.subarray(user * columns, (user + 1) * columns);
      matrix.set(from, user * contentRows + segment.firstRow);
    }
  }
  return matrix;
}
