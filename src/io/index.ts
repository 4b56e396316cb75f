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
export type { ColumnOptions } from './columnar.js';
export { readArrowVectors, type ReadArrowVectorsOptions } from './arrow-bytes.js';
export {
  buildResultBatch,
  encodeResultsIpc,
  type IpcKind,
  type ParquetCompression,
  type TableLayout,
} from './table-writers.js';
