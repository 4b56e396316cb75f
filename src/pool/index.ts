/**
 * The pool backend: the wasm kernel run by a Piscina pool of worker threads.
 *
 * `prepare` normalises and packs the contents once, on the calling thread,
 * into a shared `WebAssembly.Memory`. Every worker instantiates the kernel
 * over that same memory, so the contents are neither copied per task nor per
 * worker. Each running task owns one scratch slot after the contents
 * (slots.ts). The main thread writes the task's inputs there, and the worker
 * packs the users and runs the kernel. The main thread then reads the
 * results from the slot before handing it back. This costs one copy of a few
 * arrays per task, where a worker-side copy handed back with `Piscina.move`
 * would cost the same copy plus a message transfer.
 *
 * planner.ts decides how a block is split: one task per block, with the run
 * loop keeping one block per thread in flight, or one task per content
 * segment when a run has fewer blocks than threads.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import type { Backend, BlockRequest, PreparedContents } from '../backends/backend.js';
import {
  prepareContents,
  readBlockScores,
  resolveVariant,
  variantNames,
  WasmPreparedContents,
  writeBlockInputs,
} from '../backends/wasm/index.js';
import {
  planBlock,
  roundUp,
  TILE_CONTENTS,
  TILE_USERS,
  type BlockLayout,
  type ContentsLayout,
} from '../backends/wasm/layout.js';
import { createKernelMemory, instantiateKernel, kernelModule, splitAlpha } from '../backends/wasm/module.js';
import type { WasmMemory } from '../backends/wasm/webassembly.js';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { MAX_ABS_ALPHA } from '../scoring/params.js';
import type { BlockScores } from '../scoring/types.js';
import { mergeSegments } from './merge.js';
import { segmentCount, segmentExclusions, splitContents, type ContentSegment } from './planner.js';
import { SlotAllocator, type Slot } from './slots.js';
import type { MemoryRelease, PoolWorkerData, ScoreTask } from './task.js';

/** Options of {@link createPoolBackend}. */
export interface PoolBackendOptions {
  /** Worker threads, and so tasks running at once (default: `os.availableParallelism()`). */
  readonly threads?: number;
  /** Kernel build, as for the `wasm` backend: 'auto' (the default), 'relaxed' or 'plain'. */
  readonly simd?: 'auto' | 'relaxed' | 'plain';
}

/**
 * The compiled worker. Piscina loads a file in each thread, and Node 20 cannot
 * load the TypeScript source, so the path points into dist/ both from
 * dist/pool/index.js and from src/pool/index.ts (two levels below the package
 * root either way). Under vitest the main thread therefore runs src/ and the
 * workers run dist/, which `npm test` rebuilds first through its pretest step.
 */
const workerFile = new URL('../../dist/pool/worker.js', import.meta.url);

const ALIGN_BYTES = 64;

let nextMemoryId = 1;

/** Offsets of one task's buffers in its slot. */
interface SlotLayout {
  readonly block: BlockLayout;
  /** Raw row-major users, which the worker packs into `block.users`. */
  readonly rawUsers: number;
  readonly end: number;
}

/** Lays out a task's buffers from `base` on: the wasm backend's block layout, then the raw users. */
function planSlot(
  layout: ContentsLayout,
  base: number,
  rows: number,
  k: number,
  excludeCount: number | undefined,
  matrix: boolean,
): SlotLayout {
  const block = planBlock({ ...layout, blockBase: base }, rows, k, excludeCount, matrix);
  const rawUsers = roundUp(block.end, ALIGN_BYTES);
  return { block, rawUsers, end: rawUsers + rows * layout.dim * 4 };
}

class PoolPreparedContents implements PreparedContents {
  readonly rows: number;
  readonly dim: number;
  readonly wasm: WasmPreparedContents;
  readonly memory: WasmMemory;
  readonly memoryId: number;
  readonly slots: SlotAllocator;
  private disposed = false;
  private released = false;
  private readonly onRelease: (prepared: PoolPreparedContents) => void;

  constructor(
    wasm: WasmPreparedContents,
    slotCount: number,
    onRelease: (prepared: PoolPreparedContents) => void,
  ) {
    this.rows = wasm.rows;
    this.dim = wasm.dim;
    this.wasm = wasm;
    this.memory = wasm.use().memory;
    this.memoryId = nextMemoryId++;
    this.slots = new SlotAllocator(this.memory, wasm.layout.blockBase, slotCount);
    this.onRelease = onRelease;
  }

  /** Throws when disposed. */
  checkUsable(): void {
    if (this.disposed) {
      throw new AttnScoreError('INTERNAL', 'prepared contents were used after dispose()');
    }
  }

  /** Takes back a task's slot, and finishes a deferred dispose once no slot is in use. */
  releaseSlot(slot: Slot): void {
    this.slots.release(slot);
    if (this.disposed && this.slots.inUse === 0) this.release();
  }

  /**
   * Stops new tasks at once. The release message to the workers waits until
   * no slot is in use, so a task in flight keeps its kernel instance.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.slots.close(new AttnScoreError('INTERNAL', 'prepared contents were used after dispose()'));
    if (this.slots.inUse === 0) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.wasm.dispose();
    this.onRelease(this);
  }
}

/** Copies a task's raw users and top-k, CX and exclusion inputs into its slot. */
function writeSlotInputs(
  memory: WasmMemory,
  slot: SlotLayout,
  request: BlockRequest,
  dim: number,
): void {
  const rows = request.rows;
  if (rows > 0) {
    // The kernel packs only real rows, so zero the last panel: padded lanes must be zero vectors.
    const panelBytes = TILE_USERS * dim * 4;
    const lastPanel = slot.block.users + Math.floor((rows - 1) / TILE_USERS) * panelBytes;
    new Uint8Array(memory.buffer, lastPanel, panelBytes).fill(0);
    new Float32Array(memory.buffer, slot.rawUsers, rows * dim).set(
      request.users.subarray(0, rows * dim),
    );
  }
  writeBlockInputs(memory, slot.block, request);
}

/**
 * Creates the pool backend: the `wasm` kernel on `threads` worker threads
 * over one shared memory per prepared content set. `scoreBlock` returns a
 * promise, and `dispose` resolves once the workers have ended. Compiles the
 * kernel here, so it throws (not on first use) when the runtime lacks the
 * SIMD features of the build, or when the build or the compiled worker is
 * missing.
 */
export function createPoolBackend(options: PoolBackendOptions = {}): Backend {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('threads', threads));
  }
  const variant = resolveVariant(options.simd);
  instantiateKernel(variant, createKernelMemory(1));
  const workerPath = fileURLToPath(workerFile);
  if (!existsSync(workerPath)) {
    throw new AttnScoreError(
      'INTERNAL',
      `failed to find the pool worker ${workerPath}; run "npm run build" to build it`,
    );
  }

  const workerData: PoolWorkerData = {
    variant,
    module: kernelModule(variant),
    releaseChannel: `attnscore-pool-${randomUUID()}`,
  };
  const channel = new BroadcastChannel(workerData.releaseChannel);
  channel.unref();
  const pool = new Piscina<ScoreTask, void>({
    filename: workerPath,
    name: 'scoreTask',
    minThreads: threads,
    maxThreads: threads,
    // Disabled so that idle workers run their event loop and receive release messages.
    atomics: 'disabled',
    workerData,
  });
  const live = new Set<PoolPreparedContents>();
  let disposed = false;

  const checkUsable = (): void => {
    if (disposed) throw new AttnScoreError('INTERNAL', 'the pool backend was used after dispose()');
  };
  const onRelease = (prepared: PoolPreparedContents): void => {
    live.delete(prepared);
    const message: MemoryRelease = { memoryId: prepared.memoryId };
    if (!disposed) channel.postMessage(message);
  };

  /** Scores `request`'s users against one content segment in a slot of at least `slotBytes`. */
  async function scoreSegment(
    prepared: PoolPreparedContents,
    request: BlockRequest,
    segment: ContentSegment,
    k: number,
    slotBytes: number,
  ): Promise<BlockScores> {
    const slot = await prepared.slots.acquire(slotBytes);
    try {
      const { memory, wasm } = prepared;
      const whole = segment.rows === prepared.rows;
      const exclude =
        request.exclude && !whole
          ? segmentExclusions(request.exclude, request.rows, segment)
          : request.exclude;
      const excludeCount = exclude ? exclude.offsets[request.rows]! : undefined;
      const matrix = request.matrix === true;
      const layout = planSlot(wasm.layout, slot.base, request.rows, k, excludeCount, matrix);
      writeSlotInputs(memory, layout, { ...request, exclude }, prepared.dim);
      const { block } = layout;
      const alpha = splitAlpha(request.alpha);
      const panel = segment.firstRow / TILE_CONTENTS;
      await pool.run({
        memory,
        memoryId: prepared.memoryId,
        contents: wasm.layout.contents + panel * TILE_CONTENTS * prepared.dim * 4,
        weights: wasm.layout.weights + segment.firstRow * 4,
        contentRows: segment.rows,
        dim: prepared.dim,
        rawUsers: layout.rawUsers,
        users: block.users,
        userRows: request.rows,
        alphaHigh: alpha.high,
        alphaLow: alpha.low,
        k,
        thresholds: block.thresholds,
        topScores: block.topScores,
        topRows: block.topRows,
        counts: block.counts,
        cx: block.cx,
        excludeOffsets: block.excludeOffsets,
        excludeRows: block.excludeRows,
        matrix: block.matrix,
        tileScores: block.tileScores,
      });
      return readBlockScores(memory, block, segment.rows, wasm.weightScale);
    } finally {
      prepared.releaseSlot(slot);
    }
  }

  async function scoreBlock(
    prepared: PreparedContents,
    request: BlockRequest,
  ): Promise<BlockScores> {
    checkUsable();
    if (!(prepared instanceof PoolPreparedContents)) {
      throw new AttnScoreError(
        'INTERNAL',
        'scoreBlock was given contents prepared by another backend',
      );
    }
    prepared.checkUsable();
    // The kernel's exp does not clamp: beyond |alpha * a| = 87 it would give wrong CX silently.
    if (!(Math.abs(request.alpha) <= MAX_ABS_ALPHA)) {
      throw new AttnScoreError('INVALID_PARAMETER', messages.alphaRange(request.alpha));
    }
    const { rows, dim } = prepared;
    const k = Math.min(request.k, rows);
    const excludeCount = request.exclude ? request.exclude.offsets[request.rows]! : undefined;
    const matrix = request.matrix === true;
    // Sized for the whole block, which bounds every segment's needs.
    const slotBytes = planSlot(prepared.wasm.layout, 0, request.rows, k, excludeCount, matrix).end;
    prepared.slots.checkFits(
      slotBytes,
      `contents of ${rows} rows x ${dim} dims with ${threads} task slots of ${request.rows} users` +
        (matrix ? ` and their ${request.rows} x ${rows} matrices` : ''),
    );

    const panels = Math.ceil(rows / TILE_CONTENTS);
    const segments = splitContents(rows, segmentCount(request.position, threads, panels));
    if (segments.length === 1) return scoreSegment(prepared, request, segments[0]!, k, slotBytes);
    const parts = await Promise.all(
      segments.map(async (segment) => ({
        segment,
        scores: await scoreSegment(prepared, request, segment, k, slotBytes),
      })),
    );
    return mergeSegments(parts, rows);
  }

  return {
    name: 'wasm',
    variant: `${variantNames[variant]}, ${threads} worker threads`,
    concurrency: threads,
    prepare(contents, rows, dim, weights): PreparedContents {
      checkUsable();
      // NOTE: packing runs on this thread alone, so it does not speed up with threads. At
      // 400000 x 128 it took about 170 ms, against 255 ms for one thread to score 100 users.
      const wasm = prepareContents(variant, contents, rows, dim, weights, () => {});
      const prepared = new PoolPreparedContents(wasm, threads, onRelease);
      live.add(prepared);
      return prepared;
    },
    scoreBlock,
    async dispose(): Promise<void> {
      if (disposed) return;
      for (const prepared of [...live]) prepared.dispose();
      disposed = true;
      await pool.destroy();
      channel.close();
    },
  };
}
