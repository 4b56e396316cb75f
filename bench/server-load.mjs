// Load test of the HTTP API: requests per second and p50/p99 latency for batches of 1, 64
// and 1024 users against a 10000-content catalog, next to calling the engine directly with
// the same batch. Each batch goes once as JSON and once as a float32 .npy body with the
// parameters in the query string. The direct baseline gets the same data as nested arrays
// or a Float32Array.
//
// The server runs as its own process (`attnscore serve` on 127.0.0.1, a free port), as in
// production; autocannon and the direct baseline run in this one. On Linux the script also
// reads each server thread's CPU time from /proc. The server's own cost per request is its
// main thread's CPU (HTTP, parsing, validation, result JSON), compared with the scoring
// threads' CPU, which stays comparable whatever else the machine is doing.
//
//   npm run build && node bench/server-load.mjs [--dim 128] [--threads 2] [--seconds 10]
//     [--bodies json,npy]
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { npyHeaderBytes } from '../dist/io/npy.js';
import { createPoolBackend } from '../dist/pool/index.js';
import { prepareCatalog, scoreCatalogBlocks } from '../dist/score.js';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

const { values } = parseArgs({
  options: {
    dim: { type: 'string', default: '128' },
    contents: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
    batches: { type: 'string', default: '1,64,1024' },
    bodies: { type: 'string', default: 'json,npy' },
  },
});
const dim = Number(values.dim);
const contentRows = Number(values.contents);
const threads = Number(values.threads);
const seconds = Number(values.seconds);
const batches = values.batches.split(',').map(Number);
const bodies = values.bodies.split(',');

/** Seeded uniform values in [-1, 1), so every run scores the same vectors. */
function matrix(rows, seed) {
  let state = seed >>> 0;
  return Array.from({ length: rows }, () =>
    Array.from({ length: dim }, () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return Math.fround(state / 2 ** 31 - 1);
    }),
  );
}

const contentVectors = matrix(contentRows, 1);
const server = await startServerProcess(threads);
const put = await fetch(`${server.url}/v1/catalogs/bench`, {
  method: 'PUT',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ vectors: contentVectors }),
});
if (put.status !== 201) throw new Error(`catalog upload failed with ${put.status}`);

// The direct baseline: the same engine API the server calls, on a pool of the same size.
const backend = createPoolBackend({ threads });
const catalog = await prepareCatalog({ contents: { data: contentVectors }, backend });

/** Runs `call` back to back, `connections` at a time, for `seconds`; returns latencies in ms. */
async function measureDirect(call, connections) {
  const latencies = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        await call();
        latencies.push(performance.now() - started);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
}

console.log(`catalog ${contentRows} x ${dim}, ${threads} threads, ${seconds} s per case, server pid ${server.pid}`);
console.log(
  'users | body | http req/s | http p50 / p99 ms | direct req/s | direct p50 / p99 ms | overhead | ' +
    'server main thread CPU ms/req | scoring threads CPU ms/req | CPU overhead',
);
for (const users of batches) {
  const userVectors = matrix(users, 2 + users);
  const flat = Float32Array.from(userVectors.flat());
  for (const kind of bodies) {
    const request =
      kind === 'npy'
        ? {
            url: `${server.url}/v1/catalogs/bench/score?k=10`,
            headers: { 'Content-Type': 'application/x-npy' },
            body: Buffer.concat([npyHeaderBytes([users, dim]), Buffer.from(flat.buffer)]),
            input: { data: flat, rows: users, dim },
          }
        : {
            url: `${server.url}/v1/catalogs/bench/score`,
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ users: { vectors: userVectors }, k: 10 }),
            input: { data: userVectors },
          };
    // One connection per thread keeps the pool busy without measuring queueing alone.
    const connections = threads;
    const before = threadCpu(server.pid);
    const http = await autocannon({
      url: request.url,
      method: 'POST',
      headers: request.headers,
      body: request.body,
      connections,
      duration: seconds,
    });
    const after = threadCpu(server.pid);
    if (http.non2xx > 0) throw new Error(`${http.non2xx} requests failed`);
    const direct = await measureDirect(async () => {
      for await (const block of scoreCatalogBlocks(catalog, { users: request.input, k: 10 })) void block;
    }, connections);
    const overhead = (direct.rps / http.requests.average - 1) * 100;
    const cpu = cpuPerRequest(before, after, server.pid, http.requests.total);
    console.log(
      [
        users,
        kind,
        http.requests.average.toFixed(1),
        `${http.latency.p50} / ${http.latency.p99}`,
        direct.rps.toFixed(1),
        `${direct.p50.toFixed(1)} / ${direct.p99.toFixed(1)}`,
        `${overhead.toFixed(1)}%`,
        cpu ? cpu.main.toFixed(2) : 'n/a',
        cpu ? cpu.scoring.toFixed(2) : 'n/a',
        cpu ? `${((cpu.main / cpu.scoring) * 100).toFixed(1)}%` : 'n/a',
      ].join(' | '),
    );
  }
}
catalog.dispose();
await backend.dispose();
server.process.kill('SIGTERM');

/**
 * Starts `attnscore serve` on a free loopback port and waits for its start-up log line, which
 * carries the port.
 */
async function startServerProcess(threadCount) {
  const bin = new URL('../bin/attnscore.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--threads', String(threadCount)], {
    env: { ...process.env, ATTNSCORE_QUEUE_LIMIT: '4096', ATTNSCORE_TIMEOUT_MS: '120000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const record = JSON.parse(line);
    if (record.msg === 'server started') {
      // Keep reading so that request logs never fill the pipe and stall the server.
      lines.on('line', () => {});
      return { url: `http://127.0.0.1:${record.port}`, pid: child.pid, process: child };
    }
  }
  throw new Error('attnscore serve exited before it started listening');
}

/** CPU seconds of each thread of process `pid`, from /proc; undefined where /proc is missing. */
function threadCpu(pid) {
  const folder = `/proc/${pid}/task`;
  if (!existsSync(folder)) return undefined;
  const ticksPerSecond = 100;
  const times = new Map();
  for (const tid of readdirSync(folder)) {
    const stat = readFileSync(`${folder}/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat are user and system time in clock ticks.
    times.set(tid, (Number(fields[11]) + Number(fields[12])) / ticksPerSecond);
  }
  return times;
}

/**
 * CPU milliseconds per request: the server's main thread (whose thread id is its pid) and
 * the busiest `threads` other threads, which are the scoring workers.
 */
function cpuPerRequest(before, after, pid, requests) {
  if (before === undefined || after === undefined || requests === 0) return undefined;
  const used = [...after].map(([tid, seconds]) => [tid, seconds - (before.get(tid) ?? 0)]);
  const main = used.find(([tid]) => tid === String(pid))?.[1] ?? 0;
  const others = used
    .filter(([tid]) => tid !== String(pid))
    .map(([, seconds]) => seconds)
    .sort((a, b) => b - a);
  const scoring = others.slice(0, threads).reduce((sum, seconds) => sum + seconds, 0);
  return { main: (main * 1000) / requests, scoring: (scoring * 1000) / requests };
}
