import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readCsv } from '../src/io/csv.js';
import { readJsonl } from '../src/io/jsonl.js';
import { rejection } from './helpers/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-text-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;

/** Writes `text` to a new file with extension `ext` and returns its path. */
async function fixture(ext: string, text: string): Promise<string> {
  const file = path.join(dir, `f${fileCount++}.${ext}`);
  await writeFile(file, text);
  return file;
}

const finiteSuffix = 'every value must be a finite number';

describe('readJsonl', () => {
  it('reads ids, vectors and no weights', async () => {
    const file = await fixture(
      'jsonl',
      '{"id": "a", "vector": [0.1, 2]}\n\n{"id": 7, "vector": [-3, 1e-3]}\n',
    );
    const vectors = await readJsonl(file);
    expect(vectors.ids).toEqual(['a', 7]);
    expect(vectors.rows).toBe(2);
    expect(vectors.dim).toBe(2);
    expect(Array.from(vectors.data)).toEqual([0.1, 2, -3, 1e-3].map(Math.fround));
    expect(vectors.weights).toBeUndefined();
  });

  it('reads weights on every row', async () => {
    const file = await fixture(
      'jsonl',
      '{"id": "a", "vector": [1], "weight": 0.5}\r\n{"id": "b", "vector": [2], "weight": 3}\r\n',
    );
    const vectors = await readJsonl(file);
    expect(vectors.weights).toEqual(new Float64Array([0.5, 3]));
  });

  it('skips a byte order mark', async () => {
    const file = await fixture('jsonl', '\uFEFF{"id": "a", "vector": [1]}\n');
    expect((await readJsonl(file)).ids).toEqual(['a']);
  });

  const rejections: [string, string, string, string][] = [
    [
      'a non-object line',
      '[1, 2]\n',
      'INVALID_INPUT',
      'line 1 (row 0) is not a JSON object; ' +
        'each line must look like {"id": "a", "vector": [0.5, 1]}',
    ],
    [
      'a missing id',
      '{"vector": [1]}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has no "id" field; each line must look like {"id": "a", "vector": [0.5, 1]}',
    ],
    [
      'a missing vector',
      '{"id": "a"}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has no "vector" field; ' +
        'each line must look like {"id": "a", "vector": [0.5, 1]}',
    ],
    [
      'an object id',
      '{"id": {"x": 1}, "vector": [1]}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has id {"x":1}; an id must be a non-empty string or a finite number',
    ],
    [
      'an empty id',
      '{"id": "", "vector": [1]}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has id ""; an id must be a non-empty string or a finite number',
    ],
    [
      'a non-array vector',
      '{"id": "a", "vector": "1, 2"}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has "vector" "1, 2"; expected an array of numbers',
    ],
    [
      'a string entry',
      '{"id": "a", "vector": [1, 2]}\n\n{"id": "b", "vector": [1, "NaN"]}\n',
      'INVALID_INPUT',
      `line 3 (row 1), column 1 is "NaN", which is not a number; ${finiteSuffix}`,
    ],
    [
      'a null entry',
      '{"id": "a", "vector": [null]}\n',
      'INVALID_INPUT',
      `line 1 (row 0), column 0 is null, which is not a number; ${finiteSuffix}`,
    ],
    [
      'an overflowing number',
      '{"id": "a", "vector": [1, 2, 3]}\n{"id": "b", "vector": [1, 2, -1e999]}\n',
      'NON_FINITE_VALUE',
      `line 2 (row 1), column 2 is -Infinity; ${finiteSuffix}`,
    ],
    [
      'a value beyond float32',
      '{"id": "a", "vector": [1e39]}\n',
      'NON_FINITE_VALUE',
      'line 1 (row 0), column 0 is 1e+39, outside the float32 range (|x| <= 3.4028235e38); ' +
        'every value must fit in float32',
    ],
    [
      'a ragged row',
      '{"id": "a", "vector": [1, 2, 3]}\n{"id": "b", "vector": [1, 2]}\n',
      'DIMENSION_MISMATCH',
      'line 2 (row 1) has 2 values but the first row has 3; every row must have the same length',
    ],
    [
      'a non-finite weight',
      '{"id": "a", "vector": [1], "weight": 1e999}\n',
      'NON_FINITE_VALUE',
      'line 1 (row 0) has weight Infinity; every weight must be a finite number that fits in ' +
        'float32 (|w| <= 3.4028235e38)',
    ],
    [
      'a string weight',
      '{"id": "a", "vector": [1], "weight": "2"}\n',
      'INVALID_INPUT',
      'line 1 (row 0) has weight "2"; every weight must be a finite number that fits in ' +
        'float32 (|w| <= 3.4028235e38)',
    ],
  ];
  for (const [name, text, code, message] of rejections) {
    it(`rejects ${name}`, async () => {
      const file = await fixture('jsonl', text);
      const error = await rejection(readJsonl(file));
      expect(error.code).toBe(code);
      expect(error.message).toBe(`${file} ${message}`);
    });
  }

  it('rejects invalid JSON', async () => {
    const file = await fixture('jsonl', '{"id": "a", "vector": [1]}\n{"id": "b", "vector": [1}\n');
    const error = await rejection(readJsonl(file));
    expect(error.code).toBe('INVALID_INPUT');
    // The rest of the message is V8's JSON.parse error, which differs between Node versions.
    expect(error.message.startsWith(`${file} line 2 (row 1) is not valid JSON: `)).toBe(true);
  });

  it('rejects a duplicate id naming both rows', async () => {
    const file = await fixture(
      'jsonl',
      '{"id": "a", "vector": [1]}\n{"id": 1, "vector": [1]}\n\n{"id": "a", "vector": [2]}\n',
    );
    const error = await rejection(readJsonl(file));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} has id "a" at line 1 (row 0) and again at line 4 (row 2); ids must be unique`,
    );
  });

  it('rejects weights on some rows only', async () => {
    const withFirst = await fixture(
      'jsonl',
      '{"id": "a", "vector": [1], "weight": 1}\n{"id": "b", "vector": [1]}\n',
    );
    const error = await rejection(readJsonl(withFirst));
    expect(error.message).toBe(
      `${withFirst} has a "weight" at line 1 (row 0) but none at line 2 (row 1); ` +
        'give a weight on every row or on none',
    );

    const withoutFirst = await fixture(
      'jsonl',
      '{"id": "a", "vector": [1]}\n{"id": "b", "vector": [1], "weight": 1}\n',
    );
    const second = await rejection(readJsonl(withoutFirst));
    expect(second.message).toBe(
      `${withoutFirst} has a "weight" at line 2 (row 1) but none at line 1 (row 0); ` +
        'give a weight on every row or on none',
    );
  });

  it('rejects a file of blank lines as empty', async () => {
    const file = await fixture('jsonl', '\n  \n');
    const error = await rejection(readJsonl(file));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(`${file} has no rows; at least one vector is required`);
  });

  it('rejects zero-length vectors', async () => {
    const file = await fixture('jsonl', '{"id": "a", "vector": []}\n');
    const error = await rejection(readJsonl(file));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(
      `${file} has vectors of length 0; at least one dimension is required`,
    );
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing.jsonl');
    const error = await rejection(readJsonl(file));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: no such file or directory`);
  });
});

describe('readCsv', () => {
  it('reads rows without a header', async () => {
    const file = await fixture('csv', 'u1,0.5,-1\nu2,1e-3,2\n');
    const vectors = await readCsv(file);
    expect(vectors.ids).toEqual(['u1', 'u2']);
    expect(vectors.dim).toBe(2);
    expect(Array.from(vectors.data)).toEqual([0.5, -1, 1e-3, 2].map(Math.fround));
  });

  it('skips a header and blank lines', async () => {
    const file = await fixture('csv', '\uFEFFid,x,y\r\n\r\n"a,b", 0.5 ,1\r\n7,2,3\r\n');
    const vectors = await readCsv(file);
    expect(vectors.ids).toEqual(['a,b', '7']);
    expect(Array.from(vectors.data)).toEqual([0.5, 1, 2, 3]);
  });

  it('skips the pandas default header', async () => {
    const file = await fixture('csv', ',0,1\nu1,1,2\n');
    const vectors = await readCsv(file);
    expect(vectors.ids).toEqual(['u1']);
    expect(Array.from(vectors.data)).toEqual([1, 2]);
  });

  it('reads a mixed first row as data', async () => {
    const file = await fixture('csv', 'u1,0.5,abc\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file} line 1 (row 0), column 1 is "abc", which is not a number; ${finiteSuffix}`,
    );
  });

  const nonFinite: [string, string][] = [
    ['NaN', 'NaN'],
    ['nan', 'NaN'],
    ['inf', 'Infinity'],
    ['-inf', '-Infinity'],
    ['Infinity', 'Infinity'],
    ['-Infinity', '-Infinity'],
  ];
  for (const [field, shown] of nonFinite) {
    it(`rejects ${field} with line, row and column`, async () => {
      const file = await fixture('csv', `id,a,b,c\nu1,1,2,3\nu2,1,2,${field}\n`);
      const error = await rejection(readCsv(file));
      expect(error.code).toBe('NON_FINITE_VALUE');
      expect(error.message).toBe(`${file} line 3 (row 1), column 2 is ${shown}; ${finiteSuffix}`);
    });
  }

  it('rejects an empty field', async () => {
    const file = await fixture('csv', 'u1,1,,3\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(`${file} line 1 (row 0), column 1 is empty; ${finiteSuffix}`);
  });

  it('rejects hexadecimal numbers', async () => {
    const file = await fixture('csv', 'u1,1\nu2,0x10\n');
    const error = await rejection(readCsv(file));
    expect(error.message).toBe(
      `${file} line 2 (row 1), column 0 is "0x10", which is not a number; ${finiteSuffix}`,
    );
  });

  it('rejects a value beyond float32', async () => {
    const file = await fixture('csv', 'u1,1,-4e38\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('NON_FINITE_VALUE');
    expect(error.message).toBe(
      `${file} line 1 (row 0), column 1 is -4e+38, outside the float32 range ` +
        '(|x| <= 3.4028235e38); every value must fit in float32',
    );
  });

  it('rejects a ragged row', async () => {
    const file = await fixture('csv', 'id,a,b\nu1,1,2\n\nu2,1,2,3\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('DIMENSION_MISMATCH');
    expect(error.message).toBe(
      `${file} line 4 (row 1) has 3 values but the first row has 2; ` +
        'every row must have the same length',
    );
  });

  it('rejects a duplicate id', async () => {
    const file = await fixture('csv', 'id,a\nu1,1\nu2,2\nu1,3\n');
    const error = await rejection(readCsv(file));
    expect(error.message).toBe(
      `${file} has id "u1" at line 2 (row 0) and again at line 4 (row 2); ids must be unique`,
    );
  });

  it('rejects an empty id', async () => {
    const file = await fixture('csv', 'u1,1\n,2\n');
    const error = await rejection(readCsv(file));
    expect(error.message).toBe(
      `${file} line 2 (row 1) has an empty id; every row needs a non-empty id`,
    );
  });

  it('rejects a header without rows', async () => {
    const file = await fixture('csv', 'id,a,b\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('EMPTY_INPUT');
    expect(error.message).toBe(`${file} has no rows; at least one vector is required`);
  });

  it('rejects an empty file', async () => {
    const file = await fixture('csv', '');
    const error = await rejection(readCsv(file));
    expect(error.message).toBe(`${file} has no rows; at least one vector is required`);
  });

  it('rejects ids without values', async () => {
    const file = await fixture('csv', 'u1\nu2\n');
    const error = await rejection(readCsv(file));
    expect(error.message).toBe(
      `${file} has vectors of length 0; at least one dimension is required, and fields must ` +
        'be separated by commas (convert tab- or semicolon-separated files first)',
    );
  });

  it('skips a pandas header with a named index', async () => {
    const file = await fixture('csv', 'id,0,1,2\na,1,2,3\nb,4,5,6\n');
    const vectors = await readCsv(file);
    expect(vectors.ids).toEqual(['a', 'b']);
    expect(Array.from(vectors.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('keeps a one-dimension row of 0 as data', async () => {
    const file = await fixture('csv', 'x,0\ny,1\n');
    const vectors = await readCsv(file);
    expect(vectors.ids).toEqual(['x', 'y']);
  });

  it('rejects an unclosed quote', async () => {
    const file = await fixture('csv', 'u1,1\n"u2,2\n');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(new RegExp(`^${file} is not valid CSV: Quote Not Closed`));
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing.csv');
    const error = await rejection(readCsv(file));
    expect(error.code).toBe('READ_FAILED');
    expect(error.message).toBe(`cannot read ${file}: no such file or directory`);
  });
});
