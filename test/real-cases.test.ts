/**
 * Real inputs: Fashion-MNIST products and the users who viewed them, with
 * expected values computed independently in float64 by numpy. The bundled
 * sample always runs; the two full cases run when their data folder beside
 * the repository exists. On `webgpu` and `gpujs` the full cases score only
 * their first users. CI runs these backends on CPU drivers (lavapipe for
 * WebGPU, llvmpipe or gpu.js's CPU mode for gpu.js) at 0.2 to 1 GFLOP/s, on
 * which the whole 784-dim case would take minutes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prepareRun } from '../src/score.js';
import type { BackendName } from '../src/backends/backend.js';
import { rowNorm } from '../src/scoring/math.js';
import { expectUserMatches } from './helpers/compare.js';
import { loadNpy } from './helpers/npy.js';
import { webgpuUnavailable } from './helpers/backends.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const sharedData = fileURLToPath(new URL('../../shared/data', import.meta.url));

interface RealCase {
  readonly name: string;
  readonly inputs: string;
  readonly expected: string;
  readonly backends: readonly BackendName[];
  /** Users scored per backend, the first ones; every user for a backend not named. */
  readonly userLimits?: Partial<Record<BackendName, number>>;
}

const cases: RealCase[] = [
  {
    name: 'bundled sample (500 x 2000 x 100)',
    inputs: `${root}/sample`,
    expected: `${root}/test/fixtures/fashion-sample`,
    backends: ['wasm', 'js', 'webgpu', 'gpujs'],
  },
  ...[
    { name: 'fashion-t10k-pca100', userLimits: { webgpu: 192, gpujs: 256 } },
    { name: 'fashion-t10k-784', userLimits: { webgpu: 64, gpujs: 32 } },
  ].map(({ name, userLimits }) => ({
    name,
    inputs: `${sharedData}/${name}`,
    expected: `${sharedData}/${name}`,
    backends: ['wasm', 'webgpu', 'gpujs'] as const,
    userLimits,
  })),
];

for (const realCase of cases) {
  const present = existsSync(`${realCase.expected}/expected_cx.npy`);
  describe.skipIf(!present)(`real case ${realCase.name}${present ? '' : ' (skipped: data folder not found)'}`, () => {
    for (const backend of realCase.backends) {
      const unavailable = backend === 'webgpu' ? webgpuUnavailable : undefined;
      const title = `matches numpy float64 on ${backend}${unavailable ? ` (skipped: ${unavailable})` : ''}`;
      it.skipIf(unavailable)(title, async () => {
        const params = JSON.parse(readFileSync(`${realCase.expected}/params.json`, 'utf8'));
        const run = await prepareRun({
          users: `${realCase.inputs}/users.npy`,
          userIds: `${realCase.inputs}/user_ids.txt`,
          contents: `${realCase.inputs}/contents.npy`,
          contentIds: `${realCase.inputs}/content_ids.txt`,
          weights: `${realCase.inputs}/content_weights.npy`,
          alpha: params.alpha,
          beta: params.beta,
          gamma: params.gamma,
          k: params.k,
          backend,
        });
        const results = [];
        const end = Math.min(realCase.userLimits?.[backend] ?? Infinity, run.users.rows);
        try {
          for await (const block of run.blocks({ start: 0, end })) results.push(...block.results);
        } finally {
          await run.dispose();
        }
        const users = loadNpy(`${realCase.inputs}/users.npy`);
        const contents = loadNpy(`${realCase.inputs}/contents.npy`);
        const dim = users.shape[1]!;
        const topIndex = loadNpy(`${realCase.expected}/expected_topk_index.npy`).data;
        const topScore = loadNpy(`${realCase.expected}/expected_topk_score.npy`).data;
        const nextScore = loadNpy(`${realCase.expected}/expected_next_score.npy`).data;
        const cx = loadNpy(`${realCase.expected}/expected_cx.npy`).data;
        const loyalty = loadNpy(`${realCase.expected}/expected_loyalty.npy`).data;
        const contentIds = readFileSync(`${realCase.inputs}/content_ids.txt`, 'utf8').split('\n');
        const userIds = readFileSync(`${realCase.inputs}/user_ids.txt`, 'utf8').split('\n');
        const rowOfContent = new Map(contentIds.map((id, row) => [id, row]));
        const k = params.k as number;

        expect(results).toHaveLength(end);
        results.forEach((result, u) => {
          expect(result.user).toBe(userIds[u]);
          const cosine = (c: number) => cosine64(users.data as Float32Array, u, contents.data as Float32Array, c, dim);
          expectUserMatches(
            result,
            {
              cx: cx[u]!,
              loyalty: loyalty[u]!,
              topIndex: topIndex.subarray(u * k, (u + 1) * k),
              topScore: topScore.subarray(u * k, (u + 1) * k),
              cosine,
              nextScore: nextScore[u]!,
              alpha: params.alpha,
            },
            (content) => rowOfContent.get(content as string)!,
            `${realCase.name} user ${u}`,
          );
        });
      });
    }
  });
}

/** Returns the float64 cosine of one user row and one content row, 0 when either is zero. */
function cosine64(users: Float32Array, u: number, contents: Float32Array, c: number, dim: number): number {
  let dot = 0;
  for (let j = 0; j < dim; j++) dot += users[u * dim + j]! * contents[c * dim + j]!;
  const norms = rowNorm(users, u, dim) * rowNorm(contents, c, dim);
  return norms > 0 ? dot / norms : 0;
}
