/**
 * Entry point of the attnscore kernels. The host (src/backends/wasm) owns the
 * imported memory and its layout. Every export takes byte offsets into that
 * memory and sizes, and allocates nothing.
 */
export { expBatch } from './exp';
export { packRows } from './normalize';
export { scoreBlock } from './score';
