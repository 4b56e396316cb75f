/**
 * Byte layout of the kernel memory that the host owns.
 *
 * One `WebAssembly.Memory` per prepared content set holds, in order: a
 * reserved first cache line (offset 0 stands for "no buffer" in kernel
 * arguments), the packed contents and their weights, then one block region
 * that every `scoreBlock` call reuses. Each buffer starts on a 64-byte line.
 * The tile sizes mirror assembly/layout.ts.
 */
import { AttnScoreError } from '../../scoring/errors.js';

/** Users per packed panel and per register tile of the kernel. */
export const TILE_USERS = 4;
/** Contents per packed panel and per register tile of the kernel. */
export const TILE_CONTENTS = 8;
/** WebAssembly page size in bytes. */
export const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes: 65536 pages. */
export const MAX_MEMORY_BYTES = 2 ** 32;
/** Raw rows are copied into kernel memory this many bytes at a time before packing. */
export const STAGING_BYTES = 1 << 20;
/** Kernel scratch: a spilled 4 x 8 float32 tile, float32 group sums, float64 panel sums. */
const TILE_SCRATCH_BYTES = TILE_USERS * TILE_CONTENTS * (4 + 4 + 8);
const ALIGN_BYTES = 64;

/** Rounds `value` up to a multiple of `multiple`. */
export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** Offsets of the packed contents, their weights and the staging buffer used to pack them. */
export interface ContentsLayout {
  readonly contentRows: number;
  readonly paddedRows: number;
  readonly dim: number;
  readonly contents: number;
  readonly weights: number;
  /** Staging buffer for raw content rows during `prepare`, inside the future block region. */
  readonly staging: number;
  readonly stagingRows: number;
  /** First byte of the block region. */
  readonly blockBase: number;
  /** Bytes needed while packing: up to the end of the staging buffer. */
  readonly end: number;
}

/** Offsets of one block's users, top-k state, CX sums and scratch, from `blockBase` on. */
export interface BlockLayout {
  readonly userRows: number;
  readonly paddedUsers: number;
  readonly k: number;
  readonly users: number;
  readonly thresholds: number;
  readonly cx: number;
  readonly counts: number;
  readonly topScores: number;
  readonly topRows: number;
  /** 0 when the request has no exclusions. */
  readonly excludeOffsets: number;
  readonly excludeRows: number;
  /** 0 when the request does not ask for the matrix. */
  readonly matrix: number;
  readonly tileScores: number;
  readonly staging: number;
  readonly stagingRows: number;
  /** One past the last byte used. */
  readonly end: number;
}

/** Hands out 64-byte aligned buffers one after the other. */
class Allocator {
  private next: number;

  constructor(start: number) {
    this.next = roundUp(start, ALIGN_BYTES);
  }

  take(bytes: number): number {
    const at = this.next;
    this.next = roundUp(at + bytes, ALIGN_BYTES);
    return at;
  }

  get end(): number {
    return this.next;
  }
}

function stagingRowsFor(rows: number, dim: number): number {
  return Math.max(1, Math.min(rows, Math.floor(STAGING_BYTES / (dim * 4))));
}

/** Plans the contents part of the memory for `rows` x `dim` contents. */
export function planContents(rows: number, dim: number): ContentsLayout {
  const paddedRows = roundUp(rows, TILE_CONTENTS);
  const allocator = new Allocator(ALIGN_BYTES);
  const contents = allocator.take(paddedRows * dim * 4);
  const weights = allocator.take(paddedRows * 4);
  const blockBase = allocator.end;
  const stagingRows = stagingRowsFor(rows, dim);
  const staging = allocator.take(stagingRows * dim * 4);
  return {
    contentRows: rows,
    paddedRows,
    dim,
    contents,
    weights,
    staging,
    stagingRows,
    blockBase,
    end: allocator.end,
  };
}

/** Plans the block region for a request of `userRows` users against `contents`. */
export function planBlock(
  contents: ContentsLayout,
  userRows: number,
  k: number,
  excludeCount: number | undefined,
  matrix: boolean,
): BlockLayout {
  const { dim, contentRows } = contents;
  const paddedUsers = roundUp(Math.max(userRows, 1), TILE_USERS);
  const allocator = new Allocator(contents.blockBase);
  const users = allocator.take(paddedUsers * dim * 4);

  const thresholds = allocator.take(paddedUsers * 4);
  const cx = allocator.take(paddedUsers * 8);
  const counts = allocator.take(paddedUsers * 4);
  const topScores = allocator.take(userRows * k * 4);
  const topRows = allocator.take(userRows * k * 4);

  const excludeOffsets = excludeCount === undefined ? 0 : allocator.take((userRows + 1) * 4);
  const excludeRows =
    excludeCount === undefined ? 0 : allocator.take(Math.max(excludeCount, 1) * 4);
  const matrixPtr = matrix ? allocator.take(userRows * contentRows * 4) : 0;

  const tileScores = allocator.take(TILE_SCRATCH_BYTES);
  const stagingRows = stagingRowsFor(Math.max(userRows, 1), dim);
  const staging = allocator.take(stagingRows * dim * 4);
  return {
    userRows,
    paddedUsers,
    k,
    users,
    thresholds,
    cx,
    counts,
    topScores,
    topRows,
    excludeOffsets,
    excludeRows,
    matrix: matrixPtr,
    tileScores,
    staging,
    stagingRows,
    end: allocator.end,
  };
}

/**
 * Throws INVALID_INPUT when `bytes` of kernel memory exceed what wasm32 can
 * address. `description` names the request in the message.
 */
export function checkMemoryLimit(bytes: number, description: string): void {
  if (bytes > MAX_MEMORY_BYTES) {
    throw new AttnScoreError(
      'INVALID_INPUT',
      `${description} needs ${bytes} bytes of WebAssembly memory, above the wasm32 limit of ` +
        `${MAX_MEMORY_BYTES} bytes (4 GiB). Use fewer contents, fewer dims or smaller ` +
        'user blocks, or the js backend.',
    );
  }
}
