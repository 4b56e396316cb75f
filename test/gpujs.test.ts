/**
 * The gpujs backend beyond the shared correctness suite: blocks that span
 * several tiles in both directions (more than USER_TILE users and
 * CONTENT_TILE contents), both top-k paths, and how it reports its mode.
 * The WebGL cases need a GL context (run under xvfb-run) and skip with the
 * reason otherwise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CONTENT_TILE, createGpujsBackend, USER_TILE } from '../src/backends/gpujs/index.js';
import { probeHeadlessGl } from '../src/backends/gpujs/mode.js';
import type { Backend } from '../src/backends/backend.js';
import { prepareReference, scoreReference } from '../src/scoring/reference.js';
import type { BlockScores, ExclusionList } from '../src/scoring/types.js';
import { cxTolerance, tolerance } from './helpers/compare.js';
import { copyRow, randomMatrix, zeroRow } from './helpers/data.js';

const headlessGl = probeHeadlessGl();
const glUnavailable = 'reason' in headlessGl ? headlessGl.reason : undefined;

// Small dims keep llvmpipe fast; the shape crosses both tile edges.
const rows = USER_TILE + 7;
const contentRows = 2 * CONTENT_TILE + 45;
const dim = 6;
const users = randomMatrix(rows, dim, 301);
const contents = randomMatrix(contentRows, dim, 302);
zeroRow(users, dim, rows - 1);
zeroRow(contents, dim, CONTENT_TILE);
copyRow(contents, dim, 5, CONTENT_TILE + 5);
// Rows 0..29 are perturbed copies of user 0, so its best rows crowd one top-k segment.
for (let c = 0; c < 30; c++) {
  for (let j = 0; j < dim; j++) contents[c * dim + j] = users[j]! + 0.01 * (c + 1) * (j % 2 === 0 ? 1 : -1);
}
const weights = Float64Array.from({ length: contentRows }, (_, c) => 0.25 + (c % 13) * 0.5);
const reference = prepareReference(contents, contentRows, dim, weights);
const exclude = exclusions();

/**
 * Excludes the best 12 rows of user 0, which all lie in one top-k segment.
 * Every third other user loses its best 4 rows and rows 0 and C - 1. The
 * top-k lists must then reach past the excluded rows of a segment.
 */
function exclusions(): ExclusionList {
  const best = scoreReference(reference, { users, rows, k: 12, alpha: 1, minScore: -Infinity });
  const offsets = new Int32Array(rows + 1);
  const excluded: number[] = [];
  for (let u = 0; u < rows; u++) {
    if (u % 3 === 0) {
      const count = u === 0 ? 12 : 4;
      const chosen = new Set([0, contentRows - 1, ...best.index.subarray(u * 12, u * 12 + count)]);
      excluded.push(...[...chosen].sort((a, b) => a - b));
    }
    offsets[u + 1] = excluded.length;
  }
  return { offsets, rows: Int32Array.from(excluded) };
}

/** Checks a block against the float64 reference; a row may differ from the reference's only at a near tie. */
function expectMatchesReference(actual: BlockScores, expected: BlockScores, alpha: number): void {
  expect(actual.k).toBe(expected.k);
  for (let u = 0; u < rows; u++) {
    const relative = Math.abs(actual.cx[u]! - expected.cx[u]!) / expected.cx[u]!;
    if (!(relative <= cxTolerance(alpha))) expect.fail(`user ${u}: cx relative error ${relative}`);
    expect(actual.count[u], `user ${u} count`).toBe(expected.count[u]);
    for (let slot = u * expected.k; slot < u * expected.k + expected.count[u]!; slot++) {
      const row = actual.index[slot]!;
      const expectedScore = expected.score[slot]!;
      if (!(Math.abs(actual.score[slot]! - expectedScore) <= tolerance.cosine)) {
        expect.fail(`user ${u} slot ${slot}: score ${actual.score[slot]} vs ${expectedScore}`);
      }
      const trueScore = expected.matrix![u * contentRows + row]!;
      if (row !== expected.index[slot] && !(Math.abs(trueScore - expectedScore) <= tolerance.cosine)) {
        expect.fail(`user ${u} slot ${slot}: row ${row} vs reference row ${expected.index[slot]}`);
      }
    }
  }
}

const variants = [
  { label: 'WebGL, top-k on the host', options: { mode: 'webgl', topk: 'host' }, unavailable: glUnavailable },
  { label: 'WebGL, top-k candidates on the GPU', options: { mode: 'webgl', topk: 'gpu' }, unavailable: glUnavailable },
  { label: 'CPU mode', options: { mode: 'cpu', topk: 'host' }, unavailable: undefined },
] as const;

describe.each(variants)('gpujs $label across tiles', ({ options, unavailable }) => {
  let backend: Backend | undefined;
  afterAll(() => backend?.dispose());
  const skipNote = unavailable ? ` (skipped: ${unavailable})` : '';

  it.skipIf(unavailable).each([
    { k: 5, alpha: 2, minScore: -Infinity },
    { k: 9, alpha: -30, minScore: 0.2 },
    { k: 40, alpha: 80, minScore: -Infinity },
  ])(`matches the reference with k = $k, alpha = $alpha${skipNote}`, ({ k, alpha, minScore }) => {
    backend ??= createGpujsBackend(options);
    const prepared = backend.prepare(contents, contentRows, dim, weights);
    const request = { users, rows, k, alpha, minScore, exclude };
    const actual = backend.scoreBlock(prepared, request) as BlockScores;
    expectMatchesReference(actual, scoreReference(reference, { ...request, matrix: true }), alpha);
    prepared.dispose();
  });

  it.skipIf(unavailable)(`returns the cosine matrix across tiles${skipNote}`, () => {
    backend ??= createGpujsBackend(options);
    const prepared = backend.prepare(contents, contentRows, dim, weights);
    const request = { users, rows, k: 3, alpha: 1, minScore: -Infinity, matrix: true };
    const actual = backend.scoreBlock(prepared, request) as BlockScores;
    const expected = scoreReference(reference, request);
    let worst = 0;
    for (let i = 0; i < expected.matrix!.length; i++) {
      worst = Math.max(worst, Math.abs(actual.matrix![i]! - expected.matrix![i]!));
    }
    expect(worst).toBeLessThanOrEqual(tolerance.cosine);
    prepared.dispose();
  });
});

describe('gpujs mode', () => {
  it('names CPU mode in its variant', () => {
    const backend = createGpujsBackend({ mode: 'cpu' });
    expect(backend.variant).toMatch(/^gpu\.js 2\.\d+\.\d+ CPU mode$/);
    backend.dispose();
  });

  it('auto mode picks WebGL or CPU', () => {
    const backend = createGpujsBackend();
    const expected =
      glUnavailable === undefined ? 'headless WebGL, renderer ' : `CPU mode; headless WebGL unavailable: ${glUnavailable}`;
    expect(backend.variant).toContain(expected);
    backend.dispose();
  });

  it.skipIf(glUnavailable === undefined)('webgl mode rejects a missing context', () => {
    expect(() => createGpujsBackend({ mode: 'webgl' })).toThrow(
      `gpu.js headless WebGL is unavailable: ${glUnavailable}; use mode: 'auto' or 'cpu'`,
    );
  });
});
