import { stat } from 'node:fs/promises';
import { extname } from 'node:path';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, VectorSet } from '../scoring/types.js';
import { readCsv } from './csv.js';
import { readIds } from './ids.js';
import { readJsonl, type TextVectors } from './jsonl.js';
import type { ColumnOptions } from './columnar.js';
import { openNpy, type NpyFile } from './npy.js';

export { readWeights } from './weights.js';

/** The input formats that {@link readVectors} reads. */
export type VectorFormat = 'npy' | 'jsonl' | 'csv' | 'parquet' | 'arrow';

/** File extensions and the format each one selects. */
export const formatByExtension: Readonly<Record<string, VectorFormat>> = {
  '.npy': 'npy',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
};

const FORMATS: readonly VectorFormat[] = ['npy', 'jsonl', 'csv', 'parquet', 'arrow'];

/** Returns true for the formats that are tables with named columns. */
export function isTableFormat(format: VectorFormat): format is 'parquet' | 'arrow' {
  return format === 'parquet' || format === 'arrow';
}

/** Options for {@link readVectors}. */
export interface ReadVectorsOptions {
  /**
   * The side of the scoring that the file contains. Only contents keep the optional JSONL
   * `weight` field, because the engine has no use for user weights.
   */
  readonly role: 'users' | 'contents';
  /** The format, overriding the one chosen by the file extension. */
  readonly format?: VectorFormat;
  /** A file with one id per line, for .npy input. Without it the ids are the row numbers. */
  readonly idsPath?: string;
  /** The id, vector and weight columns of Parquet and Arrow IPC tables; other formats ignore them. */
  readonly columns?: ColumnOptions;
}

/**
 * Reads a vector file in the format that `options.format` or the extension selects, and checks
 * that it has at least one row and one dimension and that every value is a finite float32.
 * Every error is an {@link AttnScoreError} that names the file and, for bad values, the row and
 * column. The `source` of the result is `path` as given.
 */
export async function readVectors(path: string, options: ReadVectorsOptions): Promise<VectorSet> {
  const format = await chooseInputFormat(path, options.format);
  if (format === 'npy') return readNpyVectors(path, options.idsPath);
  if (options.idsPath !== undefined) {
    const message = messages.idsFileNotAllowed(options.idsPath, path);
    throw new AttnScoreError('INVALID_PARAMETER', message);
  }
  if (isTableFormat(format)) {
    // Loaded on first use, because apache-arrow and parquet-wasm take about 0.6 s to load.
    const { readTableVectors } = await import('./table-vectors.js');
    return readTableVectors(path, format, options.role, options.columns);
  }
  const vectors: TextVectors = format === 'jsonl' ? await readJsonl(path) : await readCsv(path);
  const { ids, data, rows, dim, weights } = vectors;
  if (options.role === 'contents' && weights !== undefined) {
    return { ids, data, rows, dim, weights, source: path };
  }
  return { ids, data, rows, dim, source: path };
}

/**
 * Returns the format of an input as {@link chooseFormat} does, except that a folder without a
 * known extension is read as Parquet part files.
 */
export async function chooseInputFormat(
  path: string,
  format: VectorFormat | undefined,
): Promise<VectorFormat> {
  const known = format !== undefined || formatByExtension[extname(path).toLowerCase()] !== undefined;
  if (!known) {
    const stats = await stat(path).catch(() => undefined);
    if (stats?.isDirectory() === true) return 'parquet';
  }
  return chooseFormat(path, format);
}

/**
 * Returns `format` after checking that it is known, or else the format that the extension of
 * `path` selects. Throws `INVALID_PARAMETER` or `UNSUPPORTED_FORMAT` otherwise.
 */
export function chooseFormat(path: string, format: VectorFormat | undefined): VectorFormat {
  if (format !== undefined) {
    if (!FORMATS.includes(format)) {
      throw new AttnScoreError('INVALID_PARAMETER', messages.unknownFormat(format, FORMATS));
    }
    return format;
  }
  const chosen = formatByExtension[extname(path).toLowerCase()];
  if (chosen === undefined) {
    const supported = Object.keys(formatByExtension);
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.unknownExtension(path, supported));
  }
  return chosen;
}

/**
 * Checks that a .npy file contains vectors: a 2-D array with at least one row and one column.
 * The whole-file and the streaming readers make the same checks in the same order.
 */
export function checkNpyVectors(file: NpyFile, path: string): void {
  const { shape } = file.header;
  if (shape.length !== 2) {
    throw new AttnScoreError(
      'UNSUPPORTED_FORMAT',
      messages.npyRank(path, shape, 'a 2-D array of shape (rows, dims)'),
    );
  }
  if (file.rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(path));
  if (file.columns === 0) throw new AttnScoreError('EMPTY_INPUT', messages.zeroDim(path));
}

async function readNpyVectors(path: string, idsPath: string | undefined): Promise<VectorSet> {
  const file = await openNpy(path);
  let data: Float32Array;
  try {
    checkNpyVectors(file, path);
    data = await file.readRows(0, file.rows);
  } finally {
    await file.close();
  }
  const ids: RowId[] =
    idsPath === undefined
      ? Array.from({ length: file.rows }, (_, row) => row)
      : await readIds(idsPath, file.rows);
  return { ids, data, rows: file.rows, dim: file.columns, source: path };
}
