import { CsvError, parse } from 'csv-parse';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId } from '../scoring/types.js';
import {
  checkFloat32,
  scaleTinyRow,
  Float32Builder,
  IdRegistry,
  openForReading,
  parseNumberField,
  readFailed,
} from './common.js';
import type { TextRow, TextVectors } from './jsonl.js';

/** Options for {@link readCsv} and {@link readCsvRows}. */
export interface ReadCsvOptions {
  /** The name used in messages, by default the path. */
  readonly source?: string;
}

/**
 * The csv-parse settings of every CSV vector reader and of the row counter, so that they all
 * split a file into the same records.
 */
export const CSV_PARSE_OPTIONS = {
  bom: true,
  info: true,
  relax_column_count: true,
  skip_empty_lines: true,
} as const;

/**
 * Reads vectors from CSV: the id in the first field, then one field per dimension. Ids are
 * always strings. The first record is skipped as a header when none of its dimension fields is
 * a number, or when they are the column numbers 0, 1, 2, ... that pandas writes.
 * A first record with some numeric and some other fields is read as data, so a typo in the first
 * row is reported instead of silently dropped. Blank lines are skipped.
 *
 * Columns in messages count dimensions from 0, so the id field is not counted. For a record that
 * spans several lines (a quoted id with a line break) the line is the record's last line.
 */
export async function readCsv(path: string, options: ReadCsvOptions = {}): Promise<TextVectors> {
  const ids: RowId[] = [];
  const data = new Float32Builder();
  let dim = 0;
  for await (const row of readCsvRows(path, options)) {
    ids.push(row.id);
    dim = row.values.length;
    for (const value of row.values) data.push(value);
  }
  return { ids, data: data.finish(), rows: ids.length, dim };
}

/**
 * Streams the rows of a CSV vector file with every check of {@link readCsv}, keeping one record
 * in memory plus one registry entry per id for the duplicate check. Throws like {@link readCsv},
 * at the first invalid row, or at the end when the file has no rows. Breaking out of the loop
 * closes the file.
 */
export async function* readCsvRows(
  path: string,
  options: ReadCsvOptions = {},
): AsyncGenerator<TextRow, void, undefined> {
  const source = options.source ?? path;
  const records = await openCsvRecords(path, source);
  const registry = new IdRegistry(source);
  let rows = 0;
  let dim = -1;
  let first = true;
  try {
    for await (const { record, info } of records.records) {
      const line = info.lines;
      if (isBlankRecord(record)) continue;
      if (first) {
        first = false;
        if (isHeader(record)) continue;
      }

      const row = rows;
      const at = messages.rowAt(source, row, line);
      const id = record[0];
      if (id === '') throw new AttnScoreError('INVALID_INPUT', messages.emptyId(at));
      registry.add(id, row, line);

      const count = record.length - 1;
      if (dim === -1) {
        if (count === 0) throw new AttnScoreError('EMPTY_INPUT', messages.csvNoDimensions(source));
        dim = count;
      } else if (count !== dim) {
        throw new AttnScoreError('DIMENSION_MISMATCH', messages.raggedRow(at, count, dim));
      }
      const values: number[] = new Array<number>(dim);
      for (let column = 0; column < dim; column++) {
        values[column] = parseValue(record[column + 1], at, column);
      }
      rows++;
      yield { row, line, id, values: scaleTinyRow(values) };
    }
  } catch (error) {
    throw records.wrapError(error);
  } finally {
    await records.close();
  }

  if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
}

/**
 * Counts the data rows of a CSV vector file as {@link readCsvRows} would yield them, without
 * checking the values. Keeps one record in memory at a time.
 */
export async function countCsvRows(path: string, options: ReadCsvOptions = {}): Promise<number> {
  const source = options.source ?? path;
  const records = await openCsvRecords(path, source);
  let rows = 0;
  let first = true;
  try {
    for await (const { record } of records.records) {
      if (isBlankRecord(record)) continue;
      if (first) {
        first = false;
        if (isHeader(record)) continue;
      }
      rows++;
    }
  } catch (error) {
    throw records.wrapError(error);
  } finally {
    await records.close();
  }
  return rows;
}

/** An open CSV file parsed into records, with its cleanup and error translation. */
interface CsvRecords {
  readonly records: AsyncIterable<CsvRecord>;
  /** Turns a parser or file-system error into an {@link AttnScoreError} naming the file. */
  wrapError(error: unknown): AttnScoreError;
  close(): Promise<void>;
}

async function openCsvRecords(path: string, source: string): Promise<CsvRecords> {
  const handle = await openForReading(path, source);
  const stream = handle.createReadStream();
  const parser = stream.pipe(parse(CSV_PARSE_OPTIONS));
  // pipe() does not forward read errors, so they are passed to the parser to end the loop.
  stream.on('error', (error) => parser.destroy(error));
  return {
    records: parser as AsyncIterable<CsvRecord>,
    wrapError(error) {
      if (error instanceof CsvError) {
        return new AttnScoreError('INVALID_INPUT', messages.invalidCsv(source, error.message), {
          cause: error,
        });
      }
      return readFailed(source, error);
    },
    async close() {
      parser.destroy();
      stream.destroy();
      await handle.close().catch(() => undefined);
    },
  };
}

interface CsvRecord {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

function isBlankRecord(record: readonly string[]): boolean {
  return record.length === 1 && record[0].trim() === '';
}

function isHeader(record: readonly string[]): boolean {
  const fields = record.slice(1);
  if (fields.length === 0) return false;
  const numeric = fields.map((field) => parseNumberField(field).kind === 'number');
  if (numeric.every((isNumber) => !isNumber)) return true;
  // pandas.DataFrame.to_csv writes the index name (empty when unnamed) and integer column
  // names 0, 1, 2, ... A one-dimension row "id,0" stays data unless the first field is empty.
  const columnNumbers = fields.every((field, index) => field.trim() === String(index));
  return columnNumbers && (record[0] === '' || fields.length >= 2);
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
