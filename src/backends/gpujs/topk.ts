/**
 * Host-side top-k merge for the gpujs backend: it takes candidates from
 * any tile in any order and keeps, per user, the best `k` by score
 * descending, then row ascending.
 */
import type { ExclusionList } from '../../scoring/types.js';

/** Per-user top-k lists of one block, filled from candidates. */
export class TopKLists {
  readonly index: Int32Array;
  readonly score: Float64Array;
  readonly count: Int32Array;
  private readonly excluded: (Set<number> | undefined)[];

  constructor(
    readonly rows: number,
    readonly k: number,
    private readonly minScore: number,
    exclude: ExclusionList | undefined,
  ) {
    this.index = new Int32Array(rows * k).fill(-1);
    this.score = new Float64Array(rows * k).fill(NaN);
    this.count = new Int32Array(rows);
    this.excluded = Array.from({ length: rows }, (_, user) => excludedRows(exclude, user));
  }

  /** Offers content `row` with cosine `value` to the list of block user `user`. */
  offer(user: number, row: number, value: number): void {
    if (!(value >= this.minScore)) return;
    const { k, index, score } = this;
    const base = user * k;
    const filled = this.count[user]!;
    if (filled === k && !ranksBefore(value, row, score[base + k - 1]!, index[base + k - 1]!)) return;
    if (this.excluded[user]?.has(row)) return;
    let slot = filled < k ? filled : k - 1;
    if (filled < k) this.count[user] = filled + 1;
    while (slot > 0 && ranksBefore(value, row, score[base + slot - 1]!, index[base + slot - 1]!)) {
      score[base + slot] = score[base + slot - 1]!;
      index[base + slot] = index[base + slot - 1]!;
      slot--;
    }
    score[base + slot] = value;
    index[base + slot] = row;
  }
}

/** Tells whether (value, row) comes first in top-k order: higher score, then lower row. */
function ranksBefore(value: number, row: number, otherValue: number, otherRow: number): boolean {
  return value > otherValue || (value === otherValue && row < otherRow);
}

function excludedRows(exclude: ExclusionList | undefined, user: number): Set<number> | undefined {
  if (!exclude) return undefined;
  const start = exclude.offsets[user]!;
  const end = exclude.offsets[user + 1]!;
  return end > start ? new Set(exclude.rows.subarray(start, end)) : undefined;
}

/** Returns the largest number of excluded rows that any user of the block has. */
export function maxExcluded(exclude: ExclusionList | undefined, rows: number): number {
  if (!exclude) return 0;
  let max = 0;
  for (let user = 0; user < rows; user++) {
    max = Math.max(max, exclude.offsets[user + 1]! - exclude.offsets[user]!);
  }
  return max;
}
