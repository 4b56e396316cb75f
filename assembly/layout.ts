/**
 * Tile and panel sizes shared by the kernels and mirrored by the host
 * (src/backends/wasm/layout.ts).
 *
 * The register tile is TILE_USERS x TILE_CONTENTS. 4 x 8 takes 8 f32x4
 * accumulators, 2 content vectors and up to 4 broadcast user values, inside
 * the 15 xmm registers that V8 allocates on x64 (it keeps xmm15 as scratch).
 * A 5 x 8 tile spilled in the K loop and fell to about 23 GFLOP/s against 34
 * to 43 for 4 x 8 (bench/kernel.mjs, Node 20.20, Xeon Sapphire Rapids).
 */

/** Users per panel and per register tile. */
export const TILE_USERS: i32 = 4;
/** Contents per panel and per register tile: two f32x4, 32 bytes per dimension. */
export const TILE_CONTENTS: i32 = 8;
