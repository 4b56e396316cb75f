/**
 * The part of the WebAssembly JavaScript API that this backend uses, typed
 * here because the project compiles against lib ES2022 and @types/node 20,
 * neither of which declares the `WebAssembly` global (TypeScript puts it in
 * lib.dom). Local types avoid pulling in the DOM library or declaring
 * globals that could clash with it later.
 */

/**
 * A linear memory. Growing it replaces `buffer`: views of the old buffer are
 * detached for a plain memory, and keep the old length for a shared one.
 */
export interface WasmMemory {
  /** A SharedArrayBuffer for a shared memory. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Grows by `delta` pages and returns the old size in pages. Throws RangeError on failure. */
  grow(delta: number): number;
}

/** A compiled module, opaque to the host. */
export type WasmModule = object;

interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

/** The WebAssembly namespace object, as far as the backend needs it. */
export interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The runtime's WebAssembly global. */
export const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
