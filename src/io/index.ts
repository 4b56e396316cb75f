/** File input and output: vector, id and weight readers, results writers, atomic output. */
export { AtomicFile, STDOUT_PATH, type AtomicFileOptions } from './atomic.js';
export { readCsv, type ReadCsvOptions } from './csv.js';
export { readIds } from './ids.js';
export { readJsonl, type ReadJsonlOptions, type TextVectors } from './jsonl.js';
export {
  npyHeaderBytes,
  NpyWriter,
  openMatrixWriter,
  openNpy,
  readNpy,
  type MatrixWriter,
  type NpyArray,
  type NpyDtype,
  type NpyFile,
  type NpyHeader,
  type OpenNpyOptions,
} from './npy.js';
export {
  formatByExtension,
  readVectors,
  readWeights,
  type ReadVectorsOptions,
  type VectorFormat,
} from './read.js';
export {
  createCsvWriter,
  createJsonlWriter,
  CSV_HEADER,
  formatJsonlLine,
  formatScore,
  openResultWriter,
  outputFormatByExtension,
  type OutputFormat,
  type ResultFormat,
  type ResultWriter,
  type ResultWriterOptions,
} from './writers.js';
// The Parquet and Arrow modules are left out, so loading this index does not load
// apache-arrow and parquet-wasm (about 0.6 s together). src/index.ts exports them.
export type { ColumnOptions } from './columnar.js';
export type { IpcKind, ParquetCompression, TableLayout } from './table-writers.js';
