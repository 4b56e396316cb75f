/**
 * The `webgpu` backend: WGSL kernels of kernels/ on the process's WebGPU
 * device (see device.ts).
 *
 * prepare() uploads the contents in chunks that fit one storage binding and
 * normalises them on the device. scoreBlock() splits the block into
 * sub-blocks whose working buffers fit the adapter's limits. For each
 * sub-block it normalises the users and runs the cosine kernel over every
 * content chunk, which writes CX partials and per-tile top-k candidates. The
 * merge kernel reduces the candidates to each user's top-k set. Only that
 * set, the CX partials and, in matrix mode, the cosines are read back. The
 * host sums the partials in float64 and sorts each user's k entries.
 */
import type { Backend, BlockRequest, PreparedContents } from '../backend.js';
import type { BlockScores, ExclusionList } from '../../scoring/types.js';
import { AttnScoreError } from '../../scoring/errors.js';
import { messages } from '../../scoring/messages.js';
import { MAX_ABS_ALPHA } from '../../scoring/params.js';
import { splitAlpha } from '../wasm/module.js';
import { adapterName, openGpuDevice, type AdapterDescription, type GpuDevice } from './device.js';
import {
  float32Below,
  rescaleSubnormalRows,
  sumPartials,
  writeSortedLists,
} from './host.js';
import { weightScaleOf } from '../../scoring/math.js';
import {
  compileProgram,
  cosineSpec,
  mergeSpec,
  normalizeSpec,
  type Program,
  type UniformSchema,
  type UniformValues,
} from './program.js';

export { adapterName, openGpuDevice, type AdapterDescription } from './device.js';

/** Users and contents per output tile of kernels/cosine-topk.wgsl. */
const TILE_ROWS = 64;
/** Dims per workgroup-memory step of the cosine kernel; rows are padded to a multiple. */
const TILE_DEPTH = 16;
/** Workgroups per grid dimension that WebGPU guarantees (maxComputeWorkgroupsPerDimension). */
const MAX_GRID = 65535;
/** Grid width of the normalisation kernel, one workgroup per row. */
const NORMALIZE_GRID_WIDTH = 32768;
/** Slack kept below the cosine sentinel of -8 (valid scores are > -4): see cosine-topk.wgsl. */
const LOWEST_THRESHOLD = -4;

/** Options of {@link createWebGpuBackend}; the limits exist so tests can force chunking. */
export interface WebGpuBackendOptions {
  /** Content rows per chunk, a multiple of 64; by default as many as one binding holds. */
  readonly chunkRows?: number;
  /** Users per sub-block, a multiple of 64; by default as many as the buffers allow. */
  readonly subBlockRows?: number;
  /** Bytes per storage binding, when below the adapter's maxStorageBufferBindingSize. */
  readonly maxBindingBytes?: number;
}

interface ContentChunk {
  readonly firstRow: number;
  readonly rows: number;
  readonly tiles: number;
  readonly contents: GPUBuffer;
  readonly weights: GPUBuffer;
}

/** Contents normalised on the device, in chunks of whole tiles. */
class WebGpuPreparedContents implements PreparedContents {
  readonly rows: number;
  readonly dim: number;
  readonly paddedDim: number;
  readonly chunks: readonly ContentChunk[];
  readonly tileCount: number;
  readonly weightScale: number;
  private disposed = false;

  constructor(rows: number, dim: number, paddedDim: number, chunks: ContentChunk[], weightScale: number) {
    this.rows = rows;
    this.dim = dim;
    this.paddedDim = paddedDim;
    this.chunks = chunks;
    this.tileCount = chunks.reduce((sum, chunk) => sum + chunk.tiles, 0);
    this.weightScale = weightScale;
  }

  check(): void {
    if (this.disposed) throw new AttnScoreError('INTERNAL', 'prepared contents were used after dispose()');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const chunk of this.chunks) {
      chunk.contents.destroy();
      chunk.weights.destroy();
    }
  }
}

interface Programs {
  readonly normalize: Program<typeof normalizeSpec.uniforms>;
  readonly cosine: Program<typeof cosineSpec.uniforms>;
  readonly merge: Program<typeof mergeSpec.uniforms>;
}

/** The backend and the adapter it runs on. */
export interface WebGpuBackend extends Backend {
  readonly adapter: AdapterDescription;
}

/**
 * Opens the process's WebGPU device and compiles the kernels. Rejects with a
 * message naming what was tried when no adapter is found.
 */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  checkRowOption('chunkRows', options.chunkRows);
  checkRowOption('subBlockRows', options.subBlockRows);
  const limit = options.maxBindingBytes;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.positiveInteger('maxBindingBytes', limit));
  }
  const opened = await openGpuDevice();
  const gpu: GpuDevice =
    limit === undefined ? opened : { ...opened, maxBindingBytes: Math.min(opened.maxBindingBytes, limit) };
  const { device } = gpu;
  device.pushErrorScope('validation');
  const programs: Programs = {
    normalize: compileProgram(device, normalizeSpec),
    cosine: compileProgram(device, cosineSpec),
    merge: compileProgram(device, mergeSpec),
  };
  const error = await device.popErrorScope();
  if (error) throw new AttnScoreError('INTERNAL', `WebGPU kernels failed to compile: ${error.message}`);
  const live = new Set<WebGpuPreparedContents>();
  let disposed = false;
  const checkUsable = (): void => {
    if (disposed) throw new AttnScoreError('INTERNAL', 'the webgpu backend was used after dispose()');
  };

  return {
    name: 'webgpu',
    variant: `WebGPU on ${adapterName(gpu.adapter)}`,
    adapter: gpu.adapter,
    // Two blocks in flight let the host sort and sum one block while the device scores the next.
    concurrency: 2,
    prepare(contents, rows, dim, weights): PreparedContents {
      checkUsable();
      const prepared = prepareContents(gpu, programs, options, contents, rows, dim, weights);
      live.add(prepared);
      return prepared;
    },
    async scoreBlock(prepared: PreparedContents, request: BlockRequest): Promise<BlockScores> {
      checkUsable();
      if (!(prepared instanceof WebGpuPreparedContents)) {
        throw new AttnScoreError('INTERNAL', 'scoreBlock was given contents prepared by another backend');
      }
      prepared.check();
      return scoreBlock(gpu, programs, options, prepared, request);
    },
    dispose(): void {
      // The device belongs to the process and stays open for other backends.
      for (const prepared of live) prepared.dispose();
      live.clear();
      disposed = true;
    },
  };
}

function checkRowOption(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < TILE_ROWS || value % TILE_ROWS !== 0) {
    throw new AttnScoreError('INVALID_PARAMETER', `${name} must be a positive multiple of 64 (got ${value})`);
  }
}

function storageBuffer(device: GPUDevice, bytes: number, label: string, extra = 0): GPUBuffer {
  // WebGPU rejects zero-sized bindings, so empty buffers get one element.
  return device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extra,
  });
}

function uploadArray(device: GPUDevice, data: Float32Array | Int32Array, label: string): GPUBuffer {
  const buffer = storageBuffer(device, data.byteLength, label);
  if (data.byteLength > 0) {
    // writeBuffer needs a size that is a multiple of 4, which 32-bit arrays have.
    device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }
  return buffer;
}

function bindGroup<S extends UniformSchema>(
  device: GPUDevice,
  program: Program<S>,
  values: UniformValues<S>,
  buffers: readonly GPUBuffer[],
): { group: GPUBindGroup; uniforms: GPUBuffer } {
  const uniforms = device.createBuffer({
    label: `${program.spec.file} uniforms`,
    size: program.uniformBytes,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniforms, 0, program.packUniforms(values));
  const group = device.createBindGroup({
    layout: program.pipeline.getBindGroupLayout(0),
    entries: [uniforms, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return { group, uniforms };
}

function dispatch(
  pass: GPUComputePassEncoder,
  program: Program<UniformSchema>,
  group: GPUBindGroup,
  x: number,
  y = 1,
): void {
  pass.setPipeline(program.pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(x, y);
}

/** Rounds `dim` up to whole TILE_DEPTH steps. */
function paddedDimOf(dim: number): number {
  return Math.max(TILE_DEPTH, Math.ceil(dim / TILE_DEPTH) * TILE_DEPTH);
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * Records a normalisation of `rows` raw rows into `destination`, whose
 * padded rows and dims the caller has left zero. Returns buffers to release
 * once the work is submitted.
 */
function encodeNormalize(
  device: GPUDevice,
  programs: Programs,
  encoder: GPUCommandEncoder,
  source: GPUBuffer,
  destination: GPUBuffer,
  rows: number,
  dim: number,
): GPUBuffer[] {
  if (rows === 0) return [];
  const { group, uniforms } = bindGroup(
    device,
    programs.normalize,
    { rows, dim, paddedDim: paddedDimOf(dim), gridWidth: NORMALIZE_GRID_WIDTH },
    [source, destination],
  );
  const pass = encoder.beginComputePass();
  dispatch(
    pass,
    programs.normalize,
    group,
    Math.min(rows, NORMALIZE_GRID_WIDTH),
    Math.ceil(rows / NORMALIZE_GRID_WIDTH),
  );
  pass.end();
  return [uniforms];
}

function prepareContents(
  gpu: GpuDevice,
  programs: Programs,
  options: WebGpuBackendOptions,
  contents: Float32Array,
  rows: number,
  dim: number,
  weights: Float64Array | undefined,
): WebGpuPreparedContents {
  const { device } = gpu;
  const paddedDim = paddedDimOf(dim);
  const rowBytes = paddedDim * 4;
  const fitRows = Math.floor(gpu.maxBindingBytes / rowBytes / TILE_ROWS) * TILE_ROWS;
  const chunkRows = Math.min(options.chunkRows ?? Infinity, fitRows, MAX_GRID * TILE_ROWS);
  if (chunkRows < TILE_ROWS) {
    throw new AttnScoreError(
      'INVALID_INPUT',
      messages.webGpuTooLarge(`a tile of 64 content rows of ${dim} dims`, TILE_ROWS * rowBytes, gpu.maxBindingBytes),
    );
  }
  const weightScale = weightScaleOf(weights);
  const source = rescaleSubnormalRows(contents, rows, dim);
  const chunks: ContentChunk[] = [];
  const encoder = device.createCommandEncoder({ label: 'prepare contents' });
  const release: GPUBuffer[] = [];
  for (let firstRow = 0; firstRow < Math.max(rows, 1); firstRow += chunkRows) {
    const chunk = Math.min(chunkRows, rows - firstRow);
    const paddedRows = roundUp(Math.max(chunk, 1), TILE_ROWS);
    const raw = uploadArray(device, source.subarray(firstRow * dim, (firstRow + chunk) * dim), 'raw contents');
    const normalised = storageBuffer(device, paddedRows * rowBytes, 'contents');
    release.push(raw, ...encodeNormalize(device, programs, encoder, raw, normalised, chunk, dim));
    const chunkWeights = new Float32Array(paddedRows);
    for (let row = 0; row < chunk; row++) {
      chunkWeights[row] = weights === undefined ? 1 : weights[firstRow + row]! / weightScale;
    }
    chunks.push({
      firstRow,
      rows: chunk,
      tiles: paddedRows / TILE_ROWS,
      contents: normalised,
      weights: uploadArray(device, chunkWeights, 'weights'),
    });
  }
  device.queue.submit([encoder.finish()]);
  for (const buffer of release) buffer.destroy();
  return new WebGpuPreparedContents(rows, dim, paddedDim, chunks, weightScale);
}

/** Buffers of one sub-block and the bytes each needs per user. */
function planSubBlock(
  gpu: GpuDevice,
  options: WebGpuBackendOptions,
  prepared: WebGpuPreparedContents,
  k: number,
  kTile: number,
  matrix: boolean,
): number {
  const contents = `${prepared.rows} contents`;
  const perUser: [string, number][] = [
    [`the top-k candidates of 64 users (k = ${k}, ${contents})`, prepared.tileCount * kTile * 8],
    [`the CX partial sums of 64 users (${contents})`, prepared.tileCount * 4],
    [`64 normalised user vectors of ${prepared.dim} dims`, prepared.paddedDim * 4],
    [`the top-k lists of 64 users (k = ${k})`, k * 8],
  ];
  if (matrix) perUser.push([`64 rows of the ${prepared.rows}-column cosine matrix`, prepared.rows * 4]);
  let rows = options.subBlockRows ?? MAX_GRID - (MAX_GRID % TILE_ROWS);
  for (const [what, bytes] of perUser) {
    const fit = Math.floor(gpu.maxBindingBytes / Math.max(bytes, 1) / TILE_ROWS) * TILE_ROWS;
    if (fit < TILE_ROWS) {
      throw new AttnScoreError(
        'INVALID_INPUT',
        messages.webGpuTooLarge(what, TILE_ROWS * bytes, gpu.maxBindingBytes),
      );
    }
    rows = Math.min(rows, fit);
  }
  return rows;
}

/** Concatenates a block's exclusion offsets and rows into one array, rows from `offsets.length`. */
function packExclusions(exclude: ExclusionList | undefined, rows: number): Int32Array | undefined {
  if (exclude === undefined || exclude.offsets[rows]! === 0) return undefined;
  const count = exclude.offsets[rows]!;
  const packed = new Int32Array(rows + 1 + count);
  packed.set(exclude.offsets.subarray(0, rows + 1));
  packed.set(exclude.rows.subarray(0, count), rows + 1);
  return packed;
}

async function scoreBlock(
  gpu: GpuDevice,
  programs: Programs,
  options: WebGpuBackendOptions,
  prepared: WebGpuPreparedContents,
  request: BlockRequest,
): Promise<BlockScores> {
  // The exp of the kernel is exact only within |alpha * a| <= 87.
  if (!(Math.abs(request.alpha) <= MAX_ABS_ALPHA)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.alphaRange(request.alpha));
  }
  const rows = request.rows;
  const contentRows = prepared.rows;
  const k = Math.min(request.k, contentRows);
  const result = {
    rows,
    k,
    count: new Int32Array(rows),
    index: new Int32Array(rows * k).fill(-1),
    score: new Float64Array(rows * k).fill(NaN),
    cx: new Float64Array(rows),
    ...(request.matrix ? { matrix: new Float32Array(rows * contentRows) } : {}),
  };
  if (rows === 0 || contentRows === 0) return result;

  const kTile = Math.min(k, TILE_ROWS);
  const subBlockRows = planSubBlock(gpu, options, prepared, k, kTile, request.matrix === true);
  const users = rescaleSubnormalRows(request.users, rows, prepared.dim);
  const exclusions = packExclusions(request.exclude, rows);
  const exclusionBuffer = uploadArray(gpu.device, exclusions ?? new Int32Array(1), 'exclusions');
  try {
    // One sub-block at a time, so that at most one set of working buffers exists per block.
    for (let first = 0; first < rows; first += subBlockRows) {
      const count = Math.min(subBlockRows, rows - first);
      const sub = { first, count, k, kTile, users, exclusionBuffer, hasExclusions: exclusions !== undefined };
      await scoreSubBlock(gpu, programs, prepared, request, sub, result);
    }
  } finally {
    exclusionBuffer.destroy();
  }
  return result;
}

interface SubBlock {
  readonly first: number;
  readonly count: number;
  readonly k: number;
  readonly kTile: number;
  readonly users: Float32Array;
  readonly exclusionBuffer: GPUBuffer;
  readonly hasExclusions: boolean;
}

async function scoreSubBlock(
  gpu: GpuDevice,
  programs: Programs,
  prepared: WebGpuPreparedContents,
  request: BlockRequest,
  sub: SubBlock,
  result: BlockScores,
): Promise<void> {
  const { device } = gpu;
  const { first, count, k, kTile } = sub;
  const { dim, paddedDim, tileCount, rows: contentRows } = prepared;
  const paddedUsers = roundUp(count, TILE_ROWS);
  const owned: GPUBuffer[] = [];
  const own = (buffer: GPUBuffer): GPUBuffer => {
    owned.push(buffer);
    return buffer;
  };
  try {
    const rawUsers = own(uploadArray(device, sub.users.subarray(first * dim, (first + count) * dim), 'raw users'));
    const users = own(storageBuffer(device, paddedUsers * paddedDim * 4, 'users'));
    const cxPartial = own(storageBuffer(device, count * tileCount * 4, 'CX partials'));
    const candidates = own(storageBuffer(device, count * tileCount * kTile * 8, 'candidates'));
    const matrixBytes = request.matrix ? count * contentRows * 4 : 4;
    const matrix = own(storageBuffer(device, matrixBytes, 'matrix'));
    const selected = own(storageBuffer(device, count * k * 8, 'selected'));
    const counts = own(storageBuffer(device, count * 4, 'counts'));

    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: 'score block' });
    owned.push(...encodeNormalize(device, programs, encoder, rawUsers, users, count, dim));
    const alpha = splitAlpha(request.alpha);
    const pass = encoder.beginComputePass();
    let tileBase = 0;
    for (const chunk of prepared.chunks) {
      const { group, uniforms } = bindGroup(
        device,
        programs.cosine,
        {
          dimVec4: paddedDim / 4,
          userRows: count,
          userBase: first,
          contentRows,
          contentBase: chunk.firstRow,
          tileBase,
          tileCount,
          kTile,
          alphaHigh: alpha.high,
          alphaLow: alpha.low,
          alphaLog2e: Math.fround(request.alpha * Math.LOG2E),
          threshold: Math.max(float32Below(request.minScore), LOWEST_THRESHOLD),
          excludeRowsAt: sub.hasExclusions ? request.rows + 1 : 0,
          matrixColumns: request.matrix ? contentRows : 0,
        },
        [users, chunk.contents, chunk.weights, sub.exclusionBuffer, cxPartial, candidates, matrix],
      );
      owned.push(uniforms);
      dispatch(pass, programs.cosine, group, chunk.tiles, paddedUsers / TILE_ROWS);
      tileBase += chunk.tiles;
    }
    const merge = bindGroup(device, programs.merge, { candidatesPerUser: tileCount * kTile, k }, [
      candidates,
      selected,
      counts,
    ]);
    owned.push(merge.uniforms);
    dispatch(pass, programs.merge, merge.group, count);
    pass.end();

    const reads: [GPUBuffer, number][] = [
      [selected, count * k * 8],
      [counts, count * 4],
      [cxPartial, count * tileCount * 4],
    ];
    if (request.matrix) reads.push([matrix, count * contentRows * 4]);
    const staging = reads.map(([source, bytes]) => {
      const size = roundUp(Math.max(bytes, 4), 4);
      const target = own(
        device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      );
      encoder.copyBufferToBuffer(source, 0, target, 0, size);
      return target;
    });
    device.queue.submit([encoder.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new AttnScoreError('INTERNAL', `WebGPU rejected the scoring commands: ${error.message}`);
    await Promise.all(staging.map((buffer) => buffer.mapAsync(GPUMapMode.READ)));
    const [selectedOut, countsOut, partialsOut, matrixOut] = staging.map((buffer) => buffer.getMappedRange());

    writeSortedLists(
      new Uint32Array(selectedOut!),
      new Uint32Array(countsOut!),
      count,
      k,
      k,
      first,
      result.index,
      result.score,
      result.count,
    );
    sumPartials(new Float32Array(partialsOut!), count, tileCount, prepared.weightScale, first, result.cx);
    if (matrixOut && result.matrix) {
      result.matrix.set(new Float32Array(matrixOut, 0, count * contentRows), first * contentRows);
    }
  } finally {
    for (const buffer of owned) buffer.destroy();
  }
}
