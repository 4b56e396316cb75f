/**
 * Per-user top-k lists, updated from the slow path of the score kernel.
 *
 * Layout, for block user u (0-based within the block):
 * - scores f32 at `topScores + (u * k + slot) * 4`, best first;
 * - content rows i32 at `topRows + (u * k + slot) * 4`;
 * - filled slots i32 at `counts + u * 4`;
 * - threshold f32 at `thresholds + u * 4`: a score enters only if it is
 *   strictly greater. Before the list is full it is the largest float32
 *   below minScore (so "greater" means ">= minScore"), afterwards the k-th
 *   score. Padded users get +Infinity and never insert.
 * - exclusions in CSR form: rows `excludeRows[excludeOffsets[u] ..
 *   excludeOffsets[u + 1])`, ascending; `excludeOffsets` 0 means none.
 *
 * Ties: candidates arrive in increasing content row, a full list admits
 * only a strictly greater score, and an insert lands after equal scores, so
 * among equal scores the lower row ranks first. Scores are the kernel's
 * float32 cosines, compared exactly. Padded content lanes (rows >= C) are
 * never offered.
 *
 * Up to SORTED_MAX_K slots a list is kept sorted, best first: an insertion
 * shifts up to k entries, which is cheapest for small k. Above it a list is
 * a binary min-heap whose root is the worst entry (lowest score, then
 * highest row), so an insertion costs O(log k), and {@link sortLists} turns
 * the heaps into best-first lists when the block is done.
 */
import { TILE_CONTENTS, TILE_USERS } from './layout';

/**
 * The largest k kept as a sorted array. Empirical: at k = 10 the sorted
 * insert is what the speed figures were measured with; at k = 20000 it made
 * 600 x 50000 x 128 take 144 s, because every insertion shifted thousands of
 * entries.
 */
export const SORTED_MAX_K: i32 = 32;

/** Returns true when entry `a` of a list ranks below entry `b`: a lower score, or a higher row. */
// @ts-ignore: decorator
@inline function ranksBelow(scores: usize, rows: usize, a: i32, b: i32): bool {
  const scoreA = load<f32>(scores + (<usize>a << 2));
  const scoreB = load<f32>(scores + (<usize>b << 2));
  if (scoreA != scoreB) return scoreA < scoreB;
  return load<i32>(rows + (<usize>a << 2)) > load<i32>(rows + (<usize>b << 2));
}

// @ts-ignore: decorator
@inline function swapEntries(scores: usize, rows: usize, a: i32, b: i32): void {
  const scoreA = load<f32>(scores + (<usize>a << 2));
  const rowA = load<i32>(rows + (<usize>a << 2));
  store<f32>(scores + (<usize>a << 2), load<f32>(scores + (<usize>b << 2)));
  store<i32>(rows + (<usize>a << 2), load<i32>(rows + (<usize>b << 2)));
  store<f32>(scores + (<usize>b << 2), scoreA);
  store<i32>(rows + (<usize>b << 2), rowA);
}

/** Moves entry `position` of a heap of `size` entries down until no child ranks below it. */
function siftDown(scores: usize, rows: usize, position: i32, size: i32): void {
  while (true) {
    const left = 2 * position + 1;
    if (left >= size) return;
    let child = left;
    if (left + 1 < size && ranksBelow(scores, rows, left + 1, left)) child = left + 1;
    if (!ranksBelow(scores, rows, child, position)) return;
    swapEntries(scores, rows, child, position);
    position = child;
  }
}

/** Adds (score, row) to a heap list; the caller has checked that it beats the threshold. */
function offerToHeap(
  scores: usize,
  rows: usize,
  countPtr: usize,
  thresholdPtr: usize,
  k: i32,
  score: f32,
  row: i32,
): void {
  const filled = load<i32>(countPtr);
  if (filled < k) {
    let position = filled;
    store<f32>(scores + (<usize>position << 2), score);
    store<i32>(rows + (<usize>position << 2), row);
    while (position > 0) {
      const parent = (position - 1) >>> 1;
      if (!ranksBelow(scores, rows, position, parent)) break;
      swapEntries(scores, rows, position, parent);
      position = parent;
    }
    store<i32>(countPtr, filled + 1);
  } else {
    // Full: the new entry beats the root (the worst), so it replaces it.
    store<f32>(scores, score);
    store<i32>(rows, row);
    siftDown(scores, rows, 0, k);
  }
  if (load<i32>(countPtr) == k) store<f32>(thresholdPtr, load<f32>(scores));
}

/**
 * Sorts the heap lists of users `0 .. userRows - 1` best first (heapsort:
 * the worst entry moves to the end, one at a time). Does nothing for
 * k <= SORTED_MAX_K, where lists are already sorted.
 */
export function sortLists(userRows: i32, k: i32, topScores: usize, topRows: usize, counts: usize): void {
  if (k <= SORTED_MAX_K) return;
  for (let user = 0; user < userRows; user++) {
    const scores = topScores + (<usize>(user * k) << 2);
    const rows = topRows + (<usize>(user * k) << 2);
    for (let end = load<i32>(counts + (<usize>user << 2)) - 1; end > 0; end--) {
      swapEntries(scores, rows, 0, end);
      siftDown(scores, rows, 0, end);
    }
  }
}

/** Returns true when `row` is in the sorted exclusion list of block user `user`. */
function isExcluded(excludeOffsets: usize, excludeRows: usize, user: i32, row: i32): bool {
  let low = load<i32>(excludeOffsets + (<usize>user << 2));
  let high = load<i32>(excludeOffsets + (<usize>(user + 1) << 2)) - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const value = load<i32>(excludeRows + (<usize>middle << 2));
    if (value == row) return true;
    if (value < row) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

/**
 * Offers every real (user, content) pair of one tile to the top-k lists.
 * `tileScores` contains the tile as the score kernel spilled it (4 users x 8
 * contents, user-major), and `firstUser` and `firstRow` locate its lane 0.
 */
export function insertTile(
  tileScores: usize,
  firstUser: i32,
  userRows: i32,
  firstRow: i32,
  contentRows: i32,
  k: i32,
  thresholds: usize,
  topScores: usize,
  topRows: usize,
  counts: usize,
  excludeOffsets: usize,
  excludeRows: usize,
): void {
  const userEnd = min(firstUser + TILE_USERS, userRows);
  const rowEnd = min(firstRow + TILE_CONTENTS, contentRows);
  for (let user = firstUser; user < userEnd; user++) {
    const thresholdPtr = thresholds + (<usize>user << 2);
    const countPtr = counts + (<usize>user << 2);
    const listScores = topScores + (<usize>(user * k) << 2);
    const listRows = topRows + (<usize>(user * k) << 2);
    const laneScores = tileScores + (<usize>((user - firstUser) * TILE_CONTENTS) << 2);
    for (let row = firstRow; row < rowEnd; row++) {
      const score = load<f32>(laneScores + (<usize>(row - firstRow) << 2));
      if (!(score > load<f32>(thresholdPtr))) continue;
      if (excludeOffsets != 0 && isExcluded(excludeOffsets, excludeRows, user, row)) continue;
      if (k > SORTED_MAX_K) {
        offerToHeap(listScores, listRows, countPtr, thresholdPtr, k, score, row);
        continue;
      }

      let filled = load<i32>(countPtr);
      let slot = filled;
      if (filled < k) {
        filled++;
        store<i32>(countPtr, filled);
      } else {
        slot = k - 1;
      }
      while (slot > 0) {
        const above = load<f32>(listScores + (<usize>(slot - 1) << 2));
        if (!(score > above)) break;
        store<f32>(listScores + (<usize>slot << 2), above);
        store<i32>(listRows + (<usize>slot << 2), load<i32>(listRows + (<usize>(slot - 1) << 2)));
        slot--;
      }
      store<f32>(listScores + (<usize>slot << 2), score);
      store<i32>(listRows + (<usize>slot << 2), row);
      if (filled == k) store<f32>(thresholdPtr, load<f32>(listScores + (<usize>(k - 1) << 2)));
    }
  }
}
