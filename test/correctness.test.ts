/**
 * One correctness suite for every backend: each result is checked against
 * the float64 reference within the documented precision (cosine 1e-5
 * absolute, CX 1e-5 relative, loyalty 1e-6 absolute, top-k equal up to near
 * ties).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { score, type ScoreOptions } from '../src/score.js';
import type { Backend } from '../src/backends/backend.js';
import { prepareReference, scoreReference } from '../src/scoring/reference.js';
import { loyalty } from '../src/scoring/math.js';
import { resolveParams } from '../src/scoring/params.js';
import type { UserResult } from '../src/scoring/types.js';
import { backendCases } from './helpers/backends.js';
import { expectUserMatches, tolerance } from './helpers/compare.js';
import { copyRow, randomMatrix, zeroRow } from './helpers/data.js';

interface Case {
  users: Float32Array;
  contents: Float32Array;
  rows: number;
  columns: number;
  dim: number;
  weights?: Float64Array;
  options?: Partial<ScoreOptions>;
}

/** Computes the float64 reference for a case, including every cosine for near-tie checks. */
function referenceFor(test: Case) {
  const params = resolveParams(test.options ?? {});
  const contents = prepareReference(test.contents, test.columns, test.dim, test.weights);
  const exclude = test.options?.exclude as Record<string, number[]> | undefined;
  const offsets = new Int32Array(test.rows + 1);
  const excludedRows: number[] = [];
  for (let u = 0; u < test.rows; u++) {
    const list = [...(exclude?.[String(u)] ?? [])].sort((a, b) => a - b);
    excludedRows.push(...list);
    offsets[u + 1] = excludedRows.length;
  }
  const block = scoreReference(contents, {
    users: test.users,
    rows: test.rows,
    k: params.k,
    alpha: params.alpha,
    minScore: params.minScore,
    exclude: exclude ? { offsets, rows: Int32Array.from(excludedRows) } : undefined,
    matrix: true,
  });
  let weightSum = 0;
  for (let c = 0; c < test.columns; c++) weightSum += test.weights?.[c] ?? 1;
  const scale = params.normalizeWeights ? 1 / weightSum : 1;
  return Array.from({ length: test.rows }, (_, u) => {
    const count = block.count[u]!;
    const cx = block.cx[u]! * scale;
    const topIndex = block.index.subarray(u * block.k, u * block.k + count);
    const excluded = new Set(exclude?.[String(u)] ?? []);
    const nextScore = nextBest(block.matrix!, u, test.columns, topIndex, params.minScore, excluded);
    return {
      cx,
      loyalty: loyalty(cx, params.beta, params.gamma),
      topIndex,
      topScore: block.score.subarray(u * block.k, u * block.k + count),
      cosine: (row: number) => block.matrix![u * test.columns + row]!,
      nextScore,
      alpha: params.alpha,
    };
  });
}

function nextBest(
  matrix: Float32Array,
  user: number,
  columns: number,
  top: Int32Array,
  minScore: number,
  excluded: Set<number>,
): number {
  const chosen = new Set(top);
  let best = -Infinity;
  for (let c = 0; c < columns; c++) {
    const value = matrix[user * columns + c]!;
    if (chosen.has(c) || excluded.has(c)) continue;
    if (value >= minScore && value > best) best = value;
  }
  return best;
}

async function run(backend: Backend, test: Case): Promise<UserResult[]> {
  const { results } = await score({
    users: { data: test.users, rows: test.rows, dim: test.dim },
    contents: { data: test.contents, rows: test.columns, dim: test.dim },
    ...(test.weights ? { weights: test.weights } : {}),
    backend,
    blockUsers: 7,
    ...test.options,
  });
  return results;
}

async function expectMatchesReference(backend: Backend, test: Case): Promise<UserResult[]> {
  const actual = await run(backend, test);
  const expected = referenceFor(test);
  expect(actual).toHaveLength(test.rows);
  actual.forEach((result, u) => {
    expect(result.user).toBe(u);
    expectUserMatches(result, expected[u]!, (content) => content as number, `user ${u}`);
  });
  return actual;
}

function randomCase(rows: number, columns: number, dim: number, seed: number, options?: Partial<ScoreOptions>): Case {
  return {
    users: randomMatrix(rows, dim, seed),
    contents: randomMatrix(columns, dim, seed + 1),
    rows,
    columns,
    dim,
    ...(options ? { options } : {}),
  };
}

describe.each(backendCases)('backend $label', ({ create, unavailable }) => {
  let backend: Backend;
  beforeAll(async () => {
    if (!unavailable) backend = await create();
  });
  afterAll(() => backend?.dispose());

  it.skipIf(unavailable)(`runs here${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
    expect(backend.variant.length).toBeGreaterThan(0);
  });

  describe.skipIf(unavailable)('against the float64 reference', () => {
    it.each([1, 3, 7, 100, 784, 1536])('matches at D = %i', async (dim) => {
      await expectMatchesReference(backend, randomCase(13, 37, dim, dim));
    });

    it('matches when U and C are not multiples of any tile', async () => {
      for (const [rows, columns] of [[1, 1], [2, 9], [5, 17], [11, 23], [33, 65], [67, 263]] as const) {
        await expectMatchesReference(backend, randomCase(rows, columns, 19, rows * 100 + columns, { k: 4 }));
      }
    });

    it('gives zero vectors cosine 0 and CX of the weight sum times exp(0)', async () => {
      const test = randomCase(9, 21, 12, 5, { k: 21, alpha: 3 });
      zeroRow(test.users, 12, 0);
      zeroRow(test.users, 12, 8);
      zeroRow(test.contents, 12, 4);
      zeroRow(test.contents, 12, 20);
      const results = await expectMatchesReference(backend, test);
      expect(Math.abs(results[0]!.cx - 21) / 21).toBeLessThanOrEqual(tolerance.cxRelative);
      for (const match of results[0]!.top) expect(match.score).toBe(0);
      // With every score 0 the order is by row.
      expect(results[0]!.top.map((m) => m.content)).toEqual([...Array(21).keys()]);
      const zeroContent = results[1]!.top.find((m) => m.content === 4)!;
      expect(zeroContent.score).toBe(0);
    });

    it('orders exact ties by lower content row', async () => {
      const test = randomCase(10, 40, 16, 77, { k: 40 });
      for (const [from, to] of [[3, 30], [3, 17], [12, 13], [25, 2]] as const) copyRow(test.contents, 16, from, to);
      const results = await expectMatchesReference(backend, test);
      for (const result of results) {
        const rows = result.top.map((m) => m.content as number);
        for (const group of [[3, 17, 30], [12, 13], [2, 25]]) {
          const positions = group.map((row) => rows.indexOf(row));
          expect(positions).toEqual([...positions].sort((a, b) => a - b));
          const scores = group.map((row) => result.top[rows.indexOf(row)]!.score);
          expect(new Set(scores).size).toBe(1);
        }
      }
    });

    it('keeps the lower rows of a tie that straddles the k-th place', async () => {
      const dim = 8;
      const contents = new Float32Array(20 * dim);
      for (let c = 0; c < 20; c++) contents[c * dim] = 1;
      const users = new Float32Array(dim).fill(0.5);
      const { results } = await score({
        users: { data: users, rows: 1, dim },
        contents: { data: contents, rows: 20, dim },
        k: 5,
        backend,
      });
      expect(results[0]!.top.map((m) => m.content)).toEqual([0, 1, 2, 3, 4]);
    });

    it('matches with a large k, ties and exclusions', async () => {
      const test = randomCase(9, 700, 12, 404, { k: 300, minScore: -0.5 });
      for (let row = 0; row < 700; row += 7) copyRow(test.contents, 12, 3, row);
      test.options = { ...test.options, exclude: { '2': [3, 10, 699], '8': [0, 1, 2] } };
      await expectMatchesReference(backend, test);
    });

    it('returns all C contents when k > C', async () => {
      const results = await expectMatchesReference(backend, randomCase(6, 5, 9, 8, { k: 50 }));
      for (const result of results) expect(result.top).toHaveLength(5);
    });

    it.each([-80, -7.5, -1, 0, 0.25, 80])('matches with alpha = %d', async (alpha) => {
      await expectMatchesReference(backend, randomCase(12, 45, 24, 31, { alpha, beta: 1e-3, gamma: -2, k: 6 }));
    });

    it('matches with weights and normalised weights', async () => {
      for (const normalizeWeights of [false, true]) {
        const test = randomCase(10, 33, 20, 4, { normalizeWeights, alpha: 2, k: 3 });
        test.weights = Float64Array.from({ length: 33 }, (_, c) => 0.5 + 0.1 * (c % 10));
        const results = await expectMatchesReference(backend, test);
        if (normalizeWeights) {
          for (const result of results) {
            expect(result.cx).toBeGreaterThanOrEqual(Math.exp(-2) * (1 - tolerance.cxRelative));
            expect(result.cx).toBeLessThanOrEqual(Math.exp(2) * (1 + tolerance.cxRelative));
          }
        }
      }
    });

    it('leaves contents below minScore out of the list but not out of CX', async () => {
      const results = await expectMatchesReference(backend, randomCase(15, 50, 6, 12, { minScore: 0.3, k: 50 }));
      for (const result of results) for (const match of result.top) expect(match.score).toBeGreaterThanOrEqual(0.3);
      expect(results.some((result) => result.top.length < 50)).toBe(true);
    });

    it('leaves excluded contents out of the list but not out of CX', async () => {
      const test = randomCase(8, 30, 10, 99, { k: 5 });
      const baseline = await run(backend, test);
      const exclude: Record<string, number[]> = {
        '0': baseline[0]!.top.slice(0, 3).map((m) => m.content as number),
        '5': [29, 0, baseline[5]!.top[0]!.content as number],
      };
      test.options = { ...test.options, exclude };
      const results = await expectMatchesReference(backend, test);
      for (const [user, rows] of Object.entries(exclude)) {
        const result = results[Number(user)]!;
        for (const row of rows) expect(result.top.map((m) => m.content)).not.toContain(row);
        expect(result.cx).toBe(baseline[Number(user)]!.cx);
      }
    });

    it('returns the cosine matrix on request', async () => {
      const test = randomCase(9, 19, 33, 3);
      zeroRow(test.users, 33, 2);
      const { matrix } = await score({
        users: { data: test.users, rows: 9, dim: 33 },
        contents: { data: test.contents, rows: 19, dim: 33 },
        backend,
        matrix: true,
        blockUsers: 4,
      });
      const expected = referenceFor(test);
      expect(matrix!.rows).toBe(9);
      expect(matrix!.columns).toBe(19);
      for (let u = 0; u < 9; u++) {
        for (let c = 0; c < 19; c++) {
          expect(Math.abs(matrix!.data[u * 19 + c]! - expected[u]!.cosine(c))).toBeLessThanOrEqual(tolerance.cosine);
        }
      }
    });

    it('keeps precision for very large and very small magnitudes', async () => {
      const test = randomCase(6, 14, 40, 21, { k: 5 });
      for (let i = 0; i < 40; i++) {
        test.users[i] = test.users[i]! * 1e30;
        test.users[40 + i] = test.users[40 + i]! * 1e-30;
        test.contents[i] = test.contents[i]! * 3e37;
        test.contents[40 + i] = test.contents[40 + i]! * 1e-38;
      }
      await expectMatchesReference(backend, test);
    });

    it('scores the same with any block size', async () => {
      const test = randomCase(29, 31, 12, 55, { k: 7 });
      const expected = await run(backend, test);
      for (const blockUsers of [1, 4, 8, 29, 100]) {
        const { results } = await score({
          users: { data: test.users, rows: 29, dim: 12 },
          contents: { data: test.contents, rows: 31, dim: 12 },
          k: 7,
          backend,
          blockUsers,
        });
        expect(results).toEqual(expected);
      }
    });

    it('matches on random shapes (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 12 }),
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 20 }),
          fc.integer({ min: 1, max: 45 }),
          fc.double({ min: -10, max: 10, noNaN: true }),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          async (rows, columns, dim, k, alpha, seed) => {
            const test = randomCase(rows, columns, dim, seed, { k, alpha });
            if (seed % 3 === 0) zeroRow(test.contents, dim, seed % columns);
            if (seed % 5 === 0 && columns > 1) copyRow(test.contents, dim, 0, columns - 1);
            await expectMatchesReference(backend, test);
          },
        ),
        { numRuns: 60, seed: 20261204 },
      );
    });
  });
});
