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
  createBackend,
  defaultBackend,
  type Backend,
  type BackendName,
  type PreparedContents,
} from './backends/index.js';
import { createPoolBackend } from './pool/index.js';
import { AttnScoreError } from './scoring/errors.js';
import { loyalty } from './scoring/math.js';
import { messages } from './scoring/messages.js';
import { resolveParams, type ScoreParams } from './scoring/params.js';
import type { BlockScores, ExclusionList, Match, RowId, UserResult, VectorSet } from './scoring/types.js';
import { loadVectors, loadWeights, type VectorSource } from './vectors.js';

/** Users scored per backend call by default: small enough for smooth progress, large enough to amortise the call. */
export const DEFAULT_BLOCK_USERS = 512;

/** Everything {@link score} and {@link scoreBlocks} accept. */
export interface ScoreOptions extends Partial<ScoreParams> {
  readonly users: VectorSource;
  readonly contents: VectorSource;
  /** Content weights: a `.npy` or text file, or one number per content. Overrides weights read with the contents. */
  readonly weights?: string | ArrayLike<number>;
  /** Format of a users file; taken from its extension when omitted. */
  readonly usersFormat?: 'npy' | 'jsonl' | 'csv';
  /** Format of a contents file; taken from its extension when omitted. */
  readonly contentsFormat?: 'npy' | 'jsonl' | 'csv';
  /** Text file with one user id per line, for `.npy` users. */
  readonly userIds?: string;
  /** Text file with one content id per line, for `.npy` contents. */
  readonly contentIds?: string;
  /** Content ids to leave out of each user's top-k list (they still count towards CX). */
  readonly exclude?: ReadonlyMap<RowId, readonly RowId[]> | Readonly<Record<string, readonly RowId[]>>;
  /** A backend name (`wasm` by default) or a backend instance, which the caller then disposes. */
  readonly backend?: BackendName | Backend;
  /**
   * Threads for the `wasm` backend (default: `os.availableParallelism()`).
   * 1 scores on the calling thread; more run a pool of worker threads. The
   * `js` backend and a backend instance ignore it.
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

/** A run whose inputs are read and validated, ready to be scored. */
export interface PreparedRun {
  readonly users: VectorSet;
  readonly contents: VectorSet;
  readonly params: ScoreParams;
  readonly backend: Backend;
  readonly pairs: number;
  /** Scores the users block by block. */
  blocks(): AsyncGenerator<ScoredBlock>;
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
  const threads = options.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('threads', threads));
  }
  // The backend starts before the inputs are read, so that a pool's worker
  // threads boot while the files load.
  const ownsBackend = typeof options.backend !== 'object';
  const backend =
    typeof options.backend === 'object'
      ? options.backend
      : createRunBackend(options.backend, threads);
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
  const pairs = users.rows * contents.rows;
  const blockCount = Math.ceil(users.rows / blockUsers);
  const concurrency = Math.max(1, backend.concurrency ?? 1);

  /** Starts scoring block `index`; a backend error surfaces when the promise is awaited. */
  function startBlock(index: number): Promise<BlockScores> {
    const start = index * blockUsers;
    const rows = Math.min(blockUsers, users.rows - start);
    const request = {
      users: users.data.subarray(start * users.dim, (start + rows) * users.dim),
      rows,
      k: params.k,
      alpha: params.alpha,
      minScore: params.minScore,
      exclude: exclude && sliceExclusions(exclude, start, rows),
      matrix: options.matrix === true,
      position: { index, count: blockCount },
    };
    try {
      return Promise.resolve(backend.scoreBlock(prepared, request));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function* blocks(): AsyncGenerator<ScoredBlock> {
    // Up to `concurrency` blocks are in flight, and they are yielded in input
    // order: the loop always waits for the oldest one.
    const inFlight: Promise<BlockScores>[] = [];
    let next = 0;
    try {
      for (let index = 0; index < blockCount; index++) {
        while (next < blockCount && inFlight.length < concurrency) {
          options.signal?.throwIfAborted();
          const scores = startBlock(next++);
          // A later block may fail while the loop waits for an earlier one. This
          // handler keeps that from counting as an unhandled rejection, and the
          // error still surfaces when the loop awaits the block.
          scores.catch(() => {});
          inFlight.push(scores);
        }
        const scores = await inFlight.shift()!;
        const start = index * blockUsers;
        const results = toUserResults(scores, users.ids, start, contents.ids, params, weightScale);
        options.onProgress?.((start + results.length) * contents.rows, pairs);
        yield { start, results, ...(scores.matrix ? { matrix: scores.matrix } : {}) };
        // Give timers and signal handlers a turn between blocks.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      // Blocks still in flight use the prepared contents, so dispose() must wait for them.
      await Promise.allSettled(inFlight);
    }
  }

  return {
    users,
    contents,
    params,
    backend,
    pairs,
    blocks,
    dispose() {
      prepared.dispose();
      if (ownsBackend) return backend.dispose();
    },
  };
}

/**
 * Creates the backend called `name` for a run: the pool backend for `wasm`
 * with more than one thread, else the single-thread backend.
 */
function createRunBackend(name: BackendName | undefined, threads: number): Backend {
  if ((name ?? defaultBackend) === 'wasm' && threads > 1) return createPoolBackend({ threads });
  return createBackend(name);
}

/** The validated inputs of a run. */
interface RunInputs {
  readonly contents: VectorSet;
  readonly users: VectorSet;
  readonly weights: Float64Array | undefined;
  /** Factor applied to CX: 1, or 1 / (sum of weights) with normalizeWeights. */
  readonly weightScale: number;
  readonly exclude: ExclusionList | undefined;
}

/** Reads and validates the users, contents, weights and exclusions of a run. */
async function loadInputs(options: ScoreOptions, params: ScoreParams): Promise<RunInputs> {
  const contents = await loadVectors(options.contents, {
    role: 'contents',
    format: options.contentsFormat,
    idsPath: options.contentIds,
  });
  const users = await loadVectors(options.users, {
    role: 'users',
    format: options.usersFormat,
    idsPath: options.userIds,
  });
  if (users.dim !== contents.dim) {
    throw new AttnScoreError('DIMENSION_MISMATCH', messages.dimensionMismatch(users.dim, contents.dim));
  }
  const weights =
    options.weights !== undefined ? await loadWeights(options.weights, contents.rows) : contents.weights;
  const weightScale = params.normalizeWeights ? 1 / positiveSum(weights, contents.rows) : 1;
  const exclude = options.exclude ? buildExclusions(options.exclude, users, contents) : undefined;
  return { contents, users, weights, weightScale, exclude };
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
    backend: `${run.backend.name} (${run.backend.variant})`,
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
  if (!(sum > 0)) throw new AttnScoreError('INVALID_PARAMETER', messages.weightSumNotPositive(sum));
  return sum;
}

function toUserResults(
  scores: BlockScores,
  userIds: readonly RowId[],
  start: number,
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
      user: userIds[start + row]!,
      cx,
      loyalty: loyalty(cx, params.beta, params.gamma),
      top,
    };
  }
  return results;
}

/** Maps exclusions given by id to sorted content rows per user row. */
function buildExclusions(
  exclude: NonNullable<ScoreOptions['exclude']>,
  users: VectorSet,
  contents: VectorSet,
): ExclusionList {
  const userRows = indexIds(users.ids);
  const contentRows = indexIds(contents.ids);
  const perUser: number[][] = Array.from({ length: users.rows }, () => []);
  const entries = exclude instanceof Map ? [...exclude.entries()] : Object.entries(exclude);
  for (const [userId, contentIdList] of entries) {
    const userRow = userRows.get(String(userId));
    if (userRow === undefined) throw new AttnScoreError('UNKNOWN_ID', messages.unknownUserId(userId));
    for (const contentId of contentIdList) {
      const contentRow = contentRows.get(String(contentId));
      if (contentRow === undefined) {
        throw new AttnScoreError('UNKNOWN_ID', messages.unknownContentId(userId, contentId));
      }
      perUser[userRow]!.push(contentRow);
    }
  }
  const offsets = new Int32Array(users.rows + 1);
  for (let row = 0; row < users.rows; row++) offsets[row + 1] = offsets[row]! + perUser[row]!.length;
  const rows = new Int32Array(offsets[users.rows]!);
  for (let row = 0; row < users.rows; row++) {
    const sorted = Int32Array.from(perUser[row]!).sort();
    rows.set(sorted, offsets[row]!);
  }
  return { offsets, rows };
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

function sliceExclusions(exclude: ExclusionList, start: number, rows: number): ExclusionList {
  const offsets = exclude.offsets.subarray(start, start + rows + 1);
  const base = offsets[0]!;
  return {
    offsets: offsets.map((offset) => offset - base),
    rows: exclude.rows.subarray(base, offsets[rows]!),
  };
}
