import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { npyHeaderBytes } from '../src/io/npy.js';
import { readIds } from '../src/io/ids.js';
import { readVectors, readWeights } from '../src/io/read.js';
import { rejection } from './helpers/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-read-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Buffer): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

/** Writes a little-endian float32 or float64 .npy file with the header from src/io/npy. */
async function npyFixture(
  name: string,
  shape: number[],
  values: number[],
  dtype: '<f4' | '<f8' = '<f4',
): Promise<string> {
  const data =
    dtype === '<f4' ? new Float32Array(values).buffer : new Float64Array(values).buffer;
  return fixture(name, Buffer.concat([npyHeaderBytes(shape, dtype), Buffer.from(data)]));
}

describe('readVectors', () => {
  it('reads .npy with row numbers as ids', async () => {
    const file = await npyFixture('users.npy', [2, 2], [1, 2, 3, 4]);
    const set = await readVectors(file, { role: 'users' });
    expect(set.ids).toEqual([0, 1]);
    expect(set.rows).toBe(2);
    expect(set.dim).toBe(2);
    expect(Array.from(set.data)).toEqual([1, 2, 3, 4]);
    expect(set.source).toBe(file);
    expect(set.weights).toBeUndefined();
  });

  it('reads .npy with an ids file', async () => {
    const file = await npyFixture('contents.npy', [2, 1], [1, 2]);
    const ids = await fixture('content-ids.txt', 'c1\r\nc2\r\n');
    const set = await readVectors(file, { role: 'contents', idsPath: ids });
    expect(set.ids).toEqual(['c1', 'c2']);
  });

  it('keeps the path as given in source', async () => {
    const file = await npyFixture('relative.npy', [1, 1], [1]);
    const relative = path.relative(process.cwd(), file);
    const set = await readVectors(relative, { role: 'users' });
    expect(set.source).toBe(relative);
  });

  it('chooses JSONL for .ndjson and keeps content weights', async () => {
    const file = await fixture('contents.ndjson', '{"id": "c", "vector": [1, 2], "weight": 2}\n');
    const contents = await readVectors(file, { role: 'contents' });
    expect(contents.ids).toEqual(['c']);
    expect(contents.weights).toEqual(new Float64Array([2]));
    const users = await readVectors(file, { role: 'users' });
    expect(users.weights).toBeUndefined();
  });

  it('chooses CSV by extension', async () => {
    const file = await fixture('users.CSV', 'id,a\nu1,0.25\n');
    const set = await readVectors(file, { role: 'users' });
    expect(set.ids).toEqual(['u1']);
    expect(Array.from(set.data)).toEqual([0.25]);
  });

  it('uses an explicit format over the extension', async () => {
    const file = await fixture('users.txt', 'u1,0.25\n');
    const set = await readVectors(file, { role: 'users', format: 'csv' });
    expect(set.ids).toEqual(['u1']);
  });

  it('rejects an unknown extension', async () => {
    const file = await fixture('users.h5', 'x');
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(
      `${file} has an unsupported file extension; expected one of .npy, .jsonl, .ndjson, .csv, ` +
        '.parquet, .pq, .arrow, .arrows, .feather, .ipc, or give the format explicitly',
    );
  });

  it('rejects an unknown format name', async () => {
    const file = await fixture('users2.csv', 'u1,1\n');
    const options = { role: 'users', format: 'tsv' } as unknown as Parameters<
      typeof readVectors
    >[1];
    const error = await rejection(readVectors(file, options));
    expect(error.code).toBe('INVALID_PARAMETER');
    expect(error.message).toBe('unknown input format "tsv"; expected one of npy, jsonl, csv, parquet, arrow');
  });

  it('rejects an ids file for text input', async () => {
    const file = await fixture('users3.csv', 'u1,1\n');
    const error = await rejection(readVectors(file, { role: 'users', idsPath: 'ids.txt' }));
    expect(error.code).toBe('INVALID_PARAMETER');
    expect(error.message).toBe(
      `ids file ids.txt applies only to .npy input, but ${file} contains its own ids`,
    );
  });

  it('rejects a 1-D .npy', async () => {
    const file = await npyFixture('flat.npy', [3], [1, 2, 3]);
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(
      `${file} has shape (3,); expected a 2-D array of shape (rows, dims)`,
    );
  });

  it('rejects a .npy with zero rows', async () => {
    const file = await npyFixture('no-rows.npy', [0, 4], []);
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(`${file} has no rows; at least one vector is required`);
  });

  it('rejects a .npy with zero columns', async () => {
    const file = await npyFixture('no-columns.npy', [3, 0], []);
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(
      `${file} has vectors of length 0; at least one dimension is required`,
    );
  });

  it('rejects NaN in .npy with row and column', async () => {
    const file = await npyFixture('nan.npy', [2, 2], [1, 2, NaN, 4], '<f8');
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file}: row 1, column 0 is NaN; every value must be a finite number`,
    );
  });

  it('rejects an ids count mismatch', async () => {
    const file = await npyFixture('three.npy', [3, 1], [1, 2, 3]);
    const ids = await fixture('two-ids.txt', 'a\nb\n');
    const error = await rejection(readVectors(file, { role: 'users', idsPath: ids }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${ids} has 2 ids but the vectors have 3 rows; give one id per row`,
    );
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing.jsonl');
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: no such file or directory`);
  });

  it.skipIf(process.getuid?.() === 0)('rejects an unreadable file', async () => {
    const file = await fixture('locked.csv', 'u1,1\n');
    await chmod(file, 0o000);
    const error = await rejection(readVectors(file, { role: 'users' }));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: permission denied`);
  });
});

describe('readIds', () => {
  it('accepts a final empty line', async () => {
    const file = await fixture('ids-final.txt', 'a\nb\n\n');
    expect(await readIds(file, 2)).toEqual(['a', 'b']);
  });

  it('accepts no trailing newline', async () => {
    const file = await fixture('ids-bare.txt', 'a\nb');
    expect(await readIds(file, 2)).toEqual(['a', 'b']);
  });

  it('rejects a duplicate id', async () => {
    const file = await fixture('ids-dup.txt', 'a\nb\na\n');
    const error = await rejection(readIds(file, 3));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} has id "a" at line 1 (row 0) and again at line 3 (row 2); ids must be unique`,
    );
  });

  it('rejects an empty line inside', async () => {
    const file = await fixture('ids-gap.txt', 'a\n\nb\n');
    const error = await rejection(readIds(file, 3));
    expect(error.message).toBe(
      `${file} line 2 (row 1) has an empty id; every row needs a non-empty id`,
    );
  });

  it('rejects a count mismatch', async () => {
    const file = await fixture('ids-count.txt', 'a\nb\nc\n');
    const error = await rejection(readIds(file, 2));
    expect(error.message).toBe(
      `${file} has 3 ids but the vectors have 2 rows; give one id per row`,
    );
  });
});

describe('readWeights', () => {
  it('reads float64 .npy without rounding', async () => {
    const file = await npyFixture('w64.npy', [3], [0.1, 2, 3], '<f8');
    expect(await readWeights(file, 3)).toEqual(new Float64Array([0.1, 2, 3]));
  });

  it('reads a float32 column', async () => {
    const file = await npyFixture('w32.npy', [2, 1], [0.5, 4]);
    expect(await readWeights(file, 2)).toEqual(new Float64Array([0.5, 4]));
  });

  it('reads a text file', async () => {
    const file = await fixture('w.txt', '0.5\r\n1e2\r\n-3\r\n');
    expect(await readWeights(file, 3)).toEqual(new Float64Array([0.5, 100, -3]));
  });

  it('rejects a length mismatch', async () => {
    const file = await npyFixture('w-short.npy', [2], [1, 2]);
    const error = await rejection(readWeights(file, 3));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} has 2 weights but there are 3 contents; give one weight per content row`,
    );
  });

  it('rejects a wide .npy', async () => {
    const file = await npyFixture('w-wide.npy', [1, 3], [1, 2, 3]);
    const error = await rejection(readWeights(file, 3));
    expect(error.message).toBe(
      `${file} has shape (1, 3); expected a 1-D array or a single column (C, 1) of weights`,
    );
  });

  it('rejects NaN in .npy with the row', async () => {
    const file = await npyFixture('w-nan.npy', [3], [1, NaN, 3], '<f8');
    const error = await rejection(readWeights(file, 3));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file}: weight at row 1 is NaN; every weight must be a finite number ` +
        `that fits in float32 (|w| <= 3.4028235e38)`,
    );
  });

  it('rejects inf in text with line and row', async () => {
    const file = await fixture('w-inf.txt', '1\n2\n-inf\n');
    const error = await rejection(readWeights(file, 3));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file} line 3 (row 2) is -Infinity; every weight must be a finite number ` +
        `that fits in float32 (|w| <= 3.4028235e38)`,
    );
  });

  it('rejects a weight beyond float32 in text', async () => {
    const file = await fixture('w-big.txt', '1\n1e308\n');
    const error = await rejection(readWeights(file, 2));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file} line 2 (row 1) is 1e+308; every weight must be a finite number ` +
        `that fits in float32 (|w| <= 3.4028235e38)`,
    );
  });

  it('rejects a word in text', async () => {
    const file = await fixture('w-word.txt', '1\nheavy\n');
    const error = await rejection(readWeights(file, 2));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} line 2 (row 1) is "heavy"; every weight must be a finite number ` +
        `that fits in float32 (|w| <= 3.4028235e38)`,
    );
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing-weights.npy');
    const error = await rejection(readWeights(file, 1));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: no such file or directory`);
  });
});
