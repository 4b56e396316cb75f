/**
 * Vector sets and user blocks from Parquet and Arrow IPC tables: {@link openTable} reads the
 * record batches and {@link BatchDecoder} checks and converts their rows.
 */
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, VectorSet } from '../scoring/types.js';
import { BatchDecoder, layoutColumns, resolveLayout, type ColumnOptions } from './columnar.js';
import type { RowRange, UserBlock, UserBlockStream } from './stream.js';
import { openTable, type TableFormat, type TableReader } from './tables.js';

/**
 * Reads a whole table as a vector set. Contents keep the weight column when the table has
 * one. Throws an {@link AttnScoreError} naming the row and column of the first bad value.
 */
export async function readTableVectors(
  path: string,
  format: TableFormat,
  role: 'users' | 'contents',
  columns: ColumnOptions = {},
): Promise<VectorSet> {
  const table = await openTable(path, format);
  try {
    const layout = resolveLayout(table.schema, path, columns, role);
    const decoder = new BatchDecoder(layout, path);
    const ids: RowId[] = [];
    const chunks: Float32Array[] = [];
    const weightChunks: Float64Array[] = [];
    for await (const { batch } of table.batches(layoutColumns(layout))) {
      const decoded = decoder.decode(batch);
      for (const id of decoded.ids) ids.push(id);
      chunks.push(decoded.data);
      if (decoded.weights !== undefined) weightChunks.push(decoded.weights);
    }
    const rows = ids.length;
    if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(path));
    const dim = decoder.dim!;
    const data = concatFloat32(chunks, rows * dim);
    const set = { ids, data, rows, dim, source: path };
    if (layout.weight === undefined) return set;
    return { ...set, weights: concatFloat64(weightChunks, rows) };
  } finally {
    await table.close();
  }
}

/** Counts the rows of a table: from the footers for Parquet, in one pass for Arrow IPC. */
export async function countTableRows(path: string, format: TableFormat): Promise<number> {
  const table = await openTable(path, format);
  try {
    if (table.rows !== undefined) return table.rows;
    let rows = 0;
    // An empty projection is enough to count, and IPC reads whole batches anyway.
    for await (const { batch } of table.batches([])) rows += batch.numRows;
    return rows;
  } finally {
    await table.close();
  }
}

/**
 * Opens a table of users for block-by-block reading. The first row is decoded here so that
 * `dim` is known, and errors in later rows are raised by `blocks()` when it reaches them.
 * Memory is one record batch (up to 4096 rows for Parquet, as written for Arrow IPC) plus one
 * block, and one registry entry per id read so far, because duplicate ids are rejected.
 */
export async function openTableBlocks(
  path: string,
  format: TableFormat,
  blockRows: number,
  range: RowRange | undefined,
  columns: ColumnOptions = {},
): Promise<UserBlockStream> {
  const table = await openTable(path, format);
  let dim: number;
  let layout;
  try {
    layout = resolveLayout(table.schema, path, columns, 'users');
    dim = await firstRowDim(table, layout);
  } catch (error) {
    await table.close();
    throw error;
  }
  let iterated = false;
  return {
    source: path,
    format,
    dim,
    rows: table.rows,
    blocks() {
      if (iterated) {
        throw new AttnScoreError('INTERNAL', `the blocks of ${path} can be read only once`);
      }
      iterated = true;
      return tableBlocks(table, new BatchDecoder(layout, path, dim), layoutColumns(layout), dim, blockRows, range);
    },
    close: () => table.close(),
  };
}

async function firstRowDim(table: TableReader, layout: ReturnType<typeof resolveLayout>): Promise<number> {
  const decoder = new BatchDecoder(layout, table.source);
  for await (const { batch } of table.batches(layoutColumns(layout), { start: 0, end: 1 })) {
    decoder.decode(batch);
  }
  if (decoder.rowsDecoded === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(table.source));
  return decoder.dim!;
}

async function* tableBlocks(
  table: TableReader,
  decoder: BatchDecoder,
  columns: readonly string[],
  dim: number,
  blockRows: number,
  range: RowRange | undefined,
): AsyncGenerator<UserBlock, void, undefined> {
  const start = range?.start ?? 0;
  const end = range?.end ?? Infinity;
  decoder.skip(start);
  let ids: RowId[] = [];
  let data = new Float32Array(blockRows * dim);
  let filled = 0;
  let blockStart = start;
  const tableRange = range === undefined ? undefined : { start, end };
  try {
    for await (const { batch } of table.batches(columns, tableRange)) {
      const decoded = decoder.decode(batch);
      let offset = 0;
      while (offset < decoded.rows) {
        const take = Math.min(blockRows - filled, decoded.rows - offset);
        data.set(decoded.data.subarray(offset * dim, (offset + take) * dim), filled * dim);
        for (let index = 0; index < take; index++) ids.push(decoded.ids[offset + index]!);
        filled += take;
        offset += take;
        if (filled === blockRows) {
          yield { start: blockStart, ids, data, rows: filled };
          blockStart += filled;
          ids = [];
          data = new Float32Array(blockRows * dim);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield { start: blockStart, ids, data: data.slice(0, filled * dim), rows: filled };
    const seen = blockStart + filled;
    if (end !== Infinity && seen < end) {
      throw new AttnScoreError('INVALID_INPUT', messages.rowsPastEnd(table.source, seen, end));
    }
  } finally {
    await table.close();
  }
}

function concatFloat32(chunks: readonly Float32Array[], length: number): Float32Array {
  if (chunks.length === 1 && chunks[0]!.length === length) return chunks[0]!;
  const out = new Float32Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function concatFloat64(chunks: readonly Float64Array[], length: number): Float64Array {
  const out = new Float64Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
