import { open, type FileHandle } from 'node:fs/promises';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';

/** Plain words for the file-system errors that users cause most often. */
const fsReasons: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
};

/** Returns a short reason for a file-system error, in plain words where the code is known. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && code in fsReasons) return fsReasons[code];
  return error instanceof Error ? error.message : String(error);
}

/** Wraps a file-system error raised while reading `source` as a `READ_FAILED` error. */
export function readFailed(source: string, error: unknown): AttnScoreError {
  if (error instanceof AttnScoreError) return error;
  return new AttnScoreError('READ_FAILED', messages.readFailed(source, describeFsError(error)), {
    cause: error,
  });
}

/**
 * Opens `path` for reading and rejects directories up front, because on Linux `open` succeeds
 * on a directory and only the first read fails.
 */
export async function openForReading(path: string, source: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw readFailed(source, error);
  }
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) {
      throw new AttnScoreError('READ_FAILED', messages.readFailed(source, 'is a directory'));
    }
  } catch (error) {
    await handle.close();
    throw readFailed(source, error);
  }
  return handle;
}

/** A decimal number as numpy.savetxt, pandas and most writers print it. */
const decimalPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** The spellings of NaN and infinity that numpy, pandas and JavaScript print. */
const nonFinitePattern = /^([+-]?)(nan|inf|infinity)$/i;

/** The outcome of parsing one numeric text field. */
export type ParsedField =
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'empty' }
  | { readonly kind: 'invalid'; readonly text: string };

/**
 * Parses a numeric text field, ignoring surrounding whitespace. NaN and infinity spellings
 * ("nan", "-inf", "Infinity") parse to their values so that the caller can report them as
 * non-finite. `Number()` alone is not used because it also accepts "0x1f" and "" (as 0).
 */
export function parseNumberField(raw: string): ParsedField {
  const text = raw.trim();
  if (text === '') return { kind: 'empty' };
  if (decimalPattern.test(text)) return { kind: 'number', value: Number(text) };
  const special = nonFinitePattern.exec(text);
  if (special !== null) {
    if (special[2].toLowerCase() === 'nan') return { kind: 'number', value: NaN };
    return { kind: 'number', value: special[1] === '-' ? -Infinity : Infinity };
  }
  return { kind: 'invalid', text: raw };
}

/**
 * Checks that `value` is finite and fits in float32, throwing `NON_FINITE_VALUE` with the row
 * location `at` and the column otherwise. Values that round to the largest float32 are accepted.
 */
export function checkFloat32(value: number, at: string, column: number): void {
  if (!Number.isFinite(value)) {
    throw new AttnScoreError('NON_FINITE_VALUE', messages.nonFiniteAt(at, column, value));
  }
  if (!Number.isFinite(Math.fround(value))) {
    throw new AttnScoreError('NON_FINITE_VALUE', messages.float32Range(at, column, value));
  }
}

/** A float32 buffer that grows by doubling, for readers that do not know the row count. */
/**
 * Rows whose largest |value| is below this are scaled up by powers of two
 * before they are rounded to float32: their values would otherwise round to
 * float32 subnormals or to zero, losing the direction of the vector. Cosine
 * does not depend on scale, and multiplying by a power of two is exact.
 */
const TINY_ROW_MAX = 2 ** -100;

/**
 * Scales a float64 row in place so that its largest |value| is at least
 * 2^-100, when it is smaller and not zero, and returns it. Rows in the usual
 * range are returned unchanged.
 */
export function scaleTinyRow<T extends number[] | Float64Array>(values: T): T {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  // 2^200 steps keep every factor finite, even for float64 subnormals down to 2^-1074.
  while (max > 0 && max < TINY_ROW_MAX) {
    for (let i = 0; i < values.length; i++) values[i] = values[i]! * 2 ** 200;
    max *= 2 ** 200;
  }
  return values;
}

export class Float32Builder {
  private buffer = new Float32Array(1024);
  private size = 0;

  /** Appends one value. */
  push(value: number): void {
    if (this.size === this.buffer.length) {
      const grown = new Float32Array(this.buffer.length * 2);
      grown.set(this.buffer);
      this.buffer = grown;
    }
    this.buffer[this.size++] = value;
  }

  /** Returns the values pushed so far, in a buffer of exactly that length. */
  finish(): Float32Array {
    return this.buffer.slice(0, this.size);
  }
}

/**
 * Records ids and rejects the second use of one, naming both rows. Ids are compared by value
 * and type, so the string "1" and the number 1 are different ids.
 */
export class IdRegistry {
  private readonly rows = new Map<RowId, number>();
  private readonly lines: number[] = [];

  constructor(private readonly source: string) {}

  /** Adds the id of `row`, found on 1-based `line` in text files. Rows must come in order. */
  add(id: RowId, row: number, line?: number): void {
    if (line !== undefined) this.lines[row] = line;
    const first = this.rows.get(id);
    if (first !== undefined) {
      const firstPlace = messages.rowPlace(first, this.lines[first]);
      const place = messages.rowPlace(row, line);
      throw new AttnScoreError(
        'INVALID_INPUT',
        messages.duplicateId(this.source, id, firstPlace, place),
      );
    }
    this.rows.set(id, row);
  }
}

/** Removes a UTF-8 byte order mark, which some Windows tools write at the start of text files. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
