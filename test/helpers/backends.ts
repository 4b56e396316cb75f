import type { Backend } from '../../src/backends/backend.js';
import { createJsBackend } from '../../src/backends/js/index.js';
import { createGpujsBackend } from '../../src/backends/gpujs/index.js';
import { probeHeadlessGl } from '../../src/backends/gpujs/mode.js';
import { createWasmBackend } from '../../src/backends/wasm/index.js';
import { createWebGpuBackend } from '../../src/backends/webgpu/index.js';
import { createPoolBackend } from '../../src/pool/index.js';

/** A backend variant the correctness suite runs over. */
export interface BackendCase {
  readonly label: string;
  readonly create: () => Backend | Promise<Backend>;
  /** Why it cannot run here, when it cannot. */
  readonly unavailable?: string;
}

function probe(create: () => Backend): string | undefined {
  try {
    create().dispose();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

async function probeAsync(create: () => Promise<Backend>): Promise<string | undefined> {
  try {
    await (await create()).dispose();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const wasmRelaxed = () => createWasmBackend({ simd: 'relaxed' });

/** Why the webgpu backend cannot run here (no adapter, or the bindings failed to load), if so. */
export const webgpuUnavailable = await probeAsync(() => createWebGpuBackend());
const headlessGl = probeHeadlessGl();

/** Every backend and variant, each marked with the reason when it cannot run on this host. */
export const backendCases: readonly BackendCase[] = [
  { label: 'js', create: createJsBackend },
  { label: 'wasm (plain SIMD)', create: () => createWasmBackend({ simd: 'plain' }) },
  { label: 'wasm (relaxed SIMD)', create: wasmRelaxed, unavailable: probe(wasmRelaxed) },
  // The pool needs no probe: it runs the build that the single-thread 'auto' choice runs.
  { label: 'pool (2 worker threads)', create: () => createPoolBackend({ threads: 2 }) },
  { label: 'webgpu', create: () => createWebGpuBackend(), unavailable: webgpuUnavailable },
  {
    // The smallest chunks and sub-blocks, so that every run crosses chunk and sub-block edges.
    label: 'webgpu (64-row chunks and sub-blocks)',
    create: () => createWebGpuBackend({ chunkRows: 64, subBlockRows: 64 }),
    unavailable: webgpuUnavailable,
  },
  {
    label: 'gpujs (headless WebGL)',
    create: () => createGpujsBackend({ mode: 'webgl' }),
    ...('reason' in headlessGl ? { unavailable: headlessGl.reason } : {}),
  },
  {
    label: 'gpujs (headless WebGL, top-k candidates on the GPU)',
    create: () => createGpujsBackend({ mode: 'webgl', topk: 'gpu' }),
    ...('reason' in headlessGl ? { unavailable: headlessGl.reason } : {}),
  },
  { label: 'gpujs (CPU mode)', create: () => createGpujsBackend({ mode: 'cpu' }) },
];
