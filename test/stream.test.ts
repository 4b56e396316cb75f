/**
 * The streaming users reader against the whole-file readers: the same ids, values and error
 * messages for every block size, with rows counted in the whole file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readVectors, type VectorFormat } from '../src/io/read.js';
import { countRows, openUserBlocks, type RowRange, type UserBlock } from '../src/io/stream.js';
import { AttnScoreError } from '../src/scoring/errors.js';
import type { RowId } from '../src/scoring/types.js';
import { randomMatrix } from './helpers/data.js';
import { encodeNpy } from './helpers/npy.js';
import { rejection } from './helpers/errors.js';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-stream-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `content` to a new file with extension `ext` and returns its path. */
async function fixture(ext: string, content: string | Buffer): Promise<string> {
  const file = path.join(dir, `f${fileCount++}.${ext}`);
  await writeFile(file, content);
  return file;
}

interface Streamed {
  readonly blocks: UserBlock[];
  readonly ids: RowId[];
  readonly data: number[];
  readonly dim: number;
}

/** Reads every block of `file` and joins them. */
async function stream(
  file: string,
  blockRows: number,
  options: { idsPath?: string; range?: RowRange; format?: VectorFormat } = {},
): Promise<Streamed> {
  const users = await openUserBlocks(file, { blockRows, ...options });
  const blocks: UserBlock[] = [];
  try {
    for await (const block of users.blocks()) blocks.push(block);
  } finally {
    await users.close();
  }
  const ids = blocks.flatMap((block) => block.ids);
  const data = blocks.flatMap((block) => Array.from(block.data));
  return { blocks, ids, data, dim: users.dim };
}

/** Checks that the blocks are contiguous from `start`, each of `blockRows` but the last. */
function expectBlockLayout(blocks: readonly UserBlock[], start: number, blockRows: number): void {
  let next = start;
  blocks.forEach((block, index) => {
    expect(block.start).toBe(next);
    expect(block.ids).toHaveLength(block.rows);
    if (index < blocks.length - 1) expect(block.rows).toBe(blockRows);
    expect(block.rows).toBeGreaterThan(0);
    next += block.rows;
  });
}

const ROWS = 11;
const DIM = 5;
const matrix = randomMatrix(ROWS, DIM, 7);
const userIds = Array.from({ length: ROWS }, (_, row) => `user-${row}`);

function jsonlText(): string {
  const lines = userIds.map((id, row) => {
    const vector = Array.from(matrix.subarray(row * DIM, (row + 1) * DIM));
    return JSON.stringify({ id: row % 3 === 0 ? row : id, vector, weight: row });
  });
  // A byte order mark, a blank line and CRLF endings, all of which the reader accepts.
  return `\uFEFF${lines.slice(0, 4).join('\n')}\n\n${lines.slice(4).join('\r\n')}\r\n`;
}

function csvText(): string {
  const header = ['id', ...Array.from({ length: DIM }, (_, column) => `d${column}`)].join(',');
  const records = userIds.map((id, row) => {
    const values = Array.from(matrix.subarray(row * DIM, (row + 1) * DIM));
    // A quoted id with a comma and one with a line break, which csv-parse reads as one record.
    let field = id;
    if (row === 2) field = `"${id}, x"`;
    if (row === 5) field = `"${id}\nsecond line"`;
    return [field, ...values].join(',');
  });
  return `${header}\n${records.slice(0, 6).join('\n')}\n\n${records.slice(6).join('\n')}\n`;
}

describe('openUserBlocks', () => {
  let npyFile: string;
  let npy64File: string;
  let idsFile: string;
  let jsonlFile: string;
  let csvFile: string;

  beforeAll(async () => {
    npyFile = await fixture('npy', encodeNpy(matrix, [ROWS, DIM]));
    npy64File = await fixture('npy', encodeNpy(Float64Array.from(matrix), [ROWS, DIM]));
    idsFile = await fixture('txt', `${userIds.join('\n')}\n`);
    jsonlFile = await fixture('jsonl', jsonlText());
    csvFile = await fixture('csv', csvText());
  });

  const cases: [string, () => string, () => string | undefined][] = [
    ['float32 .npy', () => npyFile, () => undefined],
    ['float64 .npy', () => npy64File, () => undefined],
    ['.npy with an ids file', () => npyFile, () => idsFile],
    ['JSONL', () => jsonlFile, () => undefined],
    ['CSV', () => csvFile, () => undefined],
  ];
  for (const [name, file, ids] of cases) {
    for (const blockRows of [1, 3, ROWS + 5]) {
      it(`matches readVectors on ${name}, blocks of ${blockRows}`, async () => {
        const idsPath = ids();
        const whole = await readVectors(file(), { role: 'users', idsPath });
        const streamed = await stream(file(), blockRows, { idsPath });
        expect(streamed.dim).toBe(whole.dim);
        expect(streamed.ids).toEqual(whole.ids);
        expect(streamed.data).toEqual(Array.from(whole.data));
        expectBlockLayout(streamed.blocks, 0, blockRows);
      });
    }

    it(`reads a range of ${name}`, async () => {
      const idsPath = ids();
      const whole = await readVectors(file(), { role: 'users', idsPath });
      const range = { start: 4, end: 9 };
      const streamed = await stream(file(), 2, { idsPath, range });
      expect(streamed.ids).toEqual(whole.ids.slice(4, 9));
      expect(streamed.data).toEqual(Array.from(whole.data.subarray(4 * DIM, 9 * DIM)));
      expectBlockLayout(streamed.blocks, 4, 2);
    });

    it(`reads an empty range of ${name}`, async () => {
      const streamed = await stream(file(), 3, { idsPath: ids(), range: { start: 6, end: 6 } });
      expect(streamed.blocks).toEqual([]);
    });

    it(`counts the rows of ${name}`, async () => {
      expect(await countRows(file())).toBe(ROWS);
    });
  }

  it('reports rows for .npy only', async () => {
    const npy = await openUserBlocks(npyFile, { blockRows: 4 });
    const jsonl = await openUserBlocks(jsonlFile, { blockRows: 4 });
    expect(npy.rows).toBe(ROWS);
    expect(jsonl.rows).toBeUndefined();
    await npy.close();
    await jsonl.close();
  });

  it('uses an explicit format over the extension', async () => {
    const file = await fixture('txt', '{"id": "a", "vector": [1, 2]}\n');
    const streamed = await stream(file, 2, { format: 'jsonl' });
    expect(streamed.ids).toEqual(['a']);
  });

  it('rejects a block size of 0', async () => {
    const error = await rejection(openUserBlocks(npyFile, { blockRows: 0 }));
    expect(error.code).toBe('INVALID_PARAMETER');
    expect(error.message).toBe('blockRows must be a positive integer (got 0)');
  });

  it('rejects a range past the end of a .npy', async () => {
    const range = { start: 3, end: 12 };
    const error = await rejection(openUserBlocks(npyFile, { blockRows: 2, range }));
    expect(error.code).toBe('INVALID_PARAMETER');
    expect(error.message).toBe(
      `invalid row range 3 to 12 for ${npyFile}, which has 11 rows; ` +
        'expected whole numbers with 0 <= start <= end',
    );
  });

  it('rejects a range past the end of a text file', async () => {
    const error = await rejection(stream(jsonlFile, 2, { range: { start: 3, end: 14 } }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${jsonlFile} has 11 rows but rows up to 13 were requested; ` +
        'the file changed after its rows were counted',
    );
  });

  it('rejects an ids file for text input', async () => {
    const error = await rejection(openUserBlocks(jsonlFile, { blockRows: 2, idsPath: idsFile }));
    expect(error.code).toBe('INVALID_PARAMETER');
  });

  it('stops early and closes the file', async () => {
    for (const file of [npyFile, jsonlFile, csvFile]) {
      const users = await openUserBlocks(file, { blockRows: 2 });
      for await (const block of users.blocks()) {
        expect(block.start).toBe(0);
        break;
      }
      await users.close();
    }
  });
});

/** Streams `file` and reads it whole, and returns both errors. */
async function bothErrors(
  file: string,
  blockRows: number,
  idsPath?: string,
): Promise<[AttnScoreError, AttnScoreError]> {
  const whole = await rejection(readVectors(file, { role: 'users', idsPath }));
  const streamed = await rejection(stream(file, blockRows, { idsPath }));
  return [whole, streamed];
}

describe('openUserBlocks errors', () => {
  const goodJsonl = (row: number) => `{"id": "u${row}", "vector": [${row}, 1, 2]}`;
  const goodCsv = (row: number) => `u${row},${row},1,2`;
  const rowsOf = (good: (row: number) => string, count: number) =>
    Array.from({ length: count }, (_, row) => good(row));

  const jsonlCases: [string, string][] = [
    [
      'a bad value in a later block',
      [...rowsOf(goodJsonl, 7), '{"id": "x", "vector": [1, "a", 2]}'].join('\n'),
    ],
    ['a ragged row', [...rowsOf(goodJsonl, 5), '{"id": "x", "vector": [1, 2]}'].join('\n')],
    ['a duplicate id across blocks', [...rowsOf(goodJsonl, 6), goodJsonl(1)].join('\n')],
    ['invalid JSON', [...rowsOf(goodJsonl, 4), '{"id": "x", "vector": [1,'].join('\n')],
    [
      'an infinite value',
      [...rowsOf(goodJsonl, 4), '{"id": "x", "vector": [1, 1e999, 2]}'].join('\n'),
    ],
    [
      'weights on some rows only',
      ['{"id": "w", "vector": [1, 1, 2], "weight": 2}', ...rowsOf(goodJsonl, 4)].join('\n'),
    ],
    ['a bad first row', '{"id": "x", "vector": []}\n'],
    ['an empty file', '\n\n'],
  ];
  const csvCases: [string, string][] = [
    ['a bad value in a later block', [...rowsOf(goodCsv, 7), 'x,1,abc,2'].join('\n')],
    ['an empty value', [...rowsOf(goodCsv, 5), 'x,1,,2'].join('\n')],
    ['a ragged row', [...rowsOf(goodCsv, 5), 'x,1,2'].join('\n')],
    ['a duplicate id across blocks', ['id,a,b,c', ...rowsOf(goodCsv, 6), goodCsv(2)].join('\n')],
    ['an empty id', [...rowsOf(goodCsv, 4), ',1,2,3'].join('\n')],
    ['an unclosed quote', [...rowsOf(goodCsv, 4), '"x,1,2,3'].join('\n')],
    ['an empty file', ''],
  ];
  const cases: [string, string, [string, string][]][] = [
    ['JSONL', 'jsonl', jsonlCases],
    ['CSV', 'csv', csvCases],
  ];
  for (const [format, ext, list] of cases) {
    for (const [name, text] of list) {
      it(`raises readVectors' error for ${format} with ${name}`, async () => {
        const file = await fixture(ext, text);
        for (const blockRows of [1, 3, 100]) {
          const [whole, streamed] = await bothErrors(file, blockRows);
          expect(streamed.message).toBe(whole.message);
          expect(streamed.code).toBe(whole.code);
        }
      });
    }
  }

  it('gives the global row of a bad JSONL value', async () => {
    const file = await fixture(
      'jsonl',
      [...rowsOf(goodJsonl, 7), '{"id": "x", "vector": [1, "a", 2]}'].join('\n'),
    );
    const error = await rejection(stream(file, 3));
    expect(error.message).toBe(
      `${file} line 8 (row 7), column 1 is "a", which is not a number; ` +
        'every value must be a finite number',
    );
  });

  it('gives the global row of a bad CSV value after a header', async () => {
    const file = await fixture('csv', ['id,a,b,c', ...rowsOf(goodCsv, 7), 'x,1,abc,2'].join('\n'));
    const error = await rejection(stream(file, 2));
    expect(error.message).toBe(
      `${file} line 9 (row 7), column 1 is "abc", which is not a number; ` +
        'every value must be a finite number',
    );
  });

  it('raises readVectors\' error for NaN in a later .npy block', async () => {
    const data = randomMatrix(9, 3, 3);
    data[7 * 3 + 2] = NaN;
    const file = await fixture('npy', encodeNpy(data, [9, 3]));
    for (const blockRows of [1, 3, 20]) {
      const [whole, streamed] = await bothErrors(file, blockRows);
      expect(streamed.message).toBe(whole.message);
      expect(streamed.message).toBe(
        `${file}: row 7, column 2 is NaN; every value must be a finite number`,
      );
    }
  });

  it('raises readVectors\' errors for bad .npy ids files', async () => {
    const file = await fixture('npy', encodeNpy(randomMatrix(4, 2, 1), [4, 2]));
    const idsCases = ['a\nb\nc\n', 'a\nb\na\nd\n', 'a\n\nc\nd\n', 'a\nb\nc\nd\ne\n'];
    for (const text of idsCases) {
      const idsPath = await fixture('txt', text);
      const [whole, streamed] = await bothErrors(file, 2, idsPath);
      expect(streamed.message).toBe(whole.message);
      expect(streamed.code).toBe(whole.code);
    }
  });

  it('raises readVectors\' errors for bad .npy shapes', async () => {
    const oneDim = await fixture('npy', encodeNpy(new Float32Array(3), [3]));
    const noRows = await fixture('npy', encodeNpy(new Float32Array(0), [0, 3]));
    for (const file of [oneDim, noRows]) {
      const [whole, streamed] = await bothErrors(file, 2);
      expect(streamed.message).toBe(whole.message);
    }
  });
});
