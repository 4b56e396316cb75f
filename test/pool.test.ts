/**
 * The worker-pool backend against single-thread runs of the same kernel
 * build: both split strategies (by user blocks and by content segments),
 * the planner and merge on their own, task slots, disposal, the `threads`
 * option and `attnscore score --threads`.
 *
 * The user split runs each user's whole computation in one kernel call, so
 * its results equal one thread's exactly. The segment split gives the same
 * ids, order and scores, while its CX adds float64 segment sums in another
 * order than one thread does, so CX may differ in the last bits.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Backend, BlockRequest } from '../src/backends/backend.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { createPoolBackend } from '../src/pool/index.js';
import { mergeSegments } from '../src/pool/merge.js';
import { segmentCount, segmentExclusions, splitContents } from '../src/pool/planner.js';
import { score, scoreBlocks, type ScoreOptions } from '../src/score.js';
import { AttnScoreError } from '../src/scoring/errors.js';
import type { BlockScores, UserResult } from '../src/scoring/types.js';
import { copyRow, randomMatrix, zeroRow } from './helpers/data.js';

const THREADS = 2;
/** Relative CX difference allowed for the segment split: float64 rounding of few positive terms. */
const CX_REORDER_RELATIVE = 1e-12;

interface Shape {
  rows: number;
  columns: number;
  dim: number;
  seed: number;
}

/** Random users and contents with zero vectors and exact duplicates planted. */
function inputs({ rows, columns, dim, seed }: Shape): Pick<ScoreOptions, 'users' | 'contents'> {
  const users = randomMatrix(rows, dim, seed);
  const contents = randomMatrix(columns, dim, seed + 1);
  zeroRow(users, dim, rows - 1);
  zeroRow(contents, dim, seed % columns);
  if (columns > 2) copyRow(contents, dim, 0, columns - 1);
  if (columns > 9) copyRow(contents, dim, 3, 9);
  return {
    users: { data: users, rows, dim },
    contents: { data: contents, rows: columns, dim },
  };
}

async function scoreWith(backend: Backend | undefined, options: ScoreOptions): Promise<UserResult[]> {
  const { results } = await score(backend ? { ...options, backend } : { ...options, threads: 1 });
  return results;
}

function withoutCx(results: readonly UserResult[]) {
  return results.map(({ user, top }) => ({ user, top }));
}

/** Checks that ids, order and scores are equal, and CX and loyalty equal up to summation order. */
function expectSameUpToCxOrder(actual: readonly UserResult[], expected: readonly UserResult[]): void {
  expect(withoutCx(actual)).toEqual(withoutCx(expected));
  actual.forEach((result, u) => {
    const cx = expected[u]!.cx;
    expect(Math.abs(result.cx - cx)).toBeLessThanOrEqual(CX_REORDER_RELATIVE * Math.abs(cx));
    expect(Math.abs(result.loyalty - expected[u]!.loyalty)).toBeLessThanOrEqual(1e-12);
  });
}

describe('pool planner', () => {
  it('splits by users when blocks suffice', () => {
    for (let index = 0; index < 4; index++) {
      expect(segmentCount({ index, count: 4 }, 2, 100)).toBe(1);
    }
    expect(segmentCount({ index: 3, count: 5 }, 2, 100)).toBe(1);
  });

  it('splits the incomplete last wave', () => {
    expect(segmentCount({ index: 4, count: 5 }, 2, 100)).toBe(2);
    expect(segmentCount({ index: 8, count: 10 }, 4, 100)).toBe(2);
    expect(segmentCount({ index: 9, count: 10 }, 4, 100)).toBe(2);
  });

  it('splits by contents for few blocks', () => {
    expect(segmentCount({ index: 0, count: 1 }, 2, 100)).toBe(2);
    expect(segmentCount(undefined, 4, 100)).toBe(4);
    expect(segmentCount({ index: 2, count: 3 }, 4, 100)).toBe(2);
  });

  it('keeps a panel per segment', () => {
    expect(segmentCount(undefined, 8, 3)).toBe(3);
    expect(segmentCount(undefined, 8, 1)).toBe(1);
    expect(segmentCount(undefined, 8, 0)).toBe(1);
    expect(segmentCount(undefined, 1, 100)).toBe(1);
  });

  it('cuts contents at whole panels', () => {
    for (const [rows, count] of [[1003, 2], [1003, 7], [8, 1], [17, 3], [0, 1]] as const) {
      const segments = splitContents(rows, count);
      expect(segments).toHaveLength(count);
      let next = 0;
      for (const segment of segments) {
        expect(segment.firstRow).toBe(next);
        expect(segment.firstRow % 8).toBe(0);
        next += segment.rows;
      }
      expect(next).toBe(rows);
    }
    expect(splitContents(1003, 2)).toEqual([
      { firstRow: 0, rows: 504 },
      { firstRow: 504, rows: 499 },
    ]);
  });

  it('shifts exclusions into segment rows', () => {
    const exclude = {
      offsets: Int32Array.from([0, 3, 3, 5]),
      rows: Int32Array.from([1, 8, 15, 16, 40]),
    };
    const segment = { firstRow: 8, rows: 16 };
    const shifted = segmentExclusions(exclude, 3, segment);
    expect(Array.from(shifted.offsets)).toEqual([0, 2, 2, 3]);
    expect(Array.from(shifted.rows)).toEqual([0, 7, 8]);
  });
});

describe('pool merge', () => {
  function part(firstRow: number, rows: number, index: number[], score: number[], cx: number) {
    const k = 3;
    const scores: BlockScores = {
      rows: 1,
      k,
      count: Int32Array.of(index.length),
      index: Int32Array.from([...index, -1, -1, -1].slice(0, k)),
      score: Float64Array.from([...score, NaN, NaN, NaN].slice(0, k)),
      cx: Float64Array.of(cx),
    };
    return { segment: { firstRow, rows }, scores };
  }

  it('ranks by score, then by lower content row', () => {
    const merged = mergeSegments(
      [part(0, 8, [5, 2, 7], [0.9, 0.5, 0.5], 1.5), part(8, 8, [0, 1], [0.5, 0.5], 2.25)],
      16,
    );
    expect(Array.from(merged.index)).toEqual([5, 2, 7]);
    expect(Array.from(merged.score)).toEqual([0.9, 0.5, 0.5]);
    expect(merged.count[0]).toBe(3);
    expect(merged.cx[0]).toBe(3.75);
  });

  it('fills fewer slots when segments have fewer', () => {
    const merged = mergeSegments([part(0, 8, [4], [0.25], 1), part(8, 2, [], [], 1)], 10);
    expect(merged.count[0]).toBe(1);
    expect(Array.from(merged.index)).toEqual([4, -1, -1]);
    expect(merged.score[1]).toBeNaN();
  });
});

describe('pool backend', () => {
  let pool: Backend;
  beforeAll(() => {
    pool = createPoolBackend({ threads: THREADS });
  });
  afterAll(() => pool.dispose());

  it('reports its threads', () => {
    expect(pool.name).toBe('wasm');
    expect(pool.concurrency).toBe(THREADS);
    expect(pool.variant).toMatch(/2 worker threads$/);
  });

  it('equals one thread with user split', async () => {
    // 98 users in blocks of 7: 14 blocks, a whole number of waves of 2.
    const options: ScoreOptions = {
      ...inputs({ rows: 98, columns: 301, dim: 37, seed: 11 }),
      k: 9,
      alpha: 2.5,
      blockUsers: 7,
    };
    expect(await scoreWith(pool, options)).toEqual(await scoreWith(undefined, options));
  });

  it('equals one thread with segment split', async () => {
    const options: ScoreOptions = {
      ...inputs({ rows: 3, columns: 1003, dim: 29, seed: 5 }),
      k: 12,
      alpha: -3,
    };
    expectSameUpToCxOrder(await scoreWith(pool, options), await scoreWith(undefined, options));
  });

  it('equals one thread with split tail', async () => {
    // 15 blocks of 7: the last one is split into content segments.
    const options: ScoreOptions = {
      ...inputs({ rows: 103, columns: 250, dim: 16, seed: 8 }),
      blockUsers: 7,
    };
    expectSameUpToCxOrder(await scoreWith(pool, options), await scoreWith(undefined, options));
  });

  it('handles k > C, minScore and exclusions', async () => {
    for (const [rows, blockUsers] of [[3, 512], [40, 5]] as const) {
      const base: ScoreOptions = {
        ...inputs({ rows, columns: 61, dim: 10, seed: rows }),
        blockUsers,
        k: 100,
        minScore: 0.1,
        weights: Array.from({ length: 61 }, (_, c) => 0.25 + (c % 5)),
      };
      const exclude: Record<string, number[]> = { '0': [0, 9, 3, 60], '1': [59, 1] };
      const unfiltered = { ...base, minScore: -1, k: 70 };
      for (const options of [base, unfiltered, { ...base, exclude }, { ...unfiltered, exclude }]) {
        const expected = await scoreWith(undefined, options);
        const actual = await scoreWith(pool, options);
        expectSameUpToCxOrder(actual, expected);
        const excluded = options.exclude ? [0, 9, 3, 60] : [];
        const leaked = actual[0]!.top.filter((match) => excluded.includes(match.content as number));
        expect(leaked).toEqual([]);
        // Every user has a cosine below 0.1 (one content is a zero vector), and
        // users 0 and 1 have exclusions.
        let expectedFullLists = options.exclude ? rows - 2 : rows;
        if (options.minScore === 0.1) expectedFullLists = 0;
        const fullLists = actual.filter((result) => result.top.length === 61).length;
        expect(fullLists).toBe(expectedFullLists);
      }
    }
  });

  it('returns the same cosine matrix', async () => {
    for (const [rows, blockUsers] of [[3, 512], [24, 6]] as const) {
      const options: ScoreOptions = {
        ...inputs({ rows, columns: 45, dim: 12, seed: 21 }),
        blockUsers,
        matrix: true,
      };
      const expected = await score({ ...options, threads: 1 });
      const actual = await score({ ...options, backend: pool });
      expect(actual.matrix).toEqual(expected.matrix);
    }
  });

  it('equals one thread on random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        async (rows, columns, dim, k, blockUsers, seed) => {
          const options: ScoreOptions = {
            ...inputs({ rows, columns, dim, seed }),
            k,
            blockUsers,
            alpha: (seed % 17) - 8,
            ...(seed % 3 === 0 ? { minScore: 0 } : {}),
            ...(seed % 4 === 0 ? { exclude: { '0': [columns - 1, 0] } } : {}),
          };
          const expected = await scoreWith(undefined, options);
          const actual = await scoreWith(pool, options);
          const blocks = Math.ceil(rows / blockUsers);
          if (blocks % THREADS === 0) expect(actual).toEqual(expected);
          else expectSameUpToCxOrder(actual, expected);
        },
      ),
      { numRuns: 60, seed: 20261205 },
    );
  });

  it('grows task slots while in flight', async () => {
    const dim = 24;
    const columns = 90;
    const contents = randomMatrix(columns, dim, 3);
    const single = createWasmBackend();
    const reference = single.prepare(contents, columns, dim);
    const prepared = pool.prepare(contents, columns, dim);
    const requests: BlockRequest[] = [1, 40, 3, 200, 5].map((rows, i) => ({
      users: randomMatrix(rows, dim, 100 + i),
      rows,
      k: 6,
      alpha: 1,
      minScore: -Infinity,
      exclude: { offsets: new Int32Array(rows + 1).fill(1, 1), rows: Int32Array.of(7) },
      position: { index: i, count: i % 2 === 0 ? 1 : THREADS },
    }));
    try {
      const actual = await Promise.all(requests.map((request) => pool.scoreBlock(prepared, request)));
      actual.forEach((scores, i) => {
        const expected = single.scoreBlock(reference, requests[i]!);
        expect(Array.from(scores.index)).toEqual(Array.from(expected.index));
        expect(Array.from(scores.score)).toEqual(Array.from(expected.score));
        for (let u = 0; u < expected.rows; u++) {
          expect(Math.abs(scores.cx[u]! - expected.cx[u]!)).toBeLessThanOrEqual(
            CX_REORDER_RELATIVE * expected.cx[u]!,
          );
        }
      });
    } finally {
      prepared.dispose();
      single.dispose();
    }
  });

  it('rejects prepared contents after dispose', async () => {
    const prepared = pool.prepare(randomMatrix(9, 4, 1), 9, 4);
    prepared.dispose();
    const request = { users: randomMatrix(2, 4, 2), rows: 2, k: 3, alpha: 1, minScore: -Infinity };
    await expect(pool.scoreBlock(prepared, request)).rejects.toThrow(/after dispose/);
  });

  it('rejects alpha out of range', async () => {
    const prepared = pool.prepare(randomMatrix(9, 4, 1), 9, 4);
    const request = { users: randomMatrix(2, 4, 2), rows: 2, k: 3, alpha: 81, minScore: -Infinity };
    await expect(pool.scoreBlock(prepared, request)).rejects.toThrow(/\|alpha\| <= 80/);
    prepared.dispose();
  });
});

describe('pool lifetime and options', () => {
  it('ends its workers on dispose', async () => {
    const backend = createPoolBackend({ threads: 2 });
    const prepared = backend.prepare(randomMatrix(20, 5, 1), 20, 5);
    const request = { users: randomMatrix(4, 5, 2), rows: 4, k: 2, alpha: 1, minScore: -Infinity };
    await backend.scoreBlock(prepared, request);
    await backend.dispose();
    expect(() => backend.prepare(randomMatrix(2, 5, 1), 2, 5)).toThrow(/after dispose/);
  });

  it('rejects invalid thread counts', async () => {
    for (const threads of [0, -1, 1.5, NaN]) {
      expect(() => createPoolBackend({ threads })).toThrow(AttnScoreError);
      await expect(
        score({ ...inputs({ rows: 2, columns: 3, dim: 2, seed: 1 }), threads }),
      ).rejects.toThrow(/threads must be a positive integer/);
    }
  });

  it('stops early with blocks in flight', async () => {
    const options: ScoreOptions = {
      ...inputs({ rows: 40, columns: 300, dim: 16, seed: 6 }),
      blockUsers: 4,
    };
    const expected = await scoreWith(undefined, options);
    const seen: UserResult[] = [];
    for await (const block of scoreBlocks({ ...options, threads: THREADS })) {
      seen.push(...block.results);
      if (seen.length >= 8) break;
    }
    expect(seen).toEqual(expected.slice(0, 8));
  });

  it('stops on abort between blocks', async () => {
    const controller = new AbortController();
    const options: ScoreOptions = {
      ...inputs({ rows: 40, columns: 300, dim: 16, seed: 6 }),
      blockUsers: 4,
      threads: THREADS,
      signal: controller.signal,
      onProgress: (done) => {
        if (done >= 8 * 300) controller.abort(new Error('stopped by test'));
      },
    };
    await expect(score(options)).rejects.toThrow('stopped by test');
  });

  it('scores with a pool that score() owns', async () => {
    const options: ScoreOptions = {
      ...inputs({ rows: 30, columns: 70, dim: 8, seed: 4 }),
      blockUsers: 5,
    };
    const pooled = await score({ ...options, threads: THREADS });
    expect(pooled.stats.backend).toMatch(/2 worker threads/);
    expectSameUpToCxOrder(pooled.results, await scoreWith(undefined, options));
    const single = await score({ ...options, threads: 1 });
    expect(single.stats.backend).not.toMatch(/worker threads/);
  });

  it('CLI output equal for threads 1 and 2', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const sample = join(root, 'sample');
    const outputs = [1, 2].map((threads) => {
      const run = spawnSync(
        process.execPath,
        [
          join(root, 'bin', 'attnscore.js'), 'score',
          '--users', join(sample, 'users.npy'),
          '--contents', join(sample, 'contents.npy'),
          '--k', '5', '--quiet', '--threads', String(threads),
        ],
        { encoding: 'utf8' },
      );
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      return run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as UserResult);
    });
    expect(outputs[1]).toHaveLength(500);
    expectSameUpToCxOrder(outputs[1]!, outputs[0]!);
  });
});
