/**
 * The process's WebGPU device, opened once through Dawn's Node bindings (the
 * `webgpu` npm package) and shared by every `webgpu` backend, so work from
 * every caller is queued to one device.
 *
 * Dawn can crash when the object that `create()` returns is garbage
 * collected while its devices are in use, so it stays referenced from this
 * module for the life of the process.
 */
import { AttnScoreError } from '../../scoring/errors.js';
import { messages } from '../../scoring/messages.js';

/** The adapter as reported by the driver, for summaries and for `auto`. */
export interface AdapterDescription {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** True for a CPU implementation such as lavapipe, llvmpipe, SwiftShader or WARP. */
  readonly software: boolean;
}

/** An open device with the adapter it came from. */
export interface GpuDevice {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  /** Largest storage buffer binding, in bytes, that the device accepts. */
  readonly maxBindingBytes: number;
}

/** Description of the adapter search of {@link openGpuDevice}, for its error message. */
export const adapterSearch =
  `Dawn (npm package "webgpu") requestAdapter({ powerPreference: "high-performance" }) ` +
  `on ${process.platform}-${process.arch}`;

const softwareNames = /llvmpipe|lavapipe|swiftshader|software|warp|cpu/i;

/** Keeps the Dawn instance alive for the life of the process (see the module comment). */
let gpuInstance: GPU | undefined;
let opening: Promise<GpuDevice> | undefined;

/**
 * Returns the process's device, opening it on the first call. Rejects with
 * INVALID_PARAMETER when the bindings fail to load or no adapter exists.
 * After the device is lost, the next call opens a new one.
 */
export function openGpuDevice(): Promise<GpuDevice> {
  opening ??= openDevice().catch((error: unknown) => {
    opening = undefined;
    throw error;
  });
  return opening;
}

async function openDevice(): Promise<GpuDevice> {
  let bindings: typeof import('webgpu');
  try {
    bindings = await import('webgpu');
  } catch (error) {
    throw new AttnScoreError('INVALID_PARAMETER', messages.noWebGpuAdapter(adapterSearch, describe(error)), {
      cause: error,
    });
  }

  // The bindings read constants such as GPUBufferUsage from the global scope.
  Object.assign(globalThis, bindings.globals);
  gpuInstance ??= bindings.create([]);
  const adapter = await gpuInstance.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter === null) {
    throw new AttnScoreError(
      'INVALID_PARAMETER',
      messages.noWebGpuAdapter(adapterSearch, 'requestAdapter returned null'),
    );
  }

  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    label: 'attnscore',
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
    },
  });
  void device.lost.then(() => {
    opening = undefined;
  });

  const info = adapter.info;
  const description: AdapterDescription = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software:
      (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
      softwareNames.test([info.vendor, info.architecture, info.device, info.description].join(' ')),
  };
  const maxBindingBytes = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return { device, adapter: description, maxBindingBytes };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Returns a one-line name of the adapter, such as "NVIDIA H100 (nvidia, hopper)". */
export function adapterName(adapter: AdapterDescription): string {
  const name = adapter.description || adapter.device || 'unnamed adapter';
  const details = [adapter.vendor, adapter.architecture].filter((part) => part.length > 0);
  return details.length > 0 ? `${name} (${details.join(', ')})` : name;
}
