/**
 * Work splitting for the worker pool: one task per block of users, or one
 * task per content segment of a block.
 *
 * By default each block is one task, and the run loop keeps one block per
 * thread in flight, so threads work on different users. A run with fewer
 * blocks than threads would leave threads idle that way, so each of its
 * blocks is split into content segments: contiguous runs of whole 8-content
 * panels, one task each, whose top-k lists and CX sums merge.ts combines.
 * FAISS splits the same way: over queries when there are many, over the
 * database when there are few. The blocks of a run's last, incomplete wave
 * (its block count modulo the thread count) are split likewise, so the tail
 * of a run keeps every thread busy too.
 */
import type { BlockRequest } from '../backends/backend.js';
import type { ExclusionList } from '../scoring/types.js';
import { TILE_CONTENTS } from '../backends/wasm/layout.js';

/** A contiguous range of whole content panels scored by one task. */
export interface ContentSegment {
  /** First content row of the segment: a multiple of 8. */
  readonly firstRow: number;
  /** Content rows in the segment. Only the last segment may end in a partial panel. */
  readonly rows: number;
}

/**
 * Returns how many content segments the block at `position` is split into,
 * between 1 and `contentPanels` (1 when there are no panels). A block
 * without a position is taken to be a run of one block.
 */
export function segmentCount(
  position: BlockRequest['position'],
  threads: number,
  contentPanels: number,
): number {
  if (threads <= 1 || contentPanels <= 1) return 1;
  const index = position?.index ?? 0;
  const count = position?.count ?? 1;
  const fullWaveBlocks = Math.floor(count / threads) * threads;
  if (index < fullWaveBlocks) return 1;
  const tailBlocks = count - fullWaveBlocks;
  return Math.min(Math.ceil(threads / tailBlocks), contentPanels);
}

/**
 * Splits `contentRows` contents into `count` segments of whole panels, as
 * equal in panel count as possible, in content order.
 */
export function splitContents(contentRows: number, count: number): ContentSegment[] {
  const panels = Math.ceil(contentRows / TILE_CONTENTS);
  const segments: ContentSegment[] = [];
  for (let i = 0; i < count; i++) {
    const firstPanel = Math.floor((i * panels) / count);
    const endPanel = Math.floor(((i + 1) * panels) / count);
    const firstRow = firstPanel * TILE_CONTENTS;
    const endRow = Math.min(endPanel * TILE_CONTENTS, contentRows);
    segments.push({ firstRow, rows: endRow - firstRow });
  }
  return segments;
}

/**
 * Returns the exclusions of `userRows` users that fall in `segment`, as rows
 * counted from the segment's first row, which is how the kernel numbers the
 * contents it is given.
 */
export function segmentExclusions(
  exclude: ExclusionList,
  userRows: number,
  segment: ContentSegment,
): ExclusionList {
  const endRow = segment.firstRow + segment.rows;
  const offsets = new Int32Array(userRows + 1);
  const shiftedRows: number[] = [];
  for (let user = 0; user < userRows; user++) {
    const end = exclude.offsets[user + 1]!;
    // Each user's rows are sorted ascending, so the segment's rows are one run.
    let at = lowerBound(exclude.rows, exclude.offsets[user]!, end, segment.firstRow);
    for (; at < end && exclude.rows[at]! < endRow; at++) {
      shiftedRows.push(exclude.rows[at]! - segment.firstRow);
    }
    offsets[user + 1] = shiftedRows.length;
  }
  return { offsets, rows: Int32Array.from(shiftedRows) };
}

/** Returns the first index in `[low, high)` of sorted `values` whose value is at least `target`. */
function lowerBound(values: Int32Array, low: number, high: number, target: number): number {
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle]! < target) low = middle + 1;
    else high = middle;
  }
  return low;
}
