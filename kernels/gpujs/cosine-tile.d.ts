/** Type of the gpu.js kernel function in cosine-tile.js; see that file's header. */
export declare function cosineTile(this: unknown, ...args: unknown[]): unknown;
