/**
 * Kernel-level tests of the wasm backend: the exp approximation, tile tails,
 * top-k order and ties, exclusions, minScore, matrix mode, large and tiny D,
 * memory limits, for both kernel builds. Every comparison is against the
 * float64 reference in src/scoring/reference.ts.
 */
import { describe, it, expect } from 'vitest';
import type { BlockRequest, SyncBackend } from '../src/backends/backend.js';
import { createWasmBackend, relaxedSimdAvailable } from '../src/backends/wasm/index.js';
import {
  createKernelMemory,
  instantiateKernel,
  splitAlpha,
  type KernelVariant,
} from '../src/backends/wasm/module.js';
import { AttnScoreError } from '../src/scoring/errors.js';
import { prepareReference, scoreReference } from '../src/scoring/reference.js';
import type { BlockScores, ExclusionList } from '../src/scoring/types.js';

const SCORE_TOLERANCE = 1e-5;
const CX_RELATIVE_TOLERANCE = 1e-5;

const variants: { simd: 'plain' | 'relaxed'; kernel: KernelVariant }[] = [
  { simd: 'plain', kernel: 'plain' },
  { simd: 'relaxed', kernel: 'relaxed' },
];

/** Deterministic uniform values in [-1, 1) (mulberry32). */
function randomVectors(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    data[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return data;
}

interface Case {
  users: Float32Array;
  userRows: number;
  contents: Float32Array;
  contentRows: number;
  dim: number;
  weights?: Float64Array;
  k: number;
  alpha: number;
  minScore?: number;
  exclude?: ExclusionList;
  matrix?: boolean;
}

function runBoth(backend: SyncBackend, c: Case): { wasm: BlockScores; reference: BlockScores } {
  const request: BlockRequest = {
    users: c.users,
    rows: c.userRows,
    k: c.k,
    alpha: c.alpha,
    minScore: c.minScore ?? -Infinity,
    ...(c.exclude ? { exclude: c.exclude } : {}),
    ...(c.matrix ? { matrix: true } : {}),
  };
  const prepared = backend.prepare(c.contents, c.contentRows, c.dim, c.weights);
  const wasm = backend.scoreBlock(prepared, request);
  prepared.dispose();
  const reference = scoreReference(
    prepareReference(c.contents, c.contentRows, c.dim, c.weights),
    request,
  );
  return { wasm, reference };
}

/** Checks shape, indices, scores and CX against the reference. */
function expectMatchesReference(wasm: BlockScores, reference: BlockScores): void {
  expect(wasm.rows).toBe(reference.rows);
  expect(wasm.k).toBe(reference.k);
  expect(Array.from(wasm.count)).toEqual(Array.from(reference.count));
  expect(Array.from(wasm.index)).toEqual(Array.from(reference.index));
  for (let i = 0; i < reference.score.length; i++) {
    if (Number.isNaN(reference.score[i]!)) {
      expect(wasm.score[i]).toBeNaN();
    } else {
      expect(Math.abs(wasm.score[i]! - reference.score[i]!)).toBeLessThanOrEqual(SCORE_TOLERANCE);
    }
  }
  for (let u = 0; u < reference.rows; u++) {
    expect(relativeError(wasm.cx[u]!, reference.cx[u]!)).toBeLessThanOrEqual(CX_RELATIVE_TOLERANCE);
  }
}

/**
 * With D = 1 every cosine is exactly -1, 0 or 1, so the lists are all ties.
 * The reference computes dot * (1/|u|) * (1/|c|) in float64, which can land
 * an ulp off 1 and reorder ties, so the expected lists come from the signs:
 * by value, then by lower row.
 */
function expectExactOneDimensional(c: Case, wasm: BlockScores, reference: BlockScores): void {
  const k = Math.min(c.k, c.contentRows);
  for (let u = 0; u < c.userRows; u++) {
    const ranked = Array.from({ length: c.contentRows }, (_, row) => ({
      row,
      score: Math.sign(c.users[u]!) * Math.sign(c.contents[row]!),
    })).sort((x, y) => y.score - x.score || x.row - y.row);
    const expected = ranked.slice(0, k);
    expect(Array.from(wasm.index.subarray(u * k, (u + 1) * k))).toEqual(expected.map((e) => e.row));
    const scores = Array.from(wasm.score.subarray(u * k, (u + 1) * k));
    expect(scores).toEqual(expected.map((e) => e.score));
    expect(relativeError(wasm.cx[u]!, reference.cx[u]!)).toBeLessThanOrEqual(CX_RELATIVE_TOLERANCE);
  }
}

function relativeError(actual: number, expected: number): number {
  if (actual === expected) return 0;
  return Math.abs(actual - expected) / Math.abs(expected);
}

function maxRelativeCxError(wasm: BlockScores, reference: BlockScores): number {
  let worst = 0;
  for (let u = 0; u < reference.rows; u++) {
    worst = Math.max(worst, relativeError(wasm.cx[u]!, reference.cx[u]!));
  }
  return worst;
}

describe('wasm backend identity', () => {
  it('relaxed SIMD is detected on this runtime', () => {
    // Node 20.20 gets it through the V8 flag that relaxedSimdAvailable sets.
    expect(relaxedSimdAvailable()).toBe(true);
  });

  it('variant names the build', () => {
    expect(createWasmBackend({ simd: 'plain' }).variant).toBe('WebAssembly SIMD128');
    expect(createWasmBackend({ simd: 'relaxed' }).variant).toBe(
      'WebAssembly SIMD128 with relaxed madd',
    );
    expect(createWasmBackend().variant).toBe('WebAssembly SIMD128 with relaxed madd');
    expect(createWasmBackend().name).toBe('wasm');
  });

  it('unknown simd option is rejected', () => {
    const options = { simd: 'avx' } as unknown as { simd: 'auto' };
    expect(() => createWasmBackend(options)).toThrow(/simd must be 'auto', 'relaxed' or 'plain'/);
  });
});

for (const { simd, kernel } of variants) {
  describe(`wasm kernel (${simd})`, () => {
    it('exp error on [-80, 80]', () => {
      const count = 1 << 20;
      const memory = createKernelMemory(Math.ceil((count * 8 + 64) / 65536));
      const exports = instantiateKernel(kernel, memory);
      const input = new Float32Array(memory.buffer, 64, count);
      for (let i = 0; i < count; i++) input[i] = -80 + (160 * i) / (count - 1);
      const outputPtr = 64 + count * 4;
      exports.expBatch(64, outputPtr, count, 1, 0);
      const output = new Float32Array(memory.buffer, outputPtr, count);
      let worst = 0;
      for (let i = 0; i < count; i++) {
        worst = Math.max(worst, relativeError(output[i]!, Math.exp(input[i]!)));
      }
      // Measured 2.0e-7 (plain) and 1.9e-7 (relaxed) on 2^22 grid and random points,
      // Node 20.20 on a Sapphire Rapids Xeon.
      expect(worst).toBeLessThan(2.5e-7);
    });

    it('exp of alpha * a is accurate', () => {
      const count = 1 << 16;
      const memory = createKernelMemory(Math.ceil((count * 8 + 64) / 65536));
      const exports = instantiateKernel(kernel, memory);
      const input = new Float32Array(memory.buffer, 64, count);
      const cosines = randomVectors(count, 7);
      input.set(cosines);
      input[0] = 1;
      input[1] = -1;
      const outputPtr = 64 + count * 4;
      // 79.3 and 0.1 have no exact float32, and 80 and -80 are the limits.
      for (const alpha of [80, -80, 79.3, -33.3333, 0.1, 1e-3, 5e-324]) {
        const { high, low } = splitAlpha(alpha);
        exports.expBatch(64, outputPtr, count, high, low);
        const output = new Float32Array(memory.buffer, outputPtr, count);
        let worst = 0;
        for (let i = 0; i < count; i++) {
          worst = Math.max(worst, relativeError(output[i]!, Math.exp(alpha * input[i]!)));
        }
        expect(worst).toBeLessThan(2.5e-7);
      }
    });

    it('alpha splits into a 12-bit head and an exact tail', () => {
      for (const alpha of [80, -80, 79.3, 1e-3, -0.1, 1.5]) {
        const { high, low } = splitAlpha(alpha);
        expect(high + low).toBe(alpha);
        const significand = Math.abs(high) / 2 ** (Math.floor(Math.log2(Math.abs(high))) - 11);
        expect(Number.isInteger(significand)).toBe(true);
        expect(Math.abs(low)).toBeLessThanOrEqual(Math.abs(alpha) * 2 ** -12);
      }
      expect(splitAlpha(0)).toEqual({ high: 0, low: 0 });
      expect(splitAlpha(5e-324)).toEqual({ high: 0, low: 5e-324 });
      expect(splitAlpha(-1e-30)).toEqual({ high: 0, low: -1e-30 });
    });

    it('exp is accurate at the domain edges', () => {
      const memory = createKernelMemory(1);
      const exports = instantiateKernel(kernel, memory);
      const edges = [-87, -86.5, 0, 86.5, 87, -1e-30, 1e-30, 0.5 * Math.LN2];
      const input = new Float32Array(memory.buffer, 64, edges.length);
      input.set(edges);
      exports.expBatch(64, 128, edges.length, 1, 0);
      const output = new Float32Array(memory.buffer, 128, edges.length);
      for (let i = 0; i < edges.length; i++) {
        expect(relativeError(output[i]!, Math.exp(input[i]!))).toBeLessThan(3e-7);
      }
      expect(output[2]).toBe(1);
    });

    it('tails off the tile match the reference', () => {
      const backend = createWasmBackend({ simd });
      let seed = 1;
      for (const userRows of [1, 3, 4, 5, 7, 9]) {
        for (const contentRows of [1, 7, 8, 9, 15, 17, 33]) {
          for (const dim of [1, 2, 3, 5, 17]) {
            const c: Case = {
              users: randomVectors(userRows * dim, seed++),
              userRows,
              contents: randomVectors(contentRows * dim, seed++),
              contentRows,
              dim,
              weights: new Float64Array(contentRows).map((_, i) => 0.25 + (i % 5)),
              k: 4,
              alpha: 2.5,
            };
            const { wasm, reference } = runBoth(backend, c);
            if (dim === 1) {
              expectExactOneDimensional(c, wasm, reference);
            } else {
              expectMatchesReference(wasm, reference);
            }
          }
        }
      }
    });

    it('k larger than C fills min(k, C) slots', () => {
      const backend = createWasmBackend({ simd });
      const { wasm, reference } = runBoth(backend, {
        users: randomVectors(6 * 8, 11),
        userRows: 6,
        contents: randomVectors(5 * 8, 12),
        contentRows: 5,
        dim: 8,
        k: 50,
        alpha: 1,
      });
      expect(wasm.k).toBe(5);
      expect(Array.from(wasm.count)).toEqual([5, 5, 5, 5, 5, 5]);
      expectMatchesReference(wasm, reference);
    });

    it('duplicates tie by lower row', () => {
      const backend = createWasmBackend({ simd });
      const dim = 256; // 256 KiB chunks hold 256 contents at this dim
      const contentRows = 1200;
      const contents = randomVectors(contentRows * dim, 21);
      const target = randomVectors(dim, 22);
      // Copies of one vector in different lanes, panels and content chunks, plus a scaled copy.
      const copies = [3, 4, 12, 255, 256, 700, 1199];
      for (const row of copies) contents.set(target, row * dim);
      contents.set(target.map((v) => v * 4), 901 * dim);
      const users = new Float32Array(2 * dim);
      users.set(target, 0);
      users.set(target.map((v) => -v), dim);
      const { wasm, reference } = runBoth(backend, {
        users,
        userRows: 2,
        contents,
        contentRows,
        dim,
        k: 10,
        alpha: 1,
      });
      const expectedTop = [...copies.slice(0, 4), 256, 700, 901, 1199].sort((a, b) => a - b);
      expect(Array.from(wasm.index.subarray(0, expectedTop.length))).toEqual(expectedTop);
      const tiedScores = new Set(Array.from(wasm.score.subarray(0, expectedTop.length)));
      expect(tiedScores.size).toBe(1);
      expectMatchesReference(wasm, reference);
    });

    it('zero vectors score 0', () => {
      const backend = createWasmBackend({ simd });
      const dim = 12;
      const contents = randomVectors(20 * dim, 31);
      contents.fill(0, 2 * dim, 3 * dim);
      contents.fill(0, 10 * dim, 11 * dim);
      const users = randomVectors(3 * dim, 32);
      users.fill(0, 0, dim);
      const { wasm, reference } = runBoth(backend, {
        users,
        userRows: 3,
        contents,
        contentRows: 20,
        dim,
        k: 6,
        alpha: -3,
      });
      expect(Array.from(wasm.index.subarray(0, 6))).toEqual([0, 1, 2, 3, 4, 5]);
      expect(Array.from(wasm.score.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
      expect(wasm.cx[0]).toBe(20);
      expectMatchesReference(wasm, reference);
    });

    it('exclusions skip the list, not CX', () => {
      const backend = createWasmBackend({ simd });
      const dim = 24;
      const userRows = 5;
      const contentRows = 70;
      const users = randomVectors(userRows * dim, 41);
      const contents = randomVectors(contentRows * dim, 42);
      const base: Case = { users, userRows, contents, contentRows, dim, k: 8, alpha: 4 };
      const plain = runBoth(backend, base);
      // Exclude each user's top 3 and row 69, which sits in the padded last panel.
      // User 2 has no exclusions.
      const offsets = new Int32Array(userRows + 1);
      const excluded: number[] = [];
      for (let u = 0; u < userRows; u++) {
        if (u !== 2) {
          const rows = [...Array.from(plain.wasm.index.subarray(u * 8, u * 8 + 3)), 69];
          excluded.push(...new Set(rows.sort((a, b) => a - b)));
        }
        offsets[u + 1] = excluded.length;
      }
      const exclude = { offsets, rows: Int32Array.from(excluded) };

      const { wasm, reference } = runBoth(backend, {
        users,
        userRows,
        contents,
        contentRows,
        dim,
        k: 8,
        alpha: 4,
        exclude,
      });
      expectMatchesReference(wasm, reference);

      for (let u = 0; u < userRows; u++) {
        const list = Array.from(wasm.index.subarray(u * 8, u * 8 + 8));
        const banned = Array.from(exclude.rows.subarray(offsets[u]!, offsets[u + 1]!));
        for (const row of banned) expect(list).not.toContain(row);
        expect(wasm.cx[u]).toBe(plain.wasm.cx[u]);
      }
      expect(Array.from(wasm.index.subarray(16, 24))).toEqual(
        Array.from(plain.wasm.index.subarray(16, 24)),
      );
    });

    it('minScore keeps equal scores', () => {
      const backend = createWasmBackend({ simd });
      const dim = 16;
      const userRows = 6;
      const contentRows = 40;
      const users = randomVectors(userRows * dim, 51);
      const contents = randomVectors(contentRows * dim, 52);
      const withMatrix = runBoth(backend, {
        users,
        userRows,
        contents,
        contentRows,
        dim,
        k: 40,
        alpha: 1,
        matrix: true,
      });
      // Use user 0's 5th best float32 score itself as the bound: exactly 5 rows qualify for it.
      const bound = withMatrix.wasm.score[4]!;

      const prepared = backend.prepare(contents, contentRows, dim);
      const result = backend.scoreBlock(prepared, {
        users,
        rows: userRows,
        k: 10,
        alpha: 1,
        minScore: bound,
      });
      expect(result.count[0]).toBe(5);
      expect(result.score[4]).toBe(bound);
      expect(result.index[5]).toBe(-1);
      expect(result.score[5]).toBeNaN();

      for (let u = 0; u < userRows; u++) {
        const row = withMatrix.wasm.matrix!.subarray(u * contentRows, (u + 1) * contentRows);
        const qualifying = Array.from(row).filter((s) => s >= bound).length;
        expect(result.count[u]).toBe(Math.min(10, qualifying));
        expect(result.cx[u]).toBe(withMatrix.wasm.cx[u]);
      }

      const { wasm, reference } = runBoth(backend, {
        users,
        userRows,
        contents,
        contentRows,
        dim,
        k: 10,
        alpha: 1,
        minScore: 0.2,
      });
      expectMatchesReference(wasm, reference);
    });

    it('matrix mode returns every cosine', () => {
      const backend = createWasmBackend({ simd });
      const dim = 33;
      const userRows = 7;
      const contentRows = 29;
      const { wasm, reference } = runBoth(backend, {
        users: randomVectors(userRows * dim, 61),
        userRows,
        contents: randomVectors(contentRows * dim, 62),
        contentRows,
        dim,
        k: 3,
        alpha: 2,
        matrix: true,
      });
      expectMatchesReference(wasm, reference);
      expect(wasm.matrix).toBeInstanceOf(Float32Array);
      expect(wasm.matrix!.length).toBe(userRows * contentRows);
      for (let i = 0; i < userRows * contentRows; i++) {
        const error = Math.abs(wasm.matrix![i]! - reference.matrix![i]!);
        expect(error).toBeLessThanOrEqual(SCORE_TOLERANCE);
      }
      // The top-k scores are the matrix entries themselves, bit for bit.
      for (let u = 0; u < userRows; u++) {
        for (let slot = 0; slot < 3; slot++) {
          const row = wasm.index[u * 3 + slot]!;
          expect(wasm.score[u * 3 + slot]).toBe(wasm.matrix![u * contentRows + row]);
        }
      }
    });

    it('matrix is absent unless requested', () => {
      const backend = createWasmBackend({ simd });
      const { wasm } = runBoth(backend, {
        users: randomVectors(8, 63),
        userRows: 2,
        contents: randomVectors(12, 64),
        contentRows: 3,
        dim: 4,
        k: 2,
        alpha: 1,
      });
      expect(wasm.matrix).toBeUndefined();
    });

    for (const dim of [1536, 4096]) {
      it(`D = ${dim} stays within the precision bounds`, () => {
        const backend = createWasmBackend({ simd });
        const userRows = 6;
        const contentRows = 90;
        const users = randomVectors(userRows * dim, dim + 1);
        const contents = randomVectors(contentRows * dim, dim + 2);
        // Near-duplicates make cosines close to 1, where float32 sums lose the most.
        for (let j = 0; j < dim; j++) contents[5 * dim + j] = users[j]! * 1.5 + 1e-3 * contents[j]!;
        for (const alpha of [1, -20, 80]) {
          const { wasm, reference } = runBoth(backend, {
            users,
            userRows,
            contents,
            contentRows,
            dim,
            weights: new Float64Array(contentRows).map((_, i) => 1 + (i % 3)),
            k: 10,
            alpha,
            matrix: true,
          });
          expectMatchesReference(wasm, reference);
          for (let i = 0; i < userRows * contentRows; i++) {
            expect(Math.abs(wasm.matrix![i]! - reference.matrix![i]!)).toBeLessThanOrEqual(
              SCORE_TOLERANCE,
            );
          }
        }
      });
    }

    it('CX over a million contents', () => {
      const backend = createWasmBackend({ simd });
      const dim = 4;
      const contentRows = 1_000_000;
      const { wasm, reference } = runBoth(backend, {
        users: randomVectors(3 * dim, 71),
        userRows: 3,
        contents: randomVectors(contentRows * dim, 72),
        contentRows,
        dim,
        k: 5,
        alpha: 10,
      });
      expect(maxRelativeCxError(wasm, reference)).toBeLessThanOrEqual(CX_RELATIVE_TOLERANCE);
      expectMatchesReference(wasm, reference);
    });

    it('extreme and negative weights', () => {
      const backend = createWasmBackend({ simd });
      const dim = 10;
      const contentRows = 45;
      for (const scale of [1e-300, 1e-20, 1, 1e30, 1e300]) {
        const weights = new Float64Array(contentRows).map((_, i) => scale * (1 + i / 7));
        const { wasm, reference } = runBoth(backend, {
          users: randomVectors(5 * dim, 81),
          userRows: 5,
          contents: randomVectors(contentRows * dim, 82),
          contentRows,
          dim,
          weights,
          k: 3,
          alpha: 80,
        });
        expect(maxRelativeCxError(wasm, reference)).toBeLessThanOrEqual(CX_RELATIVE_TOLERANCE);
      }
      const mixed = new Float64Array(contentRows).map((_, i) => (i % 2 === 0 ? 2 : -1));
      const { wasm, reference } = runBoth(backend, {
        users: randomVectors(5 * dim, 83),
        userRows: 5,
        contents: randomVectors(contentRows * dim, 84),
        contentRows,
        dim,
        weights: mixed,
        k: 3,
        alpha: 0.5,
      });
      expect(maxRelativeCxError(wasm, reference)).toBeLessThanOrEqual(CX_RELATIVE_TOLERANCE);
    });

    it('blocks reuse one prepared set', () => {
      const backend = createWasmBackend({ simd });
      const dim = 20;
      const contentRows = 50;
      const contents = randomVectors(contentRows * dim, 91);
      const prepared = backend.prepare(contents, contentRows, dim);
      const reference = prepareReference(contents, contentRows, dim);
      for (const [userRows, seed] of [
        [9, 92],
        [2, 93],
        [300, 94],
        [5, 95],
      ] as const) {
        const request = {
          users: randomVectors(userRows * dim, seed),
          rows: userRows,
          k: 7,
          alpha: 3,
          minScore: -Infinity,
        };
        const wasm = backend.scoreBlock(prepared, request);
        expectMatchesReference(wasm, scoreReference(reference, request));
      }
    });

    it('an empty block returns empty arrays', () => {
      const backend = createWasmBackend({ simd });
      const prepared = backend.prepare(randomVectors(30, 101), 10, 3);
      const result = backend.scoreBlock(prepared, {
        users: new Float32Array(0),
        rows: 0,
        k: 4,
        alpha: 1,
        minScore: -Infinity,
      });
      expect(result.rows).toBe(0);
      expect(result.k).toBe(4);
      expect(result.index.length).toBe(0);
      expect(result.cx.length).toBe(0);
    });
  });
}

describe('wasm backend limits and lifecycle', () => {
  it('contents beyond 4 GiB are rejected', () => {
    const backend = createWasmBackend({ simd: 'plain' });
    const rows = 1 << 20;
    const dim = 1024; // 4 GiB of float32 before padding and weights
    let caught: unknown;
    try {
      backend.prepare(new Float32Array(0), rows, dim);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AttnScoreError);
    expect((caught as AttnScoreError).code).toBe('INVALID_INPUT');
    const message = (caught as AttnScoreError).message;
    expect(message).toMatch(/above the wasm32 limit of 4294967296 bytes/);
    expect(message).toMatch(/needs 4\d{9} bytes/);
  });

  it('oversized block is rejected', () => {
    const backend = createWasmBackend({ simd: 'plain' });
    const prepared = backend.prepare(randomVectors(64, 111), 16, 4);
    const request = {
      users: new Float32Array(0),
      rows: 300_000_000,
      k: 1,
      alpha: 1,
      minScore: -Infinity,
    };
    expect(() => backend.scoreBlock(prepared, request)).toThrow(/wasm32 limit/);
  });

  it('alpha beyond 80 is rejected', () => {
    const backend = createWasmBackend({ simd: 'plain' });
    const prepared = backend.prepare(randomVectors(8, 121), 2, 4);
    const request = { users: randomVectors(4, 122), rows: 1, k: 1, alpha: 81, minScore: -Infinity };
    expect(() => backend.scoreBlock(prepared, request)).toThrow(/\|alpha\| <= 80/);
  });

  it('disposed contents and backends cannot be used', () => {
    const backend = createWasmBackend({ simd: 'plain' });
    const prepared = backend.prepare(randomVectors(8, 131), 2, 4);
    const request = { users: randomVectors(4, 132), rows: 1, k: 1, alpha: 1, minScore: -Infinity };
    prepared.dispose();
    expect(() => backend.scoreBlock(prepared, request)).toThrow(/after dispose/);
    const other = backend.prepare(randomVectors(8, 133), 2, 4);
    backend.dispose();
    expect(() => backend.scoreBlock(other, request)).toThrow(/after dispose/);
    expect(() => backend.prepare(randomVectors(8, 134), 2, 4)).toThrow(/after dispose/);
  });
});
