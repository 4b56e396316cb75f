/**
 * Results as Parquet and Arrow IPC, in two layouts. `user` has one row per user:
 * `user_id, cx, loyalty, top` with `top` a list of `{content_id, score}` structs, best first.
 * `long` has one row per user and rank: `user_id, rank, content_id, score, cx, loyalty`, ranks
 * from 1, and a user with no matches gets one row with null rank, content_id and score (as in
 * the CSV output). Ids that are all safe integers in the first batch are written as int64,
 * else as strings. Scores are float32, as the engine computes them; cx and loyalty are float64.
 */
import {
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Utf8,
  type Data,
  type DataType,
  type RecordBatchWriter,
} from 'apache-arrow';
import {
  Compression,
  Table as WasmTable,
  transformParquetStream,
  WriterPropertiesBuilder,
  type RecordBatch as WasmRecordBatch,
} from 'parquet-wasm/node';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, UserResult } from '../scoring/types.js';
import type { AtomicFile } from './atomic.js';
import type { ResultWriter } from './writers.js';

/** The table layouts of results: one row per user, or one row per user and rank. */
export type TableLayout = 'user' | 'long';

/** Parquet compression codecs. */
export type ParquetCompression = 'zstd' | 'snappy' | 'none';

/** The Arrow IPC variants: the random-access file format (Feather v2) or the stream format. */
export type IpcKind = 'file' | 'stream';

/** The Arrow types chosen for the id columns. */
interface IdTypes {
  readonly user: 'int64' | 'utf8';
  readonly content: 'int64' | 'utf8';
}

/** Returns the Arrow schema of a layout. */
function resultSchema(layout: TableLayout, ids: IdTypes): Schema {
  const idType = (kind: 'int64' | 'utf8'): DataType => (kind === 'int64' ? new Int64() : new Utf8());
  if (layout === 'user') {
    const match = new Struct([
      new Field('content_id', idType(ids.content), false),
      new Field('score', new Float32(), false),
    ]);
    return new Schema([
      new Field('user_id', idType(ids.user), false),
      new Field('cx', new Float64(), false),
      new Field('loyalty', new Float64(), false),
      new Field('top', new List(new Field('item', match, false)), false),
    ]);
  }
  return new Schema([
    new Field('user_id', idType(ids.user), false),
    new Field('rank', new Int32(), true),
    new Field('content_id', idType(ids.content), true),
    new Field('score', new Float32(), true),
    new Field('cx', new Float64(), false),
    new Field('loyalty', new Float64(), false),
  ]);
}

/**
 * Chooses int64 for ids that are all safe integers, and strings otherwise or when none exist.
 * Content ids are judged on `contentIds`, every id of the catalogue, when given, else on the
 * batch. User ids arrive batch by batch, so they are judged on the first batch.
 */
function chooseIdTypes(results: readonly UserResult[], contentIds?: readonly RowId[]): IdTypes {
  const isInteger = (id: RowId) => typeof id === 'number' && Number.isSafeInteger(id);
  const users = results.map((result) => result.user);
  const contents = contentIds ?? results.flatMap((result) => result.top.map((match) => match.content));
  return {
    user: users.length > 0 && users.every(isInteger) ? 'int64' : 'utf8',
    content: contents.length > 0 && contents.every(isInteger) ? 'int64' : 'utf8',
  };
}

/**
 * Builds one record batch of results in `layout`, straight from typed arrays: one pass counts
 * the rows, a second fills every column. Throws `INTERNAL` for a non-finite value or a string
 * id in a column that the first batch made int64.
 */
export function buildResultBatch(
  results: readonly UserResult[],
  layout: TableLayout,
  ids: IdTypes = chooseIdTypes(results),
): RecordBatch {
  const schema = resultSchema(layout, ids);
  const users = results.length;
  let matches = 0;
  for (const result of results) matches += result.top.length;

  const userIds: RowId[] = new Array<RowId>(users);
  const cx = new Float64Array(users);
  const loyalty = new Float64Array(users);
  const contentIds: RowId[] = new Array<RowId>(matches);
  const scores = new Float32Array(matches);
  const offsets = new Int32Array(users + 1);
  let match = 0;
  results.forEach((result, row) => {
    userIds[row] = result.user;
    cx[row] = finite(result, 'cx', result.cx);
    loyalty[row] = finite(result, 'loyalty', result.loyalty);
    for (const entry of result.top) {
      contentIds[match] = entry.content;
      scores[match++] = finite(result, 'score', entry.score);
    }
    offsets[row + 1] = match;
  });

  if (layout === 'user') {
    const matchType = (schema.fields[3]!.type as List).children[0]!.type as Struct;
    const matchData = makeData({
      type: matchType,
      length: matches,
      nullCount: 0,
      children: [idData(contentIds, ids.content, 'content_id'), makeData({ type: new Float32(), length: matches, data: scores })],
    });
    return recordBatch(schema, users, [
      idData(userIds, ids.user, 'user_id'),
      makeData({ type: new Float64(), length: users, data: cx }),
      makeData({ type: new Float64(), length: users, data: loyalty }),
      makeData({ type: schema.fields[3]!.type as List, length: users, nullCount: 0, valueOffsets: offsets, child: matchData }),
    ]);
  }

  // Long layout: one row per match, and one row of nulls for a user without matches.
  const rows = results.reduce((sum, result) => sum + Math.max(1, result.top.length), 0);
  const rowUsers: RowId[] = new Array<RowId>(rows);
  const rowContents: RowId[] = new Array<RowId>(rows);
  const ranks = new Int32Array(rows);
  const rowScores = new Float32Array(rows);
  const rowCx = new Float64Array(rows);
  const rowLoyalty = new Float64Array(rows);
  const valid = new Uint8Array(Math.ceil(rows / 8));
  let row = 0;
  results.forEach((result, user) => {
    const count = result.top.length;
    for (let rank = 0; rank < Math.max(1, count); rank++, row++) {
      rowUsers[row] = result.user;
      rowCx[row] = cx[user]!;
      rowLoyalty[row] = loyalty[user]!;
      if (rank >= count) continue;
      valid[row >> 3]! |= 1 << (row & 7);
      ranks[row] = rank + 1;
      rowContents[row] = result.top[rank]!.content;
      rowScores[row] = scores[offsets[user]! + rank]!;
    }
  });
  const nulls = { nullCount: rows - matches, nullBitmap: valid };
  return recordBatch(schema, rows, [
    idData(rowUsers, ids.user, 'user_id'),
    makeData({ type: new Int32(), length: rows, data: ranks, ...nulls }),
    idData(rowContents, ids.content, 'content_id', nulls),
    makeData({ type: new Float32(), length: rows, data: rowScores, ...nulls }),
    makeData({ type: new Float64(), length: rows, data: rowCx }),
    makeData({ type: new Float64(), length: rows, data: rowLoyalty }),
  ]);
}

function recordBatch(schema: Schema, length: number, children: Data[]): RecordBatch {
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/**
 * Builds an id column: int64 from safe integers, or UTF-8 with each distinct id encoded once.
 * Rows whose bit in `nulls.nullBitmap` is clear are null.
 */
function idData(
  values: readonly RowId[],
  kind: 'int64' | 'utf8',
  column: string,
  nulls?: { nullCount: number; nullBitmap: Uint8Array },
): Data {
  const length = values.length;
  const valid = nulls?.nullBitmap;
  const isValid = (row: number) => valid === undefined || (valid[row >> 3]! & (1 << (row & 7))) !== 0;
  if (kind === 'int64') {
    const data = new BigInt64Array(length);
    for (let row = 0; row < length; row++) if (isValid(row)) data[row] = idValue(values[row]!, 'int64', column) as bigint;
    return makeData({ type: new Int64(), length, data, ...nulls });
  }
  const encoded = new Map<RowId, Uint8Array>();
  const parts: Uint8Array[] = new Array<Uint8Array>(length);
  const valueOffsets = new Int32Array(length + 1);
  let bytes = 0;
  for (let row = 0; row < length; row++) {
    if (isValid(row)) {
      const id = values[row]!;
      let part = encoded.get(id);
      if (part === undefined) {
        part = textEncoder.encode(String(id));
        encoded.set(id, part);
      }
      parts[row] = part;
      bytes += part.length;
    }
    valueOffsets[row + 1] = bytes;
  }
  const data = new Uint8Array(bytes);
  for (let row = 0; row < length; row++) if (parts[row] !== undefined) data.set(parts[row]!, valueOffsets[row]!);
  return makeData({ type: new Utf8(), length, valueOffsets, data, ...nulls });
}

const textEncoder = new TextEncoder();

/**
 * Encodes results as Arrow IPC stream bytes in `layout`, for a response body. The stream contains
 * one record batch, or only the schema when `results` is empty.
 */
export function encodeResultsIpc(results: readonly UserResult[], layout: TableLayout): Uint8Array {
  const batch = buildResultBatch(results, layout);
  return tableToIPC(new Table([batch]), 'stream');
}

function idValue(id: RowId, kind: 'int64' | 'utf8', column: string): bigint | string {
  if (kind === 'utf8') return String(id);
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
    throw new AttnScoreError('INVALID_INPUT', messages.mixedIdTypes(column, id));
  }
  return BigInt(id);
}

function finite(result: UserResult, field: string, value: number): number {
  if (!Number.isFinite(value)) {
    throw new AttnScoreError('INTERNAL', messages.nonFiniteResult(result.user, field, value));
  }
  return value;
}

/** Returns a writer of Arrow IPC results to `file`, one record batch per call to writeBatch. */
export function createIpcWriter(
  file: AtomicFile,
  layout: TableLayout,
  kind: IpcKind,
  contentIds?: readonly RowId[],
): ResultWriter {
  return new IpcResultWriter(file, layout, kind, contentIds);
}

class IpcResultWriter implements ResultWriter {
  private writer: RecordBatchWriter | undefined;
  private chunks: AsyncIterator<Uint8Array> | undefined;
  private pending: Promise<IteratorResult<Uint8Array>> | undefined;
  private ids: IdTypes | undefined;

  constructor(
    private readonly file: AtomicFile,
    private readonly layout: TableLayout,
    private readonly kind: IpcKind,
    private readonly contentIds?: readonly RowId[],
  ) {}

  async writeBatch(results: readonly UserResult[]): Promise<void> {
    if (results.length === 0) return;
    this.ids ??= chooseIdTypes(results, this.contentIds);
    this.open().write(buildResultBatch(results, this.layout, this.ids));
    await this.drain(false);
  }

  async finish(): Promise<void> {
    if (this.writer === undefined) {
      // No users: the file still gets the schema, so that readers see the columns.
      this.open().write(buildResultBatch([], this.layout, { user: 'utf8', content: 'utf8' }));
    }
    this.writer!.finish();
    await this.drain(true);
    await this.file.commit();
  }

  async abort(): Promise<void> {
    this.writer?.abort();
    await this.file.abort();
  }

  private open(): RecordBatchWriter {
    if (this.writer === undefined) {
      this.writer =
        this.kind === 'file' ? new RecordBatchFileWriter() : new RecordBatchStreamWriter();
      this.chunks = this.writer[Symbol.asyncIterator]();
    }
    return this.writer;
  }

  /**
   * Moves the bytes that the writer has produced into the file. The writer queues its output,
   * and a queued chunk resolves `next()` within the current turn of the event loop, so a
   * `next()` still pending after a `setImmediate` means that the queue is empty. With `toEnd`
   * it reads until the writer's output ends instead.
   */
  private async drain(toEnd: boolean): Promise<void> {
    const idle = Symbol('idle');
    for (;;) {
      this.pending ??= this.chunks!.next();
      const next = toEnd
        ? await this.pending
        : await Promise.race([
            this.pending,
            new Promise<typeof idle>((resolve) => setImmediate(() => resolve(idle))),
          ]);
      if (next === idle) return;
      this.pending = undefined;
      if (next.done === true) return;
      await this.file.write(next.value);
    }
  }
}

/** Returns a writer of Parquet results to `file`, with one row group per batch of users. */
export function createParquetWriter(
  file: AtomicFile,
  layout: TableLayout,
  compression: ParquetCompression,
  contentIds?: readonly RowId[],
): ResultWriter {
  return new ParquetResultWriter(file, layout, compression, contentIds);
}

/**
 * Rows per Parquet row group. The encoder keeps a row group's encoded pages in memory until it
 * is complete, so this bounds its memory. With the long layout that is an estimated 30 bytes a
 * row before compression, about 2 MB.
 */
const ROW_GROUP_ROWS = 65_536;

const CODECS: Readonly<Record<ParquetCompression, Compression>> = {
  zstd: Compression.ZSTD,
  snappy: Compression.SNAPPY,
  none: Compression.UNCOMPRESSED,
};

/**
 * Feeds record batches to parquet-wasm's streaming encoder and copies its output into the
 * file. The encoder pulls one batch at a time, and `writeBatch` waits until its batch has been
 * pulled, so at most one batch of results waits in memory besides the row group being encoded.
 */
class ParquetResultWriter implements ResultWriter {
  private readonly queue: WasmRecordBatch[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private output: Promise<void> | undefined;
  private failure: unknown;
  private ids: IdTypes | undefined;

  constructor(
    private readonly file: AtomicFile,
    private readonly layout: TableLayout,
    private readonly compression: ParquetCompression,
    private readonly contentIds?: readonly RowId[],
  ) {}

  async writeBatch(results: readonly UserResult[]): Promise<void> {
    if (results.length === 0) return;
    this.ids ??= chooseIdTypes(results, this.contentIds);
    await this.push(buildResultBatch(results, this.layout, this.ids));
  }

  async finish(): Promise<void> {
    if (this.output === undefined) {
      await this.push(buildResultBatch([], this.layout, { user: 'utf8', content: 'utf8' }));
    }
    this.closed = true;
    this.wake?.();
    await this.output;
    this.throwIfFailed();
    await this.file.commit();
  }

  async abort(): Promise<void> {
    this.closed = true;
    this.failure ??= new Error('aborted');
    for (const batch of this.queue.splice(0)) batch.free();
    this.wake?.();
    await this.output?.catch(() => undefined);
    await this.file.abort();
  }

  private async push(batch: RecordBatch): Promise<void> {
    this.throwIfFailed();
    const ipc = tableToIPC(new Table([batch]), 'stream');
    const table = WasmTable.fromIPCStream(ipc);
    for (const wasmBatch of table.recordBatches()) this.queue.push(wasmBatch);
    this.wake?.();
    this.output ??= this.start();
    // Wait until the encoder has taken the batch, or has failed.
    while (this.queue.length > 0 && this.failure === undefined) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.throwIfFailed();
  }

  private async start(): Promise<void> {
    const input = new ReadableStream<WasmRecordBatch>(
      {
        pull: async (controller) => {
          while (this.queue.length === 0 && !this.closed) {
            await new Promise<void>((resolve) => (this.wake = resolve));
          }
          this.wake = undefined;
          const next = this.queue.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(next);
        },
      },
      { highWaterMark: 0 },
    );
    const properties = new WriterPropertiesBuilder()
      .setCompression(CODECS[this.compression])
      .setCreatedBy('attnscore')
      .setMaxRowGroupSize(ROW_GROUP_ROWS)
      .build();
    try {
      const output = await transformParquetStream(input, properties);
      const reader = output.getReader();
      for (;;) {
        const next = (await reader.read()) as { done: boolean; value?: Uint8Array };
        if (next.done || next.value === undefined) break;
        await this.file.write(next.value);
      }
    } catch (error) {
      this.failure ??= error;
    }
  }

  private throwIfFailed(): void {
    if (this.failure === undefined) return;
    if (this.failure instanceof AttnScoreError) throw this.failure;
    const detail = this.failure instanceof Error ? this.failure.message : String(this.failure);
    throw new AttnScoreError('WRITE_FAILED', messages.writeFailed(this.file.target, detail), {
      cause: this.failure,
    });
  }
}
