/**
 * Parquet files, folders of Parquet part files, and Arrow IPC files and streams, read one
 * record batch at a time. Parquet is decoded by parquet-wasm (the Rust `parquet` crate compiled
 * to WebAssembly; the tests cover its snappy and zstd codecs) into Arrow IPC bytes that
 * apache-arrow then reads. Arrow IPC is read by apache-arrow directly.
 */
import { openAsBlob, type Dirent } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import {
  RecordBatchReader,
  tableFromIPC,
  type AsyncRecordBatchFileReader,
  type AsyncRecordBatchStreamReader,
  type RecordBatch,
  type Schema,
} from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm/node';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { readFailed } from './common.js';
import type { RowRange } from './stream.js';

/** The table formats: Parquet (a file or a folder of part files) and Arrow IPC. */
export type TableFormat = 'parquet' | 'arrow';

/** Rows that parquet-wasm decodes into one record batch. */
const PARQUET_BATCH_ROWS = 4096;

/** One record batch and the table row of its first row. */
export interface TableBatch {
  readonly start: number;
  readonly batch: RecordBatch;
}

/** An open Parquet or Arrow IPC table. */
export interface TableReader {
  /** The path as given, used in messages. */
  readonly source: string;
  readonly format: TableFormat;
  readonly schema: Schema;
  /** Rows in the whole table: known up front for Parquet from the footers, else undefined. */
  readonly rows: number | undefined;
  /**
   * Yields the rows of `range` (by default all rows) in record batches, reading only the
   * columns named in `columns`. Parquet row groups outside the range are not read. Arrow IPC
   * batches before the range are read and dropped, because the format has no row index.
   */
  batches(columns: readonly string[], range?: RowRange): AsyncGenerator<TableBatch, void, undefined>;
  /** Releases open files. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Opens a Parquet file or folder (`format` 'parquet') or an Arrow IPC file or stream
 * ('arrow') and reads its schema. Throws `READ_FAILED` for a missing file and
 * `UNSUPPORTED_FORMAT` for bytes that are not the format.
 */
export async function openTable(source: string, format: TableFormat): Promise<TableReader> {
  return format === 'parquet' ? openParquet(source) : openArrowIpc(source);
}

/** Returns true when `source` is a folder, as a Parquet dataset written by Spark is. */
export async function isFolder(source: string): Promise<boolean> {
  const stats = await stat(source).catch(() => undefined);
  return stats?.isDirectory() === true;
}

interface ParquetPart {
  readonly path: string;
  readonly file: ParquetFile;
  /** Rows per row group, in file order. */
  readonly groups: readonly number[];
  readonly rows: number;
}

async function openParquet(source: string): Promise<TableReader> {
  const paths = (await isFolder(source)) ? await listParts(source) : [source];
  const parts: ParquetPart[] = [];
  for (const partPath of paths) parts.push(await openParquetPart(partPath, source));
  const schema = await parquetSchema(parts[0]!, source);
  for (const part of parts.slice(1)) {
    await checkPartSchema(part, parts[0]!, schema, source);
  }
  const rows = parts.reduce((sum, part) => sum + part.rows, 0);
  return {
    source,
    format: 'parquet',
    schema,
    rows,
    batches: (columns, range) => parquetBatches(parts, source, columns, range ?? { start: 0, end: rows }),
    async close() {
      for (const part of parts.splice(0)) part.file.free();
    },
  };
}

/**
 * Lists the .parquet files under `folder`, its subfolders included (Hive-style `key=value`
 * partitions, whose values are not read as columns), in natural order of their relative paths, so that `data_2` comes before
 * `data_10`. Names that start with `_` or `.` (`_SUCCESS`, `.part-0.crc`) are skipped, as Spark
 * skips them.
 */
async function listParts(folder: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true, recursive: true });
  } catch (error) {
    throw readFailed(folder, error);
  }
  const parts = entries
    .filter((entry) => entry.isFile() && entry.name.toLowerCase().endsWith('.parquet'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => {
      const relative = path.relative(folder, file);
      return !relative.split(path.sep).some((name) => name.startsWith('_') || name.startsWith('.'));
    })
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (parts.length === 0) throw new AttnScoreError('INVALID_INPUT', messages.noParquetParts(folder));
  return parts;
}

async function openParquetPart(partPath: string, source: string): Promise<ParquetPart> {
  const name = partPath === source ? source : partPath;
  let blob: Blob;
  try {
    blob = await openAsBlob(partPath);
  } catch (error) {
    throw readFailed(name, error);
  }
  let file: ParquetFile;
  try {
    file = await ParquetFile.fromFile(blob);
  } catch (error) {
    throw invalidTable(name, 'Parquet', error);
  }
  const metadata = file.metadata();
  const groups = metadata.rowGroups().map((group) => group.numRows());
  const rows = groups.reduce((sum, count) => sum + count, 0);
  return { path: partPath, file, groups, rows };
}

async function parquetSchema(part: ParquetPart, source: string): Promise<Schema> {
  try {
    return tableFromIPC(part.file.schema().intoIPCStream()).schema;
  } catch (error) {
    throw invalidTable(part.path === source ? source : part.path, 'Parquet', error);
  }
}

/** Rejects a part whose columns differ in name or type from the first part's. */
async function checkPartSchema(
  part: ParquetPart,
  first: ParquetPart,
  schema: Schema,
  source: string,
): Promise<void> {
  const other = await parquetSchema(part, source);
  const describe = (fields: Schema['fields']) =>
    fields.map((field) => `${field.name} (${String(field.type)})`).join(', ');
  if (describe(other.fields) !== describe(schema.fields)) {
    const detail = `its columns are ${describe(other.fields)} but the first part has ${describe(schema.fields)}`;
    throw new AttnScoreError('INVALID_INPUT', messages.partSchemaDiffers(part.path, first.path, detail));
  }
}

async function* parquetBatches(
  parts: readonly ParquetPart[],
  source: string,
  columns: readonly string[],
  range: RowRange,
): AsyncGenerator<TableBatch, void, undefined> {
  let partStart = 0;
  for (const part of parts) {
    const partEnd = partStart + part.rows;
    if (partEnd > range.start && partStart < range.end) {
      // Only the row groups that overlap the range are decoded.
      const rowGroups: number[] = [];
      let groupStart = partStart;
      let firstRow: number | undefined;
      part.groups.forEach((count, index) => {
        if (groupStart + count > range.start && groupStart < range.end) {
          rowGroups.push(index);
          firstRow ??= groupStart;
        }
        groupStart += count;
      });
      let row = firstRow ?? partStart;
      let stream: ReadableStream;
      try {
        stream = await part.file.stream({ rowGroups, columns: [...columns], batchSize: PARQUET_BATCH_ROWS });
      } catch (error) {
        throw invalidTable(part.path === source ? source : part.path, 'Parquet', error);
      }
      const reader = stream.getReader();
      try {
        for (;;) {
          let next: { done: boolean; value?: { intoIPCStream(): Uint8Array } };
          try {
            next = await reader.read();
          } catch (error) {
            throw invalidTable(part.path === source ? source : part.path, 'Parquet', error);
          }
          if (next.done || next.value === undefined) break;
          for (const batch of tableFromIPC(next.value.intoIPCStream()).batches) {
            const sliced = sliceToRange(batch, row, range);
            if (sliced !== undefined) yield sliced;
            row += batch.numRows;
          }
          if (row >= range.end) break;
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    }
    partStart = partEnd;
    if (partStart >= range.end) break;
  }
}

/** Cuts the rows of `batch` (whose first row is `start`) down to `range`, or undefined if none. */
function sliceToRange(batch: RecordBatch, start: number, range: RowRange): TableBatch | undefined {
  const from = Math.max(range.start, start);
  const to = Math.min(range.end, start + batch.numRows);
  if (from >= to) return undefined;
  if (from === start && to === start + batch.numRows) return { start, batch };
  return { start: from, batch: batch.slice(from - start, to - start) };
}

type IpcReader = AsyncRecordBatchFileReader | AsyncRecordBatchStreamReader;

async function openIpcReader(source: string): Promise<{ handle: FileHandle; reader: IpcReader }> {
  let handle: FileHandle;
  try {
    handle = await open(source, 'r');
    if ((await handle.stat()).isDirectory()) {
      await handle.close();
      throw new AttnScoreError('READ_FAILED', messages.readFailed(source, 'is a directory'));
    }
  } catch (error) {
    throw readFailed(source, error);
  }
  try {
    const reader = (await RecordBatchReader.from(handle)) as IpcReader;
    await reader.open();
    // An empty or foreign file opens without an error but has no schema.
    if (reader.schema === undefined || reader.schema === null) {
      throw new Error('it has no Arrow schema message');
    }
    return { handle, reader };
  } catch (error) {
    await handle.close();
    throw invalidTable(source, 'Arrow IPC', error);
  }
}

async function openArrowIpc(source: string): Promise<TableReader> {
  const first = await openIpcReader(source);
  const schema = first.reader.schema;
  await first.handle.close();
  const handles = new Set<FileHandle>();
  return {
    source,
    format: 'arrow',
    schema,
    rows: undefined,
    async *batches(_columns, range) {
      // The whole record batch is read whatever the columns, because IPC stores the columns of
      // a batch together. Reading them is a copy, not a decode.
      const { handle, reader } = await openIpcReader(source);
      handles.add(handle);
      let row = 0;
      try {
        for (;;) {
          let next: IteratorResult<RecordBatch>;
          try {
            next = await reader.next();
          } catch (error) {
            throw invalidTable(source, 'Arrow IPC', error);
          }
          if (next.done === true) break;
          const batch = next.value;
          const sliced = range === undefined ? { start: row, batch } : sliceToRange(batch, row, range);
          if (sliced !== undefined) yield sliced;
          row += batch.numRows;
          if (range !== undefined && row >= range.end) break;
        }
      } finally {
        handles.delete(handle);
        await handle.close();
      }
    },
    async close() {
      for (const handle of handles) await handle.close().catch(() => undefined);
      handles.clear();
    },
  };
}

function invalidTable(source: string, format: string, error: unknown): AttnScoreError {
  if (error instanceof AttnScoreError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AttnScoreError('UNSUPPORTED_FORMAT', messages.invalidTable(source, format, detail), {
    cause: error,
  });
}
