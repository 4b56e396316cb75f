import { createInterface } from 'node:readline';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import { checkFloat32, Float32Builder, IdRegistry, openForReading, readFailed } from './common.js';

/** Vectors read from a text file, before they become a `VectorSet`. */
export interface TextVectors {
  readonly ids: RowId[];
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
  /** One weight per row, present only when every row has one. */
  readonly weights?: Float64Array;
}

/** Options for {@link readJsonl}. */
export interface ReadJsonlOptions {
  /** The name used in messages, by default the path. */
  readonly source?: string;
}

/** The weight seen so far: on every row, on none, or not yet decided. */
interface WeightState {
  values: number[];
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
  const source = options.source ?? path;
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });

  const ids: RowId[] = [];
  const registry = new IdRegistry(source);
  const data = new Float32Builder();
  const weights: WeightState = { values: [] };
  let dim = -1;
  let lineNumber = 0;
  try {
    for await (const rawLine of lines) {
      lineNumber++;
      // A UTF-8 byte order mark would make the first line invalid JSON.
      const line = lineNumber === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
      if (line.trim() === '') continue;

      const row = ids.length;
      const at = messages.rowAt(source, row, lineNumber);
      const record = parseRecord(line, at);
      const id = parseId(record, at);
      registry.add(id, row, lineNumber);
      ids.push(id);

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
        data.push(value);
      }

      collectWeight(record, weights, source, row, lineNumber);
    }
  } catch (error) {
    throw readFailed(source, error);
  } finally {
    lines.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }

  if (ids.length === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
  const result = { ids, data: data.finish(), rows: ids.length, dim };
  if (weights.values.length === ids.length) {
    return { ...result, weights: Float64Array.from(weights.values) };
  }
  return result;
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

/** Checks the optional weight of one row and rejects a file where only some rows have one. */
function collectWeight(
  record: Record<string, unknown>,
  state: WeightState,
  source: string,
  row: number,
  line: number,
): void {
  const place = messages.rowPlace(row, line);
  if (!('weight' in record)) {
    state.firstWithout ??= place;
    if (state.firstWith !== undefined) {
      throw invalidRecord(messages.mixedWeights(source, state.firstWith, place));
    }
    return;
  }
  const weight = record.weight;
  if (typeof weight !== 'number' || !Number.isFinite(weight)) {
    const code = typeof weight === 'number' ? 'NON_FINITE_VALUE' : 'INVALID_INPUT';
    const at = messages.rowAt(source, row, line);
    throw new AttnScoreError(code, messages.invalidWeight(at, weight));
  }
  state.firstWith ??= place;
  if (state.firstWithout !== undefined) {
    throw invalidRecord(messages.mixedWeights(source, place, state.firstWithout));
  }
  state.values.push(weight);
}

function invalidRecord(message: string): AttnScoreError {
  return new AttnScoreError('INVALID_INPUT', message);
}
