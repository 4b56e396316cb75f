/**
 * Vectors, ids and weights from Arrow record batches, the in-memory form that both the Parquet
 * and the Arrow IPC readers produce. A vector column may be a fixed-size list
 * (`fixed_size_list<float>[128]`, DuckDB `FLOAT[128]` read back from Arrow), a variable list
 * (`list<float>`, `large_list<double>`, Spark `array<float>`) whose rows all have the same
 * length, or one numeric column per dimension.
 */
import {
  DataType,
  type FixedSizeList,
  Type,
  type Data,
  type Field,
  type RecordBatch,
  type Schema,
  type Vector,
} from 'apache-arrow';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import { checkFloat32, IdRegistry, scaleTinyRow } from './common.js';

/** The id, vector and weight columns of a Parquet or Arrow table. */
export interface ColumnOptions {
  /** The id column. By default the only string or integer column, else row numbers. */
  readonly idColumn?: string;
  /** The vector column: a list or fixed-size list of numbers. */
  readonly vectorColumn?: string;
  /**
   * One numeric column per dimension, in order: a list of names, or one string that is a
   * comma-separated list or a prefix ending in `*` (`emb_*` selects `emb_0`, `emb_1`, ... in
   * the table's column order).
   */
  readonly vectorColumns?: string | readonly string[];
  /** The weight column, read for contents only. By default a column named `weight`. */
  readonly weightColumn?: string;
}

/** The columns chosen for one table. */
export interface ColumnLayout {
  readonly id: string | undefined;
  readonly vector: { readonly kind: 'list'; readonly name: string } | {
    readonly kind: 'columns';
    readonly names: readonly string[];
  };
  readonly weight: string | undefined;
}

/** The rows of one record batch, validated and converted. */
export interface DecodedRows {
  readonly ids: RowId[];
  /** `rows` x `dim` float32 values, row-major. */
  readonly data: Float32Array;
  readonly rows: number;
  readonly weights: Float64Array | undefined;
}

/** Returns the names of the columns that a table needs for `layout`, for column projection. */
export function layoutColumns(layout: ColumnLayout): string[] {
  const names = layout.vector.kind === 'list' ? [layout.vector.name] : [...layout.vector.names];
  if (layout.id !== undefined) names.unshift(layout.id);
  if (layout.weight !== undefined) names.push(layout.weight);
  return names;
}

/**
 * Chooses the id, vector and weight columns of `schema` from `options`, or detects them when
 * exactly one column fits. Throws `INVALID_INPUT` naming a missing column and listing the
 * table's columns, and `UNSUPPORTED_FORMAT` for a column of the wrong type.
 */
export function resolveLayout(
  schema: Schema,
  source: string,
  options: ColumnOptions,
  role: 'users' | 'contents',
): ColumnLayout {
  const fields = schema.fields;
  if (options.vectorColumn !== undefined && options.vectorColumns !== undefined) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.vectorColumnConflict());
  }
  const vector = chooseVector(fields, source, options);
  const vectorNames = vector.kind === 'list' ? [vector.name] : vector.names;
  const weight = role === 'contents' ? chooseWeight(fields, source, options) : undefined;
  const taken = new Set([...vectorNames, ...(weight === undefined ? [] : [weight])]);
  const id = chooseId(fields, source, options, taken);
  return { id, vector, weight };
}

function chooseVector(
  fields: readonly Field[],
  source: string,
  options: ColumnOptions,
): ColumnLayout['vector'] {
  if (options.vectorColumn !== undefined) {
    const field = findField(fields, source, options.vectorColumn);
    if (!isNumericList(field.type)) {
      throw new AttnScoreError(
        'UNSUPPORTED_FORMAT',
        messages.columnType(source, field.name, String(field.type), 'a list or fixed-size list of numbers'),
      );
    }
    return { kind: 'list', name: field.name };
  }
  if (options.vectorColumns !== undefined) {
    const names = selectColumns(fields, source, options.vectorColumns);
    for (const name of names) {
      const field = findField(fields, source, name);
      if (!isNumeric(field.type)) {
        throw new AttnScoreError(
          'UNSUPPORTED_FORMAT',
          messages.columnType(source, name, String(field.type), 'a number'),
        );
      }
    }
    return { kind: 'columns', names };
  }
  const lists = fields.filter((field) => isNumericList(field.type));
  if (lists.length === 1) return { kind: 'list', name: lists[0]!.name };
  if (lists.length > 1) {
    const names = lists.map((field) => field.name);
    throw new AttnScoreError('INVALID_INPUT', messages.vectorColumnAmbiguous(source, names));
  }
  const numbered = numberedFamily(fields);
  if (numbered !== undefined) return { kind: 'columns', names: numbered };
  throw new AttnScoreError('INVALID_INPUT', messages.vectorColumnMissing(source, describe(fields)));
}

/**
 * Returns the float columns when every one of them is named by one prefix and a number
 * (`f0`, `f1`, ... or `emb_0`, `emb_1`, ...), sorted by that number, or else undefined.
 */
function numberedFamily(fields: readonly Field[]): string[] | undefined {
  const floats = fields.filter((field) => DataType.isFloat(field.type));
  if (floats.length === 0) return undefined;
  const parsed = floats.map((field) => /^(.*?)(\d+)$/.exec(field.name));
  const prefix = parsed[0]?.[1];
  if (parsed.some((match) => match === null || match[1] !== prefix)) return undefined;
  return parsed
    .map((match) => ({ name: match![0], index: Number(match![2]) }))
    .sort((a, b) => a.index - b.index)
    .map((entry) => entry.name);
}

function selectColumns(
  fields: readonly Field[],
  source: string,
  selection: string | readonly string[],
): string[] {
  if (typeof selection !== 'string') return [...selection];
  const text = selection.trim();
  if (text.endsWith('*') && !text.includes(',')) {
    const prefix = text.slice(0, -1);
    const names = fields.map((field) => field.name).filter((name) => name.startsWith(prefix));
    if (names.length === 0) {
      throw new AttnScoreError('INVALID_INPUT', messages.noColumnWithPrefix(source, prefix, describe(fields)));
    }
    return names;
  }
  return text.split(',').map((name) => name.trim()).filter((name) => name !== '');
}

function chooseWeight(
  fields: readonly Field[],
  source: string,
  options: ColumnOptions,
): string | undefined {
  const name = options.weightColumn;
  if (name === undefined) {
    const field = fields.find((candidate) => candidate.name === 'weight');
    return field !== undefined && isNumeric(field.type) ? field.name : undefined;
  }
  const field = findField(fields, source, name);
  if (!isNumeric(field.type)) {
    throw new AttnScoreError(
      'UNSUPPORTED_FORMAT',
      messages.columnType(source, name, String(field.type), 'a number'),
    );
  }
  return field.name;
}

function chooseId(
  fields: readonly Field[],
  source: string,
  options: ColumnOptions,
  taken: ReadonlySet<string>,
): string | undefined {
  if (options.idColumn !== undefined) {
    const field = findField(fields, source, options.idColumn);
    if (!isIdType(field.type)) {
      throw new AttnScoreError(
        'UNSUPPORTED_FORMAT',
        messages.columnType(source, field.name, String(field.type), 'a string or an integer'),
      );
    }
    return field.name;
  }
  const candidates = fields.filter((field) => !taken.has(field.name) && isIdType(field.type));
  if (candidates.length === 1) return candidates[0]!.name;
  if (candidates.length === 0) return undefined;
  const names = candidates.map((field) => field.name);
  throw new AttnScoreError('INVALID_INPUT', messages.idColumnAmbiguous(source, names));
}

function findField(fields: readonly Field[], source: string, name: string): Field {
  const field = fields.find((candidate) => candidate.name === name);
  if (field === undefined) {
    throw new AttnScoreError('INVALID_INPUT', messages.columnNotFound(source, name, describe(fields)));
  }
  return field;
}

/** Lists the columns of a table with their types, for messages: `id (Utf8), vec (List<Float32>)`. */
function describe(fields: readonly Field[]): string {
  return fields.map((field) => `${field.name} (${String(field.type)})`).join(', ');
}

function isNumeric(type: DataType): boolean {
  return DataType.isFloat(type) || DataType.isInt(type);
}

function isNumericList(type: DataType): boolean {
  const listTypes = [Type.List, Type.FixedSizeList, Type.LargeList];
  if (!listTypes.includes(type.typeId)) return false;
  const child = type.children[0]?.type;
  return child !== undefined && isNumeric(child);
}

function isIdType(type: DataType): boolean {
  if (DataType.isDictionary(type)) return isIdType(type.dictionary);
  return DataType.isInt(type) || DataType.isUtf8(type) || DataType.isLargeUtf8(type);
}

/**
 * Decodes record batches of one table with a fixed layout, checking every value and keeping
 * the state that spans batches: the row count, the vector length and the ids seen so far.
 */
export class BatchDecoder {
  private row = 0;
  private dimension: number | undefined;
  private readonly registry: IdRegistry;

  /** `dim`, when given, is the vector length that every row must have. */
  constructor(
    private readonly layout: ColumnLayout,
    private readonly source: string,
    dim?: number,
  ) {
    this.registry = new IdRegistry(source);
    this.dimension = dim;
  }

  /** The vector length, known once a row has been decoded or from a per-dimension layout. */
  get dim(): number | undefined {
    return this.layout.vector.kind === 'columns' ? this.layout.vector.names.length : this.dimension;
  }

  /** The rows decoded so far, counted from the table's first row. */
  get rowsDecoded(): number {
    return this.row;
  }

  /**
   * Skips `count` rows without decoding them, for a row range that starts after them. Their
   * ids are not checked for duplicates.
   */
  skip(count: number): void {
    this.row += count;
  }

  /** Decodes every row of `batch`, which continues the table where the last batch ended. */
  decode(batch: RecordBatch): DecodedRows {
    const rows = batch.numRows;
    const first = this.row;
    const wide =
      this.layout.vector.kind === 'list'
        ? this.decodeList(batch, this.layout.vector.name, first)
        : this.decodeColumns(batch, this.layout.vector.names, first);
    const ids = this.decodeIds(batch, first);
    const weights = this.layout.weight === undefined ? undefined : this.decodeWeights(batch, first);
    this.row += rows;
    return { ids, data: toFloat32Rows(wide, this.dim ?? 0), rows, weights };
  }

  private column(batch: RecordBatch, name: string): Vector {
    const column = batch.getChild(name);
    if (column === null) {
      const fields = describe(batch.schema.fields);
      throw new AttnScoreError('INVALID_INPUT', messages.columnNotFound(this.source, name, fields));
    }
    return column;
  }

  private decodeList(batch: RecordBatch, name: string, first: number): Float64Array {
    const column = this.column(batch, name);
    const rows = batch.numRows;
    const chunks = column.data as Data[];
    let out: Float64Array | undefined;
    let row = 0;
    for (const chunk of chunks) {
      const child = chunk.children[0]!;
      const values = child.values as ArrayLike<number | bigint>;
      const checkNulls = child.nullCount > 0;
      for (let index = 0; index < chunk.length; index++, row++) {
        if (!chunk.getValid(index)) {
          throw new AttnScoreError('INVALID_INPUT', messages.nullVector(this.at(first + row), name));
        }
        const [start, end] = listBounds(chunk, index);
        const length = end - start;
        if (this.dimension === undefined) {
          if (length === 0) throw new AttnScoreError('EMPTY_INPUT', messages.zeroDim(this.source));
          this.dimension = length;
        }
        const dim = this.dimension;
        if (length !== dim) {
          throw new AttnScoreError('INVALID_INPUT', messages.raggedRow(this.cell(first + row, name), length, dim));
        }
        out ??= new Float64Array(rows * dim);
        const base = row * dim;
        for (let element = 0; element < dim; element++) {
          const position = start + element;
          if (checkNulls && !child.getValid(position)) {
            throw new AttnScoreError('INVALID_INPUT', messages.nullElement(this.at(first + row), name, element));
          }
          const value = Number(values[position]);
          // Messages are built only for a bad value: building one per value would dominate.
          if (!isFloat32Finite(value)) {
            throw new AttnScoreError('NON_FINITE_VALUE', messages.badListValue(this.at(first + row), name, element, value));
          }
          out[base + element] = value;
        }
      }
    }
    return out ?? new Float64Array(0);
  }

  private decodeColumns(batch: RecordBatch, names: readonly string[], first: number): Float64Array {
    const rows = batch.numRows;
    const dim = names.length;
    const out = new Float64Array(rows * dim);
    names.forEach((name, element) => {
      const column = this.column(batch, name);
      let row = 0;
      for (const chunk of column.data as Data[]) {
        const values = chunk.values as ArrayLike<number | bigint>;
        const checkNulls = chunk.nullCount > 0;
        for (let index = 0; index < chunk.length; index++, row++) {
          if (checkNulls && !chunk.getValid(index)) {
            throw new AttnScoreError('INVALID_INPUT', messages.nullValue(this.at(first + row), name));
          }
          const value = Number(values[index]);
          if (!isFloat32Finite(value)) checkFloat32(value, this.cell(first + row, name), element);
          out[row * dim + element] = value;
        }
      }
    });
    return out;
  }

  /** Names row `row` of the table for messages. */
  private at(row: number): string {
    return messages.rowAt(this.source, row);
  }

  /** Names row `row` and column `name` for messages. */
  private cell(row: number, name: string): string {
    return `${this.at(row)}, column ${show(name)}`;
  }

  private decodeIds(batch: RecordBatch, first: number): RowId[] {
    const rows = batch.numRows;
    const name = this.layout.id;
    const ids: RowId[] = new Array<RowId>(rows);
    if (name === undefined) {
      for (let index = 0; index < rows; index++) ids[index] = first + index;
      return ids;
    }
    const column = this.column(batch, name);
    for (let index = 0; index < rows; index++) {
      const value: unknown = column.get(index);
      if (value === null || value === undefined) {
        throw new AttnScoreError('INVALID_INPUT', messages.nullValue(this.at(first + index), name));
      }
      const id = toRowId(value);
      if (id === '') throw new AttnScoreError('INVALID_INPUT', messages.emptyId(this.at(first + index)));
      this.registry.add(id, first + index);
      ids[index] = id;
    }
    return ids;
  }

  private decodeWeights(batch: RecordBatch, first: number): Float64Array {
    const name = this.layout.weight!;
    const column = this.column(batch, name);
    const weights = new Float64Array(batch.numRows);
    for (let index = 0; index < weights.length; index++) {
      const value: unknown = column.get(index);
      if (value === null || value === undefined) {
        throw new AttnScoreError('INVALID_INPUT', messages.nullValue(this.at(first + index), name));
      }
      const weight = Number(value);
      if (!isFloat32Finite(weight)) {
        throw new AttnScoreError('NON_FINITE_VALUE', messages.weightValue(this.cell(first + index, name), weight));
      }
      weights[index] = weight;
    }
    return weights;
  }
}

/**
 * Returns the start and end of row `index` of a list chunk in its child's positions. A sliced
 * apache-arrow `Data` keeps `offset` for its validity bitmap only: its value offsets, and the
 * child of a fixed-size list, are already sliced, so they are indexed from 0.
 */
function listBounds(chunk: Data, index: number): [number, number] {
  if (chunk.type.typeId === Type.FixedSizeList) {
    const size = (chunk.type as FixedSizeList).listSize;
    return [index * size, (index + 1) * size];
  }
  const offsets = chunk.valueOffsets as Int32Array | BigInt64Array;
  return [Number(offsets[index]), Number(offsets[index + 1])];
}

/**
 * Rounds float64 rows to float32. A row whose values would all round to float32 subnormals or
 * zero is scaled up by powers of two first, as the other readers do, so that it keeps its
 * direction.
 */
function toFloat32Rows(wide: Float64Array, dim: number): Float32Array {
  const out = new Float32Array(wide.length);
  for (let start = 0; start < wide.length; start += dim) {
    const row = scaleTinyRow(wide.subarray(start, start + dim));
    out.set(row, start);
  }
  return out;
}

/** Converts an id cell: strings as they are, integers as numbers (int64 beyond 2^53 as text). */
function toRowId(value: unknown): RowId {
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (typeof value === 'number') return value;
  return String(value);
}

/** Returns whether `value` stays finite when rounded to float32. */
function isFloat32Finite(value: number): boolean {
  return Number.isFinite(Math.fround(value));
}

function show(name: string): string {
  return JSON.stringify(name);
}
