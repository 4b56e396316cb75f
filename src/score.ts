/**
 * The programmatic API: score users against contents, block by block.
 *
 * `scoreBlocks` is the streaming form the command-line tool uses: it yields
 * the results of each block of users as soon as the backend has scored it,
 * so callers can write them out without holding every result. `score`
 * collects them.
 */
import { availableParallelism } from 'node:os';
import {
  chooseBackend,
  defaultChoice,
  openBackend,
  type Backend,
  type BackendChoice,
  type PreparedContents,
} from './backends/index.js';
import { createPoolBackend } from './pool/index.js';
import { AttnScoreError } from './scoring/errors.js';
import { loyalty } from './scoring/math.js';
import { messages } from './scoring/messages.js';
import { resolveParams, type ScoreParams } from './scoring/params.js';
import type { BlockScores, ExclusionList, Match, RowId, UserResult, VectorSet } from './scoring/types.js';

export type { RowRange } from './io/stream.js';
import { openUserBlocks, type RowRange, type UserBlock } from './io/stream.js';
import { countRows } from './io/stream.js';
import { openNpy } from './io/npy.js';
import type { ColumnOptions } from './io/columnar.js';
import type { VectorFormat } from './io/read.js';
import {
  loadVectors,
  loadWeights,
  toVectorSet,
  type VectorInput,
  type VectorSource,
} from './vectors.js';

/** Users scored per backend call by default: small enough for smooth progress, large enough to amortise the call. */
export const DEFAULT_BLOCK_USERS = 512;

/**
 * Smallest job, in dot-product FLOP (2 x U x C x D), that gets worker
 * threads by default. Measured on a 2-core Xeon with Node 20.20: starting
 * two workers took 40-60 ms, and one thread scores about 4e9 FLOP in 0.1 s,
 * so below this the pool costs more than it saves.
 */
export const POOL_MIN_FLOP = 4e9;

/** Everything {@link score} and {@link scoreBlocks} accept. */
export interface ScoreOptions extends Partial<ScoreParams> {
  readonly users: VectorSource;
  readonly contents: VectorSource;
  /** Content weights: a `.npy` or text file, or one number per content. Overrides weights read with the contents. */
  readonly weights?: string | ArrayLike<number>;
  /** Format of a users file; taken from its extension when omitted, and Parquet for a folder. */
  readonly usersFormat?: VectorFormat;
  /** Format of a contents file; taken from its extension when omitted, and Parquet for a folder. */
  readonly contentsFormat?: VectorFormat;
  /** The id and vector columns of a Parquet or Arrow IPC users table. */
  readonly usersColumns?: ColumnOptions;
  /** The id, vector and weight columns of a Parquet or Arrow IPC contents table. */
  readonly contentsColumns?: ColumnOptions;
  /** Text file with one user id per line, for `.npy` users. */
  readonly userIds?: string;
  /** Text file with one content id per line, for `.npy` contents. */
  readonly contentIds?: string;
  /** Content ids to leave out of each user's top-k list (they still count towards CX). */
  readonly exclude?: ReadonlyMap<RowId, readonly RowId[]> | Readonly<Record<string, readonly RowId[]>>;
  /**
   * A backend name, `auto` (the default: `webgpu` on a hardware adapter for
   * large jobs, else `wasm`) or a backend instance, which the caller then
   * disposes.
   */
  readonly backend?: BackendChoice | Backend;
  /**
   * Threads for the `wasm` backend. 1 scores on the calling thread; more run
   * a pool of worker threads. By default `os.availableParallelism()`, or 1
   * for jobs under {@link POOL_MIN_FLOP}. The `js` and `webgpu` backends and
   * a backend instance ignore it.
   */
  readonly threads?: number;
  /** Also return the users x contents cosine matrix (small jobs only: U x C x 4 bytes). */
  readonly matrix?: boolean;
  /** Users per backend call. */
  readonly blockUsers?: number;
  /** Called after each block with the pairs scored so far and the total. */
  readonly onProgress?: (pairsDone: number, pairsTotal: number) => void;
  /** Stops scoring between blocks. */
  readonly signal?: AbortSignal;
}

/** The results of one block of users, in input order. */
export interface ScoredBlock {
  /** Row of the block's first user. */
  readonly start: number;
  readonly results: UserResult[];
  /** Cosine matrix rows of this block (results.length x C), when requested. */
  readonly matrix?: Float32Array;
}

/** The results of a whole run, with the optional matrix and run statistics. */
export interface ScoreResult {
  readonly results: UserResult[];
  readonly matrix?: { readonly data: Float32Array; readonly rows: number; readonly columns: number };
  readonly stats: RunStats;
}

/** Facts about a run, for summaries and logs. */
export interface RunStats {
  readonly users: number;
  readonly contents: number;
  readonly dim: number;
  readonly pairs: number;
  readonly seconds: number;
  readonly backend: string;
}

/**
 * The users of a run. A users file is read block by block while scoring, so
 * only its shape is known up front.
 */
export interface RunUsers {
  /** The path or name used in messages. */
  readonly source: string;
  readonly rows: number;
  readonly dim: number;
}

/** A run whose inputs are read and validated, ready to be scored. */
export interface PreparedRun {
  readonly users: RunUsers;
  readonly contents: VectorSet;
  readonly params: ScoreParams;
  readonly backend: Backend;
  /** The reason `auto` chose the backend, when the run was given `auto`. */
  readonly backendReason?: string;
  readonly pairs: number;
  /**
   * Scores the users block by block, all of them or the rows of `range`.
   * A users file is opened anew for each call and its rows are validated as
   * they are read, so an invalid row raises from here.
   */
  blocks(range?: RowRange): AsyncGenerator<ScoredBlock>;
  /**
   * Releases the prepared contents, and the backend when the run created
   * it. A pool backend returns a promise that resolves once its worker
   * threads have ended.
   */
  dispose(): void | Promise<void>;
}

/**
 * Reads and validates the inputs and parameters, and prepares the contents
 * on the backend. Every input error is raised here, before any result exists.
 */
export async function prepareRun(options: ScoreOptions): Promise<PreparedRun> {
  const params = resolveParams(options);
  const blockUsers = options.blockUsers ?? DEFAULT_BLOCK_USERS;
  if (!Number.isSafeInteger(blockUsers) || blockUsers < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('blockUsers', blockUsers));
  }
  const threadsGiven = options.threads;
  if (threadsGiven !== undefined && (!Number.isSafeInteger(threadsGiven) || threadsGiven < 1)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('threads', threadsGiven));
  }
  // The backend starts before the inputs are read, so that a pool's worker threads boot
  // while the files load: booting them while the main thread packs the contents was
  // measured to cost up to 0.5 s.
  const flop = await jobFlop(options);
  const threads = threadsGiven ?? defaultThreads(flop);
  const ownsBackend = typeof options.backend !== 'object';
  let backendReason: string | undefined;
  let backend: Backend;
  if (typeof options.backend === 'object') {
    backend = options.backend;
  } else {
    let name = options.backend ?? defaultChoice;
    if (name === 'auto') {
      const decision = await chooseBackend(flop);
      name = decision.name;
      backendReason = decision.reason;
    }
    backend = await openRunBackend(name, threads);
  }
  let inputs: RunInputs;
  let prepared: PreparedContents;
  try {
    inputs = await loadInputs(options, params);
    const { contents, weights } = inputs;
    prepared = backend.prepare(contents.data, contents.rows, contents.dim, weights);
  } catch (error) {
    if (ownsBackend) await backend.dispose();
    throw error;
  }
  const { contents, users, weightScale, exclude } = inputs;
  const context: BlockContext = {
    backend,
    prepared,
    users,
    contentIds: contents.ids,
    params,
    weightScale,
    exclude,
    blockUsers,
    matrix: options.matrix === true,
    signal: options.signal,
    onProgress: options.onProgress,
  };

  return {
    users: { source: users.source, rows: users.rows, dim: users.dim },
    contents,
    params,
    backend,
    ...(backendReason !== undefined ? { backendReason } : {}),
    pairs: users.rows * contents.rows,
    blocks: (range?: RowRange) => scoreUserBlocks(context, range),
    dispose() {
      prepared.dispose();
      if (ownsBackend) return backend.dispose();
    },
  };
}

/** Inputs of {@link scoreUserBlocks}: prepared contents, users and validated parameters. */
interface BlockContext {
  readonly backend: Backend;
  readonly prepared: PreparedContents;
  readonly users: UserSource;
  readonly contentIds: readonly RowId[];
  readonly params: ScoreParams;
  /** Factor applied to CX: 1, or 1 / (sum of weights) with normalizeWeights. */
  readonly weightScale: number;
  readonly exclude: Map<string, Int32Array> | undefined;
  readonly blockUsers: number;
  readonly matrix: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ScoreOptions['onProgress'];
}

/** Scores the users of `range` block by block, keeping one block per backend thread in flight. */
async function* scoreUserBlocks(
  context: BlockContext,
  range: RowRange = { start: 0, end: context.users.rows },
): AsyncGenerator<ScoredBlock> {
  const { backend, prepared, users, contentIds, params, weightScale, exclude } = context;
  const { blockUsers, matrix, signal } = context;
  checkRange(range, users.rows);
  const pairs = users.rows * contentIds.length;
  const concurrency = Math.max(1, backend.concurrency ?? 1);
  const count = Math.ceil((range.end - range.start) / blockUsers);

  /** Starts scoring one block; a backend error surfaces when the promise is awaited. */
  function startBlock(block: UserBlock, index: number): Promise<BlockScores> {
    const request = {
      users: block.data,
      rows: block.rows,
      k: params.k,
      alpha: params.alpha,
      minScore: params.minScore,
      exclude: exclude && blockExclusions(exclude, block.ids),
      matrix,
      position: { index, count },
    };
    try {
      return Promise.resolve(backend.scoreBlock(prepared, request));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Up to `concurrency` blocks are in flight, and they are yielded in input
  // order: the loop always waits for the oldest one.
  const inFlight: { block: UserBlock; scores: Promise<BlockScores> }[] = [];
  const source = users.blocks(range, blockUsers)[Symbol.asyncIterator]();
  let index = 0;
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && inFlight.length < concurrency) {
        signal?.throwIfAborted();
        const next = await source.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const scores = startBlock(next.value, index++);
        // A later block may fail while the loop waits for an earlier one. This
        // handler keeps that from counting as an unhandled rejection, and the
        // error still surfaces when the loop awaits the block.
        scores.catch(() => {});
        inFlight.push({ block: next.value, scores });
      }
      const oldest = inFlight.shift();
      if (oldest === undefined) break;
      const { block } = oldest;
      const scores = await oldest.scores;
      const results = toUserResults(scores, block.ids, contentIds, params, weightScale);
      context.onProgress?.((block.start + block.rows - range.start) * contentIds.length, pairs);
      yield { start: block.start, results, ...(scores.matrix ? { matrix: scores.matrix } : {}) };
      // Give timers and signal handlers a turn between blocks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    // Blocks still in flight use the prepared contents, so dispose() must wait for them.
    await Promise.allSettled(inFlight.map((entry) => entry.scores));
    await source.return?.();
  }
}

/**
 * Returns the job's dot-product FLOP, 2 x U x C x D, when both shapes are
 * known up front (in-memory vectors, `.npy` headers), else undefined.
 */
async function jobFlop(options: ScoreOptions): Promise<number | undefined> {
  const users = await shapeOf(options.users, options.usersFormat);
  const contents = await shapeOf(options.contents, options.contentsFormat);
  return users && contents ? 2 * users.rows * contents.rows * contents.dim : undefined;
}

/** Returns the default thread count: every available core, or 1 for a job known to be under {@link POOL_MIN_FLOP}. */
function defaultThreads(flop: number | undefined): number {
  if (flop !== undefined && flop < POOL_MIN_FLOP) return 1;
  return availableParallelism();
}

/** Returns rows and dim when they are cheap to know, or undefined. */
async function shapeOf(
  source: VectorSource,
  format: ScoreOptions['usersFormat'],
): Promise<{ rows: number; dim: number } | undefined> {
  if (typeof source !== 'string') {
    const { data } = source;
    if (source.rows !== undefined && source.dim !== undefined) return { rows: source.rows, dim: source.dim };
    const first = Array.isArray(data) ? (data[0] as ArrayLike<number> | number | undefined) : undefined;
    if (first !== undefined && typeof first !== 'number') return { rows: data.length, dim: first.length };
    return undefined;
  }
  if ((format ?? (source.toLowerCase().endsWith('.npy') ? 'npy' : undefined)) !== 'npy') return undefined;
  try {
    const file = await openNpy(source);
    await file.close();
    return { rows: file.rows, dim: file.columns };
  } catch {
    // The real error, with its message, is raised when the inputs are read.
    return undefined;
  }
}

/**
 * Creates the backend called `name` for a run: the pool backend for `wasm`
 * with more than one thread (the pool runs only the wasm kernels), else the
 * single-thread backend.
 */
async function openRunBackend(name: string, threads: number): Promise<Backend> {
  if (name === 'wasm' && threads > 1) return createPoolBackend({ threads });
  return openBackend(name);
}

/** The validated inputs of a run. */
interface RunInputs {
  readonly contents: VectorSet;
  readonly users: UserSource;
  readonly weights: Float64Array | undefined;
  /** Factor applied to CX: 1, or 1 / (sum of weights) with normalizeWeights. */
  readonly weightScale: number;
  /** Sorted content rows to leave out, by user id as a string. */
  readonly exclude: Map<string, Int32Array> | undefined;
}

/** Users in memory or in a file, read a range at a time in blocks. */
interface UserSource extends RunUsers {
  blocks(range: RowRange, blockRows: number): AsyncIterable<UserBlock>;
  /** The ids of every user, read in one pass for a file. */
  ids(): Promise<readonly RowId[]>;
}

/** Reads and validates the contents, weights and exclusions, and opens the users. */
async function loadInputs(options: ScoreOptions, params: ScoreParams): Promise<RunInputs> {
  const contents = await loadVectors(options.contents, {
    role: 'contents',
    format: options.contentsFormat,
    idsPath: options.contentIds,
    columns: options.contentsColumns,
  });
  const users = await openUsers(options);
  if (users.dim !== contents.dim) {
    throw new AttnScoreError(
      'DIMENSION_MISMATCH',
      messages.dimensionMismatch(users.dim, contents.dim, users.source, contents.source),
    );
  }
  const weights =
    options.weights !== undefined ? await loadWeights(options.weights, contents.rows) : contents.weights;
  const weightScale = params.normalizeWeights ? 1 / positiveSum(weights, contents.rows) : 1;
  const exclude = options.exclude
    ? buildExclusions(options.exclude, await users.ids(), contents)
    : undefined;
  return { contents, users, weights, weightScale, exclude };
}

/** Opens the users: a file is checked up to its first row here and streamed later. */
async function openUsers(
  options: Pick<ScoreOptions, 'users' | 'usersFormat' | 'userIds' | 'usersColumns'>,
): Promise<UserSource> {
  const input = options.users;
  if (typeof input !== 'string') {
    const set = toVectorSet(input, 'users');
    return {
      source: set.source,
      rows: set.rows,
      dim: set.dim,
      async *blocks(range, blockRows) {
        for (let start = range.start; start < range.end; start += blockRows) {
          const rows = Math.min(blockRows, range.end - start);
          const data = set.data.subarray(start * set.dim, (start + rows) * set.dim);
          yield { start, rows, data, ids: set.ids.slice(start, start + rows) };
        }
      },
      async ids() {
        return set.ids;
      },
    };
  }
  const path: string = input;
  const readOptions = {
    format: options.usersFormat,
    idsPath: options.userIds,
    columns: options.usersColumns,
  };
  const first = await openUserBlocks(input, { ...readOptions, blockRows: 1 });
  await first.close();
  const rows = first.rows ?? (await countRows(input, { format: options.usersFormat }));
  if (rows === 0) throw new AttnScoreError('EMPTY_INPUT', messages.empty(input));
  async function* blocks(range: RowRange, blockRows: number): AsyncGenerator<UserBlock> {
    const stream = await openUserBlocks(path, { ...readOptions, blockRows, range });
    try {
      yield* stream.blocks();
    } finally {
      await stream.close();
    }
  }
  return {
    source: input,
    rows,
    dim: first.dim,
    blocks,
    async ids() {
      const ids: RowId[] = [];
      for await (const block of blocks({ start: 0, end: rows }, 4096)) ids.push(...block.ids);
      return ids;
    },
  };
}

function checkRange(range: RowRange, rows: number): void {
  const valid =
    Number.isSafeInteger(range.start) &&
    Number.isSafeInteger(range.end) &&
    range.start >= 0 &&
    range.start <= range.end &&
    range.end <= rows;
  if (!valid) {
    throw new AttnScoreError(
      'INVALID_PARAMETER',
      `range must lie within the ${rows} users with start <= end (got ${range.start} to ${range.end})`,
    );
  }
}

/** Everything {@link prepareCatalog} accepts. */
export interface CatalogOptions {
  readonly contents: VectorSource;
  /** Content weights, as {@link ScoreOptions.weights}. */
  readonly weights?: string | ArrayLike<number>;
  readonly contentsFormat?: VectorFormat;
  readonly contentsColumns?: ColumnOptions;
  readonly contentIds?: string;
  /** The backend that stores the prepared contents; the caller creates and disposes it. */
  readonly backend: Backend;
}

/**
 * Contents validated and prepared once on a backend, so that many batches of
 * users can be scored against them with {@link scoreCatalogBlocks}.
 */
export interface PreparedCatalog {
  /** The validated contents as read, with their ids and weights. */
  readonly contents: VectorSet;
  /** One weight per content row, or undefined when every weight is 1. */
  readonly weights: Float64Array | undefined;
  readonly backend: Backend;
  readonly prepared: PreparedContents;
  /** Releases the prepared contents; the backend stays with its caller. */
  dispose(): void;
}

/** Reads and validates contents and weights, and prepares them on `options.backend`. */
export async function prepareCatalog(options: CatalogOptions): Promise<PreparedCatalog> {
  const contents = await loadVectors(options.contents, {
    role: 'contents',
    format: options.contentsFormat,
    idsPath: options.contentIds,
    columns: options.contentsColumns,
  });
  const weights =
    options.weights !== undefined ? await loadWeights(options.weights, contents.rows) : contents.weights;
  const { backend } = options;
  const prepared = backend.prepare(contents.data, contents.rows, contents.dim, weights);
  return { contents, weights, backend, prepared, dispose: () => prepared.dispose() };
}

/** Everything {@link scoreCatalogBlocks} accepts besides the catalog. */
export interface CatalogScoreOptions extends Partial<ScoreParams> {
  /** Users in memory; files are for {@link prepareRun}. */
  readonly users: VectorInput | VectorSet;
  readonly exclude?: ScoreOptions['exclude'];
  readonly blockUsers?: number;
  /** Stops scoring between blocks. */
  readonly signal?: AbortSignal;
}

/**
 * Scores in-memory users against a prepared catalog, yielding each block's
 * results in input order. Validates the users, parameters and exclusions
 * before the first block, so an input error raises from the first `next()`.
 * The results equal those of {@link score} for the same contents and users.
 */
export async function* scoreCatalogBlocks(
  catalog: PreparedCatalog,
  options: CatalogScoreOptions,
): AsyncGenerator<ScoredBlock> {
  const params = resolveParams(options);
  const blockUsers = options.blockUsers ?? DEFAULT_BLOCK_USERS;
  if (!Number.isSafeInteger(blockUsers) || blockUsers < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('blockUsers', blockUsers));
  }
  const { contents, weights } = catalog;
  const users = await openUsers({ users: options.users });
  if (users.dim !== contents.dim) {
    throw new AttnScoreError(
      'DIMENSION_MISMATCH',
      messages.dimensionMismatch(users.dim, contents.dim, users.source, contents.source),
    );
  }
  const weightScale = params.normalizeWeights ? 1 / positiveSum(weights, contents.rows) : 1;
  const exclude = options.exclude
    ? buildExclusions(options.exclude, await users.ids(), contents)
    : undefined;
  yield* scoreUserBlocks({
    backend: catalog.backend,
    prepared: catalog.prepared,
    users,
    contentIds: contents.ids,
    params,
    weightScale,
    exclude,
    blockUsers,
    matrix: false,
    signal: options.signal,
    onProgress: undefined,
  });
}

/** Scores every user, yielding each block's results as soon as they exist. */
export async function* scoreBlocks(options: ScoreOptions): AsyncGenerator<ScoredBlock> {
  const run = await prepareRun(options);
  try {
    yield* run.blocks();
  } finally {
    await run.dispose();
  }
}

/**
 * Scores every user against every content and returns per-user results in
 * input order: CX, loyalty and the top-k contents, best first.
 *
 * @example
 * const { results } = await score({
 *   users: { data: usersF32, rows: 2, dim: 3 },
 *   contents: 'contents.npy',
 *   k: 5,
 *   alpha: 2,
 * });
 */
export async function score(options: ScoreOptions): Promise<ScoreResult> {
  const started = performance.now();
  const run = await prepareRun(options);
  const results: UserResult[] = [];
  const matrix = options.matrix ? new Float32Array(run.pairs) : undefined;
  try {
    for await (const block of run.blocks()) {
      results.push(...block.results);
      if (matrix && block.matrix) matrix.set(block.matrix, block.start * run.contents.rows);
    }
  } finally {
    await run.dispose();
  }
  const stats: RunStats = {
    users: run.users.rows,
    contents: run.contents.rows,
    dim: run.contents.dim,
    pairs: run.pairs,
    seconds: (performance.now() - started) / 1000,
    backend:
      `${run.backend.name} (${run.backend.variant})` +
      (run.backendReason !== undefined ? `, chosen by ${run.backendReason}` : ''),
  };
  return {
    results,
    stats,
    ...(matrix ? { matrix: { data: matrix, rows: run.users.rows, columns: run.contents.rows } } : {}),
  };
}

function positiveSum(weights: Float64Array | undefined, contents: number): number {
  let sum = 0;
  if (!weights) return contents;
  for (let i = 0; i < weights.length; i++) sum += weights[i]!;
  if (!(sum > 0) || !Number.isFinite(1 / sum)) throw new AttnScoreError('INVALID_PARAMETER', messages.weightSumNotPositive(sum));
  return sum;
}

function toUserResults(
  scores: BlockScores,
  userIds: readonly RowId[],
  contentIds: readonly RowId[],
  params: ScoreParams,
  weightScale: number,
): UserResult[] {
  const results: UserResult[] = new Array(scores.rows);
  for (let row = 0; row < scores.rows; row++) {
    const top: Match[] = new Array(scores.count[row]!);
    for (let rank = 0; rank < top.length; rank++) {
      const slot = row * scores.k + rank;
      top[rank] = { content: contentIds[scores.index[slot]!]!, score: scores.score[slot]! };
    }
    const cx = scores.cx[row]! * weightScale;
    results[row] = {
      user: userIds[row]!,
      cx,
      loyalty: loyalty(cx, params.beta, params.gamma),
      top,
    };
  }
  return results;
}

/**
 * Maps exclusions given by id to sorted content rows per user id, rejecting
 * ids that are not among the users or contents and lists that are not arrays.
 */
function buildExclusions(
  exclude: NonNullable<ScoreOptions['exclude']>,
  userIds: readonly RowId[],
  contents: VectorSet,
): Map<string, Int32Array> {
  const users = new Set(userIds.map(String));
  const contentRows = indexIds(contents.ids);
  const result = new Map<string, Int32Array>();
  const entries = exclude instanceof Map ? [...exclude.entries()] : Object.entries(exclude);
  for (const [userId, contentIdList] of entries) {
    if (!users.has(String(userId))) {
      throw new AttnScoreError('UNKNOWN_ID', messages.unknownUserId(userId));
    }
    if (!Array.isArray(contentIdList)) {
      throw new AttnScoreError(
        'INVALID_INPUT',
        `exclude for user ${JSON.stringify(userId)} must be an array of content ids (got ${JSON.stringify(contentIdList)})`,
      );
    }
    const rows = (contentIdList as readonly RowId[]).map((contentId) => {
      const contentRow = contentRows.get(String(contentId));
      if (contentRow === undefined) {
        throw new AttnScoreError('UNKNOWN_ID', messages.unknownContentId(userId, contentId));
      }
      return contentRow;
    });
    result.set(String(userId), Int32Array.from(rows).sort());
  }
  return result;
}

/** Maps each id (as a string, so JSON keys match numeric ids) to its first row. */
function indexIds(ids: readonly RowId[]): Map<string, number> {
  const rows = new Map<string, number>();
  ids.forEach((id, row) => {
    const key = String(id);
    if (!rows.has(key)) rows.set(key, row);
  });
  return rows;
}

/** Builds the exclusion list of one block from its user ids. */
function blockExclusions(exclude: Map<string, Int32Array>, ids: readonly RowId[]): ExclusionList {
  const lists = ids.map((id) => exclude.get(String(id)));
  const offsets = new Int32Array(ids.length + 1);
  lists.forEach((list, row) => (offsets[row + 1] = offsets[row]! + (list?.length ?? 0)));
  const rows = new Int32Array(offsets[ids.length]!);
  lists.forEach((list, row) => list && rows.set(list, offsets[row]!));
  return { offsets, rows };
}
