/**
 * Float64 rows whose values all lie below float32's normal range keep their
 * direction: they are scaled by powers of two before rounding to float32,
 * so their cosines equal those of the same row at a normal scale.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { score } from '../src/score.js';
import type { UserResult } from '../src/scoring/types.js';
import { randomMatrix } from './helpers/data.js';
import { encodeNpy } from './helpers/npy.js';

const DIM = 6;
const SCALES = [1, 1e-50, 1e-200, 1e-310];
const base = Float64Array.from(randomMatrix(1, DIM, 3));
const users = new Float64Array(SCALES.length * DIM);
SCALES.forEach((scale, row) => {
  for (let column = 0; column < DIM; column++) users[row * DIM + column] = base[column]! * scale;
});
const contents = { data: randomMatrix(40, DIM, 4), rows: 40, dim: DIM };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'attnscore-tiny-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectSameAsFirstRow(results: UserResult[]): void {
  expect(results).toHaveLength(SCALES.length);
  for (const result of results.slice(1)) {
    expect(result.top.map((match) => match.content)).toEqual(results[0]!.top.map((match) => match.content));
    result.top.forEach((match, rank) => {
      expect(Math.abs(match.score - results[0]!.top[rank]!.score)).toBeLessThanOrEqual(1e-6);
    });
    expect(Math.abs(result.cx - results[0]!.cx) / results[0]!.cx).toBeLessThanOrEqual(1e-6);
  }
}

describe('tiny float64 rows', () => {
  const rows = () => Array.from({ length: SCALES.length }, (_, row) => Array.from(users.subarray(row * DIM, (row + 1) * DIM)));

  it('keep their direction from a float64 .npy', async () => {
    const path = join(dir, 'users.npy');
    await writeFile(path, encodeNpy(users, [SCALES.length, DIM]));
    expectSameAsFirstRow((await score({ users: path, contents, k: 5, threads: 1 })).results);
  });

  it('keep their direction from JSONL', async () => {
    const path = join(dir, 'users.jsonl');
    await writeFile(path, rows().map((vector, id) => JSON.stringify({ id, vector })).join('\n'));
    expectSameAsFirstRow((await score({ users: path, contents, k: 5, threads: 1 })).results);
  });

  it('keep their direction from CSV', async () => {
    const path = join(dir, 'users.csv');
    await writeFile(path, rows().map((vector, id) => [id, ...vector.map(String)].join(',')).join('\n'));
    expectSameAsFirstRow((await score({ users: path, contents, k: 5, threads: 1 })).results);
  });

  it('keep their direction from arrays', async () => {
    expectSameAsFirstRow((await score({ users: { data: rows() }, contents, k: 5, threads: 1 })).results);
    const flat = { data: users, rows: SCALES.length, dim: DIM };
    expectSameAsFirstRow((await score({ users: flat, contents, k: 5, threads: 1 })).results);
  });
});
