// Measures the worker pool against one thread through score(): k = 10, CX and
// loyalty, results built as objects, default block of 512 users.
// Shapes: 4096 x 16384 x 256 (many user blocks: split by users) and
// 100 x 400000 x 128 (one block: split by content segments).
// Usage: npm run build && node bench/pool.mjs [threads...] ; default threads: 1 and 2.
// Each figure is the best of RUNS runs (default 5) after one warm-up run.
// "score()" rows time the whole call: validating the inputs, preparing the
// contents, starting and ending the pool's workers, scoring and building
// the result objects. "started pool" rows reuse one pool backend started
// before timing. "blocks only" rows time just the scoring loop of a run
// prepared beforehand (run.blocks()), which is where the threads work.
import { createPoolBackend } from '../dist/pool/index.js';
import { prepareRun, score } from '../dist/score.js';
import { uniformVectors } from '../dist/synthetic.js';

const threadCounts = process.argv.slice(2).map(Number);
if (threadCounts.length === 0) threadCounts.push(1, 2);
const runs = Number(process.env.RUNS ?? 5);

const shapes = [
  [4096, 16384, 256],
  [100, 400000, 128],
];

for (const [users, contents, dim] of shapes) {
  const options = {
    users: { data: uniformVectors(users * dim, 1), rows: users, dim },
    contents: { data: uniformVectors(contents * dim, 2), rows: contents, dim },
    k: 10,
    alpha: 1.5,
  };
  const flop = 2 * users * contents * dim;
  // Speed-ups are against the first thread count's time for the same kind of
  // row, with "started pool" rows compared to plain score().
  const baselines = new Map();
  const report = (threads, mode, best, backend) => {
    const kind = mode === 'blocks only' ? mode : 'score()';
    if (!baselines.has(kind)) baselines.set(kind, best);
    const speedup = baselines.get(kind) / best;
    console.log(
      `U=${users} C=${contents} D=${dim} threads=${threads} ${mode}: ${(best * 1e3).toFixed(0)} ms, ` +
        `${(flop / best / 1e9).toFixed(1)} GFLOP/s, ${speedup.toFixed(2)}x; ${backend}`,
    );
  };
  for (const threads of threadCounts) {
    report(threads, 'score()', ...(await bestOf({ ...options, threads })));
    const backend = threads > 1 ? createPoolBackend({ threads }) : undefined;
    if (backend) report(threads, 'score(), started pool', ...(await bestOf({ ...options, backend })));
    const runOptions = backend ? { ...options, backend } : { ...options, threads };
    report(threads, 'blocks only', ...(await bestBlocksOf(runOptions)));
    await backend?.dispose();
  }
}

/** Returns the best time in seconds of iterating run.blocks() of one prepared run, and the backend. */
async function bestBlocksOf(options) {
  const run = await prepareRun(options);
  let best = Infinity;
  for (let iteration = 0; iteration <= runs; iteration++) {
    const started = process.hrtime.bigint();
    for await (const block of run.blocks()) void block;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (iteration > 0) best = Math.min(best, seconds);
  }
  await run.dispose();
  return [best, `${run.backend.name} (${run.backend.variant})`];
}

/** Returns the best time in seconds over `runs` runs after a warm-up, and the backend used. */
async function bestOf(options) {
  let best = Infinity;
  let backend = '';
  for (let run = 0; run <= runs; run++) {
    const started = process.hrtime.bigint();
    const result = await score(options);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (run > 0) best = Math.min(best, seconds);
    backend = result.stats.backend;
  }
  return [best, backend];
}
