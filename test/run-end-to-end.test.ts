/**
 * The nightly pipeline with the real engine: users streamed by shard, scored block by block,
 * written as parts, assembled and merged, against one whole run of the same engine.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { score } from '../src/index.js';
import { openResultWriter, type ResultFormat } from '../src/io/writers.js';
import { countRows, openUserBlocks } from '../src/io/stream.js';
import { buildRunIdentity, scoringParameters } from '../src/run/manifest.js';
import { mergeShardOutputs } from '../src/run/merge.js';
import { PartsRun } from '../src/run/parts.js';
import { shardOutputPath } from '../src/run/shard.js';
import { resolveParams } from '../src/scoring/params.js';
import { randomMatrix } from './helpers/data.js';
import { encodeNpy } from './helpers/npy.js';

const USERS = 37;
const CONTENTS = 50;
const DIM = 8;
const options = { k: 5, alpha: 1.5, beta: 0.01, gamma: -1, backend: 'js' } as const;

let dir: string;
let usersPath: string;
let contentsPath: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attnscore-e2e-'));
  usersPath = path.join(dir, 'users.jsonl');
  contentsPath = path.join(dir, 'contents.npy');
  const users = randomMatrix(USERS, DIM, 21);
  const lines = Array.from({ length: USERS }, (_, row) => {
    const vector = Array.from(users.subarray(row * DIM, (row + 1) * DIM));
    return JSON.stringify({ id: `user-${row}`, vector });
  });
  await writeFile(usersPath, `${lines.join('\n')}\n`);
  await writeFile(contentsPath, encodeNpy(randomMatrix(CONTENTS, DIM, 22), [CONTENTS, DIM]));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Scores every user in one call and writes them with one writer, as `attnscore score` does. */
async function singleRun(out: string, format: ResultFormat): Promise<Buffer> {
  const { results } = await score({ users: usersPath, contents: contentsPath, ...options });
  const writer = await openResultWriter(out, format);
  await writer.writeBatch(results);
  await writer.finish();
  return readFile(out);
}

/** Runs one shard: streams its users, scores each block and records it as parts. */
async function runShard(out: string, format: ResultFormat, index: number, count: number) {
  const totalUsers = await countRows(usersPath);
  const shard = { index, count };
  const identity = await buildRunIdentity({
    inputs: { users: usersPath, contents: contentsPath },
    parameters: scoringParameters(resolveParams(options), { backend: options.backend }),
    outputFormat: format,
    shard,
    totalUsers,
  });
  const shardOut = shardOutputPath(out, shard);
  const run = await PartsRun.open(shardOut, identity, { blockUsers: 4, partUsers: 5 });
  for (const range of run.pending()) {
    const users = await openUserBlocks(usersPath, { blockRows: 4, range });
    for await (const block of users.blocks()) {
      const input = { data: block.data, rows: block.rows, dim: users.dim, ids: block.ids };
      const { results } = await score({ users: input, contents: contentsPath, ...options });
      await run.append(block.start, results);
    }
  }
  await run.assemble({ outputManifest: true });
  return shardOut;
}

describe('sharded scoring', () => {
  for (const format of ['jsonl', 'csv'] as const) {
    it(`merges to the single-run ${format} bytes`, async () => {
      const expected = await singleRun(path.join(dir, `single.${format}`), format);
      const out = path.join(dir, `scores.${format}`);
      const shards: string[] = [];
      for (let index = 0; index < 3; index++) shards.push(await runShard(out, format, index, 3));
      await mergeShardOutputs(out, shards);
      expect(await readFile(out)).toEqual(expected);
    });
  }
});
