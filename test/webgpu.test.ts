/**
 * The webgpu backend's own parts: the uniforms schema, host-side helpers,
 * sub-blocks and chunks with the matrix, `auto` selection, the command line
 * and the server. correctness.test.ts checks the backend's results against
 * the float64 reference. Tests here that need an adapter skip with the
 * reason when there is none.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend, createBackend, WEBGPU_MIN_FLOP } from '../src/backends/index.js';
import { createWebGpuBackend } from '../src/backends/webgpu/index.js';
import { openGpuDevice } from '../src/backends/webgpu/device.js';
import { float32Below, rescaleSubnormalRows, writeSortedLists } from '../src/backends/webgpu/host.js';
import { cosineSpec, declarations, packUniforms } from '../src/backends/webgpu/program.js';
import { formatJsonlLine } from '../src/io/writers.js';
import { score } from '../src/score.js';
import { resolveServerConfig, startServer, type AttnScoreServer } from '../src/server/index.js';
import { messages } from '../src/scoring/messages.js';
import { webgpuUnavailable } from './helpers/backends.js';
import { expectUserMatches } from './helpers/compare.js';
import { randomMatrix, zeroRow } from './helpers/data.js';
import { encodeNpy } from './helpers/npy.js';
import { pino } from 'pino';

const root = fileURLToPath(new URL('..', import.meta.url));
const skipNote = webgpuUnavailable ? ` (skipped: ${webgpuUnavailable})` : '';

describe('uniforms schema', () => {
  it('declares fields in schema order', () => {
    const text = declarations(cosineSpec);
    const fields = [...text.matchAll(/^ {2}(\w+): (\w+),$/gm)].map((match) => `${match[1]}:${match[2]}`);
    expect(fields).toEqual(Object.entries(cosineSpec.uniforms).map(([name, type]) => `${name}:${type}`));
  });

  it('declares storage bindings after the uniforms', () => {
    const text = declarations(cosineSpec);
    expect(text).toContain('@group(0) @binding(0) var<uniform> params: Params;');
    expect(text).toContain('@group(0) @binding(1) var<storage, read> users: array<vec4<f32>>;');
    expect(text).toContain('@group(0) @binding(7) var<storage, read_write> matrix: array<f32>;');
  });

  it('packs each field at 4 bytes times its position', () => {
    const schema = { a: 'u32', b: 'f32', c: 'i32', d: 'u32', e: 'f32' } as const;
    const bytes = packUniforms(schema, { a: 7, b: 0.5, c: -3, d: 0xffffffff, e: -2 });
    const view = new DataView(bytes);
    expect(bytes.byteLength).toBe(32);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getFloat32(4, true)).toBe(0.5);
    expect(view.getInt32(8, true)).toBe(-3);
    expect(view.getUint32(12, true)).toBe(0xffffffff);
    expect(view.getFloat32(16, true)).toBe(-2);
  });

  it('rejects a u32 out of range', () => {
    expect(() => packUniforms({ a: 'u32' }, { a: -1 })).toThrow('uniform a must be a u32 (got -1)');
  });
});

describe('webgpu host helpers', () => {
  it('rescales rows with subnormals by a power of two', () => {
    const data = Float32Array.from([1e-39, -3e-39, 2e-40, 1, 2, 3]);
    const scaled = rescaleSubnormalRows(data, 2, 3);
    expect(scaled).not.toBe(data);
    const factor = scaled[0]! / data[0]!;
    expect(Math.log2(factor) % 1).toBe(0);
    expect(scaled[1]! / data[1]!).toBe(factor);
    expect(Math.max(...[0, 1, 2].map((i) => Math.abs(scaled[i]!)))).toBeGreaterThanOrEqual(1);
    expect(Array.from(scaled.subarray(3))).toEqual([1, 2, 3]);
  });

  it('leaves rows without subnormals as they are', () => {
    const data = Float32Array.from([1e-30, 0, 5]);
    expect(rescaleSubnormalRows(data, 1, 3)).toBe(data);
  });

  it('steps minScore just below itself in float32', () => {
    expect(float32Below(0.5)).toBeLessThan(0.5);
    expect(Math.fround(float32Below(0.5))).toBe(float32Below(0.5));
    expect(float32Below(0)).toBeLessThan(0);
    expect(float32Below(-Infinity)).toBe(-Infinity);
  });

  it('sorts selected entries by score, then lower row', () => {
    const pairs = [
      [0.25, 9],
      [0.5, 4],
      [0.25, 2],
      [0.75, 7],
    ];
    const selected = new Uint32Array(8);
    const asFloat = new Float32Array(selected.buffer);
    pairs.forEach(([value, row], slot) => {
      asFloat[slot * 2] = value!;
      selected[slot * 2 + 1] = row!;
    });
    const index = new Int32Array(4);
    const scores = new Float64Array(4);
    const count = new Int32Array(1);
    writeSortedLists(selected, Uint32Array.of(4), 1, 4, 4, 0, index, scores, count);
    expect(Array.from(index)).toEqual([7, 4, 2, 9]);
    expect(Array.from(scores)).toEqual([0.75, 0.5, 0.25, 0.25]);
    expect(count[0]).toBe(4);
  });
});

describe('webgpu selection', () => {
  it('createBackend points webgpu at openBackend', () => {
    expect(() => createBackend('webgpu')).toThrow(/openBackend\("webgpu"\)/);
  });

  it('auto keeps small jobs on wasm without opening a device', async () => {
    const decision = await chooseBackend(WEBGPU_MIN_FLOP / 2);
    expect(decision.name).toBe('wasm');
    expect(decision.reason).toMatch(/below the WebGPU threshold/);
  });

  it('auto keeps jobs of unknown size on wasm', async () => {
    expect((await chooseBackend(undefined)).name).toBe('wasm');
  });

  const noGpuNodes = process.platform === 'linux' && !existsSync('/dev/dri') && !readdirSync('/dev').some((name) => name.startsWith('nvidia'));
  it.skipIf(!noGpuNodes)('auto skips Dawn without GPU device nodes', async () => {
    const decision = await chooseBackend(WEBGPU_MIN_FLOP * 2);
    expect(decision.name).toBe('wasm');
    expect(decision.reason).toMatch(/no GPU device node/);
  });

  it.skipIf(webgpuUnavailable)(`auto picks webgpu only on a hardware adapter${skipNote}`, async () => {
    const { adapter } = await openGpuDevice();
    const decision = await chooseBackend(WEBGPU_MIN_FLOP * 2);
    expect(decision.name).toBe(adapter.software ? 'wasm' : 'webgpu');
  });

  it('names what was tried when no adapter exists', () => {
    const text = messages.noWebGpuAdapter('Dawn requestAdapter', 'requestAdapter returned null');
    expect(text).toBe(
      'backend "webgpu" is not available: Dawn requestAdapter found no adapter (requestAdapter returned null). ' +
        "Install a Vulkan driver (the GPU vendor's, or mesa-vulkan-drivers for the CPU adapter lavapipe), " +
        'or use --backend wasm',
    );
  });
});

describe.skipIf(webgpuUnavailable)(`webgpu sub-blocks and chunks${skipNote}`, () => {
  it('matches the reference across sub-blocks, chunks and the matrix', async () => {
    const rows = 150;
    const columns = 300;
    const dim = 20;
    const users = randomMatrix(rows, dim, 61);
    const contents = randomMatrix(columns, dim, 62);
    zeroRow(contents, dim, 130);
    const exclude = { '0': [5, 64, 299], '140': [0, 128] };
    const options = { k: 70, alpha: 3, minScore: -0.9, blockUsers: rows, matrix: true, exclude };
    const inputs = { users: { data: users, rows, dim }, contents: { data: contents, rows: columns, dim } };
    const backend = await createWebGpuBackend({ chunkRows: 128, subBlockRows: 64 });
    try {
      const actual = await score({ ...inputs, ...options, backend });
      const expected = await score({ ...inputs, ...options, backend: 'js' });
      for (let u = 0; u < rows; u++) {
        const reference = expected.results[u]!;
        const cosine = (c: number) => expected.matrix!.data[u * columns + c]!;
        const listed = new Set(reference.top.map((match) => match.content as number));
        let nextScore = -Infinity;
        for (let c = 0; c < columns; c++) {
          const excluded = (exclude as Record<string, number[]>)[String(u)]?.includes(c) ?? false;
          if (!listed.has(c) && !excluded && cosine(c) >= -0.9) nextScore = Math.max(nextScore, cosine(c));
        }
        expectUserMatches(
          actual.results[u]!,
          {
            cx: reference.cx,
            loyalty: reference.loyalty,
            topIndex: reference.top.map((match) => match.content as number),
            topScore: reference.top.map((match) => match.score),
            cosine,
            nextScore,
            alpha: 3,
          },
          (content) => content as number,
          `user ${u}`,
        );
      }
      for (let i = 0; i < rows * columns; i++) {
        expect(Math.abs(actual.matrix!.data[i]! - expected.matrix!.data[i]!)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      backend.dispose();
    }
  });

  it('rejects candidates beyond the binding limit', async () => {
    const backend = await createWebGpuBackend({ maxBindingBytes: 100_000 });
    try {
      const job = {
        users: { data: randomMatrix(3, 12, 91), rows: 3, dim: 12 },
        contents: { data: randomMatrix(700, 12, 92), rows: 700, dim: 12 },
        k: 300,
        backend,
      };
      await expect(score(job)).rejects.toThrow(
        'the top-k candidates of 64 users (k = 300, 700 contents) needs 360448 bytes in one GPU buffer ' +
          'but the adapter allows 100000 (maxStorageBufferBindingSize); ' +
          'use --backend wasm, a smaller k or fewer contents',
      );
      const smallK = await score({ ...job, k: 5 });
      expect(smallK.results[0]!.top).toHaveLength(5);
    } finally {
      backend.dispose();
    }
  });

  it('rejects chunk sizes that are not multiples of 64', async () => {
    await expect(createWebGpuBackend({ chunkRows: 100 })).rejects.toThrow(
      'chunkRows must be a positive multiple of 64 (got 100)',
    );
  });
});

describe.skipIf(webgpuUnavailable)(`webgpu under the server${skipNote}`, () => {
  let server: AttnScoreServer;
  const dim = 16;
  const contents = randomMatrix(200, dim, 71);
  const users = randomMatrix(30, dim, 72);
  const toRows = (data: Float32Array) =>
    Array.from({ length: data.length / dim }, (_, row) => Array.from(data.subarray(row * dim, (row + 1) * dim)));

  beforeAll(async () => {
    const config = resolveServerConfig({ port: 0, backend: 'webgpu', concurrency: 2, blockUsers: 8 }, {});
    server = await startServer({ config, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('scores concurrent requests like score() on webgpu', async () => {
    const put = await fetch(`${server.url}/v1/catalogs/items`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ vectors: toRows(contents) }),
    });
    expect(put.status).toBe(201);
    const requests = [2, 5, 9].map((k) =>
      fetch(`${server.url}/v1/catalogs/items/score`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ users: { vectors: toRows(users) }, k, alpha: 1.5 }),
      }),
    );
    const responses = await Promise.all(requests);
    for (const [position, k] of [2, 5, 9].entries()) {
      expect(responses[position]!.status).toBe(200);
      const body = (await responses[position]!.json()) as { results: unknown[] };
      const lines = body.results.map((result) => JSON.stringify(result));
      const expected = await score({
        users: { data: users, rows: 30, dim },
        contents: { data: contents, rows: 200, dim },
        k,
        alpha: 1.5,
        backend: 'webgpu',
      });
      // The server writes results as the JSONL writer formats them.
      expect(lines).toEqual(expected.results.map((result) => formatJsonlLine(result).trimEnd()));
    }
  });
});

describe('webgpu settings', () => {
  it('server rejects an unknown backend', () => {
    expect(() => resolveServerConfig({}, { ATTNSCORE_BACKEND: 'gpu' })).toThrow(
      'backend must be wasm or webgpu (got "gpu")',
    );
  });
});

describe('webgpu on the command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'attnscore-webgpu-'));
    writeFileSync(join(dir, 'users.npy'), encodeNpy(randomMatrix(20, 8, 81), [20, 8]));
    writeFileSync(join(dir, 'contents.npy'), encodeNpy(randomMatrix(50, 8, 82), [50, 8]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function attnscore(args: string[], env: NodeJS.ProcessEnv = process.env) {
    const files = ['--users', join(dir, 'users.npy'), '--contents', join(dir, 'contents.npy')];
    const command = [join(root, 'bin', 'attnscore.js'), 'score', ...files, '--out', join(dir, 'out.jsonl'), ...args];
    return spawnSync(process.execPath, command, { encoding: 'utf8', env });
  }

  it('auto says what it chose and why', () => {
    const result = attnscore(['--show', '0']);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/backend wasm \(.*\), chosen by auto: job of 1\.6e\+4 FLOP is below the WebGPU threshold/);
  });

  it('webgpu without a Vulkan driver exits 2 naming what was tried', () => {
    // An empty driver list leaves the Vulkan loader with no driver, so Dawn finds no adapter.
    const env = { ...process.env, VK_DRIVER_FILES: join(dir, 'none.json'), VK_ICD_FILENAMES: join(dir, 'none.json') };
    const result = attnscore(['--backend', 'webgpu'], env);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('backend "webgpu" is not available: Dawn (npm package "webgpu") requestAdapter');
    expect(result.stderr).toContain('or use --backend wasm');
  });

  it.skipIf(webgpuUnavailable)(`webgpu runs and names its adapter${skipNote}`, () => {
    const result = attnscore(['--backend', 'webgpu', '--show', '0']);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/backend webgpu \(WebGPU on .+\)/);
  });
});
