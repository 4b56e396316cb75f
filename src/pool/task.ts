/**
 * The messages between the pool backend and its worker threads. Every
 * pointer is a byte offset into the shared kernel memory.
 */
import type { KernelVariant } from '../backends/wasm/module.js';
import type { WasmMemory, WasmModule } from '../backends/wasm/webassembly.js';

/** Start data of each worker thread, passed through Piscina's `workerData`. */
export interface PoolWorkerData {
  /** The kernel build every task of this pool runs. */
  readonly variant: KernelVariant;
  /** That build, compiled by the main thread; workers share its code. */
  readonly module: WasmModule;
  /**
   * Name of the BroadcastChannel on which the pool sends a
   * {@link MemoryRelease} when prepared contents are disposed.
   */
  readonly releaseChannel: string;
}

/** Tells the workers to drop their instance over a memory that no task will use again. */
export interface MemoryRelease {
  readonly memoryId: number;
}

/**
 * One kernel call: pack the raw users of a slot, then score them against a
 * range of contents. The main thread has written every input into the slot.
 */
export interface ScoreTask {
  /**
   * The shared memory. Posting it shares the memory, not a copy: the worker
   * gets a new `WebAssembly.Memory` object over the same bytes.
   */
  readonly memory: WasmMemory;
  /** Identifies `memory` across tasks, since each posting gives a new object. */
  readonly memoryId: number;
  /** First packed content panel of the range, and its weights. */
  readonly contents: number;
  readonly weights: number;
  readonly contentRows: number;
  readonly dim: number;
  /** Raw row-major users to pack into `users`. */
  readonly rawUsers: number;
  readonly users: number;
  readonly userRows: number;
  readonly alphaHigh: number;
  readonly alphaLow: number;
  readonly k: number;
  readonly thresholds: number;
  readonly topScores: number;
  readonly topRows: number;
  readonly counts: number;
  readonly cx: number;
  /** 0 when the task has no exclusions. */
  readonly excludeOffsets: number;
  readonly excludeRows: number;
  /** 0 when the task does not ask for the matrix. */
  readonly matrix: number;
  readonly tileScores: number;
}
