import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, UserResult } from '../scoring/types.js';
import { AtomicFile, type AtomicFileOptions } from './atomic.js';
import { formatFloat32 } from './decimal.js';
import { JsonResultEncoder } from './json-results.js';
import type { ParquetCompression, TableLayout } from './table-writers.js';

/** A results file written in batches of users. */
export interface ResultWriter {
  /** Appends the results of some users. Only the current batch is held in memory. */
  writeBatch(results: readonly UserResult[]): Promise<void>;
  /** Commits the output, replacing the target file. */
  finish(): Promise<void>;
  /** Discards the output, leaving any earlier target file untouched. Safe to call twice. */
  abort(): Promise<void>;
}

/** The text output formats for results, which shard and part files use. */
export type ResultFormat = 'jsonl' | 'csv';

/** Every output format: text, Parquet, and Arrow IPC file (`arrow`) or stream (`arrows`). */
export type OutputFormat = ResultFormat | 'parquet' | 'arrow' | 'arrows';

/** Output extensions and the format each one selects; other names get JSONL. */
export const outputFormatByExtension: Readonly<Record<string, OutputFormat>> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.parquet': 'parquet',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.arrows': 'arrows',
};

/** Options for {@link openResultWriter}. */
export interface ResultWriterOptions extends AtomicFileOptions {
  /** The layout of Parquet and Arrow IPC output, by default one row per user. */
  readonly layout?: TableLayout;
  /** The Parquet codec, by default zstd. */
  readonly compression?: ParquetCompression;
  /** Every content id of the run, which fixes the type of Parquet and Arrow content id columns. */
  readonly contentIds?: readonly RowId[];
}

/**
 * Formats a float32 score as the shortest decimal of 6 to 9 significant digits that reads
 * back to the same float32 (9 always suffices). A float64 argument is rounded to float32
 * first. Throws for non-finite values, which no output format here can hold.
 */
export function formatScore(score: number): string {
  if (!Number.isFinite(Math.fround(score))) {
    throw new AttnScoreError('INTERNAL', `cannot format score ${String(score)}`);
  }
  return formatFloat32(score);
}

/** Opens `target` (`-` for standard output) and returns a writer for `format`. */
export async function openResultWriter(
  target: string,
  format: OutputFormat,
  options: ResultWriterOptions = {},
): Promise<ResultWriter> {
  const file = await AtomicFile.open(target, options);
  const layout = options.layout ?? 'user';
  switch (format) {
    case 'jsonl':
      return createJsonlWriter(file);
    case 'csv':
      return createCsvWriter(file);
  }
  // Loaded on first use, because apache-arrow and parquet-wasm take about 0.6 s to load.
  const tables = await import('./table-writers.js');
  if (format === 'parquet') {
    return tables.createParquetWriter(file, layout, options.compression ?? 'zstd', options.contentIds);
  }
  return tables.createIpcWriter(file, layout, format === 'arrow' ? 'file' : 'stream', options.contentIds);
}

/**
 * Returns a writer of JSON Lines such as
 * `{"user": "u1", "cx": 2.5, "loyalty": 0.9, "top": [{"content": 7, "score": 0.81}]}`.
 * Ids keep their JSON type. Throws `INTERNAL` for a non-finite score, cx or loyalty, which
 * JSON cannot hold.
 */
export function createJsonlWriter(file: AtomicFile): ResultWriter {
  const encoder = new JsonResultEncoder();
  return {
    async writeBatch(results) {
      encoder.reset();
      for (const result of results) encoder.result(result).ascii('\n');
      await file.write(encoder.view());
    },
    finish: () => file.commit(),
    abort: () => file.abort(),
  };
}

const lineEncoder = new JsonResultEncoder(1024);

/** Formats one result as a JSON Lines record, ending in a newline. */
export function formatJsonlLine(result: UserResult): string {
  return lineEncoder.reset().result(result).ascii('\n').view().toString('utf8');
}

/** The header line of the CSV results format. */
export const CSV_HEADER = 'user,rank,content,score,cx,loyalty\n';

/**
 * Returns a writer of CSV with the header `user,rank,content,score,cx,loyalty` and one record
 * per user and rank (ranks from 1). A user with no matches gets one record with empty rank,
 * content and score, so that cx and loyalty are still written. Ids are quoted per RFC 4180
 * when needed.
 */
export function createCsvWriter(file: AtomicFile): ResultWriter {
  return new BatchWriter(
    file,
    (result) => {
      const user = csvField(result.user);
      const cx = finite(result, 'cx', result.cx);
      const loyalty = finite(result, 'loyalty', result.loyalty);
      if (result.top.length === 0) return `${user},,,,${cx},${loyalty}\n`;
      let text = '';
      result.top.forEach((match, index) => {
        const content = csvField(match.content);
        text += `${user},${index + 1},${content},${score(result, match.score)},${cx},${loyalty}\n`;
      });
      return text;
    },
    CSV_HEADER,
  );
}

class BatchWriter implements ResultWriter {
  private headerWritten = false;

  constructor(
    private readonly file: AtomicFile,
    private readonly format: (result: UserResult) => string,
    private readonly header = '',
  ) {}

  async writeBatch(results: readonly UserResult[]): Promise<void> {
    let text = this.headerWritten ? '' : this.header;
    for (const result of results) text += this.format(result);
    await this.file.write(text);
    this.headerWritten = true;
  }

  async finish(): Promise<void> {
    // The header alone still makes a valid CSV file when there were no users.
    if (!this.headerWritten && this.header !== '') await this.file.write(this.header);
    await this.file.commit();
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}

function score(result: UserResult, value: number): string {
  if (!Number.isFinite(value)) {
    throw new AttnScoreError('INTERNAL', messages.nonFiniteResult(result.user, 'score', value));
  }
  return formatScore(value);
}

function finite(result: UserResult, field: string, value: number): string {
  if (!Number.isFinite(value)) {
    throw new AttnScoreError('INTERNAL', messages.nonFiniteResult(result.user, field, value));
  }
  return String(value);
}

/** Quotes a field per RFC 4180 when it contains a comma, quote or line break. */
function csvField(id: RowId): string {
  const text = String(id);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
