import { CsvError, parse } from 'csv-parse';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import {
  checkFloat32,
  Float32Builder,
  IdRegistry,
  openForReading,
  parseNumberField,
  readFailed,
} from './common.js';
import type { TextVectors } from './jsonl.js';

/** Options for {@link readCsv}. */
export interface ReadCsvOptions {
  /** The name used in messages, by default the path. */
  readonly source?: string;
}

/**
 * Reads vectors from CSV: the id in the first field, then one field per dimension. Ids are
 * always strings. The first record is skipped as a header when none of its dimension fields is
 * a number, or when it is pandas' default header (an empty first field, then 0, 1, 2, ...).
 * A first record with some numeric and some other fields is read as data, so a typo in the first
 * row is reported instead of silently dropped. Blank lines are skipped.
 *
 * Columns in messages count dimensions from 0, so the id field is not counted. For a record that
 * spans several lines (a quoted id with a line break) the line is the record's last line.
 */
export async function readCsv(path: string, options: ReadCsvOptions = {}): Promise<TextVectors> {
  const source = options.source ?? path;
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream();
  const parser = stream.pipe(
    parse({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true }),
  );
  // pipe() does not forward read errors, so they are passed to the parser to end the loop.
  stream.on('error', (error) => parser.destroy(error));

  const ids: RowId[] = [];
  const registry = new IdRegistry(source);
  const data = new Float32Builder();
  let dim = -1;
  let first = true;
  try {
    for await (const { record, info } of parser as AsyncIterable<CsvRecord>) {
      const line = info.lines;
      if (record.length === 1 && record[0].trim() === '') continue;
      if (first) {
        first = false;
        if (isHeader(record)) continue;
      }

      const row = ids.length;
      const at = messages.rowAt(source, row, line);
      const id = record[0];
      if (id === '') throw new AttnScoreError('INVALID_INPUT', messages.emptyId(at));
      registry.add(id, row, line);
      ids.push(id);

      const values = record.length - 1;
      if (dim === -1) {
        if (values === 0) throw new AttnScoreError('EMPTY_INPUT', messages.zeroDim(source));
        dim = values;
      } else if (values !== dim) {
        throw new AttnScoreError('DIMENSION_MISMATCH', messages.raggedRow(at, values, dim));
      }
      for (let column = 0; column < dim; column++) {
        data.push(parseValue(record[column + 1], at, column));
      }
    }
  } catch (error) {
    if (error instanceof CsvError) {
      throw new AttnScoreError('INVALID_INPUT', messages.invalidCsv(source, error.message), {
        cause: error,
      });
    }
    throw readFailed(source, error);
  } finally {
    parser.destroy();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }

  if (ids.length === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
  return { ids, data: data.finish(), rows: ids.length, dim };
}

interface CsvRecord {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

function isHeader(record: readonly string[]): boolean {
  const fields = record.slice(1);
  if (fields.length === 0) return false;
  const numeric = fields.map((field) => parseNumberField(field).kind === 'number');
  if (numeric.every((isNumber) => !isNumber)) return true;
  // pandas.DataFrame.to_csv writes an unnamed index and integer column names like this.
  return record[0] === '' && fields.every((field, index) => field.trim() === String(index));
}

function parseValue(field: string, at: string, column: number): number {
  const parsed = parseNumberField(field);
  switch (parsed.kind) {
    case 'empty':
      throw new AttnScoreError('NON_FINITE_VALUE', messages.emptyField(at, column));
    case 'invalid':
      throw new AttnScoreError('INVALID_INPUT', messages.notANumber(at, column, parsed.text));
    case 'number':
      checkFloat32(parsed.value, at, column);
      return parsed.value;
  }
}
