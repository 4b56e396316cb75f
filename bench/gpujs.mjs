// Measures the gpujs backend (headless WebGL and CPU mode) against the wasm
// backend on one thread, on the same random inputs (fixed seeds 1 and 2).
// Prints per backend: the first scoreBlock call (kernel compilation included),
// the best of RUNS later calls, effective GFLOP/s = 2 * U * C * D / seconds,
// the time to read one 1024 x 256 cosine tile back, and the largest cosine
// and CX errors against the float64 reference (`alpha` from ALPHA, 1.5 by
// default).
// Usage: npm run build && xvfb-run -a node bench/gpujs.mjs [U C D [k]]
// Without a display the WebGL row is skipped with the reason.
import os from 'node:os';
import { createGpujsBackend, CONTENT_TILE, USER_TILE } from '../dist/backends/gpujs/index.js';
import { probeHeadlessGl } from '../dist/backends/gpujs/mode.js';
import { createWasmBackend } from '../dist/backends/wasm/index.js';
import { prepareReference, scoreReference } from '../dist/scoring/reference.js';
import { uniformVectors } from '../dist/synthetic.js';

const [users = 512, contents = 4096, dim = 100, k = 10] = process.argv.slice(2).map(Number);
const runs = Number(process.env.RUNS ?? 3);
const alpha = Number(process.env.ALPHA ?? 1.5);

function seconds(start) {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const userData = uniformVectors(users * dim, 1);
const contentData = uniformVectors(contents * dim, 2);
const flop = 2 * users * contents * dim;
console.log(`${os.cpus().length} x ${os.cpus()[0].model}, Node ${process.version}`);
const reference = scoreReference(prepareReference(contentData, contents, dim), {
  users: userData,
  rows: users,
  k,
  alpha,
  minScore: -Infinity,
  matrix: true,
});

/** Returns the largest absolute cosine error and relative CX error of a block against the reference. */
function errors(block) {
  let cosine = 0;
  for (let i = 0; i < block.matrix.length; i++) {
    cosine = Math.max(cosine, Math.abs(block.matrix[i] - reference.matrix[i]));
  }
  let cx = 0;
  for (let u = 0; u < users; u++) cx = Math.max(cx, Math.abs(block.cx[u] - reference.cx[u]) / reference.cx[u]);
  return `max cosine error ${cosine.toExponential(1)}, max CX relative error ${cx.toExponential(1)}`;
}

const variants = [
  ['wasm', () => createWasmBackend({ simd: 'auto' })],
  ['gpujs webgl', () => createGpujsBackend({ mode: 'webgl' })],
  ['gpujs webgl, top-k on the GPU', () => createGpujsBackend({ mode: 'webgl', topk: 'gpu' })],
  ['gpujs cpu', () => createGpujsBackend({ mode: 'cpu' })],
];
const gl = probeHeadlessGl();

for (const [label, create] of variants) {
  if (label.startsWith('gpujs webgl') && 'reason' in gl) {
    console.log(`${label}: skipped, ${gl.reason}`);
    continue;
  }
  // The matrix forces the tile readback, so the GPU top-k variant runs without it only.
  for (const matrix of label.includes('top-k') ? [false] : [false, true]) {
    const backend = create();
    const prepared = backend.prepare(contentData, contents, dim);
    const request = { users: userData, rows: users, k, alpha, minScore: -Infinity, matrix };
    let start = process.hrtime.bigint();
    const block = backend.scoreBlock(prepared, request);
    const first = seconds(start);
    let best = Infinity;
    for (let run = 0; run < runs; run++) {
      start = process.hrtime.bigint();
      backend.scoreBlock(prepared, request);
      best = Math.min(best, seconds(start));
    }
    console.log(
      `${label}: ${backend.variant} U=${users} C=${contents} D=${dim} k=${k}${matrix ? ' matrix' : ''}: ` +
        `first ${(first * 1e3).toFixed(0)} ms, best ${(best * 1e3).toFixed(0)} ms, ` +
        `${(flop / best / 1e9).toFixed(2)} GFLOP/s${matrix ? `; ${errors(block)}` : ''}`,
    );
    backend.dispose();
  }
}

// Readback of one full tile, the cost the top-k candidate kernel avoids.
if ('renderer' in gl) {
  const { GPU } = (await import('gpu.js')).default;
  const gpu = new GPU({ mode: 'headlessgl' });
  const fill = gpu.createKernel(function () {
    return this.thread.x * 0.001 + this.thread.y;
  }, { output: [CONTENT_TILE, USER_TILE], precision: 'single', pipeline: true });
  const texture = fill();
  texture.toArray();
  let best = Infinity;
  for (let run = 0; run < runs; run++) {
    const start = process.hrtime.bigint();
    texture.toArray();
    best = Math.min(best, seconds(start));
  }
  console.log(`readback of a ${CONTENT_TILE} x ${USER_TILE} float32 tile: best ${(best * 1e3).toFixed(1)} ms`);
  gpu.destroy();
}
