/**
 * gpu.js kernel: the best `slots` contents of each segment of a cosine tile.
 *
 * Computes: out[u][s][r] = [score, column] of the content ranked r
 * (0-based) in segment s for user u, ordered by score descending and then
 * by column ascending, the order of the top-k lists. A rank past the end of
 * a short segment gets [-3, -1]. Segment s covers tile columns
 * s * segment .. s * segment + segment - 1, cut at `contentCount`.
 * Layout: `cosines` is the U x C output of cosineTile.
 * Output size: [slots, ceil(C / segment), U], each element an Array(2).
 * Algorithm: thread r repeats r + 1 times a scan for the best content that
 * ranks after the one found before, so a segment costs about
 * slots^2 / 2 * segment reads. The host calls it only for small slot counts.
 * Precision: compares and returns the float32 cosines unchanged, so
 * identical rows keep identical scores and ties keep column order.
 */
export function topkCandidates(cosines, contentCount, segment) {
  const start = this.thread.y * segment;
  let end = start + segment;
  if (end > contentCount) end = contentCount;
  let previousScore = 3;
  let previousColumn = -1;
  for (let rank = 0; rank <= this.thread.x; rank++) {
    let bestScore = -3;
    let bestColumn = -1;
    for (let c = start; c < end; c++) {
      const value = cosines[this.thread.z][c];
      const after = value < previousScore || (value === previousScore && c > previousColumn);
      if (after && value > bestScore) {
        bestScore = value;
        bestColumn = c;
      }
    }
    previousScore = bestScore;
    previousColumn = bestColumn;
  }
  return [previousScore, previousColumn];
}
