import { readdirSync } from 'node:fs';
import { AttnScoreError } from '../scoring/errors.js';
import { messages } from '../scoring/messages.js';
import { backendNames, type Backend, type BackendChoice, type BackendName } from './backend.js';
import { createJsBackend } from './js/index.js';
import { createGpujsBackend } from './gpujs/index.js';
import { createWasmBackend } from './wasm/index.js';

export type { Backend, BackendChoice, BackendName, BlockRequest, PreparedContents } from './backend.js';
export { backendNames } from './backend.js';

/** Every value `--backend` accepts: `auto` and each backend name. */
export const backendChoices: readonly BackendChoice[] = ['auto', ...backendNames];

/** The backend used when none is named by {@link createBackend}: WebAssembly SIMD. */
export const defaultBackend: BackendName = 'wasm';

/** The choice a run makes when none is named: see {@link chooseBackend}. */
export const defaultChoice: BackendChoice = 'auto';

/**
 * Smallest job, in dot-product FLOP (2 x U x C x D), that `auto` sends to a
 * hardware WebGPU adapter. It is an estimate. Opening Dawn's device and
 * compiling the kernels took about 0.45 s on the 2-vCPU test machine
 * (lavapipe, bench/RESULTS.md), in which two wasm threads at 43 GFLOP/s score
 * about 2e10 FLOP. The margin above that covers uploads and readback.
 * NOTE: not measured on a GPU; time it with bench/gpu-check.sh and revise.
 */
export const WEBGPU_MIN_FLOP = 3e10;

/**
 * Creates a backend that needs no asynchronous set-up: `wasm` or `js`.
 * Rejects `webgpu`, whose device opens asynchronously: use {@link openBackend}.
 */
export function createBackend(name: string = defaultBackend): Backend {
  if (!isBackendName(name)) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.unknownBackend(name, backendNames));
  }
  switch (name) {
    case 'wasm':
      return createWasmBackend();
    case 'js':
      return createJsBackend();
    case 'gpujs':
      return createGpujsBackend();
    case 'webgpu':
      throw new AttnScoreError(
        'INVALID_PARAMETER',
        'the webgpu backend opens its device asynchronously; create it with openBackend("webgpu")',
      );
  }
}

/** Creates the backend called `name`, opening the WebGPU device for `webgpu`. */
export async function openBackend(name: string = defaultBackend): Promise<Backend> {
  // Loaded on demand, so that runs on other backends start without the WebGPU layer.
  if (name === 'webgpu') return (await import('./webgpu/index.js')).createWebGpuBackend();
  return createBackend(name);
}

/** The outcome of {@link chooseBackend}: a backend name and why it was chosen. */
export interface BackendDecision {
  readonly name: BackendName;
  readonly reason: string;
}

/**
 * Resolves `auto` for a job of `flop` dot-product FLOP (undefined when the
 * size is not known up front): `webgpu` for a job of at least
 * {@link WEBGPU_MIN_FLOP} when a hardware adapter exists, else `wasm`.
 * Software adapters (lavapipe, SwiftShader, WARP) are slower than wasm and
 * never chosen. Small jobs never load Dawn.
 */
export async function chooseBackend(flop: number | undefined): Promise<BackendDecision> {
  if (flop === undefined) return { name: 'wasm', reason: 'auto: job size not known up front' };
  if (flop < WEBGPU_MIN_FLOP) {
    return { name: 'wasm', reason: `auto: job of ${flop.toExponential(1)} FLOP is below the WebGPU threshold` };
  }
  if (!mayHaveGpu()) return { name: 'wasm', reason: 'auto: no GPU device node (/dev/dri/renderD*, /dev/nvidia*)' };
  try {
    const { openGpuDevice } = await import('./webgpu/device.js');
    const gpu = await openGpuDevice();
    if (gpu.adapter.software) {
      return { name: 'wasm', reason: `auto: the only WebGPU adapter is a CPU one (${gpu.adapter.description})` };
    }
    return { name: 'webgpu', reason: `auto: hardware WebGPU adapter, job of ${flop.toExponential(1)} FLOP` };
  } catch (error) {
    if (!(error instanceof AttnScoreError)) throw error;
    return { name: 'wasm', reason: 'auto: no WebGPU adapter' };
  }
}

/**
 * Returns whether this host may have a hardware GPU, checked without loading Dawn. On Linux
 * every GPU driver that Vulkan uses exposes a render node (Mesa, AMD and Intel) or
 * /dev/nvidia* (NVIDIA). A host with neither has only CPU adapters, so opening Dawn (about
 * 0.4 s, with warnings on stderr) would gain nothing. Other systems are not checked.
 */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  const has = (folder: string, prefix: string): boolean => {
    try {
      return readdirSync(folder).some((name) => name.startsWith(prefix));
    } catch {
      return false;
    }
  };
  return has('/dev', 'nvidia') || has('/dev/dri', 'renderD');
}

function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}
