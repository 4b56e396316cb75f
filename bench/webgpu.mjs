// WebGPU backend timing: the whole scoring job (normalisation, cosine, CX,
// top-k merge, readback and result objects) through score(), after one
// warm-up run that opens the device and compiles the kernels.
//
// Data is synthetic from fixed seeds (users seed 1, contents seed 2), weights
// 1, alpha 1. Figures: median seconds of --runs runs, effective TFLOP/s
// (2 * U * C * D / seconds), the adapter's name, and the time to open the
// device. With --backend wasm the same job runs on the wasm backend
// (worker pool of --threads threads) for comparison.
//
// usage: node bench/webgpu.mjs [--users N] [--contents N] [--dim N] [--k N]
//          [--block-users N] [--runs N] [--backend webgpu|wasm] [--threads N]
//          [--require-hardware]
//   defaults: 2048 x 8192 x 256, k = 10, block-users 4096, 3 runs, webgpu
//   --require-hardware  exit 1 when the adapter is a CPU one (lavapipe)
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { score } from '../dist/index.js';
import { createWebGpuBackend, adapterName } from '../dist/backends/webgpu/index.js';
import { syntheticMatrix } from '../dist/synthetic.js';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '2048' },
    contents: { type: 'string', default: '8192' },
    dim: { type: 'string', default: '256' },
    k: { type: 'string', default: '10' },
    'block-users': { type: 'string', default: '4096' },
    runs: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'webgpu' },
    threads: { type: 'string', default: String(cpus().length) },
    'require-hardware': { type: 'boolean', default: false },
  },
});
const U = Number(values.users);
const C = Number(values.contents);
const D = Number(values.dim);
const k = Number(values.k);
const runs = Number(values.runs);


const users = { data: syntheticMatrix(U, D, 1), rows: U, dim: D };
const contents = { data: syntheticMatrix(C, D, 2), rows: C, dim: D };
const job = { users, contents, k, alpha: 1, blockUsers: Number(values['block-users']) };

let backend;
let label;
if (values.backend === 'webgpu') {
  const opened = performance.now();
  backend = await createWebGpuBackend();
  const openSeconds = (performance.now() - opened) / 1000;
  label = `webgpu on ${adapterName(backend.adapter)}`;
  console.log(`adapter: ${adapterName(backend.adapter)}; device open and kernel compile ${openSeconds.toFixed(2)} s`);
  if (values['require-hardware'] && backend.adapter.software) {
    console.error(`the adapter is a CPU one (${backend.adapter.description}); no GPU to time`);
    process.exit(1);
  }
} else {
  label = `wasm, ${values.threads} threads`;
}
const options = backend ? { ...job, backend } : { ...job, backend: 'wasm', threads: Number(values.threads) };

console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`);
console.log(`job: U=${U} C=${C} D=${D} k=${k} alpha=1, top-k + CX + loyalty; ${label}`);
await score(options); // warm-up: shader JIT on the first dispatch, pool start
const seconds = [];
for (let run = 0; run < runs; run++) {
  const started = performance.now();
  await score(options);
  seconds.push((performance.now() - started) / 1000);
}
seconds.sort((a, b) => a - b);
const median = seconds[Math.floor(seconds.length / 2)];
const tflops = (2 * U * C * D) / median / 1e12;
console.log(
  `${label}: median ${median.toFixed(3)} s of ${runs} runs (${seconds.map((s) => s.toFixed(3)).join(', ')}), ` +
    `${tflops.toFixed(4)} TFLOP/s effective`,
);
await backend?.dispose();
process.exit(0);
