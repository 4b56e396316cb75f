/**
 * The `gpujs` backend: gpu.js kernels from kernels/gpujs behind the Backend
 * interface, on headless WebGL (the optional `gl` package) or, without a GL
 * context, on gpu.js's CPU mode.
 *
 * Each block is cut into tiles of at most USER_TILE users x CONTENT_TILE
 * contents. Per tile, cosineTile computes the cosines into a texture that
 * stays on the GPU and cxTerms reduces it to CX partial sums that the host
 * adds in float64. The option `topk` picks the top-k path. With 'host' the
 * host reads the tile back and merges every row of it. With 'gpu',
 * topkCandidates reduces the tile to the best few rows per segment and the
 * host merges only those. Either way at most one tile of the U x C matrix
 * exists on the host at a time.
 */
import { createRequire } from 'node:module';
import type { GPU, IGPUKernelSettings, IKernelRunShortcut, KernelFunction } from 'gpu.js';
import type { Backend, BlockRequest, PreparedContents } from '../backend.js';
import type { BlockScores } from '../../scoring/types.js';
import { rowNorm, weightScaleOf } from '../../scoring/math.js';
import { cosineTile } from '../../../kernels/gpujs/cosine-tile.js';
import { cxTerms } from '../../../kernels/gpujs/cx-terms.js';
import { topkCandidates } from '../../../kernels/gpujs/topk-candidates.js';
import { resolveMode, type GpujsMode } from './mode.js';
import { maxExcluded, TopKLists } from './topk.js';

const require = createRequire(import.meta.url);

/** Users per tile: the cosine texture's height. */
export const USER_TILE = 256;
/**
 * Contents per tile: the cosine texture's width. gpu.js is reported to fail
 * on outputs above about 1024 x 1024, so a tile stays at 1024 x 256.
 * NOTE: that failure was not reproduced here; only tiles up to 1024 x 256 are tested.
 */
export const CONTENT_TILE = 1024;
/** Contents per CX partial sum: 64 float32 terms of at most 5.6e34 stay finite. */
export const CX_SEGMENT = 64;
/** Contents per top-k candidate segment, so a full tile yields 4 candidate lists. */
export const TOPK_SEGMENT = 256;
/**
 * Maximum candidates per segment that topkCandidates computes. Its cost grows
 * with the square of the count, so past this the host reads the tile
 * instead.
 */
export const MAX_GPU_CANDIDATES = 16;
/** Largest dimension the spec supports; it bounds every kernel loop. */
const MAX_DIM = 4096;

/** Options of {@link createGpujsBackend}. */
export interface GpujsBackendOptions {
  /**
   * Execution mode of gpu.js: 'webgl' (headless WebGL, which throws when
   * `gl` cannot load or gets no context), 'cpu' (gpu.js's CPU mode) or
   * 'auto' (WebGL when available, else CPU, the default).
   */
  readonly mode?: 'auto' | 'webgl' | 'cpu';
  /**
   * Top-k path: 'host' (read each tile back, the default) or 'gpu'
   * (topkCandidates, used when a segment needs at most MAX_GPU_CANDIDATES
   * candidates and the matrix is not requested). On Mesa's llvmpipe a
   * 1024 x 256 tile readback took 2 to 23 ms and topkCandidates 60 to
   * 520 ms for 4 to 10 candidates, hence the default.
   * NOTE: on a hardware GPU, where readback crosses the bus, 'gpu' may be
   * faster. That is unmeasured.
   */
  readonly topk?: 'host' | 'gpu';
}

interface GpujsPrepared extends PreparedContents {
  /** C rows of `quads` x 4 float32: unit rows zero-padded to whole quads; a zero row stays zero. */
  readonly unitRows: Float32Array;
  /** ceil(dim / 4): quads per row of `unitRows`. */
  readonly quads: number;
  /** C float32 weights divided by `weightScale`. */
  readonly weights: Float32Array;
  /** Power of two that the stored weights were divided by. */
  readonly weightScale: number;
}

interface Kernels {
  readonly cosine: IKernelRunShortcut;
  readonly cx: IKernelRunShortcut;
  readonly topk: IKernelRunShortcut;
}

/** Creates the gpujs backend; see {@link GpujsBackendOptions} for the mode. */
export function createGpujsBackend(options: GpujsBackendOptions = {}): Backend {
  const mode = resolveMode(options.mode ?? 'auto');
  const { GPU: GpuClass } = require('gpu.js') as typeof import('gpu.js');
  const version = (require('gpu.js/package.json') as { version: string }).version;
  const gpu = new GpuClass({ mode: mode.mode });
  const kernels = createKernels(gpu, mode);
  const gpuCandidates = options.topk === 'gpu';
  return {
    name: 'gpujs',
    variant: describeMode(version, mode),
    prepare(contents, rows, dim, weights): GpujsPrepared {
      const weightScale = weightScaleOf(weights);
      const storedWeights = new Float32Array(rows);
      for (let c = 0; c < rows; c++) storedWeights[c] = weights === undefined ? 1 : weights[c]! / weightScale;
      const quads = Math.ceil(dim / 4);
      const stored = unitRows(contents, rows, dim, quads);
      return { rows, dim, quads, unitRows: stored, weights: storedWeights, weightScale, dispose() {} };
    },
    scoreBlock(prepared: PreparedContents, request: BlockRequest): BlockScores {
      return scoreBlock(kernels, prepared as GpujsPrepared, request, gpuCandidates);
    },
    dispose() {
      return gpu.destroy();
    },
  };
}

function describeMode(version: string, mode: GpujsMode): string {
  if (mode.mode === 'headlessgl') return `gpu.js ${version} headless WebGL, renderer ${mode.renderer}`;
  if (mode.fallbackReason === undefined) return `gpu.js ${version} CPU mode`;
  return `gpu.js ${version} CPU mode; headless WebGL unavailable: ${mode.fallbackReason}`;
}

function createKernels(gpu: GPU, mode: GpujsMode): Kernels {
  const settings = {
    precision: 'single' as const,
    tactic: 'precision' as const,
    dynamicOutput: true,
    dynamicArguments: true,
    loopMaxIterations: MAX_DIM,
    // CPU mode has no textures; its kernels pass nested arrays instead.
    pipeline: mode.mode !== 'cpu',
  };
  return {
    cosine: gpu.createKernel(cosineTile as KernelFunction, {
      ...settings,
      argumentTypes: { users: 'Array1D(4)', contents: 'Array1D(4)', quads: 'Integer' },
      output: [1, 1],
    }),
    cx: gpu.createKernel(cxTerms as KernelFunction, { ...settings, pipeline: false, output: [1, 1] }),
    // gpu.js 2.24 accepts returnType although its typings omit it.
    topk: gpu.createKernel(topkCandidates as KernelFunction, {
      ...settings,
      pipeline: false,
      returnType: 'Array(2)',
      output: [1, 1, 1],
    } as IGPUKernelSettings),
  };
}

function scoreBlock(
  kernels: Kernels,
  prepared: GpujsPrepared,
  request: BlockRequest,
  gpuCandidates: boolean,
): BlockScores {
  const { rows: contentRows, dim, quads } = prepared;
  const { rows, alpha } = request;
  const k = Math.min(request.k, contentRows);
  const lists = new TopKLists(rows, k, request.minScore, request.exclude);
  const cx = new Float64Array(rows);
  const matrix = request.matrix ? new Float32Array(rows * contentRows) : undefined;
  // A user's best k eligible rows of a segment lie among its best k + e rows,
  // where e is the user's count of excluded rows.
  const candidates = Math.min(k + maxExcluded(request.exclude, rows), TOPK_SEGMENT);
  const readTiles = !gpuCandidates || matrix !== undefined || candidates > MAX_GPU_CANDIDATES;
  const users = unitRows(request.users, rows, dim, quads);

  for (let userStart = 0; userStart < rows; userStart += USER_TILE) {
    const userCount = Math.min(USER_TILE, rows - userStart);
    const userTile = quadViews(users, userStart, userCount, quads);
    for (let contentStart = 0; contentStart < contentRows; contentStart += CONTENT_TILE) {
      const contentCount = Math.min(CONTENT_TILE, contentRows - contentStart);
      // NOTE: the content tile is uploaded again for every user tile because
      // gpu.js 2.24 keeps no argument textures between calls.
      const contentTile = quadViews(prepared.unitRows, contentStart, contentCount, quads);
      kernels.cosine.setOutput([contentCount, userCount]);
      const cosines = kernels.cosine(userTile, contentTile, quads);

      const cxSegments = Math.ceil(contentCount / CX_SEGMENT);
      kernels.cx.setOutput([cxSegments, userCount]);
      const weightTile = prepared.weights.subarray(contentStart, contentStart + contentCount);
      const partials = kernels.cx(cosines, weightTile, alpha, contentCount, CX_SEGMENT) as Float32Array[];
      for (let u = 0; u < userCount; u++) {
        const row = partials[u]!;
        let sum = 0;
        for (let s = 0; s < cxSegments; s++) sum += row[s]!;
        cx[userStart + u] += sum;
      }

      if (readTiles) {
        const tile = readTile(cosines);
        for (let u = 0; u < userCount; u++) {
          const row = tile[u]!;
          const user = userStart + u;
          for (let c = 0; c < contentCount; c++) lists.offer(user, contentStart + c, row[c]!);
          matrix?.set(row.subarray(0, contentCount), user * contentRows + contentStart);
        }
      } else {
        const segments = Math.ceil(contentCount / TOPK_SEGMENT);
        kernels.topk.setOutput([candidates, segments, userCount]);
        const found = kernels.topk(cosines, contentCount, TOPK_SEGMENT) as unknown as Float32Array[][][];
        for (let u = 0; u < userCount; u++) {
          for (let s = 0; s < segments; s++) {
            for (const pair of found[u]![s]!) {
              if (pair[1]! >= 0) lists.offer(userStart + u, contentStart + pair[1]!, pair[0]!);
            }
          }
        }
      }
      disposeTexture(cosines);
    }
  }
  for (let u = 0; u < rows; u++) cx[u] = cx[u]! * prepared.weightScale;
  const { count, index, score } = lists;
  return { rows, k, count, index, score, cx, ...(matrix ? { matrix } : {}) };
}

interface TextureLike {
  toArray(): unknown;
  delete(): void;
}

function isTexture(value: unknown): value is TextureLike {
  return typeof (value as TextureLike | undefined)?.toArray === 'function';
}

/** Reads a cosine tile back as rows of float32, from a texture or CPU mode's arrays. */
function readTile(cosines: unknown): Float32Array[] {
  return (isTexture(cosines) ? cosines.toArray() : cosines) as Float32Array[];
}

function disposeTexture(cosines: unknown): void {
  if (isTexture(cosines)) cosines.delete();
}

/**
 * Returns the rows divided by their float64 norms, rounded to float32 and
 * zero-padded to `quads` x 4 floats per row; zero rows stay zero.
 */
function unitRows(data: Float32Array, rows: number, dim: number, quads: number): Float32Array {
  const stride = quads * 4;
  const out = new Float32Array(rows * stride);
  for (let r = 0; r < rows; r++) {
    const norm = rowNorm(data, r, dim);
    if (norm === 0) continue;
    for (let j = 0; j < dim; j++) out[r * stride + j] = data[r * dim + j]! / norm;
  }
  return out;
}

/** Returns rows start .. start + count - 1 of padded `rows` as one 4-float view per quad, the form 'Array1D(4)' takes. */
function quadViews(rows: Float32Array, start: number, count: number, quads: number): Float32Array[] {
  const views = new Array<Float32Array>(count * quads);
  const offset = start * quads * 4;
  for (let i = 0; i < views.length; i++) views[i] = rows.subarray(offset + i * 4, offset + i * 4 + 4);
  return views;
}

