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
 */
import { TILE_CONTENTS, TILE_USERS } from './layout';

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
