/**
 * Turns what callers pass to the API (typed arrays, nested arrays, file
 * paths) into validated {@link VectorSet}s.
 */
import { AttnScoreError } from './scoring/errors.js';
import { messages } from './scoring/messages.js';
import type { RowId, VectorSet } from './scoring/types.js';
import { readVectors, readWeights } from './io/index.js';
import { scaleTinyRow } from './io/common.js';
import type { ColumnOptions } from './io/columnar.js';
import type { VectorFormat } from './io/read.js';

/** Vectors given in memory: a flat row-major array with its shape, or one array per row. */
export interface VectorInput {
  readonly data: Float32Array | Float64Array | readonly number[] | readonly ArrayLike<number>[];
  /** Required with a flat array; taken from the data for nested arrays. */
  readonly rows?: number;
  readonly dim?: number;
  /** One id per row; row numbers when omitted. */
  readonly ids?: readonly RowId[];
  /** Name used in error messages; `users` or `contents` when omitted. */
  readonly source?: string;
}

/** A path to a `.npy`, `.jsonl`, `.csv`, Parquet or Arrow IPC file, in-memory vectors, or an already read set. */
export type VectorSource = string | VectorInput | VectorSet;

/** Options of {@link loadVectors} for file sources. */
export interface LoadOptions {
  readonly role: 'users' | 'contents';
  readonly format?: VectorFormat;
  /** The id, vector and weight columns of Parquet and Arrow IPC tables. */
  readonly columns?: ColumnOptions;
  /** Text file with one id per row, for `.npy` files. */
  readonly idsPath?: string;
}

/** Reads or converts `source` into a validated vector set. */
export async function loadVectors(source: VectorSource, options: LoadOptions): Promise<VectorSet> {
  if (typeof source === 'string') {
    return readVectors(source, {
      role: options.role,
      format: options.format,
      idsPath: options.idsPath,
      columns: options.columns,
    });
  }
  return toVectorSet(source, options.role);
}

/** Converts in-memory vectors into a vector set, validating shape and values. */
export function toVectorSet(input: VectorInput | VectorSet, defaultSource: string): VectorSet {
  const source = input.source ?? defaultSource;
  const { data, rows, dim } = flatten(input, source);
  if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
  if (dim === 0) throw new AttnScoreError('EMPTY_INPUT', messages.zeroDim(source));
  checkFinite(data, dim, source);
  const ids = input.ids ?? Array.from({ length: rows }, (_, row) => row);
  if (ids.length !== rows) {
    throw new AttnScoreError('INVALID_INPUT', messages.idCount(`${source} ids`, ids.length, rows));
  }
  if (input.ids) checkUniqueIds(input.ids, source);
  const weights = 'weights' in input ? input.weights : undefined;
  return { ids, data, rows, dim, source, ...(weights ? { weights } : {}) };
}

/**
 * Rejects a repeated id, as the file readers do. Ids are compared as strings, because
 * exclusions and pairs look ids up by their string form (JSON object keys are strings), where 7
 * and "7" are the same key.
 */
function checkUniqueIds(ids: readonly RowId[], source: string): void {
  const firstRow = new Map<string, number>();
  ids.forEach((id, row) => {
    const first = firstRow.get(String(id));
    if (first !== undefined) {
      throw new AttnScoreError(
        'INVALID_INPUT',
        messages.duplicateId(`${source} ids`, id, `row ${first}`, `row ${row}`),
      );
    }
    firstRow.set(String(id), row);
  });
}

function flatten(
  input: VectorInput | VectorSet,
  source: string,
): { data: Float32Array; rows: number; dim: number } {
  const { data } = input;
  const flatNumbers = Array.isArray(data) && (data.length === 0 || typeof data[0] === 'number');
  if (flatNumbers && data.length > 0) {
    return flatten({ ...input, data: Float64Array.from(data as unknown as number[]) }, source);
  }
  if (data instanceof Float32Array || data instanceof Float64Array) {
    const rows = input.rows;
    const dim = input.dim ?? (rows ? data.length / rows : undefined);
    if (rows === undefined || dim === undefined || !Number.isInteger(dim)) {
      throw new AttnScoreError(
        'INVALID_INPUT',
        `${source}: a flat array needs rows and dim (got rows ${rows}, dim ${input.dim}, ${data.length} values)`,
      );
    }
    if (rows * dim !== data.length) {
      throw new AttnScoreError('INVALID_INPUT', messages.dataLength(source, data.length, rows, dim));
    }
    if (data instanceof Float32Array) return { data, rows, dim };
    checkFinite(data, dim, source);
    const converted = new Float32Array(rows * dim);
    for (let row = 0; row < rows; row++) {
      converted.set(scaleTinyRow(data.slice(row * dim, (row + 1) * dim)), row * dim);
    }
    return { data: converted, rows, dim };
  }
  if (!Array.isArray(data)) {
    throw new AttnScoreError(
      'INVALID_INPUT',
      `${source}: vectors must be a Float32Array, a Float64Array or an array of rows`,
    );
  }
  const rows = data.length;
  const dim = rows > 0 ? data[0]!.length : 0;
  const flat = new Float32Array(rows * dim);
  const rowValues = new Float64Array(dim);
  for (let row = 0; row < rows; row++) {
    const vector = data[row]!;
    if (vector.length !== dim) {
      throw new AttnScoreError(
        'DIMENSION_MISMATCH',
        `${source}: row ${row} has ${vector.length} values but row 0 has ${dim}`,
      );
    }
    for (let column = 0; column < dim; column++) {
      const value = vector[column]!;
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new AttnScoreError('NON_FINITE_VALUE', messages.nonFinite(source, row, column, value));
      }
      if (!fitsFloat32(value)) {
        throw new AttnScoreError('NON_FINITE_VALUE', messages.float32Range(`${source}: row ${row}`, column, value));
      }
      rowValues[column] = value;
    }
    flat.set(scaleTinyRow(rowValues), row * dim);
  }
  return { data: flat, rows, dim };
}

function fitsFloat32(value: number): boolean {
  return Number.isFinite(Math.fround(value));
}

/** Rejects the first NaN, infinity or (for float64 input) value beyond float32's range. */
function checkFinite(data: Float32Array | Float64Array, dim: number, source: string): void {
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    // value - value is 0 for finite values and NaN for NaN and infinities.
    if (value - value === 0 && fitsFloat32(value)) continue;
    const row = Math.floor(i / dim);
    const message =
      value - value !== 0
        ? messages.nonFinite(source, row, i % dim, value)
        : messages.float32Range(`${source}: row ${row}`, i % dim, value);
    throw new AttnScoreError('NON_FINITE_VALUE', message);
  }
}

/** Reads weights from a path or validates in-memory ones: one finite value per content. */
export async function loadWeights(
  weights: string | ArrayLike<number>,
  contents: number,
  source = 'weights',
): Promise<Float64Array> {
  if (typeof weights === 'string') return readWeights(weights, contents);
  if (weights.length !== contents) {
    throw new AttnScoreError('INVALID_INPUT', messages.weightCount(source, weights.length, contents));
  }
  const result = Float64Array.from(weights);
  for (let row = 0; row < result.length; row++) {
    const value = result[row]!;
    if (!Number.isFinite(value) || !fitsFloat32(value)) {
      throw new AttnScoreError('NON_FINITE_VALUE', messages.nonFiniteWeight(source, row, value));
    }
  }
  return result;
}
