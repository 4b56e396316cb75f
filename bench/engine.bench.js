// Engine benchmark (tinybench): the `js` float64 reference against the
// `wasm` backend in each SIMD variant this host supports, one thread, on
// the whole scoring job (cosine, top-k and CX fused, results built).
//
// Shapes: U = C = 4096, D = 256, k = 10; and 2000 x 10000 x 784, the shape of
// the Fashion-MNIST raw-pixel case. Data is synthetic, from a fixed seed.
// Figures: median seconds per job, effective GFLOP/s (2 * U * C * D / time)
// and pairs per second.
//
// usage: npm run bench [-- --quick] [-- --no-js]
//   --quick  one small shape only (a smoke run); --no-js  skip the slow reference
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import { score, createBackend } from '../dist/index.js';
import { createWasmBackend } from '../dist/backends/wasm/index.js';
import { syntheticMatrix } from '../dist/synthetic.js';

const args = new Set(process.argv.slice(2));
const shapes = args.has('--quick')
  ? [{ users: 512, contents: 1024, dim: 128 }]
  : [
      { users: 4096, contents: 4096, dim: 256 },
      { users: 2000, contents: 10000, dim: 784 },
    ];


function variants() {
  const list = [];
  for (const simd of ['plain', 'relaxed']) {
    try {
      list.push({ label: `wasm (${simd} SIMD)`, backend: createWasmBackend({ simd }) });
    } catch (error) {
      console.log(`wasm (${simd} SIMD) skipped: ${error.message}`);
    }
  }
  if (!args.has('--no-js')) list.push({ label: 'js (float64 reference)', backend: createBackend('js'), slow: true });
  return list;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`machine: ${cpu}, ${cpus().length} cores, Node ${process.version}, one thread`);

for (const shape of shapes) {
  const users = { data: syntheticMatrix(shape.users, shape.dim, 1), rows: shape.users, dim: shape.dim };
  const contents = { data: syntheticMatrix(shape.contents, shape.dim, 2), rows: shape.contents, dim: shape.dim };
  const flop = 2 * shape.users * shape.contents * shape.dim;
  const pairs = shape.users * shape.contents;
  const rows = [];
  for (const { label, backend, slow } of variants()) {
    const bench = new Bench({
      iterations: slow ? 1 : 5,
      time: 0,
      warmup: !slow,
      warmupIterations: 1,
      warmupTime: 0,
    });
    bench.add(label, async () => {
      await score({ users, contents, k: 10, alpha: 1, backend });
    });
    await bench.run();
    const result = bench.tasks[0].result;
    if (result.state !== 'completed') throw result.error ?? new Error(`${label}: ${result.state}`);
    const seconds = result.latency.p50 / 1000;
    rows.push({
      backend: label,
      'median s': seconds.toFixed(3),
      'GFLOP/s': (flop / seconds / 1e9).toFixed(1),
      'Mpairs/s': (pairs / seconds / 1e6).toFixed(1),
      runs: result.latency.samplesCount,
    });
    backend.dispose();
  }
  console.log(`\nU = ${shape.users}, C = ${shape.contents}, D = ${shape.dim}, k = 10, alpha = 1, with CX`);
  console.table(rows);
}
