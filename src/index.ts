/**
 * attnscore: cosine attention weights, top-k matching, experience score (CX)
 * and loyalty for users x contents, on WebAssembly SIMD.
 */
export {
  score,
  scoreBlocks,
  prepareRun,
  DEFAULT_BLOCK_USERS,
  POOL_MIN_FLOP,
  type ScoreOptions,
  type ScoreResult,
  type ScoredBlock,
  type RunStats,
  type PreparedRun,
  type RunUsers,
  type RowRange,
} from './score.js';
export { loadVectors, loadWeights, toVectorSet, type VectorInput, type VectorSource } from './vectors.js';
export {
  createBackend,
  openBackend,
  chooseBackend,
  backendNames,
  backendChoices,
  defaultBackend,
  defaultChoice,
  WEBGPU_MIN_FLOP,
} from './backends/index.js';
export type { Backend, BackendChoice, BackendName, BlockRequest, PreparedContents } from './backends/index.js';
export { resolveParams, defaultParams, MAX_ABS_ALPHA, type ScoreParams } from './scoring/params.js';
export { AttnScoreError, isInputError, type ErrorCode } from './scoring/errors.js';
export { loyalty } from './scoring/math.js';
export type { BlockScores, ExclusionList, Match, RowId, UserResult, VectorSet } from './scoring/types.js';
export { openResultWriter, type ColumnOptions, type OutputFormat } from './io/index.js';
export { readArrowVectors, type ReadArrowVectorsOptions } from './io/arrow-bytes.js';
export {
  buildResultBatch,
  encodeResultsIpc,
  type ParquetCompression,
  type TableLayout,
} from './io/table-writers.js';
