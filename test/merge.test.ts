/**
 * Merging shard outputs: the merged bytes equal one run's output, and shards of another run,
 * missing or duplicate shards, and changed shard files are rejected.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { registerMergeCommand } from '../src/cli/merge.js';
import { AtomicFile } from '../src/io/atomic.js';
import { createCsvWriter, createJsonlWriter, type ResultFormat } from '../src/io/writers.js';
import { buildRunIdentity, scoringParameters } from '../src/run/manifest.js';
import { mergeShardOutputs } from '../src/run/merge.js';
import { outputManifestPath, PartsRun } from '../src/run/parts.js';
import { shardOutputPath, shardRange } from '../src/run/shard.js';
import { isInputError } from '../src/scoring/errors.js';
import { defaultParams } from '../src/scoring/params.js';
import type { RowId, UserResult } from '../src/scoring/types.js';
import { random } from './helpers/data.js';
import { rejection } from './helpers/errors.js';

const USERS = 23;
const SHARDS = 3;

let root: string;
let dir: string;
let caseCount = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'attnscore-merge-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = path.join(root, `case${caseCount++}`);
  await mkdir(dir);
  await writeFile(path.join(dir, 'users.jsonl'), '{"id": "u", "vector": [1, 2]}\n');
  await writeFile(path.join(dir, 'other-users.jsonl'), '{"id": "v", "vector": [1, 2]}\n');
  await writeFile(path.join(dir, 'contents.jsonl'), '{"id": "c", "vector": [2, 1]}\n');
});

/** Returns a number id, an id that CSV must quote, or a plain string id. */
function userId(row: number): RowId {
  if (row % 5 === 0) return row;
  if (row % 7 === 1) return `user "${row}", x`;
  return `user-${row}`;
}

/** Deterministic results with ids that CSV must quote and users with an empty top list. */
function makeResults(count: number, seed: number): UserResult[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, row) => {
    const user = userId(row);
    const length = row % 9 === 4 ? 0 : 1 + (row % 4);
    const top = Array.from({ length }, (_, rank) => ({
      content: rank % 2 === 0 ? `c${rank}\n${row}` : rank,
      score: Math.fround(1 - rank * 0.1 - next() * 0.01),
    }));
    return { user, cx: 100 * next() + row, loyalty: next(), top };
  });
}

/** Writes `results` with one writer over one atomic file, as a single run does. */
async function writeSingleRun(file: string, format: ResultFormat, results: UserResult[]) {
  const atomic = await AtomicFile.open(file);
  const writer = format === 'csv' ? createCsvWriter(atomic) : createJsonlWriter(atomic);
  await writer.writeBatch(results);
  await writer.finish();
  return readFile(file);
}

interface ShardRunOptions {
  readonly users?: string;
  readonly alpha?: number;
  readonly count?: number;
}

/** Runs shard `index` through the parts pipeline and returns its output path. */
async function runShard(
  out: string,
  format: ResultFormat,
  index: number,
  results: UserResult[],
  options: ShardRunOptions = {},
): Promise<string> {
  const shard = { index, count: options.count ?? SHARDS };
  const identity = await buildRunIdentity({
    inputs: {
      users: path.join(dir, options.users ?? 'users.jsonl'),
      contents: path.join(dir, 'contents.jsonl'),
    },
    parameters: scoringParameters({ ...defaultParams, alpha: options.alpha ?? 2, k: 4 }),
    outputFormat: format,
    shard,
    totalUsers: results.length,
  });
  const shardOut = shardOutputPath(out, shard);
  const run = await PartsRun.open(shardOut, identity, { blockUsers: 2, partUsers: 3 });
  const { start, end } = shardRange(shard.index, shard.count, results.length);
  for (let user = start; user < end; user += 2) {
    await run.append(user, results.slice(user, Math.min(user + 2, end)));
  }
  await run.assemble({ outputManifest: true });
  return shardOut;
}

describe('mergeShardOutputs', () => {
  for (const format of ['jsonl', 'csv'] as const) {
    it(`merges three ${format} shards into one run's bytes`, async () => {
      const results = makeResults(USERS, 11);
      const expected = await writeSingleRun(path.join(dir, `single.${format}`), format, results);
      const out = path.join(dir, `scores.${format}`);
      const shards: string[] = [];
      for (let index = 0; index < SHARDS; index++) {
        shards.push(await runShard(out, format, index, results));
      }
      // Shell globs and schedulers may list shards in any order.
      const summary = await mergeShardOutputs(out, [shards[2], shards[0], shards[1]]);
      expect(await readFile(out)).toEqual(expected);
      expect(summary).toMatchObject({ shards: 3, users: USERS, format });
      expect(summary.output.bytes).toBe(expected.length);
    });
  }

  it('merges empty shards when shards outnumber users', async () => {
    const results = makeResults(2, 12);
    const expected = await writeSingleRun(path.join(dir, 'single.csv'), 'csv', results);
    const out = path.join(dir, 'scores.csv');
    const shards: string[] = [];
    for (let index = 0; index < 4; index++) {
      shards.push(await runShard(out, 'csv', index, results, { count: 4 }));
    }
    await mergeShardOutputs(out, shards);
    expect(await readFile(out)).toEqual(expected);
  });

  it('rejects shards of different inputs', async () => {
    const results = makeResults(USERS, 13);
    const out = path.join(dir, 'scores.jsonl');
    const first = await runShard(out, 'jsonl', 0, results);
    const second = await runShard(out, 'jsonl', 1, results, { users: 'other-users.jsonl' });
    const third = await runShard(out, 'jsonl', 2, results);
    const error = await rejection(mergeShardOutputs(out, [first, second, third]));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(
      new RegExp(
        `^shard outputs differ in inputs\\.users\\.sha256: ${first} has "[0-9a-f]{64}" ` +
          `but ${second} has "[0-9a-f]{64}"; merge only the shards of one run$`,
      ),
    );
    await expect(stat(out)).rejects.toThrow();
  });

  it('rejects shards of different parameters', async () => {
    const results = makeResults(USERS, 14);
    const out = path.join(dir, 'scores.jsonl');
    const first = await runShard(out, 'jsonl', 0, results);
    const second = await runShard(out, 'jsonl', 1, results, { alpha: 3 });
    const error = await rejection(mergeShardOutputs(out, [first, second]));
    expect(error.message).toBe(
      `shard outputs differ in parameters.alpha: ${first} has 2 but ${second} has 3; ` +
        'merge only the shards of one run',
    );
  });

  it('rejects a missing shard', async () => {
    const results = makeResults(USERS, 15);
    const out = path.join(dir, 'scores.jsonl');
    const first = await runShard(out, 'jsonl', 0, results);
    const third = await runShard(out, 'jsonl', 2, results);
    const error = await rejection(mergeShardOutputs(out, [first, third]));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe('shard 1/3 is missing; give all 3 shard outputs');
    await expect(stat(out)).rejects.toThrow();
  });

  it('rejects a duplicate shard', async () => {
    const results = makeResults(USERS, 16);
    const out = path.join(dir, 'scores.jsonl');
    const first = await runShard(out, 'jsonl', 0, results);
    const error = await rejection(mergeShardOutputs(out, [first, first]));
    expect(error.message).toBe(
      `${first} and ${first} are both shard 0/3; give each shard once`,
    );
  });

  it('rejects an output without its manifest', async () => {
    const loose = path.join(dir, 'loose.jsonl');
    await writeFile(loose, '');
    const error = await rejection(mergeShardOutputs(path.join(dir, 'out.jsonl'), [loose]));
    expect(error.message).toBe(
      `${loose} has no manifest ${outputManifestPath(loose)}; merge takes the outputs of ` +
        'attnscore score --shard runs, each with the manifest that the run writes beside it',
    );
  });

  it('rejects a shard output changed after its run', async () => {
    const results = makeResults(USERS, 17);
    const out = path.join(dir, 'scores.jsonl');
    const shards: string[] = [];
    for (let index = 0; index < SHARDS; index++) {
      shards.push(await runShard(out, 'jsonl', index, results));
    }
    const text = await readFile(shards[1], 'utf8');
    await writeFile(shards[1], text.replace('"cx":', '"cx": '));
    const error = await rejection(mergeShardOutputs(out, shards));
    expect(error.message).toBe(
      `shard output ${shards[1]} has ${text.length + 1} bytes but its manifest records ` +
        `${text.length}; it changed after its run finished, so run that shard again`,
    );
    await expect(stat(out)).rejects.toThrow();
  });

  it('rejects an output path among the inputs or of the other format', async () => {
    const results = makeResults(USERS, 18);
    const out = path.join(dir, 'scores.jsonl');
    const shards: string[] = [];
    for (let index = 0; index < SHARDS; index++) {
      shards.push(await runShard(out, 'jsonl', index, results));
    }
    const same = await rejection(mergeShardOutputs(shards[0], shards));
    expect(same.code).toBe('INVALID_PARAMETER');
    const csv = await rejection(mergeShardOutputs(path.join(dir, 'scores.csv'), shards));
    expect(csv.message).toBe(
      `--out ${path.join(dir, 'scores.csv')} names csv output but the shards contain jsonl; ` +
        'give an --out path with the .jsonl extension',
    );
  });
});

describe('attnscore merge', () => {
  function program(): Command {
    const command = new Command('attnscore').exitOverride();
    command.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerMergeCommand(command);
    return command;
  }

  it('merges the shards given as arguments', async () => {
    const results = makeResults(USERS, 19);
    const expected = await writeSingleRun(path.join(dir, 'single.jsonl'), 'jsonl', results);
    const out = path.join(dir, 'scores.jsonl');
    const shards: string[] = [];
    for (let index = 0; index < SHARDS; index++) {
      shards.push(await runShard(out, 'jsonl', index, results));
    }
    await program().parseAsync(['merge', '--quiet', '--out', out, ...shards], { from: 'user' });
    expect(await readFile(out)).toEqual(expected);
  });

  it('raises an input error for a missing shard', async () => {
    const results = makeResults(USERS, 20);
    const out = path.join(dir, 'scores.jsonl');
    const first = await runShard(out, 'jsonl', 0, results);
    const run = program().parseAsync(['merge', '--out', out, first], { from: 'user' });
    const error = await rejection(run);
    // main() prints input errors and exits with status 2.
    expect(isInputError(error)).toBe(true);
    expect(error.message).toBe('shards 1/3, 2/3 are missing; give all 3 shard outputs');
  });
});
