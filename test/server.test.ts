/**
 * The HTTP API over real sockets on 127.0.0.1: every endpoint, its errors,
 * auth, limits, backpressure, timeouts and shutdown. Results are compared
 * with `score()` and with the command line's JSONL output.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backends/backend.js';
import { formatJsonlLine } from '../src/io/writers.js';
import { createPoolBackend } from '../src/pool/index.js';
import { score } from '../src/score.js';
import { resolveServerConfig, startServer, type AttnScoreServer } from '../src/server/index.js';
import { encodeNpy, loadNpy } from './helpers/npy.js';
import { randomMatrix } from './helpers/data.js';
import { fixedSizeListVector, stringVector } from './helpers/tables.js';

const KEY = 'test-key-0123456789';
const auth = { Authorization: `Bearer ${KEY}` };

/** Creates a logger whose JSON lines land in `lines`, so tests can check what was logged. */
function captureLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return pino({ level: 'info' }, stream);
}

/** Rows of a flat matrix as nested arrays, the JSON form of a vector set. */
function rowsOf(data: Float32Array, dim: number): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start < data.length; start += dim) rows.push(Array.from(data.subarray(start, start + dim)));
  return rows;
}

async function send(
  server: AttnScoreServer,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = auth,
): Promise<Response> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] ??= 'application/json';
  }
  return fetch(`${server.url}${path}`, init);
}

/** Expects a problem+json response and returns its body. */
async function expectProblem(response: Response, status: number): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await response.json()) as Record<string, unknown>;
  expect(body.status).toBe(status);
  expect(typeof body.type).toBe('string');
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\/work\/|node_modules|at .*\.ts:/);
  return body;
}

/** Formats `score()` results as JSONL lines without newlines, to compare exactly. */
function expectedLines(results: Parameters<typeof formatJsonlLine>[0][]): string[] {
  return results.map((result) => formatJsonlLine(result).trimEnd());
}

function resultLines(text: string): string[] {
  const body = JSON.parse(text) as { results: unknown[] };
  return body.results.map((result) => JSON.stringify(result));
}

const DIM = 24;
const contents = randomMatrix(300, DIM, 11);
const users = randomMatrix(40, DIM, 12);
const contentIds = Array.from({ length: 300 }, (_, row) => `item-${row}`);
const userIds = Array.from({ length: 40 }, (_, row) => `user-${row}`);
const weights = Array.from({ length: 300 }, (_, row) => 0.5 + (row % 7) / 4);

describe('server', () => {
  let server: AttnScoreServer;
  const logs: string[] = [];

  beforeAll(async () => {
    const config = resolveServerConfig({ port: 0, threads: 2, apiKeys: [KEY], blockUsers: 16 }, {});
    server = await startServer({ config, logger: captureLogger(logs) });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('health and readiness', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('auth rejects missing and wrong keys', async () => {
    const missing = await send(server, 'GET', '/v1/catalogs', undefined, {});
    const body = await expectProblem(missing, 401);
    expect(body.detail).toMatch(/missing bearer key/);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await send(server, 'GET', '/v1/catalogs', undefined, { Authorization: 'Bearer nope' });
    await expectProblem(wrong, 401);
    const right = await send(server, 'GET', '/v1/catalogs');
    expect(right.status).toBe(200);
  });

  it('catalog put, get, list, replace and delete', async () => {
    const upload = { ids: contentIds, vectors: rowsOf(contents, DIM), weights };
    const created = await send(server, 'PUT', '/v1/catalogs/crud', upload);
    expect(created.status).toBe(201);
    const info = (await created.json()) as Record<string, unknown>;
    expect(info).toMatchObject({ name: 'crud', rows: 300, dim: DIM, weighted: true, idType: 'string' });
    const described = await send(server, 'GET', '/v1/catalogs/crud');
    expect(await described.json()).toEqual(info);
    const list = (await (await send(server, 'GET', '/v1/catalogs')).json()) as { catalogs: { name: string }[] };
    expect(list.catalogs.map((catalog) => catalog.name)).toContain('crud');
    const replaced = await send(server, 'PUT', '/v1/catalogs/crud', { vectors: [[1, 2]] });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ rows: 1, dim: 2, weighted: false, idType: 'number' });
    expect((await send(server, 'DELETE', '/v1/catalogs/crud')).status).toBe(204);
    await expectProblem(await send(server, 'GET', '/v1/catalogs/crud'), 404);
    await expectProblem(await send(server, 'DELETE', '/v1/catalogs/crud'), 404);
    await expectProblem(await send(server, 'PUT', '/v1/catalogs/.hidden', upload), 400);
  });

  it('catalog score equals score()', async () => {
    const upload = { ids: contentIds, vectors: rowsOf(contents, DIM), weights };
    expect((await send(server, 'PUT', '/v1/catalogs/main', upload)).status).toBe(201);
    const exclude = { 'user-3': ['item-0', 'item-5'], 'user-39': ['item-299'] };
    const parameters = { k: 7, alpha: 2.5, beta: 0.01, gamma: -1, minScore: -0.2, normalizeWeights: true };
    const response = await send(server, 'POST', '/v1/catalogs/main/score', {
      users: { ids: userIds, vectors: rowsOf(users, DIM) },
      ...parameters,
      exclude,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const expected = await score({
      users: { data: users, rows: 40, dim: DIM, ids: userIds },
      contents: { data: contents, rows: 300, dim: DIM, ids: contentIds },
      weights,
      ...parameters,
      exclude,
      threads: 1,
    });
    expect(resultLines(await response.text())).toEqual(expectedLines(expected.results));
  });

  it('inline score equals score()', async () => {
    const response = await send(server, 'POST', '/v1/score', {
      users: { vectors: rowsOf(users, DIM) },
      contents: { ids: contentIds, vectors: rowsOf(contents, DIM) },
    });
    expect(response.status).toBe(200);
    const expected = await score({
      users: { data: users, rows: 40, dim: DIM },
      contents: { data: contents, rows: 300, dim: DIM, ids: contentIds },
      threads: 1,
    });
    const lines = resultLines(await response.text());
    expect(lines).toHaveLength(40);
    expect(lines).toEqual(expectedLines(expected.results));
  });

  it('npy and raw float32 uploads score like score()', async () => {
    const npy = await send(server, 'PUT', '/v1/catalogs/binary', encodeNpy(contents, [300, DIM]), {
      ...auth,
      'Content-Type': 'application/x-npy',
    });
    expect(npy.status).toBe(201);
    expect(await npy.json()).toMatchObject({ rows: 300, dim: DIM, idType: 'number' });
    const raw = Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
    const viaHeader = await send(server, 'PUT', '/v1/catalogs/raw', raw, {
      ...auth,
      'Content-Type': 'application/octet-stream',
      'X-Shape': `300,${DIM}`,
    });
    expect(viaHeader.status).toBe(201);
    const viaQuery = await send(server, 'PUT', `/v1/catalogs/raw2?dim=${DIM}`, raw, {
      ...auth,
      'Content-Type': 'application/octet-stream',
    });
    expect(await viaQuery.json()).toMatchObject({ rows: 300, dim: DIM });
    const badShape = await send(server, 'PUT', '/v1/catalogs/raw3?dim=7', raw, {
      ...auth,
      'Content-Type': 'application/octet-stream',
    });
    await expectProblem(badShape, 400);
    const notNpy = await send(server, 'PUT', '/v1/catalogs/raw4', Buffer.from('hello'), {
      ...auth,
      'Content-Type': 'application/x-npy',
    });
    expect((await expectProblem(notNpy, 400)).detail).toMatch(/not a \.npy file/);

    const expected = await score({
      users: { data: users, rows: 40, dim: DIM },
      contents: { data: contents, rows: 300, dim: DIM },
      threads: 1,
    });
    for (const name of ['binary', 'raw']) {
      const response = await send(server, 'POST', `/v1/catalogs/${name}/score`, {
        users: { vectors: rowsOf(users, DIM) },
      });
      expect(resultLines(await response.text())).toEqual(expectedLines(expected.results));
    }
  });

  it('binary users score like JSON users', async () => {
    const expected = await score({
      users: { data: users, rows: 40, dim: DIM },
      contents: { data: contents, rows: 300, dim: DIM, ids: contentIds },
      weights,
      k: 7,
      alpha: 2.5,
      minScore: -0.2,
      threads: 1,
    });
    const query = 'k=7&alpha=2.5&minScore=-0.2';
    const npy = await send(server, 'POST', `/v1/catalogs/main/score?${query}`, encodeNpy(users, [40, DIM]), {
      ...auth,
      'Content-Type': 'application/x-npy',
    });
    expect(npy.status).toBe(200);
    expect(resultLines(await npy.text())).toEqual(expectedLines(expected.results));
    const raw = Buffer.from(users.buffer, users.byteOffset, users.byteLength);
    const viaRaw = await send(server, 'POST', `/v1/catalogs/main/score?${query}&dim=${DIM}`, raw, {
      ...auth,
      'Content-Type': 'application/octet-stream',
    });
    expect(resultLines(await viaRaw.text())).toEqual(expectedLines(expected.results));
    const badK = await send(server, 'POST', '/v1/catalogs/main/score?k=0', encodeNpy(users, [40, DIM]), {
      ...auth,
      'Content-Type': 'application/x-npy',
    });
    expect((await expectProblem(badK, 400)).pointer).toBe('/k');
  });

  it('arrow uploads, users and responses', async () => {
    const { Float64, Table, tableFromIPC, tableToIPC, vectorFromArray } = await import('apache-arrow');
    const userIds = Array.from({ length: 40 }, (_, row) => `viewer-${row}`);
    const expected = await score({
      users: { data: users, rows: 40, dim: DIM, ids: userIds },
      contents: { data: contents, rows: 300, dim: DIM, ids: contentIds },
      weights,
      k: 5,
      alpha: 1.5,
      threads: 1,
    });
    const arrowHeaders = { ...auth, 'Content-Type': 'application/vnd.apache.arrow.stream' };
    const catalog = new Table({
      item: stringVector(contentIds.map(String)),
      embedding: fixedSizeListVector(contents, DIM),
      weight: vectorFromArray(Array.from(weights), new Float64()),
    });
    const put = await send(server, 'PUT', '/v1/catalogs/arrow', Buffer.from(tableToIPC(catalog, 'stream')), arrowHeaders);
    expect(put.status).toBe(201);
    expect(((await put.json()) as { rows: number }).rows).toBe(300);

    const usersBody = Buffer.from(tableToIPC(new Table({ user: stringVector(userIds), embedding: fixedSizeListVector(users, DIM) }), 'stream'));
    const asJson = await send(server, 'POST', '/v1/catalogs/arrow/score?k=5&alpha=1.5', usersBody, arrowHeaders);
    expect(asJson.status).toBe(200);
    expect(resultLines(await asJson.text())).toEqual(expectedLines(expected.results));

    const accept = { ...arrowHeaders, Accept: 'application/vnd.apache.arrow.stream' };
    const asArrow = await send(server, 'POST', '/v1/catalogs/arrow/score?k=5&alpha=1.5', usersBody, accept);
    expect(asArrow.headers.get('content-type')).toMatch(/^application\/vnd\.apache\.arrow\.stream/);
    const perUser = tableFromIPC(new Uint8Array(await asArrow.arrayBuffer())).toArray();
    expect(perUser).toHaveLength(40);
    expect(perUser.map((row) => row.user_id)).toEqual(userIds);
    for (const [index, row] of perUser.entries()) {
      const want = expected.results[index]!;
      expect(row.cx).toBe(want.cx);
      expect(row.loyalty).toBe(want.loyalty);
      const top = row.top.toArray() as { content_id: unknown; score: number }[];
      expect(top.map((match) => String(match.content_id))).toEqual(want.top.map((match) => String(match.content)));
      expect(top.map((match) => match.score)).toEqual(want.top.map((match) => Math.fround(match.score)));
    }

    const long = await send(server, 'POST', '/v1/catalogs/arrow/score?k=5&alpha=1.5&layout=long', usersBody, accept);
    const longRows = tableFromIPC(new Uint8Array(await long.arrayBuffer())).toArray();
    expect(longRows).toHaveLength(expected.results.reduce((sum, result) => sum + result.top.length, 0));
    expect(longRows[0]!.rank).toBe(1);

    const wrongColumn = await send(server, 'POST', '/v1/catalogs/arrow/score?vectorColumn=vec', usersBody, arrowHeaders);
    expect((await expectProblem(wrongColumn, 400)).detail).toMatch(/vec.*embedding/);
    const garbage = await send(server, 'POST', '/v1/catalogs/arrow/score', Buffer.from('not arrow'), arrowHeaders);
    expect((await expectProblem(garbage, 400)).detail).toMatch(/Arrow IPC/);
  });

  const realCases = [
    { name: 'sample', folder: 'sample', alpha: 1.5, beta: 0.001, gamma: -8, k: 10 },
    { name: 'fashion-t10k-pca100', folder: '../shared/data/fashion-t10k-pca100', alpha: 1.5, beta: 0.001, gamma: -8, k: 20 },
  ];
  for (const realCase of realCases) {
    const present = existsSync(`${realCase.folder}/users.npy`);
    const title = `real case ${realCase.name} matches the command line JSONL`;
    it.skipIf(!present)(present ? title : `${title} (skipped: data folder not found)`, async () => {
      const folder = await mkdtemp(join(tmpdir(), 'attnscore-server-'));
      const input = (name: string) => `${realCase.folder}/${name}`;
      const parameters = { alpha: realCase.alpha, beta: realCase.beta, gamma: realCase.gamma, k: realCase.k };
      try {
        const out = join(folder, 'scores.jsonl');
        await promisify(execFile)(process.execPath, [
          'bin/attnscore.js', 'score',
          '--users', input('users.npy'), '--user-ids', input('user_ids.txt'),
          '--contents', input('contents.npy'), '--content-ids', input('content_ids.txt'),
          '--weights', input('content_weights.npy'),
          ...Object.entries(parameters).flatMap(([name, value]) => [`--${name}`, String(value)]),
          '--threads', '1', '--out', out, '--quiet',
        ]);
        const cliLines = (await readFile(out, 'utf8')).trimEnd().split('\n');
        const users = loadNpy(input('users.npy'));
        const contentVectors = loadNpy(input('contents.npy'));
        const weights = loadNpy(input('content_weights.npy'));
        const ids = async (file: string) => (await readFile(input(file), 'utf8')).trimEnd().split('\n');
        const catalog = {
          ids: await ids('content_ids.txt'),
          vectors: rowsOf(Float32Array.from(contentVectors.data), contentVectors.shape[1]!),
          weights: Array.from(weights.data),
        };
        expect((await send(server, 'PUT', `/v1/catalogs/${realCase.name}`, catalog)).status).toBe(201);
        const response = await send(server, 'POST', `/v1/catalogs/${realCase.name}/score`, {
          users: {
            ids: await ids('user_ids.txt'),
            vectors: rowsOf(Float32Array.from(users.data), users.shape[1]!),
          },
          ...parameters,
        });
        expect(response.status).toBe(200);
        const lines = resultLines(await response.text());
        expect(lines).toHaveLength(cliLines.length);
        expect(lines).toEqual(cliLines);
      } finally {
        await rm(folder, { recursive: true, force: true });
      }
    });
  }

  it('pairs return float64 cosines in order', async () => {
    const userVectors = [[1, 0, 0], [0, 0, 0], [1, 1, 0]];
    const inline = await send(server, 'POST', '/v1/pairs', {
      users: { ids: ['a', 'b', 'c'], vectors: userVectors },
      contents: { ids: [10, 20], vectors: [[1, 0, 0], [0, 1, 1]] },
      pairs: [['a', 10], ['c', 20], ['b', 10], ['c', '10']],
    });
    expect(inline.status).toBe(200);
    const { scores } = (await inline.json()) as { scores: number[] };
    expect(scores).toHaveLength(4);
    expect(scores[0]).toBe(1);
    expect(scores[1]).toBeCloseTo(0.5, 15);
    expect(scores[2]).toBe(0);
    expect(scores[3]).toBeCloseTo(Math.SQRT1_2, 15);

    const viaCatalog = await send(server, 'POST', '/v1/pairs', {
      users: { ids: ['u'], vectors: [Array.from(users.subarray(0, DIM))] },
      catalog: 'main',
      pairs: [['u', 'item-4']],
    });
    const expected = await score({
      users: { data: users.subarray(0, DIM), rows: 1, dim: DIM },
      contents: { data: contents, rows: 300, dim: DIM, ids: contentIds },
      k: 300,
      threads: 1,
    });
    const item4 = expected.results[0]!.top.find((match) => match.content === 'item-4')!;
    const pairScore = ((await viaCatalog.json()) as { scores: number[] }).scores[0]!;
    expect(Math.abs(pairScore - item4.score)).toBeLessThan(1e-5);
  });

  it('pairs with unknown ids are 400', async () => {
    const response = await send(server, 'POST', '/v1/pairs', {
      users: { ids: ['a'], vectors: [[1, 0]] },
      contents: { ids: ['x'], vectors: [[0, 1]] },
      pairs: [['a', 'x'], ['ghost', 'x'], ['a', 'nothing']],
    });
    const body = await expectProblem(response, 400);
    expect(body.detail).toMatch(/user "ghost"/);
    expect(body.detail).toMatch(/content "nothing"/);
    expect(body.pointer).toBe('/pairs/1/0');
    const missingCatalog = await send(server, 'POST', '/v1/pairs', {
      users: { ids: ['a'], vectors: [[1, 0]] },
      catalog: 'absent',
      pairs: [],
    });
    await expectProblem(missingCatalog, 404);
  });

  it('bad bodies are problem+json with the field', async () => {
    const base = { users: { vectors: [[1, 2, 3]] } };
    const cases: { body: unknown; pointer: string; rule: string }[] = [
      { body: { users: { vectors: [[1, 'x', 3]] } }, pointer: '/users/vectors/0/1', rule: 'invalid_type' },
      { body: { users: { vectors: [[1, 2, 3], [1, 2]] } }, pointer: '/users/vectors/1', rule: 'equal_dimensions' },
      { body: { ...base, k: 0 }, pointer: '/k', rule: 'too_small' },
      { body: { ...base, k: 2.5 }, pointer: '/k', rule: 'invalid_type' },
      { body: { ...base, alpha: 81 }, pointer: '/alpha', rule: 'too_big' },
      { body: { users: { vectors: [] } }, pointer: '/users/vectors', rule: 'too_small' },
      { body: { users: { ids: ['a', 'b'], vectors: [[1, 2, 3]] } }, pointer: '/users/ids', rule: 'one_per_vector' },
      { body: { ...base, extra: 1 }, pointer: '', rule: 'unrecognized_keys' },
      { body: [1, 2], pointer: '', rule: 'invalid_type' },
    ];
    for (const { body, pointer, rule } of cases) {
      const response = await send(server, 'POST', '/v1/catalogs/main/score', body);
      const problem = await expectProblem(response, 400);
      expect(problem.pointer, JSON.stringify(body)).toBe(pointer);
      expect(problem.rule, JSON.stringify(body)).toBe(rule);
    }
    const stringValue = await send(server, 'POST', '/v1/score', {
      users: { vectors: [[1, 'x']] },
      contents: { vectors: [[1, 2]] },
    });
    expect((await expectProblem(stringValue, 400)).value).toBe('x');
  });

  it('engine errors are 400 with their message', async () => {
    const mismatch = await send(server, 'POST', '/v1/catalogs/main/score', { users: { vectors: [[1, 2, 3]] } });
    const body = await expectProblem(mismatch, 400);
    expect(body.rule).toBe('DIMENSION_MISMATCH');
    expect(body.detail).toBe('users have 3 dims but contents have 24');
    expect(body.pointer).toBe('/users/vectors');

    const unknownExclude = await send(server, 'POST', '/v1/score', {
      users: { ids: ['a'], vectors: [[1, 2]] },
      contents: { ids: ['x'], vectors: [[2, 1]] },
      exclude: { a: ['y'] },
    });
    const unknown = await expectProblem(unknownExclude, 400);
    expect(unknown.rule).toBe('UNKNOWN_ID');
    expect(unknown.pointer).toBe('/exclude/a');
    expect(unknown.value).toBe('y');
    const duplicate = await send(server, 'POST', '/v1/score', {
      users: { ids: ['a', 'a'], vectors: [[1, 2], [3, 4]] },
      contents: { vectors: [[2, 1]] },
    });
    const repeated = await expectProblem(duplicate, 400);
    expect(repeated.detail).toMatch(/again at row 1; ids must be unique/);
    expect(repeated.pointer).toBe('/users/ids/1');
    const overflow = await send(server, 'POST', '/v1/score', {
      users: { vectors: [[1e39, 2]] },
      contents: { vectors: [[2, 1]] },
    });
    const tooLarge = await expectProblem(overflow, 400);
    expect(tooLarge.rule).toBe('NON_FINITE_VALUE');
    expect(tooLarge.detail).toMatch(/outside the float32 range/);
    expect(tooLarge.pointer).toBe('/users/vectors/0/0');
    expect(tooLarge.value).toBe(1e39);
    const badUpload = await send(server, 'PUT', '/v1/catalogs/bad', { vectors: [[1, 2], [3, 1e39]] });
    expect((await expectProblem(badUpload, 400)).pointer).toBe('/vectors/1/1');
    const heavy = await send(server, 'POST', '/v1/score', {
      users: { vectors: [[1, 2]] },
      contents: { vectors: [[2, 1], [1, 1]], weights: [1, -1e39] },
    });
    const heavyProblem = await expectProblem(heavy, 400);
    expect(heavyProblem.pointer).toBe('/contents/weights/1');
    expect(heavyProblem.value).toBe(-1e39);
    expect(heavyProblem.rule).toBe('float32_range');
    const heavyUpload = await send(server, 'PUT', '/v1/catalogs/heavy', { vectors: [[1, 2]], weights: [4e38] });
    expect((await expectProblem(heavyUpload, 400)).pointer).toBe('/weights/0');
  });

  it('ids equal as strings are duplicates', async () => {
    const body = await expectProblem(
      await send(server, 'PUT', '/v1/catalogs/mixed', { ids: [1, '1'], vectors: [[1, 0], [0, 1]] }),
      400,
    );
    expect(body.detail).toMatch(/ids must be unique/);
  });

  it('bad paths, encodings and nesting are 400', async () => {
    await expectProblem(await send(server, 'PUT', '/v1/catalogs/%FF', {}), 400);
    const gzip = { ...auth, 'Content-Encoding': 'gzip', 'Content-Type': 'application/json' };
    await expectProblem(await send(server, 'POST', '/v1/score', '{}', gzip), 400);
    const deep = `{"users":{"vectors":[[1,${'['.repeat(5000)}${']'.repeat(5000)}]]}}`;
    await expectProblem(await send(server, 'POST', '/v1/score', deep), 400);
  });

  it('invalid JSON and media types', async () => {
    const invalid = await send(server, 'POST', '/v1/score', '{"users":', { ...auth, 'Content-Type': 'application/json' });
    expect((await expectProblem(invalid, 400)).type).toBe('urn:attnscore:problem:invalid-json');
    const text = await send(server, 'POST', '/v1/score', 'hello', { ...auth, 'Content-Type': 'text/plain' });
    await expectProblem(text, 415);
    await expectProblem(await send(server, 'GET', '/v1/nothing'), 404);
  });

  it('request id is echoed, generated and logged', async () => {
    const given = await send(server, 'GET', '/v1/catalogs', undefined, { ...auth, 'X-Request-Id': 'trace-42' });
    expect(given.headers.get('x-request-id')).toBe('trace-42');
    const generated = await send(server, 'GET', '/v1/catalogs/absent');
    const id = generated.headers.get('x-request-id')!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await generated.json()) as { requestId: string }).requestId).toBe(id);
    const logged = logs.map((line) => JSON.parse(line) as { req?: { id?: string }; reqId?: string });
    expect(logged.some((line) => line.req?.id === 'trace-42')).toBe(true);
    expect(logged.some((line) => line.reqId === id || line.req?.id === id)).toBe(true);
    expect(logs.join('\n')).not.toContain(KEY);
  });

  it('metrics are Prometheus text', async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/attnscore_http_requests_total\{method="POST",route="\/v1\/catalogs\/:name\/score",status="200"\} \d+/);
    expect(text).toMatch(/attnscore_http_requests_total\{method="POST",route="\/v1\/score",status="400"\} \d+/);
    expect(text).toContain('attnscore_http_request_duration_seconds_bucket');
    expect(text).toMatch(/attnscore_pairs_scored_total\{endpoint="score"\} \d+/);
    expect(text).toMatch(/attnscore_queue_depth 0/);
  });

  it('openapi.json lists every path', async () => {
    const response = await fetch(`${server.url}/openapi.json`);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/healthz', '/metrics', '/openapi.json', '/readyz', '/v1/catalogs', '/v1/catalogs/{name}',
      '/v1/catalogs/{name}/score', '/v1/pairs', '/v1/score',
    ]);
  });
});

/** Wraps a backend so each block takes at least `delayMs`, and counts the blocks started. */
function slowBackend(inner: Backend, delayMs: number): Backend & { blocks: number } {
  const wrapper = {
    name: inner.name,
    variant: `${inner.variant}, slowed`,
    concurrency: 1,
    blocks: 0,
    prepare: inner.prepare.bind(inner),
    async scoreBlock(...args: Parameters<Backend['scoreBlock']>) {
      wrapper.blocks++;
      const scores = await inner.scoreBlock(...args);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return scores;
    },
    dispose: () => inner.dispose(),
  };
  return wrapper;
}

describe('server limits', () => {
  let server: AttnScoreServer;
  let backend: ReturnType<typeof slowBackend>;
  const body = (rows: number) => ({
    users: { vectors: Array.from({ length: rows }, (_, row) => [1, row, 2]) },
  });

  beforeAll(async () => {
    const config = resolveServerConfig(
      { port: 0, threads: 1, concurrency: 1, queueLimit: 1, timeoutMs: 1000, blockUsers: 1, bodyLimit: 4096 },
      {},
    );
    backend = slowBackend(createPoolBackend({ threads: 1 }), 100);
    server = await startServer({ config, backend, logger: captureLogger([]), shutdownGraceMs: 5000 });
    const put = await send(server, 'PUT', '/v1/catalogs/small', { vectors: [[1, 0, 0], [0, 1, 0]] }, {});
    expect(put.status).toBe(201);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('413 over the body limit', async () => {
    const large = { users: { vectors: Array.from({ length: 400 }, () => [1.5, 2.5, 3.5]) } };
    const response = await send(server, 'POST', '/v1/catalogs/small/score', large, {});
    expect((await expectProblem(response, 413)).detail).toMatch(/4096 bytes/);
  });

  it('429 with Retry-After when the queue is full', async () => {
    const running = send(server, 'POST', '/v1/catalogs/small/score', body(3), {});
    await new Promise((resolve) => setTimeout(resolve, 30));
    const waiting = send(server, 'POST', '/v1/catalogs/small/score', body(2), {});
    await new Promise((resolve) => setTimeout(resolve, 30));
    const rejected = await send(server, 'POST', '/v1/catalogs/small/score', body(1), {});
    await expectProblem(rejected, 429);
    expect(rejected.headers.get('retry-after')).toBe('1');
    // A full queue returns 429 before the body is parsed, so even invalid JSON gets it.
    await expectProblem(await send(server, 'POST', '/v1/catalogs/small/score', '{not json', {}), 429);
    await expectProblem(await send(server, 'PUT', '/v1/catalogs/other', { vectors: [[1, 2]] }, {}), 429);
    expect((await running).status).toBe(200);
    const second = await waiting;
    expect(second.status).toBe(200);
    expect(((await second.json()) as { results: unknown[] }).results).toHaveLength(2);
  });

  it('503 on timeout, and the work stops', async () => {
    const started = backend.blocks;
    const response = await send(server, 'POST', '/v1/catalogs/small/score', body(40), {});
    expect((await expectProblem(response, 503)).type).toBe('urn:attnscore:problem:timeout');
    await new Promise((resolve) => setTimeout(resolve, 400));
    const after = backend.blocks;
    // About 10 blocks fit in the 1000 ms limit; the rest of the 40 must never start.
    expect(after - started).toBeLessThan(15);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(backend.blocks).toBe(after);
  });

  it('shutdown lets a request in flight finish', async () => {
    const inFlight = send(server, 'POST', '/v1/catalogs/small/score', body(4), {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = server.close();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { results: unknown[] }).results).toHaveLength(4);
    await closed;
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});

describe('server data folder', () => {
  it('concurrent uploads of one name stay consistent', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'attnscore-race-'));
    try {
      const config = resolveServerConfig({ port: 0, threads: 1, dataDir }, {});
      const server = await startServer({ config, logger: captureLogger([]) });
      const upload = (rows: number, prefix: string) => ({
        ids: Array.from({ length: rows }, (_, row) => `${prefix}${row}`),
        vectors: rowsOf(randomMatrix(rows, DIM, rows), DIM),
      });
      const statuses = await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          send(server, 'PUT', '/v1/catalogs/race', index % 2 ? upload(30, 'B') : upload(20, 'A'), {}),
        ),
      );
      for (const response of statuses) expect([200, 201]).toContain(response.status);
      const info = (await (await send(server, 'GET', '/v1/catalogs/race', undefined, {})).json()) as { rows: number };
      await server.close();
      const saved = loadNpy(join(dataDir, 'race.npy'));
      const metadata = JSON.parse(await readFile(join(dataDir, 'race.json'), 'utf8')) as { ids: string[] };
      expect(saved.shape[0]).toBe(info.rows);
      expect(metadata.ids).toHaveLength(info.rows);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('catalogs survive a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'attnscore-data-'));
    try {
      const config = resolveServerConfig({ port: 0, threads: 1, dataDir }, {});
      const first = await startServer({ config, logger: captureLogger([]) });
      const upload = { ids: contentIds, vectors: rowsOf(contents, DIM), weights };
      expect((await send(first, 'PUT', '/v1/catalogs/kept', upload, {})).status).toBe(201);
      const request = { users: { ids: userIds, vectors: rowsOf(users, DIM) }, k: 5 };
      const before = await (await send(first, 'POST', '/v1/catalogs/kept/score', request, {})).text();
      await first.close();

      const second = await startServer({ config, logger: captureLogger([]) });
      try {
        const info = (await (await send(second, 'GET', '/v1/catalogs/kept', undefined, {})).json()) as object;
        expect(info).toMatchObject({ rows: 300, dim: DIM, weighted: true, idType: 'string' });
        const after = await (await send(second, 'POST', '/v1/catalogs/kept/score', request, {})).text();
        expect(after).toBe(before);
        expect((await send(second, 'DELETE', '/v1/catalogs/kept', undefined, {})).status).toBe(204);
      } finally {
        await second.close();
      }
      const third = await startServer({ config, logger: captureLogger([]) });
      await expectProblem(await send(third, 'GET', '/v1/catalogs/kept', undefined, {}), 404);
      await third.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('server settings', () => {
  it('non-loopback host needs keys', () => {
    expect(() => resolveServerConfig({ host: '0.0.0.0' }, {})).toThrow(/without API keys/);
    expect(resolveServerConfig({ host: '0.0.0.0', allowUnauthenticated: true }, {}).host).toBe('0.0.0.0');
    expect(resolveServerConfig({}, { ATTNSCORE_HOST: '0.0.0.0', ATTNSCORE_API_KEYS: 'a, b' }).apiKeys).toEqual(['a', 'b']);
  });

  it('environment variables are validated', () => {
    const config = resolveServerConfig({}, {
      ATTNSCORE_PORT: '9000',
      ATTNSCORE_BODY_LIMIT: '1024',
      ATTNSCORE_THREADS: '3',
      ATTNSCORE_QUEUE_LIMIT: '5',
      ATTNSCORE_TIMEOUT_MS: '250',
    });
    expect(config).toMatchObject({ port: 9000, bodyLimit: 1024, threads: 3, concurrency: 3, queueLimit: 5, timeoutMs: 250 });
    expect(() => resolveServerConfig({}, { ATTNSCORE_PORT: 'eighty' })).toThrow(/ATTNSCORE_PORT/);
    expect(() => resolveServerConfig({}, { ATTNSCORE_PORT: '70000' })).toThrow(/port/);
  });
});
