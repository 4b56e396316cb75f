// Load test of the HTTP API: requests per second and p50/p99 latency for batches of 1, 64
// and 1024 users against a 10000-content catalog, next to calling the engine directly with
// the same batch. Each batch goes once as JSON and once as a float32 .npy body with the
// parameters in the query string. The direct baseline gets the same data as nested arrays
// or a Float32Array. Starts its own server on 127.0.0.1 with a free port.
//
//   npm run build && node bench/server-load.mjs [--dim 128] [--threads 2] [--seconds 10]
//     [--bodies json,npy]
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { npyHeaderBytes } from '../dist/io/npy.js';
import { createPoolBackend } from '../dist/pool/index.js';
import { prepareCatalog, scoreCatalogBlocks } from '../dist/score.js';
import { resolveServerConfig, startServer } from '../dist/server/index.js';

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
const config = resolveServerConfig({ port: 0, threads, queueLimit: 4096, timeoutMs: 120_000 }, {});
const server = await startServer({ config, logger: pino({ level: 'warn' }) });
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

console.log(`catalog ${contentRows} x ${dim}, ${threads} threads, ${seconds} s per case`);
console.log('users | body | connections | http req/s | http p50 ms | http p99 ms | direct req/s | direct p50 ms | direct p99 ms | overhead');
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
    const http = await autocannon({
      url: request.url,
      method: 'POST',
      headers: request.headers,
      body: request.body,
      connections,
      duration: seconds,
    });
    if (http.non2xx > 0) throw new Error(`${http.non2xx} requests failed`);
    const direct = await measureDirect(async () => {
      for await (const block of scoreCatalogBlocks(catalog, { users: request.input, k: 10 })) void block;
    }, connections);
    const overhead = (direct.rps / http.requests.average - 1) * 100;
    console.log(
      [
        users,
        kind,
        connections,
        http.requests.average.toFixed(1),
        http.latency.p50,
        http.latency.p99,
        direct.rps.toFixed(1),
        direct.p50.toFixed(1),
        direct.p99.toFixed(1),
        `${overhead.toFixed(1)}%`,
      ].join(' | '),
    );
  }
}
catalog.dispose();
await backend.dispose();
await server.close();
