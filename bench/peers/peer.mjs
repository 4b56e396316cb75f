// Runs one peer of the benchmark in its own process, so that its peak RSS is
// its own. Prints one JSON line: the seconds of each timed run, peak RSS,
// and the top list, CX and loyalty of the sampled users for the check.
//
// usage: node bench/peers/peer.mjs JOB.json PEER RUNS USERS SAMPLE_ROWS
//   PEER         attnscore-1 | attnscore-all | tfjs-wasm | simsimd | js-loop
//   RUNS         timed runs after one warm-up run
//   USERS        users to score (the first USERS rows; fewer than the job's for slow peers)
//   SAMPLE_ROWS  comma-separated user rows whose results are returned for the check
//
// Every run starts from float32 users and contents in memory (read from the
// job's `.npy` files before timing) and ends with each user's top k content
// rows, CX and loyalty. Normalising the contents is part of every run.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readNpy } from '../../dist/io/npy.js';
import { loadWeights } from '../../dist/vectors.js';
import { TopK, loyaltyOf } from './common.mjs';

const [jobPath, peer, runsArg, usersArg, sampleArg] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const runs = Number(runsArg);
const sampleRows = sampleArg ? sampleArg.split(',').map(Number) : [];

const loadStarted = performance.now();
const usersFile = await readNpy(job.usersPath);
const contentsFile = await readNpy(job.contentsPath);
const weights = job.weightsPath
  ? Float32Array.from(await loadWeights(job.weightsPath, contentsFile.rows))
  : undefined;
const loadSeconds = (performance.now() - loadStarted) / 1000;

const dim = contentsFile.columns;
const userCount = Math.min(Number(usersArg) || usersFile.rows, usersFile.rows);
const users = usersFile.data.subarray(0, userCount * dim);
const contents = contentsFile.data;
const contentCount = contentsFile.rows;
const { k, alpha, beta, gamma } = job;

/** Each peer: `setup` runs once, untimed; `run` is one timed job returning per-user results. */
const peers = {
  'attnscore-1': attnscorePeer(1),
  'attnscore-all': attnscorePeer(availableParallelism()),
  'tfjs-wasm': tfjsPeer(),
  simsimd: simsimdPeer(),
  'js-loop': jsLoopPeer(),
};

function attnscorePeer(threads) {
  let api;
  const options = () => ({
    users: { data: users, rows: userCount, dim },
    contents: { data: contents, rows: contentCount, dim },
    ...(weights ? { weights } : {}),
    k,
    alpha,
    beta,
    gamma,
    threads,
  });
  return {
    async setup() {
      api = await import('../../dist/index.js');
      return { version: packageVersion('../../package.json'), notes: [`score() with threads = ${threads}`] };
    },
    async run() {
      const { results } = await api.score(options());
      return {
        top: (row) => results[row].top.map((match) => match.content),
        cx: (row) => results[row].cx,
        loyalty: (row) => results[row].loyalty,
      };
    },
    /** Times the phases of one more run through prepareRun, which score() wraps. */
    async phases() {
      const started = performance.now();
      const run = await api.prepareRun(options());
      const prepared = performance.now();
      let users = 0;
      for await (const block of run.blocks()) users += block.results.length;
      const scored = performance.now();
      await run.dispose();
      const disposed = performance.now();
      return {
        'prepare (start workers, validate, pack contents)': (prepared - started) / 1000,
        'score blocks and build results': (scored - prepared) / 1000,
        'dispose (end workers)': (disposed - scored) / 1000,
        users,
      };
    },
  };
}

function tfjsPeer() {
  let tf;
  let notes = [];
  return {
    async setup() {
      tf = await import('@tensorflow/tfjs-core');
      const backend = await import('@tensorflow/tfjs-backend-wasm');
      // NOTE: the multi-threaded build of tfjs-backend-wasm 4.22 fails to start on
      // Node 20: emscripten starts its workers from a blob: URL, which
      // worker_threads reject (ERR_WORKER_PATH). So the backend runs on one thread.
      if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
      await tf.ready();
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threaded = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      notes = [
        `SIMD ${simd ? 'on' : 'off'}, ${threaded ? backend.getThreadsCount() : 1} thread` +
          (threaded ? '' : ' (its threaded build does not start on Node: workers from blob: URLs)'),
        'users x pre-transposed unit contents, topk, exp, mul, sum as tf ops; CX in float32',
      ];
      return { version: backend.version_wasm, notes };
    },
    async run() {
      const unitT = tf.tidy(() => {
        const matrix = tf.tensor2d(contents, [contentCount, dim]);
        return tf.transpose(unit(matrix));
      });
      const w = weights ? tf.tensor1d(weights) : tf.ones([contentCount]);
      // Three block x C float32 matrices are alive at once; about 128 MB each at most.
      const block = Math.max(64, Math.min(2048, Math.floor(2 ** 25 / contentCount)));
      const top = new Int32Array(userCount * Math.min(k, contentCount));
      const kk = Math.min(k, contentCount);
      const cx = new Float64Array(userCount);
      for (let start = 0; start < userCount; start += block) {
        const rows = Math.min(block, userCount - start);
        const [indices, sums] = tf.tidy(() => {
          const batch = tf.tensor2d(users.subarray(start * dim, (start + rows) * dim), [rows, dim]);
          const sim = tf.matMul(unit(batch), unitT);
          const best = tf.topk(sim, kk, true);
          const sum = tf.sum(tf.mul(tf.exp(tf.mul(sim, alpha)), w), 1);
          return [best.indices, sum];
        });
        top.set(await indices.data(), start * kk);
        cx.set(await sums.data(), start);
        indices.dispose();
        sums.dispose();
      }
      unitT.dispose();
      w.dispose();
      return {
        top: (row) => Array.from(top.subarray(row * kk, (row + 1) * kk)),
        cx: (row) => cx[row],
        loyalty: (row) => loyaltyOf(cx[row], beta, gamma),
      };
    },
  };

  /** Divides each row by its norm; a zero row stays zero. */
  function unit(matrix) {
    const norms = tf.norm(matrix, 'euclidean', 1, true);
    return tf.div(matrix, tf.where(tf.equal(norms, 0), tf.onesLike(norms), norms));
  }
}

function simsimdPeer() {
  let cosineDistance;
  return {
    async setup() {
      // The package's ES module entry fails to locate its native build in
      // simsimd 6.5.5 and silently falls back to JavaScript, so load the
      // CommonJS entry and reject the fallback.
      const require = createRequire(import.meta.url);
      const warn = console.warn;
      let fellBack = false;
      console.warn = (...args) => {
        if (String(args[0]).includes('JS fallback')) fellBack = true;
        else warn(...args);
      };
      let module;
      try {
        module = require('simsimd');
      } finally {
        console.warn = warn;
      }
      if (fellBack) throw new Error('simsimd loaded its JavaScript fallback, not its native build');
      cosineDistance = module.cosine;
      return {
        version: packageVersion(join(dirname(require.resolve('simsimd')), '..', '..', '..', 'package.json')),
        notes: ['native cosine per pair (1 - distance), top-k and CX in JS, one thread'],
      };
    },
    async run() {
      const contentRows = [];
      const zeroContent = new Uint8Array(contentCount);
      for (let c = 0; c < contentCount; c++) {
        contentRows.push(contents.subarray(c * dim, (c + 1) * dim));
        zeroContent[c] = isZero(contentRows[c]) ? 1 : 0;
      }
      const results = [];
      const best = new TopK(Math.min(k, contentCount));
      for (let u = 0; u < userCount; u++) {
        const user = users.subarray(u * dim, (u + 1) * dim);
        const zeroUser = isZero(user);
        best.reset();
        let cx = 0;
        for (let c = 0; c < contentCount; c++) {
          // A zero vector's cosine is 0 by definition; simsimd gives distance 0 (cosine 1) for two zero vectors.
          const cosine = zeroUser || zeroContent[c] ? 0 : 1 - cosineDistance(user, contentRows[c]);
          best.offer(cosine, c);
          cx += (weights ? weights[c] : 1) * Math.exp(alpha * cosine);
        }
        results.push({ top: best.toRows(), cx });
      }
      return perUser(results);
    },
  };
}

function jsLoopPeer() {
  return {
    async setup() {
      return { version: process.version, notes: ['unit float32 rows, dot products in a JS loop, one thread'] };
    },
    async run() {
      const unitContents = unitRows(contents, contentCount);
      const unitUsers = unitRows(users, userCount);
      const results = [];
      const best = new TopK(Math.min(k, contentCount));
      for (let u = 0; u < userCount; u++) {
        const base = u * dim;
        best.reset();
        let cx = 0;
        for (let c = 0; c < contentCount; c++) {
          const other = c * dim;
          let dot = 0;
          for (let d = 0; d < dim; d++) dot += unitUsers[base + d] * unitContents[other + d];
          best.offer(dot, c);
          cx += (weights ? weights[c] : 1) * Math.exp(alpha * dot);
        }
        results.push({ top: best.toRows(), cx });
      }
      return perUser(results);
    },
  };

  function unitRows(data, rows) {
    const unit = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let d = 0; d < dim; d++) sum += data[r * dim + d] ** 2;
      const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
      for (let d = 0; d < dim; d++) unit[r * dim + d] = data[r * dim + d] * scale;
    }
    return unit;
  }
}

function perUser(results) {
  return {
    top: (row) => results[row].top,
    cx: (row) => results[row].cx,
    loyalty: (row) => loyaltyOf(results[row].cx, beta, gamma),
  };
}

function isZero(vector) {
  for (let i = 0; i < vector.length; i++) if (vector[i] !== 0) return false;
  return true;
}

function packageVersion(path) {
  const url = path.startsWith('/') ? path : new URL(path, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

const implementation = peers[peer];
if (!implementation) throw new Error(`unknown peer ${JSON.stringify(peer)}; known: ${Object.keys(peers).join(', ')}`);
const info = await implementation.setup();
await implementation.run(); // warm-up: compiles kernels and fills caches
const seconds = [];
let last;
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  last = await implementation.run();
  seconds.push((performance.now() - started) / 1000);
}
const checked = sampleRows.filter((row) => row < userCount);
const phases = implementation.phases ? await implementation.phases() : undefined;
process.stdout.write(
  JSON.stringify({
    peer,
    ...info,
    users: userCount,
    loadSeconds,
    seconds,
    maxRssKB: process.resourceUsage().maxRSS,
    ...(phases ? { phases } : {}),
    sample: {
      rows: checked,
      top: checked.map((row) => last.top(row)),
      cx: checked.map((row) => last.cx(row)),
      loyalty: checked.map((row) => last.loyalty(row)),
    },
  }) + '\n',
);
