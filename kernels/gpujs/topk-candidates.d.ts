/** Type of the gpu.js kernel function in topk-candidates.js; see that file's header. */
export declare function topkCandidates(this: unknown, ...args: unknown[]): unknown;
