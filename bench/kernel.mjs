// Measures the fused kernel (cosine + top-k + CX) of the wasm backend in
// effective GFLOP/s = 2 * U * C * D / seconds, one thread, best of several runs.
// Usage: npm run build && node bench/kernel.mjs [U C D [k]] ; runs both builds.
// Reads the compiled backend from dist/, so rebuild after changing src/ or assembly/.
import { createWasmBackend } from '../dist/backends/wasm/index.js';
import { uniformVectors } from '../dist/synthetic.js';

const [users = 4096, contents = 4096, dim = 256, k = 10] = process.argv.slice(2).map(Number);
const runs = Number(process.env.RUNS ?? 5);

const userData = uniformVectors(users * dim, 1);
const contentData = uniformVectors(contents * dim, 2);
const flop = 2 * users * contents * dim;

for (const simd of ['plain', 'relaxed']) {
  const backend = createWasmBackend({ simd });
  const prepared = backend.prepare(contentData, contents, dim);
  const request = { users: userData, rows: users, k, alpha: 1.5, minScore: -Infinity };
  backend.scoreBlock(prepared, request);
  let best = Infinity;
  for (let run = 0; run < runs; run++) {
    const start = process.hrtime.bigint();
    backend.scoreBlock(prepared, request);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.min(best, seconds);
  }
  const gflops = flop / best / 1e9;
  console.log(
    `${backend.variant.padEnd(40)} U=${users} C=${contents} D=${dim} k=${k}: ` +
      `${(best * 1e3).toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s`,
  );
  backend.dispose();
}
