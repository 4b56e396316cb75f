/**
 * Parquet and Arrow IPC input: fixtures written by DuckDB and by parquet-wasm or apache-arrow,
 * in every vector shape, read by the product and scored against the same vectors in memory.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Table } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readArrowVectors } from '../src/io/arrow-bytes.js';
import { readVectors } from '../src/io/read.js';
import { countRows, openUserBlocks } from '../src/io/stream.js';
import { score } from '../src/score.js';
import type { RowId } from '../src/scoring/types.js';
import { rejection } from './helpers/errors.js';
import {
  fixedSizeListVector,
  float64ListVector,
  query,
  stringVector,
  writeIpc,
  writeParquetWithWasm,
} from './helpers/tables.js';

let dir: string;
const file = (name: string) => path.join(dir, name);
const cli = fileURLToPath(new URL('../bin/attnscore.js', import.meta.url));

/** The DuckDB expression of vector element `j` of row `i`, shared by every fixture. */
const element = (j: number) => `(sin(i * ${j + 1}.7) + ${j} * 0.1)`;
const DIM = 4;
const elements = Array.from({ length: DIM }, (_, j) => element(j));

/** Computes in DuckDB the ids and vectors that the DuckDB fixtures contain. */
async function expectedVectors(rows: number): Promise<{ ids: string[]; data: Float32Array }> {
  const list = await query(
    `SELECT 'id' || i AS id, [${elements.join(', ')}]::FLOAT[] AS v FROM range(${rows}) t(i) ORDER BY i`,
  );
  return {
    ids: list.map((row) => row.id as string),
    data: Float32Array.from(list.flatMap((row) => row.v as number[])),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-tables-'));
  const users = `SELECT 'id' || i AS user_id, [${elements.join(', ')}]`;
  // Fixed-size FLOAT[4], several row groups (DuckDB rounds row groups to 2048 rows), snappy.
  await query(
    `COPY (${users}::FLOAT[${DIM}] AS embedding FROM range(5000) t(i)) TO '${file('users-fixed.parquet')}' ` +
      `(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 2048)`,
  );
  // Variable list of float64 with a weight column, zstd.
  await query(
    `COPY (SELECT 'id' || i AS content_id, [${elements.join(', ')}]::DOUBLE[] AS vec, ` +
      `1 + i % 3 AS weight FROM range(40) t(i)) TO '${file('contents-list.parquet')}' ` +
      `(FORMAT parquet, COMPRESSION zstd)`,
  );
  // One float64 column per dimension.
  const columns = elements.map((value, j) => `${value} AS f${j}`).join(', ');
  await query(
    `COPY (SELECT 'id' || i AS id, ${columns} FROM range(40) t(i)) TO '${file('contents-columns.parquet')}' ` +
      `(FORMAT parquet, COMPRESSION zstd)`,
  );
  // Nulls: a null vector at row 3, a null element at row 5 position 2.
  await query(
    `COPY (SELECT 'id' || i AS id, CASE WHEN i = 3 THEN NULL ELSE [1.0, 2.0, 3.0]::FLOAT[] END AS v ` +
      `FROM range(6) t(i)) TO '${file('null-vector.parquet')}' (FORMAT parquet)`,
  );
  await query(
    `COPY (SELECT 'id' || i AS id, CASE WHEN i = 5 THEN [1.0, 2.0, NULL]::FLOAT[] ELSE [1.0, 2.0, 3.0]::FLOAT[] END AS v ` +
      `FROM range(6) t(i)) TO '${file('null-element.parquet')}' (FORMAT parquet)`,
  );
  // Ragged: row 4 has two values instead of three.
  await query(
    `COPY (SELECT 'id' || i AS id, CASE WHEN i = 4 THEN [1.0, 2.0] ELSE [1.0, 2.0, 3.0] END::FLOAT[] AS v ` +
      `FROM range(6) t(i)) TO '${file('ragged.parquet')}' (FORMAT parquet)`,
  );
  // A folder of part files in the Spark layout, with a marker file that readers skip.
  const folder = file('users-folder');
  await mkdir(folder);
  await query(
    `COPY (${users}::FLOAT[${DIM}] AS embedding FROM range(0, 30) t(i)) TO '${folder}/part-2.parquet' (FORMAT parquet)`,
  );
  await query(
    `COPY (${users}::FLOAT[${DIM}] AS embedding FROM range(30, 50) t(i)) TO '${folder}/part-10.parquet' (FORMAT parquet)`,
  );
  await writeFile(path.join(folder, '_SUCCESS'), '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Parquet readers', () => {
  it('reads a fixed-size list over row groups', async () => {
    const set = await readVectors(file('users-fixed.parquet'), { role: 'users' });
    const expected = await expectedVectors(5000);
    expect(set.rows).toBe(5000);
    expect(set.dim).toBe(DIM);
    expect(set.ids).toEqual(expected.ids);
    expect(set.data).toEqual(expected.data);
  });

  it('reads a float64 list with weights', async () => {
    const set = await readVectors(file('contents-list.parquet'), { role: 'contents' });
    const expected = await expectedVectors(40);
    expect(set.ids).toEqual(expected.ids);
    expect(set.data).toEqual(expected.data);
    expect(Array.from(set.weights!)).toEqual(Array.from({ length: 40 }, (_, i) => 1 + (i % 3)));
  });

  it('detects numbered columns per dimension', async () => {
    const set = await readVectors(file('contents-columns.parquet'), { role: 'contents' });
    const expected = await expectedVectors(40);
    expect(set.dim).toBe(DIM);
    expect(set.data).toEqual(expected.data);
    expect(set.weights).toBeUndefined();
  });

  it('selects columns by prefix and by list', async () => {
    const byPrefix = await readVectors(file('contents-columns.parquet'), {
      role: 'users',
      columns: { vectorColumns: 'f*' },
    });
    const byList = await readVectors(file('contents-columns.parquet'), {
      role: 'users',
      columns: { vectorColumns: 'f2,f0', idColumn: 'id' },
    });
    expect(byPrefix.dim).toBe(DIM);
    expect(byList.dim).toBe(2);
    expect(byList.data[0]).toBe(byPrefix.data[2]);
    expect(byList.data[1]).toBe(byPrefix.data[0]);
  });

  it('reads a folder of part files in order', async () => {
    const set = await readVectors(file('users-folder'), { role: 'users' });
    const expected = await expectedVectors(50);
    expect(set.ids).toEqual(expected.ids);
    expect(set.data).toEqual(expected.data);
    expect(await countRows(file('users-folder'))).toBe(50);
  });

  it('scores a folder into text output', async () => {
    // Text output fingerprints its inputs for --resume, which must hash a folder's parts.
    const run = (users: string, out: string) =>
      spawnSync(process.execPath, [cli, 'score', '--users', users, '--contents', file('contents-columns.parquet'), '--out', out, '--quiet'], {
        encoding: 'utf8',
      });
    const fromFolder = run(file('users-folder'), file('folder.jsonl'));
    expect(fromFolder.stderr).toBe('');
    expect(fromFolder.status).toBe(0);
    const parts = [file('users-folder/part-2.parquet'), file('users-folder/part-10.parquet')];
    const lines = (await readFile(file('folder.jsonl'), 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(50);
    for (const [index, part] of parts.entries()) {
      expect(run(part, file(`part-${index}.jsonl`)).status).toBe(0);
    }
    const partLines = [0, 1].flatMap((index) => readFileSync(file(`part-${index}.jsonl`), 'utf8').trimEnd().split('\n'));
    expect(lines).toEqual(partLines);
  });

  it('rejects a null vector', async () => {
    const error = await rejection(readVectors(file('null-vector.parquet'), { role: 'users' }));
    expect(error.message).toBe(`${file('null-vector.parquet')}: row 3, column "v" is null; every row needs a vector`);
  });

  it('rejects NaN and overflow in lists', async () => {
    const { tableToIPC } = await import('apache-arrow');
    const cases: [number, string][] = [
      [NaN, 'has NaN at position 1; every value must be a finite number'],
      [1e39, 'has 1e+39 at position 1, outside the float32 range'],
    ];
    for (const [bad, expected] of cases) {
      const values = new Float64Array([1, 2, 3, 4, bad, 6]);
      const table = new Table({ id: stringVector(['a', 'b']), v: float64ListVector(values, 3) });
      const error = await rejection(Promise.resolve().then(() => readArrowVectors(tableToIPC(table, 'stream'), { role: 'users' })));
      expect(error.message).toContain(`users: row 1, column "v" ${expected}`);
    }
  });

  it('rejects a null element', async () => {
    const error = await rejection(readVectors(file('null-element.parquet'), { role: 'users' }));
    expect(error.message).toBe(
      `${file('null-element.parquet')}: row 5, column "v" has a null at position 2; every value must be a finite number`,
    );
  });

  it('rejects a ragged row', async () => {
    const error = await rejection(readVectors(file('ragged.parquet'), { role: 'users' }));
    expect(error.message).toBe(
      `${file('ragged.parquet')}: row 4, column "v" has 2 values but the first row has 3; every row must have the same length`,
    );
  });

  it('names a missing column and lists the columns', async () => {
    const error = await rejection(
      readVectors(file('contents-list.parquet'), { role: 'contents', columns: { vectorColumn: 'embedding' } }),
    );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(
      `${file('contents-list.parquet')} has no column "embedding"; its columns are ` +
        'content_id (Utf8), vec (List<Float64>), weight (Int64)',
    );
  });

  it('rejects a file that is not Parquet', async () => {
    await writeFile(file('fake.parquet'), 'not parquet at all');
    const error = await rejection(readVectors(file('fake.parquet'), { role: 'users' }));
    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toMatch(/fake\.parquet is not a valid Parquet file: /);
  });
});

describe('Parquet streaming', () => {
  it('yields blocks of a row range', async () => {
    const stream = await openUserBlocks(file('users-fixed.parquet'), {
      blockRows: 1000,
      range: { start: 1500, end: 4200 },
    });
    const expected = await expectedVectors(5000);
    const starts: number[] = [];
    const ids: RowId[] = [];
    for await (const block of stream.blocks()) {
      starts.push(block.start);
      ids.push(...block.ids);
      expect(block.data).toEqual(expected.data.subarray(block.start * DIM, (block.start + block.rows) * DIM));
    }
    expect(starts).toEqual([1500, 2500, 3500]);
    expect(ids).toEqual(expected.ids.slice(1500, 4200));
    expect(stream.rows).toBe(5000);
  });
});

describe('Parquet and Arrow scoring', () => {
  it('scores as the same vectors in memory', async () => {
    const users = await expectedVectors(5000);
    const contents = await expectedVectors(40);
    const weights = Array.from({ length: 40 }, (_, i) => 1 + (i % 3));
    const params = { k: 5, alpha: 2, beta: 0.01, gamma: -1, backend: 'js' as const };
    const fromTables = await score({
      users: file('users-fixed.parquet'),
      contents: file('contents-list.parquet'),
      blockUsers: 700,
      ...params,
    });
    const inMemory = await score({
      users: { data: users.data, rows: 5000, dim: DIM, ids: users.ids },
      contents: { data: contents.data, rows: 40, dim: DIM, ids: contents.ids },
      weights,
      ...params,
    });
    expect(fromTables.results).toEqual(inMemory.results);
  });

  it('reads Arrow IPC files and streams', async () => {
    const data = Float32Array.from({ length: 30 * 3 }, (_, i) => Math.sin(i));
    const ids = Array.from({ length: 30 }, (_, i) => `a${i}`);
    const table = new Table({ id: stringVector(ids), embedding: fixedSizeListVector(data, 3) });
    await writeIpc(table, file('users.arrow'), 'file');
    await writeIpc(table, file('users.arrows'), 'stream');
    for (const name of ['users.arrow', 'users.arrows']) {
      const set = await readVectors(file(name), { role: 'users' });
      expect(set.ids).toEqual(ids);
      expect(set.data).toEqual(data);
    }
    expect(await countRows(file('users.arrows'))).toBe(30);
  });

  it('reads parquet-wasm files with several row groups', async () => {
    const data = Float64Array.from({ length: 3000 * 3 }, (_, i) => Math.cos(i) / 3);
    const ids = Array.from({ length: 3000 }, (_, i) => `w${i}`);
    const table = new Table({ id: stringVector(ids), vec: float64ListVector(data, 3) });
    await writeParquetWithWasm(table, file('wasm.parquet'), { compression: 'zstd', rowGroupRows: 700 });
    const set = await readVectors(file('wasm.parquet'), { role: 'users' });
    expect(set.ids).toEqual(ids);
    expect(set.data).toEqual(Float32Array.from(data));
    const groups = await query(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${file('wasm.parquet')}')`);
    expect(Number(groups[0]!.n)).toBe(5);
  });
});

describe('readArrowVectors', () => {
  it('reads ids, vectors and weights from bytes', async () => {
    const { tableToIPC, vectorFromArray, Float64 } = await import('apache-arrow');
    const data = Float32Array.from([1, 0, 0, 1, 0.5, 0.5]);
    const table = new Table({
      id: stringVector(['x', 'y', 'z']),
      vec: fixedSizeListVector(data, 2),
      weight: vectorFromArray([1, 2, 3], new Float64()),
    });
    const set = readArrowVectors(tableToIPC(table, 'stream'), { role: 'contents' });
    expect(set.ids).toEqual(['x', 'y', 'z']);
    expect(set.data).toEqual(data);
    expect(Array.from(set.weights!)).toEqual([1, 2, 3]);
    const users = readArrowVectors(tableToIPC(table, 'stream'), { role: 'users' });
    expect(users.weights).toBeUndefined();
  });

  it('rejects bytes that are not Arrow IPC', () => {
    expect(() => readArrowVectors(new TextEncoder().encode('{"id": 1}'), { role: 'users' })).toThrow(
      /^users is not a valid Arrow IPC file: /,
    );
  });
});
