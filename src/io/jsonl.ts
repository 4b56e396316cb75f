import { createInterface } from 'node:readline';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import {
  checkFloat32,
  Float32Builder,
  IdRegistry,
  openForReading,
  readFailed,
  scaleTinyRow,
} from './common.js';

/** Vectors read from a text file, before they become a `VectorSet`. */
export interface TextVectors {
  readonly ids: RowId[];
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
  /** One weight per row, present only when every row has one. */
  readonly weights?: Float64Array;
}

/**
 * One validated row of a JSONL or CSV vector file, as the row generators yield it. Every value
 * has been checked to be a finite float32, and the id to be valid and not seen before.
 */
export interface TextRow {
  /** The row number from 0, counting data rows only (no blank lines or header). */
  readonly row: number;
  /** The 1-based line, which for a CSV record spanning several lines is its last line. */
  readonly line: number;
  readonly id: RowId;
  /** The vector, of the same length on every row. */
  readonly values: readonly number[];
  /** The JSONL `weight` field, when the row has one. CSV rows never have one. */
  readonly weight?: number;
}

/** Options for {@link readJsonl} and {@link readJsonlRows}. */
export interface ReadJsonlOptions {
  /** The name used in messages, by default the path. */
  readonly source?: string;
}

/** The weight seen so far: on every row, on none, or not yet decided. */
interface WeightState {
  firstWith?: string;
  firstWithout?: string;
}

/**
 * Reads vectors from JSON Lines: one object per line such as
 * `{"id": "a", "vector": [0.5, 1], "weight": 2}`, where `weight` is optional but must then be on
 * every row. Blank lines are skipped. The file is streamed line by line. Throws an
 * {@link AttnScoreError} naming the line, row and column of the first invalid value, a ragged
 * row, a duplicate id, or an empty file.
 */
export async function readJsonl(
  path: string,
  options: ReadJsonlOptions = {},
): Promise<TextVectors> {
  const ids: RowId[] = [];
  const data = new Float32Builder();
  const weights: number[] = [];
  let dim = 0;
  for await (const row of readJsonlRows(path, options)) {
    ids.push(row.id);
    dim = row.values.length;
    for (const value of row.values) data.push(value);
    if (row.weight !== undefined) weights.push(row.weight);
  }
  const result = { ids, data: data.finish(), rows: ids.length, dim };
  // The row parser rejects a file where only some rows have a weight.
  if (weights.length === ids.length) return { ...result, weights: Float64Array.from(weights) };
  return result;
}

/**
 * Streams the rows of a JSON Lines vector file with every check of {@link readJsonl}, keeping
 * one line in memory plus one registry entry per id for the duplicate check. Throws like
 * {@link readJsonl}, at the first invalid row, or at the end when the file has no rows. Breaking
 * out of the loop closes the file.
 */
export async function* readJsonlRows(
  path: string,
  options: ReadJsonlOptions = {},
): AsyncGenerator<TextRow, void, undefined> {
  const source = options.source ?? path;
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });

  const registry = new IdRegistry(source);
  const weights: WeightState = {};
  let rows = 0;
  let dim = -1;
  let lineNumber = 0;
  try {
    for await (const rawLine of lines) {
      lineNumber++;
      // A UTF-8 byte order mark would make the first line invalid JSON.
      const line = lineNumber === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
      if (line.trim() === '') continue;

      const row = rows;
      const at = messages.rowAt(source, row, lineNumber);
      const record = parseRecord(line, at);
      const id = parseId(record, at);
      registry.add(id, row, lineNumber);

      const vector = record.vector;
      if (!Array.isArray(vector)) throw invalidRecord(messages.invalidVector(at, vector));
      if (dim === -1) {
        if (vector.length === 0) throw new AttnScoreError('EMPTY_INPUT', messages.zeroDim(source));
        dim = vector.length;
      } else if (vector.length !== dim) {
        throw new AttnScoreError('DIMENSION_MISMATCH', messages.raggedRow(at, vector.length, dim));
      }
      for (let column = 0; column < dim; column++) {
        const value: unknown = vector[column];
        if (typeof value !== 'number') throw invalidRecord(messages.notANumber(at, column, value));
        checkFloat32(value, at, column);
      }

      const weight = checkWeight(record, weights, source, row, lineNumber);
      rows++;
      const values = scaleTinyRow(vector as number[]);
      yield weight === undefined
        ? { row, line: lineNumber, id, values }
        : { row, line: lineNumber, id, values, weight };
    }
  } catch (error) {
    throw readFailed(source, error);
  } finally {
    lines.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }

  if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
}

/**
 * Counts the data rows of a JSON Lines vector file, the lines that are not blank, as
 * {@link readJsonlRows} would yield them from a valid file. The lines are not parsed, so an
 * invalid file is only rejected when it is read. Keeps one line in memory at a time.
 */
export async function countJsonlRows(
  path: string,
  options: ReadJsonlOptions = {},
): Promise<number> {
  const source = options.source ?? path;
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let rows = 0;
  try {
    // trim() also removes a byte order mark, so a first line with only a mark is blank too.
    for await (const line of lines) if (line.trim() !== '') rows++;
  } catch (error) {
    throw readFailed(source, error);
  } finally {
    lines.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
  return rows;
}

function parseRecord(line: string, at: string): Record<string, unknown> {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (error) {
    throw invalidRecord(messages.invalidJson(at, (error as Error).message));
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw invalidRecord(messages.notJsonObject(at));
  }
  const fields = record as Record<string, unknown>;
  if (!('id' in fields)) throw invalidRecord(messages.missingField(at, 'id'));
  if (!('vector' in fields)) throw invalidRecord(messages.missingField(at, 'vector'));
  return fields;
}

function parseId(record: Record<string, unknown>, at: string): RowId {
  const id = record.id;
  if ((typeof id === 'string' && id !== '') || (typeof id === 'number' && Number.isFinite(id))) {
    return id;
  }
  throw invalidRecord(messages.invalidId(at, id));
}

/**
 * Checks the optional weight of one row, rejecting a file where only some rows have one, and
 * returns it when present.
 */
function checkWeight(
  record: Record<string, unknown>,
  state: WeightState,
  source: string,
  row: number,
  line: number,
): number | undefined {
  const place = messages.rowPlace(row, line);
  if (!('weight' in record)) {
    state.firstWithout ??= place;
    if (state.firstWith !== undefined) {
      throw invalidRecord(messages.mixedWeights(source, state.firstWith, place));
    }
    return undefined;
  }
  const weight = record.weight;
  if (typeof weight !== 'number' || !Number.isFinite(Math.fround(weight))) {
    const code = typeof weight === 'number' ? 'NON_FINITE_VALUE' : 'INVALID_INPUT';
    const at = messages.rowAt(source, row, line);
    throw new AttnScoreError(code, messages.invalidWeight(at, weight));
  }
  state.firstWith ??= place;
  if (state.firstWithout !== undefined) {
    throw invalidRecord(messages.mixedWeights(source, place, state.firstWithout));
  }
  return weight;
}

function invalidRecord(message: string): AttnScoreError {
  return new AttnScoreError('INVALID_INPUT', message);
}
