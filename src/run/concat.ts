/**
 * Joins result files (parts of one run, or shard outputs) into one output, checking each
 * against the size and sha256 that its manifest records.
 */
import { createHash, type Hash } from 'node:crypto';

import type { AtomicFile } from '../io/atomic.js';
import { openForReading, readFailed } from '../io/common.js';
import { CSV_HEADER, type ResultFormat } from '../io/writers.js';
import type { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { OutputRecord } from './manifest.js';

/** Bytes per read while copying. */
const CHUNK_BYTES = 1 << 20;

/** An {@link AtomicFile} that also counts and hashes what is written to it. */
export class HashingOutput {
  private readonly hash: Hash = createHash('sha256');
  private written = 0;

  constructor(
    /** The file that receives the bytes. The caller commits or aborts it. */
    readonly file: AtomicFile,
  ) {}

  /** Appends `chunk`, which the caller may reuse once this resolves. */
  async write(chunk: string | Uint8Array): Promise<void> {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.hash.update(bytes);
    this.written += bytes.length;
    await this.file.write(bytes);
  }

  /** Returns the size and sha256 of everything written. Call once, after the last write. */
  finish(): OutputRecord {
    return { bytes: this.written, sha256: this.hash.digest('hex') };
  }
}

/**
 * Appends the result file at `path` to `target`. A CSV file must start with the results
 * header, which is left out, so that the caller writes it once for the whole output. Throws
 * the error that `mismatch` builds when the file's size or sha256 differs from `expected` or
 * the CSV header is missing, and `READ_FAILED` when the file cannot be read. Bytes already
 * appended stay in `target`, so on error the caller aborts it.
 */
export async function appendResultFile(
  target: HashingOutput,
  path: string,
  format: ResultFormat,
  expected: OutputRecord,
  mismatch: (detail: string) => AttnScoreError,
): Promise<void> {
  const handle = await openForReading(path, path);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    let position = 0;
    if (format === 'csv') {
      const header = Buffer.from(CSV_HEADER, 'utf8');
      const start = Buffer.alloc(header.length);
      const { bytesRead } = await handle.read(start, 0, start.length, 0);
      if (bytesRead < header.length || !start.equals(header)) {
        throw mismatch(messages.csvHeaderMissing(CSV_HEADER.trimEnd()));
      }
      hash.update(start);
      bytes += start.length;
      position = start.length;
    }
    const stream = handle.createReadStream({ start: position, highWaterMark: CHUNK_BYTES });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      await target.write(chunk);
    }
  } catch (error) {
    throw readFailed(path, error);
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (bytes !== expected.bytes) throw mismatch(messages.sizeDiffers(bytes, expected.bytes));
  const sha256 = hash.digest('hex');
  if (sha256 !== expected.sha256) throw mismatch(messages.sha256Differs(sha256, expected.sha256));
}
