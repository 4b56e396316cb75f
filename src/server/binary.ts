/**
 * Binary bodies, for catalog uploads and for the users of a score request. An
 * Arrow IPC stream (`application/vnd.apache.arrow.stream`) carries ids,
 * vectors and, for catalogs, weights in columns. A `.npy` file
 * (`application/x-npy`) or raw little-endian float32 values
 * (`application/octet-stream`) carry only the vectors, so their ids are row
 * numbers and their weights 1. A raw body's shape comes from the
 * `X-Shape: ROWS,DIM` header or the `rows` and `dim` query parameters.
 */
import type { ColumnOptions } from '../io/columnar.js';
import { readNpyBuffer } from '../io/npy.js';
import type { TableLayout } from '../io/table-writers.js';
import type { UserResult, VectorSet } from '../scoring/types.js';
import type { VectorInput } from '../vectors.js';
import { problem } from './problems.js';

/** Media types of binary uploads. */
export const ARROW_TYPE = 'application/vnd.apache.arrow.stream';
export const NPY_TYPE = 'application/x-npy';
export const RAW_TYPE = 'application/octet-stream';

/**
 * Reads an Arrow IPC body with the column rules of the Parquet and Arrow file
 * readers. apache-arrow is loaded on the first Arrow request.
 */
export async function parseArrowBody(
  body: Buffer,
  role: 'users' | 'contents',
  columns: ColumnOptions,
): Promise<VectorSet> {
  const { readArrowVectors } = await import('../io/arrow-bytes.js');
  return readArrowVectors(body, { role, source: role === 'users' ? 'users' : 'catalog', columns });
}

/** Encodes results as an Arrow IPC stream in `layout`, loading apache-arrow on first use. */
export async function encodeArrowResults(results: readonly UserResult[], layout: TableLayout): Promise<Uint8Array> {
  const { encodeResultsIpc } = await import('../io/table-writers.js');
  return encodeResultsIpc(results, layout);
}

/** Reads a `.npy` body in memory with the file reader's checks. */
export async function parseNpyBody(body: Buffer): Promise<VectorInput> {
  const array = await readNpyBuffer(body, { source: 'request body' });
  return { data: array.data, rows: array.rows, dim: array.columns, source: 'contents' };
}

/**
 * Reads a raw float32 body of the shape given by `shapeHeader` (`ROWS,DIM`)
 * or by `rows` and `dim`, either of which may be left out when the other
 * divides the value count.
 */
export function parseRawBody(
  body: Buffer,
  shapeHeader: string | undefined,
  query: { rows?: unknown; dim?: unknown },
): VectorInput {
  if (body.length % 4 !== 0) {
    throw problem(400, 'invalid-body', `a float32 body needs a multiple of 4 bytes (got ${body.length})`, {
      rule: 'float32_length',
    });
  }

  const values = body.length / 4;
  let rows: number | undefined;
  let dim: number | undefined;
  if (shapeHeader !== undefined) {
    const match = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(shapeHeader);
    if (!match) {
      throw problem(400, 'invalid-shape', `X-Shape must be "ROWS,DIM" (got ${JSON.stringify(shapeHeader)})`, {
        value: shapeHeader,
        rule: 'shape',
      });
    }
    rows = Number(match[1]);
    dim = Number(match[2]);
  } else {
    rows = positive(query.rows, 'rows');
    dim = positive(query.dim, 'dim');
  }

  if (dim === undefined && rows !== undefined && rows > 0 && values % rows === 0) dim = values / rows;
  if (rows === undefined && dim !== undefined && dim > 0 && values % dim === 0) rows = values / dim;
  if (rows === undefined || dim === undefined || rows * dim !== values || rows === 0 || dim === 0) {
    throw problem(
      400,
      'invalid-shape',
      `the body contains ${values} float32 values, which does not match the shape ` +
        `${String(rows ?? '?')} x ${String(dim ?? '?')}; give X-Shape: ROWS,DIM or ?rows=&dim=`,
      { rule: 'shape' },
    );
  }

  // Copy into a fresh buffer: the body's offset in its pool need not be a multiple of 4.
  const data = new Float32Array(values);
  new Uint8Array(data.buffer).set(body);
  // NOTE: this assumes a little-endian host, as every platform Node supports in practice is.
  return { data, rows, dim, source: 'contents' };
}

function positive(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw problem(400, 'invalid-shape', `${name} must be a positive integer (got ${JSON.stringify(text)})`, {
      value: text,
      rule: 'positive_integer',
    });
  }
  return Number(text);
}
