/**
 * Streaming user reader: yields users block by block, so that a run over a users file of any
 * size keeps only a few blocks of vectors in memory. Contents are still read whole by
 * `readVectors`.
 */
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import { countCsvRows, readCsvRows } from './csv.js';
import { checkIds, streamLines } from './ids.js';
import { countJsonlRows, readJsonlRows, type TextRow } from './jsonl.js';
import { openNpy, type NpyFile } from './npy.js';
import type { ColumnOptions } from './columnar.js';
import { checkNpyVectors, chooseInputFormat, isTableFormat, type VectorFormat } from './read.js';

/** A half-open range of rows, `start` included and `end` excluded, counted from 0. */
export interface RowRange {
  readonly start: number;
  readonly end: number;
}

/** A block of consecutive users. */
export interface UserBlock {
  /** The row of the block's first user in the whole file. */
  readonly start: number;
  /** One id per user: the file's ids, or row numbers for .npy input without an ids file. */
  readonly ids: RowId[];
  /** `rows` x `dim` float32 values in row-major order, in a buffer of this block's own. */
  readonly data: Float32Array;
  readonly rows: number;
}

/** An open users file, read block by block. */
export interface UserBlockStream {
  /** The name used in messages: the path as given. */
  readonly source: string;
  readonly format: VectorFormat;
  /** Values per user. */
  readonly dim: number;
  /**
   * Rows in the whole file. Known up front for .npy only. For JSONL and CSV it is undefined,
   * and {@link countRows} counts them in a separate pass where a caller needs the number.
   */
  readonly rows: number | undefined;
  /**
   * Yields the users of the range in blocks of `blockRows` (the last one may be shorter), each
   * validated as the whole-file readers validate it, with the same messages and with rows
   * counted in the whole file. Can be iterated once.
   */
  blocks(): AsyncIterable<UserBlock>;
  /**
   * Closes the file. Safe to call more than once, and needed only when `blocks()` was not run
   * to its end.
   */
  close(): Promise<void>;
}

/** Options for {@link openUserBlocks}. */
export interface OpenUserBlocksOptions {
  /** The format, overriding the one chosen by the file extension. */
  readonly format?: VectorFormat;
  /** A file with one id per line, for .npy input. Without it the ids are the row numbers. */
  readonly idsPath?: string;
  /** Users per block: a positive integer. */
  readonly blockRows: number;
  /**
   * Only the users in this range, by default every user. A .npy file is read from
   * `range.start` directly. A text file is parsed and validated from its first row up to
   * `range.end`, because rows can only be found by reading the lines before them, and rows
   * after the range are not read.
   */
  readonly range?: RowRange;
  /** The id and vector columns of Parquet and Arrow IPC tables; other formats ignore them. */
  readonly columns?: ColumnOptions;
}

/**
 * Opens a users file for block-by-block reading. The header of a .npy file is checked here, and
 * its ids file, when given, is checked in full (count, empty and duplicate ids) without being
 * held. The first row of a JSONL or CSV file is read and checked here, so that `dim` is known.
 * Errors in later rows are raised by `blocks()` when it reaches them.
 *
 * Memory is two blocks of vectors for .npy, because one block is read ahead, one block
 * plus one line for text formats, and one block plus one record batch for Parquet and Arrow IPC. Text formats and ids files also keep one registry entry per
 * id read so far, because duplicate ids are rejected as the whole-file readers reject them.
 * That is roughly 110 bytes per id like `u123456`, estimated from peak RSS on Node 20.
 */
export async function openUserBlocks(
  path: string,
  options: OpenUserBlocksOptions,
): Promise<UserBlockStream> {
  const { blockRows, range } = options;
  if (!Number.isSafeInteger(blockRows) || blockRows < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('blockRows', blockRows));
  }
  if (range !== undefined) checkRange(path, range, undefined);
  const format = await chooseInputFormat(path, options.format);
  if (format === 'npy') return openNpyBlocks(path, options.idsPath, blockRows, range);
  if (options.idsPath !== undefined) {
    const message = messages.idsFileNotAllowed(options.idsPath, path);
    throw new AttnScoreError('INVALID_PARAMETER', message);
  }
  if (isTableFormat(format)) {
    const { openTableBlocks } = await import('./table-vectors.js');
    const stream = await openTableBlocks(path, format, blockRows, range, options.columns);
    if (range !== undefined && stream.rows !== undefined) {
      try {
        checkRange(path, range, stream.rows);
      } catch (error) {
        await stream.close();
        throw error;
      }
    }
    return stream;
  }
  return openTextBlocks(path, format, blockRows, range);
}

/** Options for {@link countRows}. */
export interface CountRowsOptions {
  /** The format, overriding the one chosen by the file extension. */
  readonly format?: VectorFormat;
}

/**
 * Counts the rows of a vector file without holding it. For .npy this is the header's row
 * count, and for Parquet the sum of the footers' row counts. For Arrow IPC, JSONL and CSV it is
 * the number of rows that the readers would yield from a valid
 * file, found in one streaming pass that does not check the values.
 */
export async function countRows(path: string, options: CountRowsOptions = {}): Promise<number> {
  const format = await chooseInputFormat(path, options.format);
  if (isTableFormat(format)) {
    const { countTableRows } = await import('./table-vectors.js');
    return countTableRows(path, format);
  }
  if (format === 'jsonl') return countJsonlRows(path);
  if (format === 'csv') return countCsvRows(path);
  const file = await openNpy(path);
  await file.close();
  return file.rows;
}

async function openNpyBlocks(
  path: string,
  idsPath: string | undefined,
  blockRows: number,
  range: RowRange | undefined,
): Promise<UserBlockStream> {
  const file = await openNpy(path);
  try {
    checkNpyVectors(file, path);
    if (range !== undefined) checkRange(path, range, file.rows);
    if (idsPath !== undefined) await checkIds(idsPath, file.rows);
  } catch (error) {
    await file.close();
    throw error;
  }

  let iterated = false;
  return {
    source: path,
    format: 'npy',
    dim: file.columns,
    rows: file.rows,
    blocks() {
      if (iterated) throw alreadyIterated(path);
      iterated = true;
      return npyBlocks(file, idsPath, blockRows, range ?? { start: 0, end: file.rows });
    },
    close: () => file.close(),
  };
}

async function* npyBlocks(
  file: NpyFile,
  idsPath: string | undefined,
  blockRows: number,
  range: RowRange,
): AsyncGenerator<UserBlock, void, undefined> {
  const lines = idsPath === undefined ? undefined : streamLines(idsPath, idsPath);
  const readBlock = (start: number) => {
    const read = file.readRows(start, Math.min(blockRows, range.end - start));
    // The read ahead may reject (a NaN in the next block) while the caller still holds the
    // current one. This handler keeps that from counting as an unhandled rejection, which
    // would end the process; the error still surfaces when the loop awaits the block.
    read.catch(() => undefined);
    return read;
  };
  // One block is read ahead, so that the disk works while the caller scores the current one.
  let next = range.start < range.end ? readBlock(range.start) : undefined;
  try {
    if (lines !== undefined) await skipLines(lines, range.start, idsPath as string, file.rows);
    for (let start = range.start; start < range.end; start += blockRows) {
      const data = await (next as Promise<Float32Array>);
      const rows = data.length / file.columns;
      next = start + rows < range.end ? readBlock(start + rows) : undefined;
      const ids: RowId[] =
        lines === undefined
          ? Array.from({ length: rows }, (_, index) => start + index)
          : await takeLines(lines, rows, idsPath as string, file.rows);
      yield { start, ids, data, rows };
    }
  } finally {
    // A read still in flight when the caller stops must not become an unhandled rejection.
    await next?.catch(() => undefined);
    await lines?.return();
    await file.close();
  }
}

async function skipLines(
  lines: AsyncGenerator<string, void, undefined>,
  count: number,
  idsPath: string,
  rows: number,
): Promise<void> {
  for (let skipped = 0; skipped < count; skipped++) {
    const line = await lines.next();
    if (line.done === true) throw idsChanged(idsPath, skipped, rows);
  }
}

async function takeLines(
  lines: AsyncGenerator<string, void, undefined>,
  count: number,
  idsPath: string,
  rows: number,
): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < count) {
    const line = await lines.next();
    // checkIds has seen exactly `rows` non-empty lines, so running short means that the file
    // changed after it was checked.
    if (line.done === true || line.value === '') throw idsChanged(idsPath, ids.length, rows);
    ids.push(line.value);
  }
  return ids;
}

function idsChanged(idsPath: string, read: number, rows: number): AttnScoreError {
  return new AttnScoreError('READ_FAILED', messages.idsFileChanged(idsPath, read, rows));
}

async function openTextBlocks(
  path: string,
  format: 'jsonl' | 'csv',
  blockRows: number,
  range: RowRange | undefined,
): Promise<UserBlockStream> {
  const rows = format === 'jsonl' ? readJsonlRows(path) : readCsvRows(path);
  // The row generators throw for an empty file, so a first row always exists.
  const first = await rows.next();
  if (first.done === true) throw new AttnScoreError('EMPTY_INPUT', messages.empty(path));

  let iterated = false;
  return {
    source: path,
    format,
    dim: first.value.values.length,
    rows: undefined,
    blocks() {
      if (iterated) throw alreadyIterated(path);
      iterated = true;
      return textBlocks(path, rows, first.value, blockRows, range);
    },
    async close() {
      await rows.return();
    },
  };
}

async function* textBlocks(
  source: string,
  rows: AsyncGenerator<TextRow, void, undefined>,
  first: TextRow,
  blockRows: number,
  range: RowRange | undefined,
): AsyncGenerator<UserBlock, void, undefined> {
  const start = range?.start ?? 0;
  const end = range?.end ?? Infinity;
  const dim = first.values.length;
  let block: TextRow[] = [];
  let row: TextRow | undefined = first;
  let seen = 0;
  try {
    while (row !== undefined && row.row < end) {
      seen = row.row + 1;
      if (row.row >= start) block.push(row);
      if (block.length === blockRows) {
        yield toBlock(block, dim);
        block = [];
      }
      // Stopping at the last row of the range leaves the rows after it unread and unchecked.
      if (seen === end) break;
      const next = await rows.next();
      row = next.done === true ? undefined : next.value;
    }
    if (block.length > 0) yield toBlock(block, dim);
    if (end !== Infinity && seen < end) {
      throw new AttnScoreError('INVALID_INPUT', messages.rowsPastEnd(source, seen, end));
    }
  } finally {
    await rows.return();
  }
}

function toBlock(rows: readonly TextRow[], dim: number): UserBlock {
  const data = new Float32Array(rows.length * dim);
  const ids: RowId[] = new Array<RowId>(rows.length);
  for (let index = 0; index < rows.length; index++) {
    ids[index] = rows[index].id;
    data.set(rows[index].values, index * dim);
  }
  return { start: rows[0].row, ids, data, rows: rows.length };
}

/** Checks that `range` is a valid range of rows, and inside the file when `rows` is known. */
function checkRange(source: string, range: RowRange, rows: number | undefined): void {
  const { start, end } = range;
  const valid =
    Number.isSafeInteger(start) &&
    Number.isSafeInteger(end) &&
    start >= 0 &&
    start <= end &&
    (rows === undefined || end <= rows);
  if (!valid) {
    const message = messages.invalidRowRange(source, start, end, rows);
    throw new AttnScoreError('INVALID_PARAMETER', message);
  }
}

function alreadyIterated(source: string): AttnScoreError {
  return new AttnScoreError('INTERNAL', `the blocks of ${source} can be read only once`);
}
