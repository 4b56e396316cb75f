/**
 * Resumable output: part files, the run manifest, resuming, and assembling parts into the bytes
 * that one uninterrupted writer produces.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { AtomicFile } from '../src/io/atomic.js';
import { createCsvWriter, createJsonlWriter, type ResultFormat } from '../src/io/writers.js';
import {
  buildRunIdentity,
  compareIdentity,
  readManifest,
  scoringParameters,
  type RunIdentity,
} from '../src/run/manifest.js';
import {
  outputManifestPath,
  partFileName,
  partsFolder,
  PartsRun,
  writeOutputManifest,
} from '../src/run/parts.js';
import { defaultParams } from '../src/scoring/params.js';
import type { RowId, UserResult } from '../src/scoring/types.js';
import { random } from './helpers/data.js';
import { rejection } from './helpers/errors.js';

let root: string;
let dir: string;
let caseCount = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'attnscore-parts-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = path.join(root, `case${caseCount++}`);
  await mkdir(dir);
});

/** Returns a number id, an id that CSV must quote, or a plain string id. */
function userId(row: number): RowId {
  if (row % 5 === 0) return row;
  if (row % 7 === 1) return `user "${row}", x`;
  return `user-${row}`;
}

/**
 * Deterministic results with the cases that formatting must get right: string and number ids,
 * ids that CSV must quote, and users with an empty top list.
 */
function makeResults(count: number, seed: number): UserResult[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, row) => {
    const user = userId(row);
    const length = row % 9 === 4 ? 0 : 1 + (row % 4);
    const top = Array.from({ length }, (_, rank) => ({
      content: rank % 2 === 0 ? `c${rank},${row}` : rank,
      score: Math.fround(1 - rank * 0.1 - next() * 0.01),
    }));
    return { user, cx: 100 * next() + row, loyalty: next(), top };
  });
}

/** Writes `results` with one writer over one atomic file, as an uninterrupted run does. */
async function writeExpected(file: string, format: ResultFormat, results: UserResult[]) {
  const atomic = await AtomicFile.open(file);
  const writer = format === 'csv' ? createCsvWriter(atomic) : createJsonlWriter(atomic);
  for (let start = 0; start < results.length; start += 4) {
    await writer.writeBatch(results.slice(start, start + 4));
  }
  await writer.finish();
  return readFile(file);
}

/** Writes the users and contents inputs of a run and returns their identity. */
async function identity(
  format: ResultFormat,
  options: { totalUsers?: number; alpha?: number; shard?: { index: number; count: number } } = {},
): Promise<RunIdentity> {
  const users = path.join(dir, 'users.jsonl');
  const contents = path.join(dir, 'contents.jsonl');
  await stat(users).catch(() => writeFile(users, '{"id": "u", "vector": [1, 2]}\n'));
  await stat(contents).catch(() => writeFile(contents, '{"id": "c", "vector": [2, 1]}\n'));
  return buildRunIdentity({
    inputs: { users, contents, weights: undefined },
    parameters: scoringParameters(
      { ...defaultParams, alpha: options.alpha ?? 1.5 },
      { backend: 'wasm' },
    ),
    outputFormat: format,
    shard: options.shard,
    totalUsers: options.totalUsers ?? 23,
  });
}

/** Appends `results` from user `from` to `to` in blocks of `block` users. */
async function appendRange(
  run: PartsRun,
  results: UserResult[],
  from: number,
  to: number,
  block: number,
): Promise<void> {
  for (let start = from; start < to; start += block) {
    await run.append(start, results.slice(start, Math.min(start + block, to)));
  }
}

describe('buildRunIdentity', () => {
  it('hashes each input file whole', async () => {
    const run = await identity('jsonl');
    expect(run.inputs.users.bytes).toBe(30);
    // The file's sha256 as `sha256sum` prints it.
    expect(run.inputs.users.sha256).toBe(
      '3ab42cf112b40f711822c8e64264dfbafe0fe26b2b6879ee8d8e7ebc7c617619',
    );
    expect(Object.keys(run.inputs)).toEqual(['users', 'contents']);
    expect(run.parameters.minScore).toBeNull();
    expect(run.shard).toEqual({ index: 0, count: 1 });
  });

  it('compares inputs by content, not path', async () => {
    const first = await identity('jsonl');
    const moved = {
      ...first,
      inputs: { ...first.inputs, users: { ...first.inputs.users, path: '/elsewhere/users.jsonl' } },
    };
    expect(compareIdentity(first, moved)).toBeUndefined();
  });
});

describe('PartsRun', () => {
  for (const format of ['jsonl', 'csv'] as const) {
    it(`assembles ${format} parts into the single-writer bytes`, async () => {
      const results = makeResults(23, 1);
      const expected = await writeExpected(path.join(dir, `expected.${format}`), format, results);
      const out = path.join(dir, `scores.${format}`);
      const run = await PartsRun.open(out, await identity(format), { blockUsers: 3, partUsers: 6 });
      expect(run.resumed).toBe(false);
      expect(run.pending()).toEqual([{ start: 0, end: 23 }]);
      await appendRange(run, results, 0, 23, 3);
      // Parts close at 6 users or more, so 23 users in blocks of 3 make parts of 6, 6, 6, 5.
      expect(run.manifest.parts.map((part) => part.count)).toEqual([6, 6, 6]);
      const record = await run.assemble();
      expect(await readFile(out)).toEqual(expected);
      expect(record.bytes).toBe(expected.length);
      await expect(stat(partsFolder(out))).rejects.toThrow();
      await expect(stat(outputManifestPath(out))).rejects.toThrow();
    });
  }

  it('resumes after a stop and gives the same bytes', async () => {
    const results = makeResults(23, 2);
    const expected = await writeExpected(path.join(dir, 'expected.csv'), 'csv', results);
    const out = path.join(dir, 'scores.csv');
    const options = { blockUsers: 4, partUsers: 8 };

    const first = await PartsRun.open(out, await identity('csv'), options);
    await appendRange(first, results, 0, 14, 4);
    // A stop here loses the open part (users 8 to 13), which was never committed.
    expect(first.manifest.parts).toHaveLength(1);
    await first.abort();

    const second = await PartsRun.open(out, await identity('csv'), options);
    expect(second.resumed).toBe(true);
    expect(second.pending()).toEqual([{ start: 8, end: 23 }]);
    expect(second.pendingUsers()).toBe(15);
    await appendRange(second, results, 8, 23, 4);
    await second.assemble();
    expect(await readFile(out)).toEqual(expected);
  });

  it('leaves a part complete or absent', async () => {
    const results = makeResults(10, 3);
    const out = path.join(dir, 'scores.jsonl');
    const run = await PartsRun.open(out, await identity('jsonl', { totalUsers: 10 }), {
      blockUsers: 2,
      partUsers: 4,
    });
    const folder = partsFolder(out);
    await run.append(0, results.slice(0, 2));
    // The open part is only a temporary file: no part-000000.jsonl exists yet.
    const during = await readdir(folder);
    expect(during).not.toContain(partFileName(0, 'jsonl'));
    expect(during.some((name) => name.startsWith('.part-000000.jsonl.tmp-'))).toBe(true);

    await run.append(2, results.slice(2, 4));
    const after = await readdir(folder);
    expect(after).toContain(partFileName(0, 'jsonl'));
    expect(after.filter((name) => name.includes('.tmp-'))).toEqual([]);
    const manifest = await readManifest(path.join(folder, 'manifest.json'), 'parts');
    const part = manifest.parts[0];
    const bytes = await readFile(path.join(folder, partFileName(0, 'jsonl')));
    expect(part).toMatchObject({ index: 0, start: 0, count: 4, bytes: bytes.length });

    // A process killed mid-part leaves a temporary file, which the next open removes.
    await run.append(4, results.slice(4, 6));
    const resumed = await PartsRun.open(out, await identity('jsonl', { totalUsers: 10 }), {
      blockUsers: 2,
    });
    expect((await readdir(folder)).filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(resumed.pending()).toEqual([{ start: 4, end: 10 }]);
    // Closes the abandoned part's file handle, whose file the open above already removed.
    await run.abort();
  });

  it('rejects a resume with a changed input', async () => {
    const out = path.join(dir, 'scores.jsonl');
    const run = await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4, partUsers: 4 });
    await appendRange(run, makeResults(23, 4), 0, 8, 4);
    await writeFile(path.join(dir, 'users.jsonl'), '{"id": "u", "vector": [1, 3]}\n');
    const changed = await identity('jsonl');
    const error = await rejection(PartsRun.open(out, changed, { blockUsers: 4 }));
    expect(error.code).toBe('INVALID_PARAMETER');
    const folder = partsFolder(out);
    expect(error.message).toMatch(
      new RegExp(
        `^${folder} contains a run with inputs\\.users\\.sha256 "[0-9a-f]{64}", ` +
          'but this run has "[0-9a-f]{64}"; ',
      ),
    );
    expect(error.message).toContain(`or remove ${folder} to start over`);
  });

  it('rejects a resume with a changed parameter', async () => {
    const out = path.join(dir, 'scores.jsonl');
    await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    const error = await rejection(
      PartsRun.open(out, await identity('jsonl', { alpha: 2 }), { blockUsers: 4 }),
    );
    expect(error.message).toMatch(
      /contains a run with parameters\.alpha 1\.5, but this run has 2; rerun with the same/,
    );
  });

  it('rejects a resume with a changed format or shard', async () => {
    const out = path.join(dir, 'scores.out');
    await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    const format = await rejection(PartsRun.open(out, await identity('csv'), { blockUsers: 4 }));
    expect(format.message).toContain(
      'contains a run with outputFormat "jsonl", but this run has "csv"',
    );
    const shard = { index: 1, count: 2 };
    const shardIdentity = await identity('jsonl', { shard });
    const sharded = await rejection(PartsRun.open(out, shardIdentity, { blockUsers: 4 }));
    expect(sharded.message).toContain('contains a run with shard.count 1, but this run has 2');
  });

  it('accepts a resume with another block size', async () => {
    const out = path.join(dir, 'scores.jsonl');
    await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    const run = await PartsRun.open(out, await identity('jsonl'), { blockUsers: 100 });
    expect(run.manifest.blockUsers).toBe(100);
  });

  it('rejects a part whose bytes changed', async () => {
    const results = makeResults(23, 5);
    const out = path.join(dir, 'scores.jsonl');
    const run = await PartsRun.open(out, await identity('jsonl'), { blockUsers: 23 });
    await run.append(0, results);
    await run.flush();
    const partPath = path.join(partsFolder(out), partFileName(0, 'jsonl'));
    const bytes = await readFile(partPath);
    bytes[10] ^= 1;
    await writeFile(partPath, bytes);
    const error = await rejection(run.assemble());
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(
      new RegExp(
        `^part file ${partPath} has sha256 [0-9a-f]{64} but its manifest records [0-9a-f]{64}; `,
      ),
    );
    await expect(stat(out)).rejects.toThrow();

    await writeFile(partPath, bytes.subarray(1));
    const reopen = await rejection(PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 }));
    expect(reopen.message).toBe(
      `part file ${partPath} has ${bytes.length - 1} bytes but its manifest records ` +
        `${bytes.length}; it changed after it was written. ` +
        `Remove ${partsFolder(out)} to score every user again`,
    );
  });

  it('rejects assembling with users pending', async () => {
    const out = path.join(dir, 'scores.jsonl');
    const run = await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    await appendRange(run, makeResults(23, 6), 0, 8, 4);
    await appendRange(run, makeResults(23, 6), 12, 23, 4);
    const error = await rejection(run.assemble());
    expect(error.message).toBe(
      `cannot assemble ${out}: 4 users are not scored yet, the first from 8 to 11`,
    );
  });

  it('fills a gap out of order', async () => {
    const results = makeResults(23, 7);
    const expected = await writeExpected(path.join(dir, 'expected.jsonl'), 'jsonl', results);
    const out = path.join(dir, 'scores.jsonl');
    const run = await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    await appendRange(run, results, 12, 23, 4);
    await appendRange(run, results, 0, 12, 4);
    expect(run.manifest.parts.map((part) => part.start)).toEqual([12]);
    await run.assemble();
    expect(await readFile(out)).toEqual(expected);
  });

  it('rejects users outside the shard or already recorded', async () => {
    const out = path.join(dir, 'scores.jsonl');
    const shard = { index: 1, count: 3 };
    const run = await PartsRun.open(out, await identity('jsonl', { shard, totalUsers: 10 }), {
      blockUsers: 2,
      partUsers: 2,
    });
    expect(run.manifest.users).toEqual({ start: 3, end: 6 });
    const results = makeResults(10, 8);
    expect((await rejection(run.append(1, results.slice(1, 3)))).code).toBe('INTERNAL');
    await run.append(3, results.slice(3, 5));
    const again = await rejection(run.append(4, results.slice(4, 5)));
    expect(again.message).toBe(
      "cannot record users 4 to 4: they are outside this run's users 3 to 5 " +
        'or already in a recorded part',
    );
  });

  it('writes the output manifest of a shard', async () => {
    const results = makeResults(10, 9);
    const out = path.join(dir, 'scores.jsonl');
    const shard = { index: 2, count: 3 };
    const runIdentity = await identity('jsonl', { shard, totalUsers: 10 });
    const run = await PartsRun.open(out, runIdentity, { blockUsers: 2 });
    await appendRange(run, results, 6, 10, 2);
    const record = await run.assemble({ outputManifest: true });
    const manifest = await readManifest(outputManifestPath(out), 'output');
    expect(manifest.output).toEqual(record);
    expect(manifest.shard).toEqual(shard);
    expect(manifest.users).toEqual({ start: 6, end: 10 });
    expect(compareIdentity(runIdentity, manifest)).toBeUndefined();

    const rewritten = await writeOutputManifest(out, runIdentity, 2);
    expect(rewritten.output).toEqual(record);
  });

  it('rejects standard output', async () => {
    const error = await rejection(PartsRun.open('-', await identity('jsonl'), { blockUsers: 4 }));
    expect(error.message).toBe(
      'a resumable run needs an output file; standard output (-) cannot be resumed',
    );
  });

  it('rejects a damaged manifest naming the field', async () => {
    const out = path.join(dir, 'scores.jsonl');
    await PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 });
    const manifestPath = path.join(partsFolder(out), 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    manifest.inputs.users.sha256 = 'abc';
    await writeFile(manifestPath, JSON.stringify(manifest));
    const error = await rejection(PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 }));
    expect(error.message).toBe(
      `${manifestPath} is not a valid attnscore run manifest: ` +
        'field "inputs.users.sha256" is missing or invalid',
    );

    await writeFile(manifestPath, '{"format": "attnscore-run-manifest", "version": 2}');
    const version = await rejection(PartsRun.open(out, await identity('jsonl'), { blockUsers: 4 }));
    expect(version.message).toBe(
      `${manifestPath} is not a valid attnscore run manifest: ` +
        'field "version" is 2 but this version reads 1',
    );
  });
});
