/**
 * Merging shard outputs: the files of `attnscore score --shard I/N` runs, each with its
 * `<output>.manifest.json`, joined into the file that one run over every user writes.
 */
import { canonicalPath } from '../io/paths.js';
import { access } from 'node:fs/promises';
import path from 'node:path';

import { AtomicFile, STDOUT_PATH, type AtomicFileOptions } from '../io/atomic.js';
import { CSV_HEADER, type ResultFormat } from '../io/writers.js';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { appendResultFile, HashingOutput } from './concat.js';
import {
  compareIdentity,
  readManifest,
  type OutputManifest,
  type OutputRecord,
} from './manifest.js';
import { outputManifestPath } from './parts.js';

/** The summary of a {@link mergeShardOutputs} call. */
export interface MergeSummary {
  /** Shard outputs joined. */
  readonly shards: number;
  /** Users in the merged output. */
  readonly users: number;
  readonly format: ResultFormat;
  /** The size and sha256 of the merged output. */
  readonly output: OutputRecord;
}

/**
 * Joins shard outputs, given in any order, into `out` (`-` for standard output) through an
 * {@link AtomicFile}. Every output needs its manifest, and the manifests must agree on the
 * inputs, the parameters, the output format, the shard count and the user count, with each
 * shard present exactly once. Each output is checked against the size and sha256 in its
 * manifest while it is copied, and the CSV header is written once. Throws an
 * {@link AttnScoreError} naming the file and field at fault, with `out` left as it was.
 */
export async function mergeShardOutputs(
  out: string,
  inputs: readonly string[],
  options: AtomicFileOptions = {},
): Promise<MergeSummary> {
  if (inputs.length === 0) throw new AttnScoreError('INVALID_PARAMETER', messages.mergeNoInputs());
  const shards = await readShardManifests(inputs);
  checkOutputPath(out, inputs, shards[0].manifest.outputFormat);
  const ordered = orderShards(shards);
  const first = ordered[0].manifest;
  const format = first.outputFormat;

  const file = await AtomicFile.open(out, options);
  const output = new HashingOutput(file);
  let record: OutputRecord;
  try {
    if (format === 'csv') await output.write(CSV_HEADER);
    for (const shard of ordered) {
      await appendResultFile(output, shard.path, format, shard.manifest.output, (detail) => {
        const message = messages.shardOutputChanged(shard.path, detail);
        return new AttnScoreError('INVALID_INPUT', message);
      });
    }
    record = output.finish();
    await file.commit();
  } catch (error) {
    await file.abort();
    throw error;
  }
  return { shards: ordered.length, users: first.totalUsers, format, output: record };
}

/** A shard output with its manifest. */
interface ShardOutput {
  readonly path: string;
  readonly manifest: OutputManifest;
}

async function readShardManifests(inputs: readonly string[]): Promise<ShardOutput[]> {
  const shards: ShardOutput[] = [];
  for (const input of inputs) {
    const manifestPath = outputManifestPath(input);
    const found = await access(manifestPath).then(
      () => true,
      () => false,
    );
    if (!found) {
      throw new AttnScoreError('INVALID_INPUT', messages.shardManifestMissing(input, manifestPath));
    }
    shards.push({ path: input, manifest: await readManifest(manifestPath, 'output') });
  }
  const [first, ...rest] = shards;
  for (const shard of rest) {
    const difference = compareIdentity(first.manifest, shard.manifest, { ignoreShardIndex: true });
    if (difference !== undefined) {
      const { field, expected, actual } = difference;
      const message = messages.mergeMismatch(field, first.path, expected, shard.path, actual);
      throw new AttnScoreError('INVALID_INPUT', message);
    }
  }
  return shards;
}

/** Orders the shards by index, rejecting a shard given twice or missing. */
function orderShards(shards: readonly ShardOutput[]): ShardOutput[] {
  const count = shards[0].manifest.shard.count;
  const byIndex = new Map<number, ShardOutput>();
  for (const shard of shards) {
    const index = shard.manifest.shard.index;
    const earlier = byIndex.get(index);
    if (earlier !== undefined) {
      const message = messages.mergeDuplicateShard(index, count, earlier.path, shard.path);
      throw new AttnScoreError('INVALID_INPUT', message);
    }
    byIndex.set(index, shard);
  }
  const missing: number[] = [];
  for (let index = 0; index < count; index++) if (!byIndex.has(index)) missing.push(index);
  if (missing.length > 0) {
    throw new AttnScoreError('INVALID_INPUT', messages.mergeMissingShards(missing, count));
  }
  return Array.from({ length: count }, (_, index) => byIndex.get(index) as ShardOutput);
}

/**
 * Rejects an output path that is one of the inputs, which the final rename would replace, and
 * an extension that names the other format.
 */
function checkOutputPath(out: string, inputs: readonly string[], format: ResultFormat): void {
  if (out === STDOUT_PATH) return;
  const target = canonicalPath(out);
  for (const input of inputs) {
    const inputPaths = [canonicalPath(input), canonicalPath(outputManifestPath(input))];
    if (inputPaths.includes(target)) {
      throw new AttnScoreError('INVALID_PARAMETER', messages.mergeOutputIsInput(out));
    }
  }
  const extension = path.extname(out).toLowerCase();
  let named: ResultFormat | undefined;
  if (extension === '.csv') named = 'csv';
  if (extension === '.jsonl' || extension === '.ndjson') named = 'jsonl';
  if (named !== undefined && named !== format) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.mergeFormatMismatch(out, named, format));
  }
}
