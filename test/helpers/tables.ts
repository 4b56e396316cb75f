/**
 * Writers of Parquet and Arrow IPC fixtures that are independent of the product's own writers:
 * DuckDB (through @duckdb/node-api), and parquet-wasm encoding Arrow tables that apache-arrow
 * builds. Also DuckDB as an independent Parquet reader for round trips.
 */
import { writeFile } from 'node:fs/promises';

import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import {
  Field,
  FixedSizeList,
  Float32,
  Float64,
  List,
  makeData,
  makeVector,
  Table,
  tableToIPC,
  Utf8,
  vectorFromArray,
  type Vector,
} from 'apache-arrow';
import { Compression, Table as WasmTable, writeParquet, WriterPropertiesBuilder } from 'parquet-wasm/node';

let connection: Promise<DuckDBConnection> | undefined;

/** Returns a shared in-memory DuckDB connection. */
export function duckdb(): Promise<DuckDBConnection> {
  connection ??= DuckDBInstance.create(':memory:').then((instance) => instance.connect());
  return connection;
}

/** Runs SQL in DuckDB and returns the rows as JSON-safe objects. */
export async function query(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await (await duckdb()).runAndReadAll(sql);
  return reader.getRowObjectsJson() as Record<string, unknown>[];
}

/** Wraps a row-major float32 matrix as an Arrow fixed-size list vector. */
export function fixedSizeListVector(data: Float32Array, dim: number): Vector {
  const rows = data.length / dim;
  const child = makeData({ type: new Float32(), length: data.length, data });
  const type = new FixedSizeList(dim, new Field('item', new Float32(), false));
  return makeVector(makeData({ type, length: rows, nullCount: 0, child }));
}

/** Converts a row-major matrix to an Arrow list<double> vector, every row of length `dim`. */
export function float64ListVector(data: ArrayLike<number>, dim: number): Vector {
  const rows = data.length / dim;
  const child = makeData({ type: new Float64(), length: data.length, data: Float64Array.from(data) });
  const offsets = Int32Array.from({ length: rows + 1 }, (_, row) => row * dim);
  const type = new List(new Field('item', new Float64(), false));
  return makeVector(makeData({ type, length: rows, nullCount: 0, valueOffsets: offsets, child }));
}

/** Ids as an Arrow utf8 vector. */
export function stringVector(ids: readonly string[]): Vector {
  return vectorFromArray(ids, new Utf8());
}

/** Writes `table` as Parquet with parquet-wasm (arrow-rs), in row groups of `rowGroupRows`. */
export async function writeParquetWithWasm(
  table: Table,
  file: string,
  options: { compression: 'zstd' | 'snappy'; rowGroupRows: number },
): Promise<void> {
  const codec = options.compression === 'zstd' ? Compression.ZSTD : Compression.SNAPPY;
  const properties = new WriterPropertiesBuilder()
    .setCompression(codec)
    .setMaxRowGroupSize(options.rowGroupRows)
    .build();
  const bytes = writeParquet(WasmTable.fromIPCStream(tableToIPC(table, 'stream')), properties);
  await writeFile(file, bytes);
}

/** Writes `table` as an Arrow IPC file or stream with apache-arrow. */
export async function writeIpc(table: Table, file: string, kind: 'file' | 'stream'): Promise<void> {
  await writeFile(file, tableToIPC(table, kind));
}
