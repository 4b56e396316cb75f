/**
 * The worker-thread side of the pool backend, loaded by Piscina from
 * dist/pool/worker.js (see index.ts for why dist/ even under vitest).
 *
 * Per-thread state lives at module scope. The compiled kernel comes from the
 * main thread through `workerData`, so every thread runs the same optimized
 * code and none compiles it again. One instance per shared
 * memory is kept until the pool sends a release message for that memory on
 * the release channel.
 */
import { BroadcastChannel, workerData } from 'node:worker_threads';
import { TILE_USERS } from '../backends/wasm/layout.js';
import { adoptKernelModule, instantiateKernel, type KernelExports } from '../backends/wasm/module.js';
import type { MemoryRelease, PoolWorkerData, ScoreTask } from './task.js';

const { variant, module, releaseChannel } = workerData as PoolWorkerData;

adoptKernelModule(variant, module);

const instances = new Map<number, KernelExports>();

// Release messages arrive between tasks because the pool runs Piscina with
// atomics disabled, which keeps this thread's event loop turning while idle.
const channel = new BroadcastChannel(releaseChannel);
channel.onmessage = (event) => {
  const { memoryId } = (event as { data: MemoryRelease }).data;
  instances.delete(memoryId);
};
channel.unref();

/**
 * Packs the task's raw users in its slot and runs the fused kernel over the
 * task's content range. Results stay in the slot, where the main thread
 * reads them, so nothing is returned.
 */
export function scoreTask(task: ScoreTask): void {
  let kernel = instances.get(task.memoryId);
  if (kernel === undefined) {
    kernel = instantiateKernel(variant, task.memory);
    instances.set(task.memoryId, kernel);
  }
  if (task.userRows > 0) {
    kernel.packRows(task.rawUsers, task.userRows, task.dim, task.users, TILE_USERS, 0);
  }
  kernel.scoreBlock(
    task.contents,
    task.weights,
    task.contentRows,
    task.dim,
    task.users,
    task.userRows,
    task.alphaHigh,
    task.alphaLow,
    task.k,
    task.thresholds,
    task.topScores,
    task.topRows,
    task.counts,
    task.cx,
    task.excludeOffsets,
    task.excludeRows,
    task.matrix,
    task.tileScores,
  );
}
