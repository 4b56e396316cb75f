/**
 * Parquet and Arrow IPC output. The CLI writes scores that DuckDB and apache-arrow read back
 * equal to the JSONL output, in both layouts and with each codec. Also the in-memory IPC
 * encoder, and the Fashion-MNIST real cases converted to Parquet and Arrow IPC.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Table, tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeResultsIpc } from '../src/io/table-writers.js';
import { score } from '../src/score.js';
import type { UserResult } from '../src/scoring/types.js';
import { loadNpy } from './helpers/npy.js';
import {
  fixedSizeListVector,
  float64ListVector,
  query,
  stringVector,
  writeIpc,
  writeParquetWithWasm,
} from './helpers/tables.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'bin/attnscore.js');
const sharedData = fileURLToPath(new URL('../../shared/data', import.meta.url));

let dir: string;
const file = (name: string) => path.join(dir, name);

interface JsonlResult {
  user: string;
  cx: number;
  loyalty: number;
  top: { content: string; score: number }[];
}

async function scoreCli(out: string, extra: string[] = []): Promise<void> {
  await run(process.execPath, [
    cli, 'score', '--users', file('users.parquet'), '--contents', file('contents.parquet'),
    '--k', '3', '--alpha', '1.5', '--beta', '0.01', '--gamma', '-2', '--threads', '1', '--out', out, '--quiet', ...extra,
  ]);
}

let expected: JsonlResult[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-table-out-'));
  await query(
    `COPY (SELECT 'u' || i AS user_id, [sin(i), cos(i * 2), 0.3]::FLOAT[3] AS vec FROM range(1200) t(i)) ` +
      `TO '${file('users.parquet')}' (FORMAT parquet)`,
  );
  await query(
    `COPY (SELECT 'c' || i AS content_id, [cos(i * 5), sin(i), -0.2]::FLOAT[3] AS vec, 0.5 + i % 2 AS weight ` +
      `FROM range(30) t(i)) TO '${file('contents.parquet')}' (FORMAT parquet)`,
  );
  await scoreCli(file('scores.jsonl'));
  const text = await readFile(file('scores.jsonl'), 'utf8');
  expected = text.trim().split('\n').map((line) => JSON.parse(line) as JsonlResult);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Parquet output', () => {
  it.each(['zstd', 'snappy'])('reads back equal to JSONL with %s', async (codec) => {
    const out = file(`scores-${codec}.parquet`);
    await scoreCli(out, ['--compression', codec]);
    const rows = await query(`SELECT user_id, cx, loyalty, top FROM '${out}'`);
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, index) => {
      const want = expected[index]!;
      expect(row.user_id).toBe(want.user);
      expect(row.cx).toBe(want.cx);
      expect(row.loyalty).toBe(want.loyalty);
      const top = row.top as { content_id: string; score: number }[];
      expect(top.map((match) => match.content_id)).toEqual(want.top.map((match) => match.content));
      expect(top.map((match) => Math.fround(match.score))).toEqual(want.top.map((match) => Math.fround(match.score)));
    });
    const codecs = await query(`SELECT DISTINCT compression FROM parquet_metadata('${out}')`);
    expect(codecs.map((row) => row.compression)).toEqual([codec.toUpperCase()]);
  });

  it('writes the long layout', async () => {
    const out = file('long.parquet');
    await scoreCli(out, ['--layout', 'long']);
    const rows = await query(`SELECT user_id, rank, content_id, score, cx, loyalty FROM '${out}'`);
    const flat = expected.flatMap((want) =>
      want.top.map((match, rank) => [want.user, rank + 1, match.content, Math.fround(match.score), want.cx, want.loyalty]),
    );
    expect(rows.map((row) => [row.user_id, row.rank, row.content_id, Math.fround(row.score as number), row.cx, row.loyalty])).toEqual(flat);
  });

  it('rejects compression for Arrow output', async () => {
    const failure = await scoreCli(file('x.arrow'), ['--compression', 'zstd']).catch((error: unknown) => error);
    expect((failure as { code: number }).code).toBe(2);
    expect((failure as { stderr: string }).stderr).toContain('--compression applies to Parquet output only');
    expect(existsSync(file('x.arrow'))).toBe(false);
  });
});

describe('Arrow IPC output', () => {
  it.each(['scores.arrow', 'scores.arrows'])('reads back %s', async (name) => {
    await scoreCli(file(name));
    const table = tableFromIPC(await readFile(file(name)));
    expect(table.numRows).toBe(expected.length);
    const first = table.get(0)!.toJSON() as { user_id: string; cx: number; top: { toArray(): unknown[] } };
    expect(first.user_id).toBe(expected[0]!.user);
    expect(first.cx).toBe(expected[0]!.cx);
    const top = first.top.toArray().map((match) => (match as { toJSON(): { content_id: string } }).toJSON().content_id);
    expect(top).toEqual(expected[0]!.top.map((match) => match.content));
  });
});

describe('encodeResultsIpc', () => {
  const results: UserResult[] = [
    { user: 'a', cx: 2.5, loyalty: 0.25, top: [{ content: 7, score: 0.5 }, { content: 3, score: 0.25 }] },
    { user: 'b', cx: 1, loyalty: 0.5, top: [] },
  ];

  it('encodes one row per user', () => {
    const table = tableFromIPC(encodeResultsIpc(results, 'user'));
    expect(table.schema.fields.map(String)).toEqual([
      'user_id: Utf8',
      'cx: Float64',
      'loyalty: Float64',
      'top: List<Struct<{content_id:Int64, score:Float32}>>',
    ]);
    expect(table.numRows).toBe(2);
    expect(table.getChild('top')!.get(0)!.length).toBe(2);
    expect(table.getChild('top')!.get(1)!.length).toBe(0);
  });

  it('encodes the long layout', () => {
    const table = tableFromIPC(encodeResultsIpc(results, 'long'));
    const rows = table.toArray().map((row) => row.toJSON());
    expect(rows).toEqual([
      { user_id: 'a', rank: 1, content_id: 7n, score: 0.5, cx: 2.5, loyalty: 0.25 },
      { user_id: 'a', rank: 2, content_id: 3n, score: 0.25, cx: 2.5, loyalty: 0.25 },
      { user_id: 'b', rank: null, content_id: null, score: null, cx: 1, loyalty: 0.5 },
    ]);
  });

  it('places nulls past a bitmap byte', () => {
    // 20 users, every third without matches, so null rows fall in several bitmap bytes.
    const many: UserResult[] = Array.from({ length: 20 }, (_, user) => ({
      user: user * 10,
      cx: user + 0.5,
      loyalty: 1 / (user + 2),
      top: user % 3 === 0 ? [] : [{ content: `c${user}`, score: 0.75 }, { content: 'ü', score: 0.5 }],
    }));
    const rows = tableFromIPC(encodeResultsIpc(many, 'long')).toArray().map((row) => row.toJSON());
    const expected = many.flatMap((result): Record<string, unknown>[] =>
      result.top.length === 0
        ? [{ user_id: BigInt(result.user), rank: null, content_id: null, score: null, cx: result.cx, loyalty: result.loyalty }]
        : result.top.map((match, rank) => ({
            user_id: BigInt(result.user),
            rank: rank + 1,
            content_id: match.content,
            score: match.score,
            cx: result.cx,
            loyalty: result.loyalty,
          })),
    );
    expect(rows).toEqual(expected);
  });

  it('types content ids from the whole catalogue', async () => {
    const { createParquetWriter } = await import('../src/io/table-writers.js');
    const { AtomicFile } = await import('../src/io/atomic.js');
    const target = file('catalogue-ids.parquet');
    const writer = createParquetWriter(await AtomicFile.open(target), 'user', 'zstd', [1, 2, 'z']);
    // The first batch has integer ids only, but the catalogue's 'z' makes the column strings.
    await writer.writeBatch([{ user: 0, cx: 1, loyalty: 0.5, top: [{ content: 2, score: 0.5 }] }]);
    await writer.writeBatch([{ user: 1, cx: 1, loyalty: 0.5, top: [{ content: 'z', score: 0.25 }] }]);
    await writer.finish();
    const rows = await query(`SELECT user_id, top[1].content_id AS content FROM '${target}' ORDER BY user_id`);
    expect(rows).toEqual([
      { user_id: '0', content: '2' },
      { user_id: '1', content: 'z' },
    ]);
  });

  it('rejects user ids that change kind', async () => {
    const { createIpcWriter } = await import('../src/io/table-writers.js');
    const { AtomicFile } = await import('../src/io/atomic.js');
    const writer = createIpcWriter(await AtomicFile.open(file('mixed.arrows')), 'user', 'stream');
    await writer.writeBatch([{ user: 7, cx: 1, loyalty: 0.5, top: [] }]);
    const error = await writer.writeBatch([{ user: 'x', cx: 1, loyalty: 0.5, top: [] }]).then(
      () => undefined,
      (caught: unknown) => caught as { code: string; message: string },
    );
    await writer.abort();
    expect(error?.code).toBe('INVALID_INPUT');
    expect(error?.message).toMatch(/user_id was written as integers.*"x" is a string/);
  });

  it('encodes no users as a schema', () => {
    const table = tableFromIPC(encodeResultsIpc([], 'long'));
    expect(table.numRows).toBe(0);
    expect(table.schema.fields).toHaveLength(6);
  });
});

const realCases = [
  { name: 'fashion-t10k-pca100', container: 'parquet' as const },
  { name: 'fashion-t10k-784', container: 'arrow' as const },
];

/** Users scored per real case: a subset keeps the test within seconds. */
const REAL_USERS = 200;

for (const realCase of realCases) {
  const folder = `${sharedData}/${realCase.name}`;
  const present = existsSync(`${folder}/users.npy`);
  describe.skipIf(!present)(
    `real case ${realCase.name} as ${realCase.container}${present ? '' : ' (skipped: data folder not found)'}`,
    () => {
      it('scores as from .npy', async () => {
        const params = JSON.parse(readFileSync(`${folder}/params.json`, 'utf8'));
        const users = loadNpy(`${folder}/users.npy`);
        const contents = loadNpy(`${folder}/contents.npy`);
        const dim = users.shape[1]!;
        const userIds = readFileSync(`${folder}/user_ids.txt`, 'utf8').split('\n').slice(0, REAL_USERS);
        const contentIds = readFileSync(`${folder}/content_ids.txt`, 'utf8').split('\n').filter(Boolean);
        const userData = (users.data as Float32Array).slice(0, REAL_USERS * dim);
        const contentData = contents.data as Float32Array;
        const usersTable = new Table({ user_id: stringVector(userIds), embedding: fixedSizeListVector(userData, dim) });
        const contentsTable = new Table({
          content_id: stringVector(contentIds),
          embedding:
            realCase.container === 'parquet'
              ? float64ListVector(contentData, dim)
              : fixedSizeListVector(contentData, dim),
        });
        const extension = realCase.container === 'parquet' ? 'parquet' : 'arrow';
        const usersPath = file(`${realCase.name}-users.${extension}`);
        const contentsPath = file(`${realCase.name}-contents.${extension}`);
        if (realCase.container === 'parquet') {
          await writeParquetWithWasm(usersTable, usersPath, { compression: 'snappy', rowGroupRows: 64 });
          await writeParquetWithWasm(contentsTable, contentsPath, {
            compression: 'zstd',
            rowGroupRows: 4096,
          });
        } else {
          await writeIpc(usersTable, usersPath, 'stream');
          await writeIpc(contentsTable, contentsPath, 'file');
        }
        const common = { alpha: params.alpha, beta: params.beta, gamma: params.gamma, k: params.k, backend: 'wasm' as const };
        const fromTables = await score({ users: usersPath, contents: contentsPath, weights: `${folder}/content_weights.npy`, ...common });
        const fromNpy = await score({
          users: { data: userData, rows: REAL_USERS, dim, ids: userIds },
          contents: `${folder}/contents.npy`,
          contentIds: `${folder}/content_ids.txt`,
          weights: `${folder}/content_weights.npy`,
          ...common,
        });
        expect(fromTables.results).toHaveLength(REAL_USERS);
        expect(fromTables.results).toEqual(fromNpy.results);
      });
    },
  );
}
