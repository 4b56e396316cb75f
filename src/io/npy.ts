/**
 * Reader and writer for numpy's .npy format (versions 1.0, 2.0 and 3.0), restricted to
 * float32 and float64 arrays of rank 1 or 2 in C order. Format reference:
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { endianness } from 'node:os';
import type { FileHandle } from 'node:fs/promises';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { AtomicFile, type AtomicFileOptions } from './atomic.js';
import { openForReading, readFailed, scaleTinyRow } from './common.js';

/** The dtypes this module reads, as numpy writes them in the header's 'descr'. */
export type NpyDtype = '<f4' | '<f8' | '>f4' | '>f8';

const SUPPORTED_DTYPES: readonly string[] = ['<f4', '<f8', '>f4', '>f8'];
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

/** Bytes read per positioned read, which bounds the temporary buffer for conversions. */
const CHUNK_BYTES = 16 << 20;

/** The parsed header of a .npy file. */
export interface NpyHeader {
  /** Format version as [major, minor]. */
  readonly version: readonly [number, number];
  readonly dtype: NpyDtype;
  /** The array shape: one entry for a 1-D array, two for a 2-D array. */
  readonly shape: readonly number[];
  /** Byte offset of the first value. */
  readonly dataOffset: number;
}

/** An open .npy file whose rows are read on demand with positioned reads. */
export interface NpyFile {
  /** The name used in messages. */
  readonly source: string;
  readonly header: NpyHeader;
  /** shape[0]. */
  readonly rows: number;
  /** shape[1] for a 2-D array, 1 for a 1-D array. */
  readonly columns: number;
  /**
   * Reads rows `start` .. `start + count - 1` as float32 in native byte order. Throws
   * `NON_FINITE_VALUE` naming the row and column of the first NaN, infinity or float64 value
   * outside the float32 range.
   */
  readRows(start: number, count: number): Promise<Float32Array>;
  /**
   * Reads rows like {@link readRows} but keeps float64 precision and does not check the values,
   * so that callers such as the weights reader can report non-finite values in their own words.
   */
  readRowsFloat64(start: number, count: number): Promise<Float64Array>;
  /** Closes the file. Safe to call more than once. */
  close(): Promise<void>;
}

/** Options for {@link openNpy}. */
export interface OpenNpyOptions {
  /** The name used in messages, by default the path. */
  readonly source?: string;
}

/**
 * Opens a .npy file and validates its header: magic string, version, dtype, C order, rank 1 or
 * 2, and a file long enough for the data that the shape and dtype imply. Bytes after the data
 * are ignored, as numpy.load ignores them, because several arrays may be saved to one file.
 */
export async function openNpy(path: string, options: OpenNpyOptions = {}): Promise<NpyFile> {
  const source = options.source ?? path;
  const handle = await openForReading(path, source);
  try {
    const fileSize = (await handle.stat()).size;
    const header = await readHeader(handle, source, fileSize);
    return new OpenNpyFile(handle, source, header);
  } catch (error) {
    await handle.close();
    throw readFailed(source, error);
  }
}

/**
 * Opens a .npy file held in memory, such as an HTTP request body, with the checks of
 * {@link openNpy}. Nothing is copied until rows are read.
 */
export async function openNpyBuffer(bytes: Uint8Array, options: { source: string }): Promise<NpyFile> {
  const handle = memoryHandle(bytes);
  const header = await readHeader(handle, options.source, bytes.length);
  return new OpenNpyFile(handle, options.source, header);
}

/** Reads a whole in-memory .npy file as float32, as {@link readNpy} reads a file. */
export async function readNpyBuffer(bytes: Uint8Array, options: { source: string }): Promise<NpyArray> {
  const file = await openNpyBuffer(bytes, options);
  const data = await file.readRows(0, file.rows);
  return { header: file.header, data, rows: file.rows, columns: file.columns };
}

/**
 * Serves reads from memory through the three FileHandle methods that the reader uses
 * (read, stat, close), so that files and buffers share one reader and its checks.
 */
function memoryHandle(bytes: Uint8Array): FileHandle {
  const handle = {
    async read(target: Uint8Array, offset: number, length: number, position: number) {
      const end = Math.min(bytes.length, position + length);
      const bytesRead = Math.max(0, end - position);
      if (bytesRead > 0) target.set(bytes.subarray(position, end), offset);
      return { bytesRead, buffer: target };
    },
    async stat() {
      return { size: bytes.length };
    },
    async close() {},
  };
  return handle as unknown as FileHandle;
}

/** A whole .npy array converted to float32. */
export interface NpyArray {
  readonly header: NpyHeader;
  readonly data: Float32Array;
  readonly rows: number;
  readonly columns: number;
}

/** Reads a whole .npy file as float32 with the checks of {@link openNpy} and `readRows`. */
export async function readNpy(path: string, options: OpenNpyOptions = {}): Promise<NpyArray> {
  const file = await openNpy(path, options);
  try {
    const data = await file.readRows(0, file.rows);
    return { header: file.header, data, rows: file.rows, columns: file.columns };
  } finally {
    await file.close();
  }
}

async function readHeader(
  handle: FileHandle,
  source: string,
  fileSize: number,
): Promise<NpyHeader> {
  if (fileSize === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
  const prefix = Buffer.alloc(Math.min(12, fileSize));
  await readExactly(handle, prefix, 0, source);
  if (prefix.length < 10 || !prefix.subarray(0, 6).equals(MAGIC)) {
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.notNpy(source));
  }

  const major = prefix[6];
  const minor = prefix[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.npyVersion(source, major, minor));
  }
  // Version 1.0 stores the header length in 2 bytes, and 2.0 and 3.0 store it in 4 bytes.
  const lengthBytes = major === 1 ? 2 : 4;
  if (prefix.length < 8 + lengthBytes) throw headerError(source, 'the file ends inside the header');
  const headerLength = major === 1 ? prefix.readUInt16LE(8) : prefix.readUInt32LE(8);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (dataOffset > fileSize) {
    throw headerError(source, `the header length ${headerLength} runs past the end of the file`);
  }

  const headerBytes = Buffer.alloc(headerLength);
  await readExactly(handle, headerBytes, 8 + lengthBytes, source);
  // Version 3.0 exists only to allow UTF-8 field names in the header. Earlier ones use latin1.
  const text = headerBytes.toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortranOrder, shape } = parseHeaderDict(text, source);

  if (!SUPPORTED_DTYPES.includes(descr)) {
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.npyDtype(source, describeDtype(descr)));
  }
  const dtype = descr as NpyDtype;
  if (shape.length < 1 || shape.length > 2) {
    throw new AttnScoreError(
      'UNSUPPORTED_FORMAT',
      messages.npyRank(source, shape, 'a 1-D or 2-D array'),
    );
  }
  // A Fortran-order array with one row or one column has the same layout as in C order.
  if (fortranOrder && shape.length === 2 && shape[0] > 1 && shape[1] > 1) {
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.npyFortranOrder(source));
  }

  const expected = shape.reduce((product, size) => product * size, 1) * itemSize(dtype);
  const available = fileSize - dataOffset;
  if (available < expected) {
    throw new AttnScoreError(
      'INVALID_INPUT',
      messages.npyTruncated(source, shape, dtype, expected, available),
    );
  }
  return { version: [major, minor], dtype, shape, dataOffset };
}

interface HeaderDict {
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: number[];
}

/**
 * Parses the Python dict literal of the header, such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. Only the three keys that
 * numpy writes are read, each with a pattern, which is enough for files that numpy wrote.
 */
function parseHeaderDict(text: string, source: string): HeaderDict {
  const descrString = /['"]descr['"]\s*:\s*'([^']*)'/.exec(text);
  let descr: string;
  if (descrString !== null) {
    descr = descrString[1];
  } else if (/['"]descr['"]\s*:\s*\[/.test(text)) {
    descr = 'structured';
  } else {
    throw headerError(source, "the 'descr' entry is missing");
  }

  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (fortran === null) throw headerError(source, "the 'fortran_order' entry is missing");

  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (shapeMatch === null) throw headerError(source, "the 'shape' entry is missing");
  const shape: number[] = [];
  for (const part of shapeMatch[1].split(',')) {
    const size = part.trim();
    if (size === '') continue;
    // Files written by Python 2 may print sizes as long integers, such as 3L.
    if (!/^\d+L?$/.test(size)) throw headerError(source, `invalid shape (${shapeMatch[1]})`);
    shape.push(Number.parseInt(size, 10));
  }
  return { descr, fortranOrder: fortran[1] === 'True', shape };
}

/** Describes a dtype for messages: `'<i8' (int64)`, with the numpy name where it is simple. */
function describeDtype(descr: string): string {
  if (descr === 'structured') return 'a structured (record) dtype';
  const match = /^[<>|=]?([a-zA-Z])(\d+)$/.exec(descr);
  if (match === null) return `'${descr}'`;
  const bits = Number(match[2]) * 8;
  const names: Record<string, string> = {
    f: `float${bits}`,
    i: `int${bits}`,
    u: `uint${bits}`,
    c: `complex${bits}`,
    b: 'bool',
  };
  const name = names[match[1]];
  return name === undefined ? `'${descr}'` : `'${descr}' (${name})`;
}

function headerError(source: string, detail: string): AttnScoreError {
  return new AttnScoreError('UNSUPPORTED_FORMAT', messages.npyHeader(source, detail));
}

function itemSize(dtype: NpyDtype): number {
  return dtype.endsWith('4') ? 4 : 8;
}

/** Fills `target` from `position`, looping because a read may return fewer bytes than asked. */
async function readExactly(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  source: string,
): Promise<void> {
  let offset = 0;
  while (offset < target.length) {
    const length = target.length - offset;
    const { bytesRead } = await handle.read(target, offset, length, position + offset);
    if (bytesRead === 0) {
      // The header check saw enough bytes, so the file shrank while it was being read.
      throw new AttnScoreError('READ_FAILED', messages.readFailed(source, 'the file ended early'));
    }
    offset += bytesRead;
  }
}

class OpenNpyFile implements NpyFile {
  readonly rows: number;
  readonly columns: number;
  private readonly itemSize: number;
  private readonly littleEndian: boolean;
  private closed = false;

  constructor(
    private readonly handle: FileHandle,
    readonly source: string,
    readonly header: NpyHeader,
  ) {
    this.rows = header.shape[0];
    this.columns = header.shape.length === 2 ? header.shape[1] : 1;
    this.itemSize = itemSize(header.dtype);
    this.littleEndian = header.dtype.startsWith('<');
  }

  async readRows(start: number, count: number): Promise<Float32Array> {
    this.checkRange(start, count);
    const out = new Float32Array(count * this.columns);
    const nativeFloat32 = this.itemSize === 4 && this.littleEndian === HOST_IS_LITTLE_ENDIAN;
    await this.readChunks(start, count, (bytes, valueOffset) => {
      const values = bytes.length / this.itemSize;
      if (nativeFloat32) {
        new Uint8Array(out.buffer, valueOffset * 4, bytes.length).set(bytes);
        for (let i = valueOffset; i < valueOffset + values; i++) {
          if (!Number.isFinite(out[i])) this.throwNonFinite(start, i, out[i]);
        }
        return;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < values; i++) {
        const value = this.decode(view, i);
        const rounded = Math.fround(value);
        // An infinity after rounding is either non-finite already or a float64 too large.
        if (!Number.isFinite(rounded)) this.throwNonFinite(start, valueOffset + i, value);
        out[valueOffset + i] = rounded;
      }
    });
    if (this.itemSize === 8) await this.rescueTinyRows(start, out);
    return out;
  }

  /**
   * Re-reads in float64, scales and rounds again every row of a float64 file
   * that rounded to values below float32's normal range, which would lose its
   * direction (see scaleTinyRow). Such rows are rare, zero rows among them.
   */
  private async rescueTinyRows(start: number, out: Float32Array): Promise<void> {
    const columns = this.columns;
    for (let row = 0; row < out.length / columns; row++) {
      let max = 0;
      for (let column = 0; column < columns; column++) {
        max = Math.max(max, Math.abs(out[row * columns + column]!));
      }
      if (max >= 2 ** -100) continue;
      const values = scaleTinyRow(await this.readRowsFloat64(start + row, 1));
      for (let column = 0; column < columns; column++) {
        out[row * columns + column] = Math.fround(values[column]!);
      }
    }
  }

  async readRowsFloat64(start: number, count: number): Promise<Float64Array> {
    this.checkRange(start, count);
    const out = new Float64Array(count * this.columns);
    await this.readChunks(start, count, (bytes, valueOffset) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const values = bytes.length / this.itemSize;
      for (let i = 0; i < values; i++) {
        out[valueOffset + i] = this.decode(view, i);
      }
    });
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private checkRange(start: number, count: number): void {
    const valid =
      Number.isSafeInteger(start) &&
      Number.isSafeInteger(count) &&
      start >= 0 &&
      count >= 0 &&
      start + count <= this.rows;
    if (!valid) {
      throw new AttnScoreError(
        'INTERNAL',
        messages.npyRowRange(this.source, start, count, this.rows),
      );
    }
  }

  /**
   * Reads the rows in chunks of at most CHUNK_BYTES (whole rows, at least one) and passes each
   * chunk's bytes to `consume` with the offset, in values, of its first value after `start`.
   * The chunk buffer is reused, so `consume` must copy what it keeps.
   */
  private async readChunks(
    start: number,
    count: number,
    consume: (bytes: Uint8Array, valueOffset: number) => void,
  ): Promise<void> {
    const rowBytes = this.columns * this.itemSize;
    if (rowBytes === 0 || count === 0) return;
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    const chunk = new Uint8Array(Math.min(rowsPerChunk, count) * rowBytes);
    for (let done = 0; done < count; done += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, count - done);
      const bytes = chunk.subarray(0, rows * rowBytes);
      const position = this.header.dataOffset + (start + done) * rowBytes;
      try {
        await readExactly(this.handle, bytes, position, this.source);
      } catch (error) {
        throw readFailed(this.source, error);
      }
      consume(bytes, done * this.columns);
    }
  }

  /** Decodes value `index` of `view` in the file's dtype and byte order. */
  private decode(view: DataView, index: number): number {
    return this.itemSize === 4
      ? view.getFloat32(index * 4, this.littleEndian)
      : view.getFloat64(index * 8, this.littleEndian);
  }

  /** Throws for value `valueIndex` of a read that began at row `start`. */
  private throwNonFinite(start: number, valueIndex: number, value: number): never {
    const row = start + Math.floor(valueIndex / this.columns);
    const column = valueIndex % this.columns;
    const message = Number.isFinite(value)
      ? messages.float32Range(messages.rowAt(this.source, row), column, value)
      : messages.nonFinite(this.source, row, column, value);
    throw new AttnScoreError('NON_FINITE_VALUE', message);
  }
}

/**
 * Builds a .npy header for a C-order array: format version 1.0, or 2.0 when the header does not
 * fit 1.0's 2-byte length field. The header is padded with spaces so that the data starts at a
 * multiple of 64 bytes, as numpy pads it.
 */
export function npyHeaderBytes(shape: readonly number[], dtype: NpyDtype = '<f4'): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  for (const [major, lengthBytes] of [
    [1, 2],
    [2, 4],
  ] as const) {
    const unpadded = MAGIC.length + 2 + lengthBytes + dict.length + 1;
    const padding = (64 - (unpadded % 64)) % 64;
    const headerLength = dict.length + padding + 1;
    if (lengthBytes === 2 && headerLength > 0xffff) continue;
    const bytes = Buffer.alloc(unpadded + padding);
    MAGIC.copy(bytes, 0);
    bytes[6] = major;
    bytes[7] = 0;
    if (lengthBytes === 2) bytes.writeUInt16LE(headerLength, 8);
    else bytes.writeUInt32LE(headerLength, 8);
    const text = dict + ' '.repeat(padding) + '\n';
    bytes.write(text, 8 + lengthBytes, 'latin1');
    return bytes;
  }
  throw new AttnScoreError('INTERNAL', `a .npy header for shape ${shapeText} is too long`);
}

/**
 * Writes a float32 `rows` x `columns` matrix to a .npy file block by block through an
 * {@link AtomicFile}, so that the whole matrix never has to be in memory and the target only
 * appears once every row has been written.
 */
export class NpyWriter {
  private written = 0;

  private constructor(
    private readonly file: AtomicFile,
    /** Rows declared in the header. */
    readonly rows: number,
    /** Values per row. */
    readonly columns: number,
  ) {}

  /** Opens `target` through an {@link AtomicFile} and writes the header. */
  static async open(
    target: string,
    rows: number,
    columns: number,
    options: AtomicFileOptions = {},
  ): Promise<NpyWriter> {
    const file = await AtomicFile.open(target, options);
    try {
      await file.write(npyHeaderBytes([rows, columns]));
    } catch (error) {
      await file.abort();
      throw error;
    }
    return new NpyWriter(file, rows, columns);
  }

  /** Rows written so far. */
  get rowsWritten(): number {
    return this.written;
  }

  /** Appends whole rows in row-major order. The caller may reuse the block once this resolves. */
  async writeRows(block: Float32Array): Promise<void> {
    const target = this.file.target;
    if (this.columns === 0 ? block.length !== 0 : block.length % this.columns !== 0) {
      const message = messages.npyBlockLength(target, block.length, this.columns);
      throw new AttnScoreError('INTERNAL', message);
    }
    const blockRows = this.columns === 0 ? 0 : block.length / this.columns;
    if (this.written + blockRows > this.rows) {
      throw new AttnScoreError(
        'INTERNAL',
        messages.npyRowCount(target, this.written + blockRows, this.rows),
      );
    }
    let bytes = new Uint8Array(block.buffer, block.byteOffset, block.byteLength);
    if (!HOST_IS_LITTLE_ENDIAN) {
      // The header declares '<f4', so big-endian hosts swap each value into a copy.
      const swapped = Buffer.from(bytes);
      swapped.swap32();
      bytes = swapped;
    }
    await this.file.write(bytes);
    this.written += blockRows;
  }

  /** Checks that every declared row was written, then commits the file. */
  async finish(): Promise<void> {
    if (this.written !== this.rows) {
      await this.file.abort();
      throw new AttnScoreError(
        'INTERNAL',
        messages.npyRowCount(this.file.target, this.written, this.rows),
      );
    }
    await this.file.commit();
  }

  /** Discards the output, leaving any earlier target file untouched. */
  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/** The writer behind the `--matrix out.npy` option: U x C float32 similarities. */
export type MatrixWriter = NpyWriter;

/** Opens a {@link NpyWriter} for a `rows` x `columns` float32 matrix at `target`. */
export function openMatrixWriter(
  target: string,
  rows: number,
  columns: number,
  options: AtomicFileOptions = {},
): Promise<MatrixWriter> {
  return NpyWriter.open(target, rows, columns, options);
}
