/**
 * Shards: one run's users split into N contiguous ranges, one per machine or batch task, whose
 * outputs `attnscore merge` joins back into the file that a single run would have written.
 */
import path from 'node:path';

import type { RowRange } from '../io/stream.js';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';

/** Shard `index` of `count`, with `0 <= index < count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * The environment variables that carry a batch task's index, in the order they are read.
 * Kubernetes sets the first in each pod of an Indexed Job, AWS Batch the second in each child
 * of an array job, and Slurm the third in each task of a job array.
 */
export const SHARD_INDEX_VARIABLES = [
  'JOB_COMPLETION_INDEX',
  'AWS_BATCH_JOB_ARRAY_INDEX',
  'SLURM_ARRAY_TASK_ID',
] as const;

/**
 * Returns the rows of shard `index` of `count`:
 * `[floor(index * rows / count), floor((index + 1) * rows / count))`. The shards cover every
 * row exactly once, their sizes differ by at most one, and shards are empty when `count`
 * exceeds `rows`. Throws `INVALID_PARAMETER` for an index outside `0..count-1`.
 */
export function shardRange(index: number, count: number, rows: number): RowRange {
  checkShard({ index, count }, 'shardRange');
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.shardRows(rows));
  }
  // `index * rows` is exact while below 2^53, so rows may go up to 2^53 / count.
  return {
    start: Math.floor((index * rows) / count),
    end: Math.floor(((index + 1) * rows) / count),
  };
}

/**
 * Parses `--shard I/N`, such as `2/8`, into a shard. Throws `INVALID_PARAMETER` for any other
 * form, for N < 1, and for I outside `0..N-1`.
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (match === null) throw new AttnScoreError('INVALID_PARAMETER', messages.shardSyntax(text));
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  checkShard(shard, '--shard');
  return shard;
}

/** The shard options of a command, as given on its command line. */
export interface ShardOptions {
  /** `--shard I/N`. */
  readonly shard?: string;
  /** `--shard-count N`, with the index taken from the environment. */
  readonly shardCount?: number | string;
}

/**
 * Resolves the shard of a run from `--shard I/N`, or from `--shard-count N` with the index
 * read from the first of {@link SHARD_INDEX_VARIABLES} that is set in `env`. Returns undefined
 * when neither option is given, meaning one run over every user.
 *
 * Slurm numbers array tasks as the `--array` option sets them, which need not start at 0, so
 * `SLURM_ARRAY_TASK_MIN` is subtracted from `SLURM_ARRAY_TASK_ID` when it is set. The array
 * must then be contiguous, such as `--array=1-8`, because a step (`--array=0-14:2`) leaves
 * gaps in the indexes. Throws `INVALID_PARAMETER` naming the option or variable at fault.
 */
export function resolveShard(
  options: ShardOptions,
  env: Readonly<Record<string, string | undefined>>,
): Shard | undefined {
  const { shard, shardCount } = options;
  if (shard !== undefined && shardCount !== undefined) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.shardBothOptions());
  }
  if (shard !== undefined) return parseShard(shard);
  if (shardCount === undefined) return undefined;

  const count = parseCount(shardCount);
  for (const variable of SHARD_INDEX_VARIABLES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    let index = parseIndex(variable, value);
    let from = `${variable}=${value}`;
    if (variable === 'SLURM_ARRAY_TASK_ID') {
      const min = env.SLURM_ARRAY_TASK_MIN;
      if (min !== undefined && min !== '') {
        index -= parseIndex('SLURM_ARRAY_TASK_MIN', min);
        from += ` minus SLURM_ARRAY_TASK_MIN=${min}`;
      }
    }
    checkShard({ index, count }, from);
    return { index, count };
  }
  throw new AttnScoreError(
    'INVALID_PARAMETER',
    messages.shardIndexMissing(count, SHARD_INDEX_VARIABLES),
  );
}

/**
 * Returns the output path of one shard: `scores.jsonl` becomes
 * `scores.shard-00002-of-00008.jsonl`. The zero padding makes a shell glob such as
 * `scores.shard-*-of-00008.jsonl` list the shards in order. Standard output (`-`) stays `-`.
 */
export function shardOutputPath(out: string, shard: Shard): string {
  if (out === '-') return out;
  const extension = path.extname(out);
  const stem = out.slice(0, out.length - extension.length);
  const pad = (value: number) => String(value).padStart(5, '0');
  return `${stem}.shard-${pad(shard.index)}-of-${pad(shard.count)}${extension}`;
}

/** Returns the shard in the `I/N` form that `--shard` takes. */
export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

function parseCount(value: number | string): number {
  const count = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('--shard-count', value));
  }
  return count;
}

function parseIndex(variable: string, value: string): number {
  const index = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(index)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.shardIndexVariable(variable, value));
  }
  return index;
}

/** Checks `0 <= index < count`, naming `from`, the option or variable the index came from. */
function checkShard(shard: Shard, from: string): void {
  const { index, count } = shard;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('shard count', count));
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.shardIndexRange(index, count, from));
  }
}
