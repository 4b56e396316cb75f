/**
 * The `wasm` backend: the fused WebAssembly SIMD kernel of assembly/ behind
 * the Backend interface.
 *
 * Each prepared content set gets its own imported shared `WebAssembly.Memory`
 * and instance, and the worker pool (src/pool) scores against that memory
 * too. The host writes raw rows into a staging buffer, the kernel normalises
 * and packs them, and `scoreBlock` reuses one block region for users, top-k
 * state, CX sums and the optional matrix. Layout: layout.ts.
 */
import type { BlockRequest, PreparedContents, SyncBackend } from '../backend.js';
import type { BlockScores } from '../../scoring/types.js';
import { AttnScoreError } from '../../scoring/errors.js';
import { messages } from '../../scoring/messages.js';
import { MAX_ABS_ALPHA } from '../../scoring/params.js';
import {
  checkMemoryLimit,
  PAGE_BYTES,
  planBlock,
  planContents,
  TILE_CONTENTS,
  TILE_USERS,
  type BlockLayout,
  type ContentsLayout,
} from './layout.js';
import type { WasmMemory } from './webassembly.js';
import {
  createKernelMemory,
  instantiateKernel,
  relaxedSimdAvailable,
  splitAlpha,
  type KernelExports,
  type KernelVariant,
} from './module.js';
import { weightScaleOf } from '../../scoring/math.js';

export { relaxedSimdAvailable, simdAvailable } from './module.js';

/** Options of {@link createWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Kernel build: 'relaxed' (fused multiply-add through relaxed SIMD, throws
   * where the runtime lacks it), 'plain' (SIMD128 only) or 'auto' (relaxed
   * when available, the default).
   */
  readonly simd?: 'auto' | 'relaxed' | 'plain';
}

/** Descriptions of the kernel builds, for `Backend.variant`. */
export const variantNames: Record<KernelVariant, string> = {
  relaxed: 'WebAssembly SIMD128 with relaxed madd',
  plain: 'WebAssembly SIMD128',
};

/** Contents normalised and packed into a kernel memory; see layout.ts. */
export class WasmPreparedContents implements PreparedContents {
  readonly rows: number;
  readonly dim: number;
  readonly layout: ContentsLayout;
  /** Power of two that the stored float32 weights were divided by. */
  readonly weightScale: number;
  private state: { memory: WasmMemory; kernel: KernelExports } | undefined;
  private readonly onDispose: (prepared: WasmPreparedContents) => void;

  constructor(
    layout: ContentsLayout,
    weightScale: number,
    memory: WasmMemory,
    kernel: KernelExports,
    onDispose: (prepared: WasmPreparedContents) => void,
  ) {
    this.rows = layout.contentRows;
    this.dim = layout.dim;
    this.layout = layout;
    this.weightScale = weightScale;
    this.state = { memory, kernel };
    this.onDispose = onDispose;
  }

  /** Returns the memory and kernel, or throws when disposed. */
  use(): { memory: WasmMemory; kernel: KernelExports } {
    if (this.state === undefined) {
      throw new AttnScoreError('INTERNAL', 'prepared contents were used after dispose()');
    }
    return this.state;
  }

  dispose(): void {
    if (this.state === undefined) return;
    this.state = undefined;
    this.onDispose(this);
  }
}

/** Grows `memory` to at least `bytes`. */
export function ensureMemory(memory: WasmMemory, bytes: number): void {
  const pages = Math.ceil(bytes / PAGE_BYTES);
  const current = memory.buffer.byteLength / PAGE_BYTES;
  if (pages <= current) return;
  try {
    memory.grow(pages - current);
  } catch (error) {
    throw new AttnScoreError(
      'INVALID_INPUT',
      `failed to grow WebAssembly memory to ${pages * PAGE_BYTES} bytes. ` +
        'Use fewer contents or smaller user blocks.',
      { cause: error },
    );
  }
}

/**
 * Copies `rows` row-major rows of `dim` floats from `source` into the
 * staging buffer a chunk at a time and has the kernel normalise and pack them
 * into panels of `panelWidth` at `destination`. Zero-fills the last panel
 * first so that padded lanes are zero vectors.
 */
function packInto(
  memory: WasmMemory,
  kernel: KernelExports,
  source: Float32Array,
  rows: number,
  dim: number,
  destination: number,
  panelWidth: number,
  staging: { at: number; rows: number },
): void {
  const panelBytes = panelWidth * dim * 4;
  const lastPanel = destination + Math.floor((rows - 1) / panelWidth) * panelBytes;
  new Uint8Array(memory.buffer, lastPanel, panelBytes).fill(0);
  const stagingView = new Float32Array(memory.buffer, staging.at, staging.rows * dim);
  for (let first = 0; first < rows; first += staging.rows) {
    const count = Math.min(staging.rows, rows - first);
    stagingView.set(source.subarray(first * dim, (first + count) * dim));
    kernel.packRows(staging.at, count, dim, destination, panelWidth, first);
  }
}

/** Returns the largest float32 strictly below `value`, or -Infinity for -Infinity. */
function float32Below(value: number): number {
  if (value === -Infinity) return -Infinity;
  const below = Math.fround(value);
  if (below < value) return below;
  // Step one float32 toward -Infinity through the bit pattern.
  const bits = new Float32Array([below]);
  const integer = new Int32Array(bits.buffer);
  if (below === 0) {
    integer[0] = -2147483647; // 0x80000001, the negative subnormal closest to 0
  } else if (below > 0) {
    integer[0]! -= 1;
  } else {
    integer[0]! += 1;
  }
  return bits[0]!;
}

/**
 * Creates a kernel memory and instance for `rows` x `dim` contents, packs
 * the normalised contents and stores the weights divided by a power of two.
 */
export function prepareContents(
  variant: KernelVariant,
  contents: Float32Array,
  rows: number,
  dim: number,
  weights: Float64Array | undefined,
  onDispose: (prepared: WasmPreparedContents) => void,
): WasmPreparedContents {
  const layout = planContents(rows, dim);
  checkMemoryLimit(
    Math.max(layout.end, planBlock(layout, 1, 1, undefined, false).end),
    `contents of ${rows} rows x ${dim} dims (padded to ${layout.paddedRows} rows)`,
  );
  const memory = createKernelMemory(Math.ceil(layout.end / PAGE_BYTES));
  const kernel = instantiateKernel(variant, memory);
  if (rows > 0) {
    packInto(memory, kernel, contents, rows, dim, layout.contents, TILE_CONTENTS, {
      at: layout.staging,
      rows: layout.stagingRows,
    });
  }

  const weightScale = weightScaleOf(weights);
  const storedWeights = new Float32Array(memory.buffer, layout.weights, layout.paddedRows);
  storedWeights.fill(0);
  for (let c = 0; c < rows; c++) {
    storedWeights[c] = weights === undefined ? 1 : weights[c]! / weightScale;
  }
  return new WasmPreparedContents(layout, weightScale, memory, kernel, onDispose);
}

/** Initialises the thresholds, CX sums, counts and exclusions of `block` for `request`. */
export function writeBlockInputs(
  memory: WasmMemory,
  block: BlockLayout,
  request: BlockRequest,
): void {
  const { userRows, paddedUsers, k } = block;
  const thresholds = new Float32Array(memory.buffer, block.thresholds, paddedUsers);
  thresholds.fill(k > 0 ? float32Below(request.minScore) : Infinity, 0, userRows);
  thresholds.fill(Infinity, userRows);
  new Float64Array(memory.buffer, block.cx, paddedUsers).fill(0);
  new Int32Array(memory.buffer, block.counts, paddedUsers).fill(0);
  const exclude = request.exclude;
  if (exclude !== undefined) {
    new Int32Array(memory.buffer, block.excludeOffsets, userRows + 1).set(
      exclude.offsets.subarray(0, userRows + 1),
    );
    const excludeCount = exclude.offsets[userRows]!;
    new Int32Array(memory.buffer, block.excludeRows, excludeCount).set(
      exclude.rows.subarray(0, excludeCount),
    );
  }
}

/**
 * Copies the results of `block` out of the memory: the top-k lists, CX times
 * `weightScale` and the matrix when the block has one.
 */
export function readBlockScores(
  memory: WasmMemory,
  block: BlockLayout,
  contentRows: number,
  weightScale: number,
): BlockScores {
  const { userRows: rows, k } = block;
  const count = new Int32Array(memory.buffer, block.counts, rows).slice();
  const storedScores = new Float32Array(memory.buffer, block.topScores, rows * k);
  const storedRows = new Int32Array(memory.buffer, block.topRows, rows * k);
  const index = new Int32Array(rows * k).fill(-1);
  const score = new Float64Array(rows * k).fill(NaN);
  for (let u = 0; u < rows; u++) {
    const base = u * k;
    for (let slot = 0; slot < count[u]!; slot++) {
      index[base + slot] = storedRows[base + slot]!;
      score[base + slot] = storedScores[base + slot]!;
    }
  }
  const storedCx = new Float64Array(memory.buffer, block.cx, rows);
  const cx = new Float64Array(rows);
  for (let u = 0; u < rows; u++) cx[u] = storedCx[u]! * weightScale;
  const result: BlockScores = { rows, k, count, index, score, cx };
  if (block.matrix !== 0) {
    const matrix = new Float32Array(memory.buffer, block.matrix, rows * contentRows).slice();
    return { ...result, matrix };
  }
  return result;
}

function scorePreparedBlock(prepared: WasmPreparedContents, request: BlockRequest): BlockScores {
  const { memory, kernel } = prepared.use();
  // The kernel's exp does not clamp: beyond |alpha * a| = 87 it would give wrong CX silently.
  if (!(Math.abs(request.alpha) <= MAX_ABS_ALPHA)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.alphaRange(request.alpha));
  }
  const layout = prepared.layout;
  const rows = request.rows;
  const dim = prepared.dim;
  const k = Math.min(request.k, prepared.rows);
  const excludeCount = request.exclude ? request.exclude.offsets[rows]! : undefined;
  const block = planBlock(layout, rows, k, excludeCount, request.matrix === true);
  checkMemoryLimit(
    block.end,
    `contents of ${prepared.rows} rows x ${dim} dims (padded to ${layout.paddedRows} rows) ` +
      `with a block of ${rows} users` +
      (request.matrix ? ` and its ${rows} x ${prepared.rows} matrix` : ''),
  );
  ensureMemory(memory, block.end);

  if (rows > 0) {
    packInto(memory, kernel, request.users, rows, dim, block.users, TILE_USERS, {
      at: block.staging,
      rows: block.stagingRows,
    });
  }
  writeBlockInputs(memory, block, request);
  const alpha = splitAlpha(request.alpha);
  kernel.scoreBlock(
    layout.contents,
    layout.weights,
    prepared.rows,
    dim,
    block.users,
    rows,
    alpha.high,
    alpha.low,
    k,
    block.thresholds,
    block.topScores,
    block.topRows,
    block.counts,
    block.cx,
    block.excludeOffsets,
    block.excludeRows,
    block.matrix,
    block.tileScores,
  );
  return readBlockScores(memory, block, prepared.rows, prepared.weightScale);
}

/** Resolves the `simd` option to a kernel build, checking only the option's value. */
export function resolveVariant(simd: WasmBackendOptions['simd']): KernelVariant {
  switch (simd ?? 'auto') {
    case 'auto':
      return relaxedSimdAvailable() ? 'relaxed' : 'plain';
    case 'relaxed':
      return 'relaxed';
    case 'plain':
      return 'plain';
    default:
      throw new AttnScoreError(
        'INVALID_PARAMETER',
        `simd must be 'auto', 'relaxed' or 'plain' (got ${String(simd)})`,
      );
  }
}

/**
 * Creates the `wasm` backend. Compiles the chosen kernel build synchronously,
 * so it throws here (not on first use) when the runtime lacks the SIMD
 * features the build needs or the build files are missing.
 */
export function createWasmBackend(options: WasmBackendOptions = {}): SyncBackend {
  const variant = resolveVariant(options.simd);
  // Instantiating a throwaway memory surfaces unsupported features and missing files now.
  instantiateKernel(variant, createKernelMemory(1));
  const live = new Set<WasmPreparedContents>();
  let disposed = false;

  const checkUsable = (): void => {
    if (disposed) throw new AttnScoreError('INTERNAL', 'the wasm backend was used after dispose()');
  };

  return {
    name: 'wasm',
    variant: variantNames[variant],
    prepare(contents, rows, dim, weights): PreparedContents {
      checkUsable();
      const forget = (p: WasmPreparedContents): boolean => live.delete(p);
      const prepared = prepareContents(variant, contents, rows, dim, weights, forget);
      live.add(prepared);
      return prepared;
    },
    scoreBlock(prepared: PreparedContents, request: BlockRequest): BlockScores {
      checkUsable();
      if (!(prepared instanceof WasmPreparedContents)) {
        throw new AttnScoreError(
          'INTERNAL',
          'scoreBlock was given contents prepared by another backend',
        );
      }
      return scorePreparedBlock(prepared, request);
    },
    dispose(): void {
      for (const prepared of [...live]) prepared.dispose();
      disposed = true;
    },
  };
}
