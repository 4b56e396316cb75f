/**
 * Resumable output: a long run writes its results as numbered part files in `<out>.parts/`,
 * records each completed part in `<out>.parts/manifest.json`, and joins the parts into `<out>`
 * at the end. A run that is stopped and started again with the same inputs and parameters
 * scores only the users that no recorded part covers.
 */
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

import { AtomicFile, STDOUT_PATH } from '../io/atomic.js';
import { describeFsError, readFailed } from '../io/common.js';
import type { RowRange } from '../io/stream.js';
import {
  createCsvWriter,
  createJsonlWriter,
  CSV_HEADER,
  type ResultWriter,
} from '../io/writers.js';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { UserResult } from '../scoring/types.js';
import { appendResultFile, HashingOutput } from './concat.js';
import {
  compareIdentity,
  createOutputManifest,
  createPartsManifest,
  fingerprintFile,
  identityOf,
  readManifest,
  writeManifest,
  type OutputManifest,
  type OutputRecord,
  type PartRecord,
  type PartsManifest,
  type RunIdentity,
} from './manifest.js';

/** The name of the manifest inside a parts folder. */
export const PARTS_MANIFEST_NAME = 'manifest.json';

/** Seconds after which an open part is committed by default. */
export const DEFAULT_PART_SECONDS = 60;

/** Returns the parts folder of the output `out`: `<out>.parts`. */
export function partsFolder(out: string): string {
  return `${out}.parts`;
}

/** Returns the path of the manifest that describes the finished output `out`. */
export function outputManifestPath(out: string): string {
  return `${out}.manifest.json`;
}

/**
 * Writes `<out>.manifest.json` for an output that a run wrote without parts, hashing `out` as
 * it is now. Call it after the output is committed. Returns the manifest written.
 */
export async function writeOutputManifest(
  out: string,
  identity: RunIdentity,
  blockUsers: number,
): Promise<OutputManifest> {
  const { bytes, sha256 } = await fingerprintFile(out);
  const manifest = createOutputManifest(identity, blockUsers, { bytes, sha256 });
  await writeManifest(outputManifestPath(out), manifest);
  return manifest;
}

/** Returns the file name of part `index`, such as `part-000007.jsonl`. */
export function partFileName(index: number, format: 'jsonl' | 'csv'): string {
  return `part-${String(index).padStart(6, '0')}.${format}`;
}

/** Options for {@link PartsRun.open}. */
export interface PartsRunOptions {
  /** Users per scoring block, recorded in the manifest. */
  readonly blockUsers: number;
  /** Commit the open part once it has at least this many users. No limit by default. */
  readonly partUsers?: number;
  /**
   * Commit the open part once it has been open this long, in seconds, which bounds the work
   * that a stop can lose. {@link DEFAULT_PART_SECONDS} by default.
   */
  readonly partSeconds?: number;
}

/** Options for {@link PartsRun.assemble}. */
export interface AssembleOptions {
  /**
   * Also write `<out>.manifest.json`, which `attnscore merge` needs to accept `out` as a shard
   * output. Off by default.
   */
  readonly outputManifest?: boolean;
}

/** The part being written: its writer, first user and size so far. */
interface OpenPart {
  readonly index: number;
  readonly path: string;
  readonly writer: ResultWriter;
  readonly start: number;
  count: number;
  readonly openedAt: number;
}

/**
 * A resumable run's output. Callers pass results in blocks to {@link append}, in any order of
 * ranges but awaiting each call before the next, and call {@link assemble} once
 * {@link pending} is empty.
 *
 * NOTE: two processes must not use one parts folder at once. Nothing locks it, and each
 * process removes the other's temporary files when it opens the folder.
 */
export class PartsRun {
  private current: OpenPart | undefined;

  private constructor(
    /** The final output path. */
    readonly out: string,
    /** The parts folder, `<out>.parts`. */
    readonly folder: string,
    private state: PartsManifest,
    /** True when the folder held parts of an earlier run with the same identity. */
    readonly resumed: boolean,
    private readonly partUsers: number,
    private readonly partSeconds: number,
  ) {}

  /**
   * Opens the parts folder of `out`, creating it and its manifest, or loading them when they
   * exist. An existing manifest must describe the same run: otherwise this throws
   * `INVALID_PARAMETER` naming the first field that differs and both values. Every recorded
   * part must exist with its recorded size, and temporary files left by a stopped run are
   * removed. Throws `INVALID_PARAMETER` for `out` = `-`, because standard output cannot be
   * resumed.
   */
  static async open(
    out: string,
    identity: RunIdentity,
    options: PartsRunOptions,
  ): Promise<PartsRun> {
    if (out === STDOUT_PATH) {
      throw new AttnScoreError('INVALID_PARAMETER', messages.partsNeedFile());
    }
    const partUsers = options.partUsers ?? Infinity;
    const partSeconds = options.partSeconds ?? DEFAULT_PART_SECONDS;
    checkOptions(options.blockUsers, partUsers, partSeconds);

    const folder = partsFolder(out);
    try {
      await mkdir(folder, { recursive: true });
    } catch (error) {
      const message = messages.writeFailed(folder, describeFsError(error));
      throw new AttnScoreError('WRITE_FAILED', message, { cause: error });
    }
    const manifestPath = path.join(folder, PARTS_MANIFEST_NAME);
    await removeTemporaryFiles(folder);
    await removeLeftovers(out);

    const exists = await stat(manifestPath).then(
      () => true,
      () => false,
    );
    if (!exists) {
      const manifest = createPartsManifest(identity, options.blockUsers);
      await writeManifest(manifestPath, manifest);
      return new PartsRun(out, folder, manifest, false, partUsers, partSeconds);
    }

    const previous = await readManifest(manifestPath, 'parts');
    const difference = compareIdentity(identityOf(previous), identity);
    if (difference !== undefined) {
      const { field, expected, actual } = difference;
      throw new AttnScoreError(
        'INVALID_PARAMETER',
        messages.resumeMismatch(folder, field, expected, actual),
      );
    }
    await checkParts(folder, previous);
    // The block size may change between tries, because results do not depend on it.
    const manifest = { ...previous, blockUsers: options.blockUsers };
    return new PartsRun(out, folder, manifest, previous.parts.length > 0, partUsers, partSeconds);
  }

  /** The manifest as last written. */
  get manifest(): PartsManifest {
    return this.state;
  }

  /**
   * Returns the ranges of users that no recorded part covers, in order. The part still open
   * in {@link append} does not count as recorded.
   */
  pending(): RowRange[] {
    const ranges: RowRange[] = [];
    let next = this.state.users.start;
    for (const part of sortedParts(this.state.parts)) {
      if (part.start > next) ranges.push({ start: next, end: part.start });
      next = Math.max(next, part.start + part.count);
    }
    if (next < this.state.users.end) ranges.push({ start: next, end: this.state.users.end });
    return ranges;
  }

  /** Returns the number of users that no recorded part covers. */
  pendingUsers(): number {
    return this.pending().reduce((sum, range) => sum + range.end - range.start, 0);
  }

  /**
   * Writes the results of users `start` .. `start + results.length - 1` to the open part, and
   * commits it when it reaches the part size or age. Results that do not continue the open
   * part commit it first and start a new one. Throws `INTERNAL` for users outside this run's
   * range or already in a recorded part.
   */
  async append(start: number, results: readonly UserResult[]): Promise<void> {
    if (results.length === 0) return;
    const end = start + results.length;
    if (this.current !== undefined && this.current.start + this.current.count !== start) {
      await this.flush();
    }
    this.checkFree(start, end);
    this.current ??= await this.openPart(start);
    const part = this.current;
    await part.writer.writeBatch(results);
    part.count += results.length;
    const ageSeconds = (performance.now() - part.openedAt) / 1000;
    if (part.count >= this.partUsers || ageSeconds >= this.partSeconds) await this.flush();
  }

  /**
   * Commits the open part and records it in the manifest, which is rewritten atomically. A
   * stop before the manifest is written leaves a part file that no record names, which the
   * next try overwrites.
   */
  async flush(): Promise<void> {
    const part = this.current;
    if (part === undefined) return;
    this.current = undefined;
    try {
      await part.writer.finish();
    } catch (error) {
      await part.writer.abort();
      throw error;
    }
    const { bytes, sha256 } = await fingerprintFile(part.path);
    const { index, start, count } = part;
    const record: PartRecord = { index, start, count, bytes, sha256 };
    const manifest: PartsManifest = { ...this.state, parts: [...this.state.parts, record] };
    await writeManifest(path.join(this.folder, PARTS_MANIFEST_NAME), manifest);
    this.state = manifest;
  }

  /** Discards the open part, keeping the recorded ones for the next try. */
  async abort(): Promise<void> {
    const part = this.current;
    this.current = undefined;
    await part?.writer.abort();
  }

  /**
   * Commits the open part, joins every part in user order into `out` through an
   * {@link AtomicFile} and removes the parts folder. The bytes equal those of one uninterrupted
   * run: parts contain the writers' own output, and the CSV header is written once. Each part is
   * checked against its recorded size and sha256 while it is copied. Throws `INVALID_INPUT`
   * while users are pending or when a part has changed, leaving `out` and the folder as they
   * were. Returns the size and sha256 of `out`.
   */
  async assemble(options: AssembleOptions = {}): Promise<OutputRecord> {
    await this.flush();
    const pending = this.pending();
    if (pending.length > 0) {
      const { start, end } = pending[0];
      throw new AttnScoreError(
        'INVALID_INPUT',
        messages.partsIncomplete(this.out, start, end, this.pendingUsers()),
      );
    }

    const format = this.state.outputFormat;
    const file = await AtomicFile.open(this.out);
    const output = new HashingOutput(file);
    let record: OutputRecord;
    try {
      if (format === 'csv') await output.write(CSV_HEADER);
      for (const part of sortedParts(this.state.parts)) {
        const partPath = path.join(this.folder, partFileName(part.index, format));
        await appendResultFile(output, partPath, format, part, (detail) =>
          partDamaged(partPath, detail, this.folder),
        );
      }
      record = output.finish();
      await file.commit();
    } catch (error) {
      await file.abort();
      throw error;
    }

    if (options.outputManifest === true) {
      const manifest = createOutputManifest(this.state, this.state.blockUsers, record);
      await writeManifest(outputManifestPath(this.out), manifest);
    }
    // Renaming first makes the removal all-or-nothing as far as the next run can see: a stop
    // during rm leaves a folder that no run reads, not a parts folder with parts missing.
    const removing = `${this.folder}.removing-${process.pid}`;
    await rename(this.folder, removing);
    await rm(removing, { recursive: true, force: true });
    return record;
  }

  private async openPart(start: number): Promise<OpenPart> {
    const index = this.state.parts.reduce((max, part) => Math.max(max, part.index + 1), 0);
    const partPath = path.join(this.folder, partFileName(index, this.state.outputFormat));
    const file = await AtomicFile.open(partPath);
    // A part contains exactly the bytes that a single-file writer writes, with the CSV header.
    const writer =
      this.state.outputFormat === 'csv' ? createCsvWriter(file) : createJsonlWriter(file);
    return { index, path: partPath, writer, start, count: 0, openedAt: performance.now() };
  }

  /** Checks that users `start` .. `end - 1` are in this run and in no recorded part. */
  private checkFree(start: number, end: number): void {
    const { users, parts } = this.state;
    const inRange = Number.isSafeInteger(start) && start >= users.start && end <= users.end;
    const overlap = parts.find((part) => start < part.start + part.count && part.start < end);
    if (!inRange || overlap !== undefined) {
      const message = messages.partRangeTaken(start, end, users.start, users.end);
      throw new AttnScoreError('INTERNAL', message);
    }
  }
}

function sortedParts(parts: readonly PartRecord[]): PartRecord[] {
  return [...parts].sort((first, second) => first.start - second.start);
}

function partDamaged(partPath: string, detail: string, folder: string): AttnScoreError {
  return new AttnScoreError('INVALID_INPUT', messages.partDamaged(partPath, detail, folder));
}

/** Checks that the recorded parts lie in the run's range, do not overlap, and have their sizes. */
async function checkParts(folder: string, manifest: PartsManifest): Promise<void> {
  const manifestPath = path.join(folder, PARTS_MANIFEST_NAME);
  let next = manifest.users.start;
  for (const part of sortedParts(manifest.parts)) {
    if (part.start < next || part.start + part.count > manifest.users.end) {
      const detail = messages.partOutOfRange(part.index, part.start, part.count);
      throw new AttnScoreError('INVALID_INPUT', messages.invalidManifest(manifestPath, detail));
    }
    next = part.start + part.count;
  }
  for (const part of manifest.parts) {
    const partPath = path.join(folder, partFileName(part.index, manifest.outputFormat));
    const stats = await stat(partPath).catch(() => undefined);
    if (stats === undefined) throw partDamaged(partPath, messages.fileMissing(), folder);
    if (stats.size !== part.bytes) {
      throw partDamaged(partPath, messages.sizeDiffers(stats.size, part.bytes), folder);
    }
  }
}

/**
 * Removes the temporary files that {@link AtomicFile} leaves when a process is killed
 * mid-write: names that start with a dot and contain `.tmp-`.
 */
/**
 * Removes what a run of `out` that was killed at its very end can leave beside it: the
 * temporary file of the final join (`.<name>.tmp-*`) and a parts folder renamed for removal
 * (`<name>.parts.removing-*`). One run at a time uses a parts folder, so none of them is live.
 */
async function removeLeftovers(out: string): Promise<void> {
  const folder = path.dirname(out);
  const name = path.basename(out);
  const names = await readdir(folder).catch(() => [] as string[]);
  for (const entry of names) {
    if (entry.startsWith(`.${name}.tmp-`)) {
      await unlink(path.join(folder, entry)).catch(() => undefined);
    } else if (entry.startsWith(`${name}.parts.removing-`)) {
      await rm(path.join(folder, entry), { recursive: true, force: true });
    }
  }
}

async function removeTemporaryFiles(folder: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    throw readFailed(folder, error);
  }
  for (const name of names) {
    if (name.startsWith('.') && name.includes('.tmp-')) {
      await unlink(path.join(folder, name)).catch(() => undefined);
    }
  }
}

function checkOptions(blockUsers: number, partUsers: number, partSeconds: number): void {
  if (!Number.isSafeInteger(blockUsers) || blockUsers < 1) {
    const message = messages.positiveInteger('blockUsers', blockUsers);
    throw new AttnScoreError('INVALID_PARAMETER', message);
  }
  if (partUsers !== Infinity && (!Number.isSafeInteger(partUsers) || partUsers < 1)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('partUsers', partUsers));
  }
  if (typeof partSeconds !== 'number' || Number.isNaN(partSeconds) || partSeconds < 0) {
    throw new AttnScoreError(
      'INVALID_PARAMETER',
      messages.nonNegativeNumber('partSeconds', partSeconds),
    );
  }
}
