import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { lstat, open, readlink, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { describeFsError } from './common.js';

/** The path that means standard output. */
export const STDOUT_PATH = '-';

/** Bytes collected before one write to the temporary file. */
const BUFFER_BYTES = 1 << 20;

/** Options for {@link AtomicFile.open}. */
export interface AtomicFileOptions {
  /** The stream that `-` writes to, by default `process.stdout`. Tests pass their own. */
  readonly stdout?: Writable;
}

type State = 'open' | 'failed' | 'committed' | 'aborted';

/**
 * An output file that appears at its target path only when complete. Data goes to a temporary
 * file in the target's folder (so that the final rename stays on one file system and is atomic
 * on POSIX), and {@link commit} renames it over the target. Until then an existing target is
 * untouched. The path `-` writes to standard output instead, where nothing can be taken back.
 * A symbolic link is followed, so the file it points to is replaced and the link kept. A target
 * that exists and is not a regular file (a FIFO, a character device such as /dev/null) is
 * written directly, because renaming over it would replace the device with a file.
 *
 * Callers must await each {@link write} before the next one. A write resolves once its data is
 * on disk or copied into the internal buffer, so callers may reuse their buffers afterwards.
 */
export class AtomicFile {
  private state: State = 'open';
  private failure: AttnScoreError | undefined;
  private readonly buffer: Buffer;
  private buffered = 0;

  private constructor(
    /** The path as the caller gave it, used in messages. */
    readonly target: string,
    /** The temporary file, or undefined when writing to a stream. */
    readonly tempPath: string | undefined,
    private readonly handle: FileHandle | undefined,
    private readonly stream: Writable | undefined,
    /** The file the temporary file is renamed over: `target` with symbolic links resolved. */
    private readonly renameTarget: string = target,
    /** Whether commit ends the stream: true for a device or FIFO, false for standard output. */
    private readonly ownsStream = false,
  ) {
    this.buffer = Buffer.allocUnsafe(handle === undefined ? 0 : BUFFER_BYTES);
  }

  /**
   * Creates the temporary file next to `target` (after following symbolic links), or wraps
   * standard output for `-` and opens a device or FIFO for direct writing. Throws
   * `WRITE_FAILED` when the folder is missing or not writable or the target is a folder. The
   * temporary file gets the permission bits of an existing target, so replacing a private file
   * does not make it readable to others.
   */
  static async open(target: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    if (target === STDOUT_PATH) {
      return new AtomicFile(target, undefined, undefined, options.stdout ?? process.stdout);
    }
    const resolved = await resolveLinks(target);
    const targetStats = await stat(resolved).catch(() => undefined);
    if (targetStats?.isDirectory()) throw writeFailed(target, new Error('is a directory'));
    if (targetStats !== undefined && !targetStats.isFile()) {
      const stream = await openStream(target, resolved);
      return new AtomicFile(target, undefined, undefined, stream, resolved, true);
    }

    const name = `.${path.basename(resolved)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const tempPath = path.join(path.dirname(resolved), name);
    let handle: FileHandle | undefined;
    try {
      handle = await open(tempPath, 'wx', targetStats ? targetStats.mode & 0o7777 : 0o666);
      // open() applies the umask, so set the existing file's bits exactly.
      if (targetStats) await handle.chmod(targetStats.mode & 0o7777);
      return new AtomicFile(target, tempPath, handle, undefined, resolved);
    } catch (error) {
      if (handle) {
        await handle.close().catch(() => undefined);
        await unlink(tempPath).catch(() => undefined);
      }
      throw writeFailed(target, error);
    }
  }

  /** Appends `chunk` (strings as UTF-8), waiting for the disk or for the stream to drain. */
  async write(chunk: string | Uint8Array): Promise<void> {
    this.checkOpen();
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    try {
      if (this.stream !== undefined) {
        await writeToStream(this.stream, Buffer.from(bytes));
      } else {
        if (this.buffered + bytes.length > BUFFER_BYTES) await this.flush();
        if (bytes.length >= BUFFER_BYTES) {
          await this.writeAll(bytes);
        } else {
          this.buffer.set(bytes, this.buffered);
          this.buffered += bytes.length;
        }
      }
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * Flushes, fsyncs and closes the temporary file, then renames it over the target. For
   * standard output it waits until the written data has been handed to the stream.
   */
  async commit(): Promise<void> {
    this.checkOpen();
    try {
      if (this.handle === undefined || this.tempPath === undefined) {
        const stream = this.stream as Writable;
        if (this.ownsStream) {
          await new Promise<void>((resolve, reject) => {
            stream.once('error', reject);
            stream.end(() => resolve());
          });
        } else if (stream.writableNeedDrain) {
          await drain(stream);
        }
        this.state = 'committed';
        return;
      }
      await this.flush();
      await this.handle.sync();
      await this.handle.close();
      await rename(this.tempPath, this.renameTarget);
      this.state = 'committed';
    } catch (error) {
      const failure = this.fail(error);
      await this.abort();
      throw failure;
    }
    await syncFolder(path.dirname(this.renameTarget));
  }

  /**
   * Closes and deletes the temporary file, leaving the target as it was. Safe to call more than
   * once and after a failed write or commit, and a no-op after a successful commit. Output
   * already sent to standard output stays there.
   */
  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    if (this.ownsStream) this.stream?.destroy();
    if (this.handle === undefined || this.tempPath === undefined) return;
    // Either step may fail when commit got partway. That is fine, because all that matters
    // here is that the temporary file is gone.
    await this.handle.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }

  private checkOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.state !== 'open') {
      throw new AttnScoreError('INTERNAL', `${this.target} was already ${this.state}`);
    }
  }

  private fail(error: unknown): AttnScoreError {
    this.failure ??= writeFailed(this.target, error);
    if (this.state === 'open') this.state = 'failed';
    return this.failure;
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const bytes = this.buffer.subarray(0, this.buffered);
    await this.writeAll(bytes);
    this.buffered = 0;
  }

  private async writeAll(bytes: Uint8Array): Promise<void> {
    const handle = this.handle as FileHandle;
    let offset = 0;
    // A write to a regular file may be partial, for example when the disk fills up.
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
  }
}

/**
 * Follows symbolic links from `target`, including a dangling last link, whose destination is
 * where the output is then created.
 */
async function resolveLinks(target: string): Promise<string> {
  let current = target;
  for (let hops = 0; hops < 40; hops++) {
    const stats = await lstat(current).catch(() => undefined);
    if (!stats?.isSymbolicLink()) break;
    const real = await realpath(current).catch(() => undefined);
    if (real !== undefined) return real;
    current = path.resolve(path.dirname(current), await readlink(current));
  }
  return current;
}

/** Opens a device or FIFO for writing, failing with the usual write error. */
async function openStream(target: string, resolved: string): Promise<Writable> {
  const stream = createWriteStream(resolved, { flags: 'w' });
  try {
    await once(stream, 'open');
  } catch (error) {
    throw writeFailed(target, error);
  }
  return stream;
}

function writeFailed(target: string, error: unknown): AttnScoreError {
  if (error instanceof AttnScoreError) return error;
  const message = messages.writeFailed(target, describeFsError(error));
  return new AttnScoreError('WRITE_FAILED', message, { cause: error });
}

async function writeToStream(stream: Writable, bytes: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) throw new Error('the output stream is closed');
  if (!stream.write(bytes)) await drain(stream);
}

/** Waits for 'drain', rejecting if the stream fails first (for example EPIPE on a closed pipe). */
async function drain(stream: Writable): Promise<void> {
  await once(stream, 'drain');
}

/**
 * Fsyncs the folder so that the rename itself survives a crash. Best effort, because some
 * platforms (Windows) and file systems do not allow opening or syncing a folder.
 */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    await handle.sync().finally(() => handle.close());
  } catch {
    // The data is already renamed into place, and only durability across a crash is affected.
  }
}
