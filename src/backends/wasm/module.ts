/**
 * Loads and instantiates the kernel builds: build/attn-simd.wasm (SIMD128)
 * and build/attn-relaxed.wasm (SIMD128 plus relaxed SIMD), both compiled
 * from assembly/ by `npm run build:wasm`. Both import a shared memory, so
 * worker threads can score against one copy of the prepared contents.
 *
 * Loading is synchronous because the Backend interface is. The paths are
 * resolved against this file, which sits three levels below the package root
 * both as src/backends/wasm/module.ts and as dist/backends/wasm/module.js.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { AttnScoreError } from '../../scoring/errors.js';
import { MAX_MEMORY_BYTES, PAGE_BYTES } from './layout.js';
import { webAssembly, type WasmMemory, type WasmModule } from './webassembly.js';

/** The two builds of the kernel. */
export type KernelVariant = 'relaxed' | 'plain';

/** Functions exported by assembly/index.ts. Every pointer is a byte offset into the memory. */
export interface KernelExports {
  expBatch(src: number, dst: number, count: number, alphaHigh: number, alphaLow: number): void;
  packRows(
    src: number,
    rowCount: number,
    dim: number,
    dst: number,
    panelWidth: number,
    firstRow: number,
  ): void;
  scoreBlock(
    contents: number,
    weights: number,
    contentRows: number,
    dim: number,
    users: number,
    userRows: number,
    alphaHigh: number,
    alphaLow: number,
    k: number,
    thresholds: number,
    topScores: number,
    topRows: number,
    counts: number,
    cx: number,
    excludeOffsets: number,
    excludeRows: number,
    matrix: number,
    tileScores: number,
  ): void;
}

/**
 * Splits alpha into the kernel's two float32 arguments: a head with at most
 * 12 significant bits, which the kernel multiplies exactly by 12-bit halves
 * of each cosine, and the rest.
 */
export function splitAlpha(alpha: number): { high: number; low: number } {
  // Below 2^-60, alpha * a is too small to move exp off 1 in float32, and the
  // quantum computed below would underflow to 0.
  if (Math.abs(alpha) < 2 ** -60) return { high: 0, low: alpha };
  const quantum = 2 ** (Math.floor(Math.log2(Math.abs(alpha))) - 11);
  const high = Math.round(alpha / quantum) * quantum;
  return { high, low: alpha - high };
}

const buildFiles: Record<KernelVariant, URL> = {
  plain: new URL('../../../build/attn-simd.wasm', import.meta.url),
  relaxed: new URL('../../../build/attn-relaxed.wasm', import.meta.url),
};

const bytesCache = new Map<KernelVariant, Uint8Array>();
const moduleCache = new Map<KernelVariant, WasmModule>();
let relaxedSupport: boolean | undefined;

function readBuild(variant: KernelVariant): Uint8Array {
  let bytes = bytesCache.get(variant);
  if (bytes === undefined) {
    const url = buildFiles[variant];
    try {
      bytes = readFileSync(url);
    } catch (error) {
      throw new AttnScoreError(
        'INTERNAL',
        `failed to read the WebAssembly kernel ${url.pathname}; ` +
          'run "npm run build:wasm" to build it',
        { cause: error },
      );
    }
    bytesCache.set(variant, bytes);
  }
  return bytes;
}

/**
 * Returns true when this runtime can compile the relaxed SIMD build. A
 * runtime with relaxed SIMD on by default validates it as is. Node 20.20
 * needs the V8 flag --experimental-wasm-relaxed-simd, which NODE_OPTIONS does
 * not accept, so the flag is set here through `v8.setFlagsFromString` before
 * validating again. Only Node 20.20 was tested.
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxedSupport === undefined) {
    const bytes = readBuild('relaxed');
    let valid = webAssembly.validate(bytes);
    if (!valid) {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
      valid = webAssembly.validate(bytes);
    }
    relaxedSupport = valid;
  }
  return relaxedSupport;
}

/** Returns true when this runtime can compile the plain SIMD128 build. */
export function simdAvailable(): boolean {
  return webAssembly.validate(readBuild('plain'));
}

/**
 * Compiles `bytes` with V8's optimizing compiler, every function before this
 * returns. By default V8 compiles each function on its first call with its
 * baseline compiler (Liftoff) and optimizes hot ones in the background, but a
 * call already running stays on the baseline code. One scoreBlock call can take
 * seconds, so the first block of a run would take about three times as long
 * (measured on Node 20.20: 4096 x 16384 x 256 in one block took 2.5 s instead
 * of 0.9 s). The flags are global to the process, so they are restored after
 * the compile: a large module loaded later, such as parquet-wasm's, starts
 * several times faster on the baseline compiler.
 */
function compileOptimized(bytes: Uint8Array): WasmModule {
  setFlagsFromString('--no-liftoff');
  setFlagsFromString('--no-wasm-lazy-compilation');
  try {
    return new webAssembly.Module(bytes);
  } finally {
    setFlagsFromString('--liftoff');
    setFlagsFromString('--wasm-lazy-compilation');
  }
}

/**
 * Uses `module`, compiled by another thread, for `variant` in this thread, so
 * that worker threads share the main thread's optimized code and never compile.
 */
export function adoptKernelModule(variant: KernelVariant, module: WasmModule): void {
  moduleCache.set(variant, module);
}

/** Returns the compiled module of `variant`, compiling it on first use. */
export function kernelModule(variant: KernelVariant): WasmModule {
  let module = moduleCache.get(variant);
  if (module === undefined) {
    if (variant === 'relaxed' && !relaxedSimdAvailable()) {
      throw new AttnScoreError(
        'INVALID_PARAMETER',
        `relaxed SIMD is not supported by this runtime (Node ${process.versions.node}, ` +
          `V8 ${process.versions.v8}); use simd: 'auto' or 'plain'`,
      );
    }
    if (variant === 'plain' && !simdAvailable()) {
      throw new AttnScoreError(
        'INVALID_PARAMETER',
        `WebAssembly SIMD128 is not supported by this runtime (Node ${process.versions.node}); ` +
          'use the js backend',
      );
    }
    module = compileOptimized(readBuild(variant));
    moduleCache.set(variant, module);
  }
  return module;
}

/**
 * Maximum size in pages of every kernel memory: the wasm32 limit of 4 GiB,
 * which is also the maximum the builds declare for their imported memory. A
 * shared memory must have a maximum, and V8 reserves (but does not commit)
 * that much address space for it up front, so a smaller maximum would save
 * only address space while capping the contents that fit.
 */
export const MAX_MEMORY_PAGES = MAX_MEMORY_BYTES / PAGE_BYTES;

/**
 * Creates a memory of `initialPages` that both builds can import: shared,
 * because the builds declare a shared memory (asconfig.json) so that worker
 * threads can use it, with a maximum of {@link MAX_MEMORY_PAGES}.
 */
export function createKernelMemory(initialPages: number): WasmMemory {
  return new webAssembly.Memory({ initial: initialPages, maximum: MAX_MEMORY_PAGES, shared: true });
}

/**
 * Instantiates `variant` over `memory`, which the caller creates with
 * {@link createKernelMemory} and lays out. The builds have no data segments
 * and no start function, so instantiating one more time over a memory in
 * use, as each worker thread does, writes nothing to it.
 */
export function instantiateKernel(variant: KernelVariant, memory: WasmMemory): KernelExports {
  const instance = new webAssembly.Instance(kernelModule(variant), { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
