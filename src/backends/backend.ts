import type { BlockScores, ExclusionList } from '../scoring/types.js';

/** Names of the backends that {@link openBackend} creates. */
export const backendNames = ['wasm', 'js', 'webgpu', 'gpujs'] as const;
export type BackendName = (typeof backendNames)[number];

/** A backend name, or `auto` to let the run choose from the job's size and the adapter. */
export type BackendChoice = BackendName | 'auto';

/** Contents after a backend has normalised them and laid them out for its kernel. */
export interface PreparedContents {
  readonly rows: number;
  readonly dim: number;
  /** Releases the memory that holds the prepared contents. */
  dispose(): void;
}

/** One block of users to score against prepared contents. */
export interface BlockRequest {
  /** `rows` x `dim` float32 user vectors, row-major, not yet normalised. */
  readonly users: Float32Array;
  readonly rows: number;
  /** Slots per user: min(k, C). */
  readonly k: number;
  readonly alpha: number;
  /** Contents with a cosine below this are left out of the top-k list. */
  readonly minScore: number;
  /** Per-user content rows to leave out of the top-k list; row i is the block's user i. */
  readonly exclude?: ExclusionList;
  /** Also return the `rows` x C cosine matrix. */
  readonly matrix?: boolean;
  /**
   * Position of the block in its run: its 0-based index and the run's block
   * count. A threaded backend uses it to decide how to split the work. When
   * absent, the block is taken to be a run of its own.
   */
  readonly position?: { readonly index: number; readonly count: number };
}

/**
 * A scoring engine. Every backend computes the same thing: for each user of a
 * block, cosine similarity against every prepared content, the top-k
 * contents (best first, ties by lower row) and CX with the raw weights.
 * Results must match the `js` float64 reference within the documented
 * precision.
 */
export interface Backend {
  readonly name: BackendName;
  /** A one-line description of what runs, such as the SIMD variant in use. */
  readonly variant: string;
  /**
   * Blocks that the run loop keeps in flight at once: the thread count of a
   * threaded backend, 1 (the default) for a backend that scores on the
   * calling thread.
   */
  readonly concurrency?: number;
  /**
   * Validates nothing (callers have), normalises each content row once and
   * keeps it with its weight (1 when `weights` is undefined).
   */
  prepare(contents: Float32Array, rows: number, dim: number, weights?: Float64Array): PreparedContents;
  /**
   * Scores one block. A threaded backend returns a promise and may be called
   * again before it settles; results never depend on how calls overlap.
   */
  scoreBlock(prepared: PreparedContents, request: BlockRequest): BlockScores | Promise<BlockScores>;
  /**
   * Releases what the backend holds, such as worker threads, which a
   * returned promise waits for; the backend must not be used afterwards.
   */
  dispose(): void | Promise<void>;
}

/** A backend that scores on the calling thread and returns each block's scores directly. */
export interface SyncBackend extends Backend {
  scoreBlock(prepared: PreparedContents, request: BlockRequest): BlockScores;
  dispose(): void;
}
