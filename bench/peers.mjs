// Peer benchmark: the same scoring job (cosine, top-10, CX, loyalty) on the
// same inputs for attnscore and the engines a user might pick instead, each
// in its own process (bench/peers/peer.mjs, bench/peers/numpy_job.py).
//
// Each peer's results for a sample of users are checked against a float64
// reference (top-k rows allowing near ties within 1e-5, CX 1e-5 relative,
// loyalty 1e-6) before its time counts. A peer that fails the check, or that
// cannot be installed or loaded, is reported as such, never left out.
//
// Shapes (U x C x D): d256 is 4096 x 16384 x 256, d128 20000 x 20000 x 128
// and d64 1000 x 100000 x 64. fashion is the Fashion-MNIST raw-pixel case
// (2000 x 10000 x 784) from the data folder beside the repository, or a
// synthetic stand-in of that shape when the folder is absent. Synthetic data
// is seeded (users 1, contents 2), with weights 0.5 + 0.1 * (c mod 10),
// alpha = 1, beta = 1 / C, gamma = -1 and k = 10. Figures: the median of the
// timed runs after one warm-up, pairs per second, effective GFLOP/s
// (2 * U * C * D / s) and the peak RSS of the peer's process.
//
// usage: npm run bench:peers [-- options]
//   --quick           one small shape (1024 x 4096 x 128), 2 runs, no chart
//   --shapes a,b      shapes to run (d256, fashion, d128, d64, quick)
//   --peers a,b       peers to run (attnscore-1, attnscore-all, tfjs-wasm, numpy, simsimd, js-loop)
//   --runs N          timed runs per peer (default 5; at most 3 for the slow peers)
//   --out FILE        results as JSON (default bench/peers/results.json; quick runs: a temp file)
//   --chart FILE      SVG chart of pairs per second (default bench/peers-chart.svg)
//   --no-chart        do not draw the chart
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readNpy } from '../dist/io/npy.js';
import { loadWeights } from '../dist/vectors.js';
import { checkSample, randomMatrix, referenceFor, writeNpy } from './peers/common.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const PEERS = ['attnscore-1', 'attnscore-all', 'tfjs-wasm', 'numpy', 'simsimd', 'js-loop'];
/** Peers that score one pair at a time in JS: they run on the first users only, scaled. */
const SLOW_PEERS = new Set(['simsimd', 'js-loop']);
const SHAPES = {
  d256: { users: 4096, contents: 16384, dim: 256 },
  fashion: { users: 2000, contents: 10000, dim: 784, folder: join(root, '..', 'shared', 'data', 'fashion-t10k-784') },
  d128: { users: 20000, contents: 20000, dim: 128 },
  d64: { users: 1000, contents: 100000, dim: 64 },
  quick: { users: 1024, contents: 4096, dim: 128 },
};
/** Limit of one peer process, so a stuck peer cannot stall the table. */
const PEER_TIMEOUT_MS = 20 * 60 * 1000;

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    shapes: { type: 'string' },
    peers: { type: 'string' },
    runs: { type: 'string' },
    out: { type: 'string' },
    chart: { type: 'string' },
    'no-chart': { type: 'boolean', default: false },
  },
});
const shapeNames = listOption(options.shapes, options.quick ? ['quick'] : ['d256', 'fashion', 'd128', 'd64'], Object.keys(SHAPES), 'shape');
const peerNames = listOption(options.peers, PEERS, PEERS, 'peer');
const runs = Number(options.runs ?? (options.quick ? 2 : 5));
if (!Number.isSafeInteger(runs) || runs < 1) usageError(`--runs must be a positive integer (got ${options.runs})`);
/** FLOP one run of a slow peer may take: enough users for a stable time, seconds per run. */
const slowBudgetFlop = options.quick ? 2e8 : 2e9;
const outPath = options.out ?? (options.quick ? join(tmpdir(), 'attnscore-peers-quick.json') : join(root, 'bench', 'peers', 'results.json'));
const chartPath = options.chart ?? join(root, 'bench', 'peers-chart.svg');

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown CPU',
  cores: availableParallelism(),
  node: process.version,
  date: new Date().toISOString().slice(0, 10),
  command: `npm run bench:peers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
};
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`);

const python = findNumpy();
const results = [];
for (const name of shapeNames) {
  const job = await prepareJob(name, SHAPES[name]);
  console.log(`\n${job.label}: U = ${job.users}, C = ${job.contents}, D = ${job.dim}, k = ${job.k}, alpha = ${job.alpha}`);
  const reference = await buildReference(job);
  const rows = [];
  for (const peer of peerNames) {
    const row = runPeer(job, peer, reference);
    rows.push(row);
    console.log(`  ${peer}: ${row.status}${row.seconds ? `, ${row.seconds.toFixed(3)} s` : ''}`);
  }
  const base = rows.find((row) => row.peer === 'attnscore-all' && row.status === 'ok');
  for (const row of rows) if (base && row.seconds) row.timeVsAttnscore = row.scaledSeconds / base.scaledSeconds;
  results.push({ shape: name, label: job.label, users: job.users, contents: job.contents, dim: job.dim, rows });
  printTable(job, rows);
}
writeFileSync(outPath, JSON.stringify({ machine, runs, results }, null, 2) + '\n');
console.log(`\nresults: ${outPath}`);
if (!options['no-chart'] && !options.quick) {
  const { writeChart } = await import('./peers/chart.mjs');
  await writeChart({ machine, results }, chartPath);
  console.log(`chart: ${chartPath}`);
}

function listOption(value, fallback, known, what) {
  const list = value ? value.split(',').map((item) => item.trim()) : fallback;
  for (const item of list) {
    if (!known.includes(item)) usageError(`unknown ${what} ${JSON.stringify(item)}; known: ${known.join(', ')}`);
  }
  return list;
}

function usageError(message) {
  console.error(`bench/peers.mjs: ${message}`);
  process.exit(2);
}

/** Returns the python3 that imports numpy, or undefined with the reason printed. */
function findNumpy() {
  const probe = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  if (probe.status === 0) return 'python3';
  console.log(`numpy: skipped, ${probe.error ? 'python3 not found' : 'python3 cannot import numpy'}`);
  return undefined;
}

/** Writes (or reuses) the job's `.npy` files and its job description for the peers. */
async function prepareJob(name, shape) {
  if (shape.folder && existsSync(join(shape.folder, 'users.npy'))) {
    const params = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(shape.folder, 'params.json'), 'utf8')));
    return writeJob(name, {
      label: 'fashion-t10k-784 (Fashion-MNIST pixels)',
      usersPath: join(shape.folder, 'users.npy'),
      contentsPath: join(shape.folder, 'contents.npy'),
      weightsPath: join(shape.folder, 'content_weights.npy'),
      users: params.users,
      contents: params.contents,
      dim: params.dim,
      k: params.k,
      alpha: params.alpha,
      beta: params.beta,
      gamma: params.gamma,
    });
  }
  const dir = join(tmpdir(), 'attnscore-peers', `${name}-${shape.users}x${shape.contents}x${shape.dim}`);
  mkdirSync(dir, { recursive: true });
  const paths = {
    usersPath: join(dir, 'users.npy'),
    contentsPath: join(dir, 'contents.npy'),
    weightsPath: join(dir, 'weights.npy'),
  };
  if (!existsSync(paths.weightsPath)) {
    writeNpy(paths.usersPath, randomMatrix(shape.users, shape.dim, 1), [shape.users, shape.dim]);
    writeNpy(paths.contentsPath, randomMatrix(shape.contents, shape.dim, 2), [shape.contents, shape.dim]);
    const weights = Float32Array.from({ length: shape.contents }, (_, c) => 0.5 + 0.1 * (c % 10));
    writeNpy(paths.weightsPath, weights, [shape.contents]);
  }
  const label = shape.folder
    ? `fashion-t10k-784 absent: synthetic stand-in ${shape.users} x ${shape.contents} x ${shape.dim}`
    : `synthetic ${shape.users} x ${shape.contents} x ${shape.dim}`;
  return writeJob(name, {
    label,
    ...paths,
    users: shape.users,
    contents: shape.contents,
    dim: shape.dim,
    k: 10,
    alpha: 1,
    beta: 1 / shape.contents,
    gamma: -1,
  });
}

function writeJob(name, job) {
  const dir = join(tmpdir(), 'attnscore-peers');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.job.json`);
  writeFileSync(path, JSON.stringify(job));
  return { ...job, name, path };
}

/** Sample rows: the first 8 users, row 13 (a cold-start user in the Fashion case) and 24 spread over the rest. */
async function buildReference(job) {
  const spread = Array.from({ length: 24 }, (_, i) => Math.floor(((i + 1) * job.users) / 25));
  const sampleRows = [...new Set([0, 1, 2, 3, 4, 5, 6, 7, 13, ...spread])].filter((row) => row < job.users).sort((a, b) => a - b);
  const users = await readNpy(job.usersPath);
  const contents = await readNpy(job.contentsPath);
  const weights = job.weightsPath ? await loadWeights(job.weightsPath, contents.rows) : undefined;
  const started = performance.now();
  const reference = referenceFor(job, users.data, contents.data, weights, sampleRows);
  console.log(`  float64 reference for ${sampleRows.length} sampled users: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { rows: sampleRows, byRow: reference };
}

/** Runs one peer in a child process, checks its results and returns its row of the table. */
function runPeer(job, peer, reference) {
  const slow = SLOW_PEERS.has(peer);
  const users = slow
    ? Math.min(job.users, Math.max(16, Math.round(slowBudgetFlop / (2 * job.contents * job.dim))))
    : job.users;
  const peerRuns = slow ? Math.min(runs, 3) : runs;
  const args = [job.path, peer, String(peerRuns), String(users), reference.rows.join(',')];
  let command;
  let commandArgs;
  const env = { ...process.env };
  if (peer === 'numpy') {
    if (!python) return { peer, status: 'skipped: python3 with numpy not found' };
    command = python;
    commandArgs = [join(root, 'bench', 'peers', 'numpy_job.py'), '--peer', job.path, ...args.slice(2)];
    // Set on some CPUs for old OpenBLAS builds; they make current OpenBLAS pick a slower kernel.
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
  } else {
    command = process.execPath;
    commandArgs = [join(root, 'bench', 'peers', 'peer.mjs'), ...args];
  }
  const child = spawnSync(command, commandArgs, { encoding: 'utf8', env, timeout: PEER_TIMEOUT_MS, maxBuffer: 64 << 20 });
  const lastLine = child.stdout?.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !lastLine.startsWith('{')) {
    return { peer, status: `failed to load or run: ${failureReason(child).slice(0, 300)}` };
  }
  return summarise(job, peer, JSON.parse(lastLine), reference);
}

/** Returns the error line of a failed peer process: its spawn error, else the stderr line that names the error. */
function failureReason(child) {
  if (child.error) return child.error.message;
  const lines = (child.stderr ?? '').trim().split('\n');
  // Node prints a code frame before the error itself, so look for a line that starts with the error's name.
  const errorLine = lines.find((line) => /^\w*Error\b/.test(line)) ?? lines.find((line) => /error/i.test(line));
  return errorLine ?? lines.pop() ?? `exit code ${child.status}, no output`;
}

/** Checks a peer's sampled results and, when they pass, turns its run times into the figures of the table. */
function summarise(job, peer, output, reference) {
  const mismatch = checkSample(job, reference.byRow, output.sample);
  const base = { peer, version: output.version, notes: output.notes, users: output.users, maxRssMB: output.maxRssKB / 1024 };
  if (mismatch) return { ...base, status: `failed check: ${mismatch}` };
  const sorted = [...output.seconds].sort((a, b) => a - b);
  const seconds = sorted[Math.floor((sorted.length - 1) / 2)] / 2 + sorted[Math.ceil((sorted.length - 1) / 2)] / 2;
  const pairs = output.users * job.contents;
  return {
    ...base,
    status: 'ok',
    checkedUsers: output.sample.rows.length,
    runs: output.seconds.length,
    seconds,
    minSeconds: sorted[0],
    maxSeconds: sorted[sorted.length - 1],
    scaledSeconds: (seconds * job.users) / output.users,
    pairsPerSecond: pairs / seconds,
    gflops: (2 * pairs * job.dim) / seconds / 1e9,
    loadSeconds: output.loadSeconds,
    ...(output.phases ? { phases: output.phases } : {}),
  };
}

function printTable(job, rows) {
  console.log('\n| peer | users run | median s (all users) | M pairs/s | GFLOP/s | time / attnscore all cores | peak RSS |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) {
    if (row.status !== 'ok') {
      console.log(`| ${row.peer} | ${row.status} | | | | | |`);
      continue;
    }
    const scaled = row.users < job.users ? ` (${row.users}, scaled)` : '';
    console.log(
      `| ${row.peer} | ${row.users}${scaled ? ' (scaled)' : ''} | ${row.scaledSeconds.toFixed(3)} | ` +
        `${(row.pairsPerSecond / 1e6).toFixed(1)} | ${row.gflops.toFixed(1)} | ` +
        `${row.timeVsAttnscore?.toFixed(2) ?? '-'} | ${row.maxRssMB.toFixed(0)} MB |`,
    );
  }
  for (const row of rows) {
    if (row.phases) {
      const parts = Object.entries(row.phases).filter(([key]) => key !== 'users').map(([key, value]) => `${key} ${(value * 1000).toFixed(0)} ms`);
      console.log(`  ${row.peer} phases: ${parts.join('; ')}`);
    }
  }
}
