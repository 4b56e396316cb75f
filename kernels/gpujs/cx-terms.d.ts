/** Type of the gpu.js kernel function in cx-terms.js; see that file's header. */
export declare function cxTerms(this: unknown, ...args: unknown[]): unknown;
