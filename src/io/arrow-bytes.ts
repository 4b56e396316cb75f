/**
 * Vectors from Arrow IPC bytes held in memory, such as an HTTP request body with the content
 * type `application/vnd.apache.arrow.stream`.
 */
import { tableFromIPC, type Table } from 'apache-arrow';

import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import type { RowId, VectorSet } from '../scoring/types.js';
import { BatchDecoder, resolveLayout, type ColumnOptions } from './columnar.js';

/** Options for {@link readArrowVectors}. */
export interface ReadArrowVectorsOptions {
  /** Contents keep the weight column; users ignore it. */
  readonly role: 'users' | 'contents';
  /** The name used in messages, by default `users` or `contents`. */
  readonly source?: string;
  /** The id, vector and weight columns; detected as for files when omitted. */
  readonly columns?: ColumnOptions;
}

/**
 * Reads ids, vectors and (for contents) weights from Arrow IPC stream or file bytes, with the
 * same column rules and checks as the Parquet and Arrow IPC file readers. Throws
 * `UNSUPPORTED_FORMAT` for bytes that are not Arrow IPC and `EMPTY_INPUT` for a table without
 * rows.
 */
export function readArrowVectors(bytes: Uint8Array, options: ReadArrowVectorsOptions): VectorSet {
  const source = options.source ?? options.role;
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.invalidTable(source, 'Arrow IPC', detail), {
      cause: error,
    });
  }
  if (table.schema.fields.length === 0) {
    const detail = 'it has no columns';
    throw new AttnScoreError('UNSUPPORTED_FORMAT', messages.invalidTable(source, 'Arrow IPC', detail));
  }
  const layout = resolveLayout(table.schema, source, options.columns ?? {}, options.role);
  const decoder = new BatchDecoder(layout, source);
  const ids: RowId[] = [];
  const chunks: Float32Array[] = [];
  const weightChunks: Float64Array[] = [];
  for (const batch of table.batches) {
    const decoded = decoder.decode(batch);
    for (const id of decoded.ids) ids.push(id);
    chunks.push(decoded.data);
    if (decoded.weights !== undefined) weightChunks.push(decoded.weights);
  }
  const rows = ids.length;
  if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(source));
  const dim = decoder.dim!;
  const data = new Float32Array(rows * dim);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  if (layout.weight === undefined) return { ids, data, rows, dim, source };
  const weights = new Float64Array(rows);
  offset = 0;
  for (const chunk of weightChunks) {
    weights.set(chunk, offset);
    offset += chunk.length;
  }
  return { ids, data, rows, dim, source, weights };
}
