/**
 * Scratch slots in a shared kernel memory, one per concurrently running task.
 *
 * Memory layout: the packed contents and weights (written once by
 * `prepare`, read-only afterwards), then `count` slots of `stride` bytes.
 * A slot contains one task's packed users, top-k state, CX sums, optional
 * matrix, kernel tile scratch and the raw users that the worker packs.
 *
 * Ownership: a task is handed a free slot before it is submitted and the
 * slot goes back only after the main thread has read the task's results out
 * of it. So at any moment each slot has at most one owner, and a worker
 * writes only to its own task's slot. Message passing orders the accesses:
 * the main thread writes a slot's inputs before posting the task, and reads
 * the outputs after the worker's reply has arrived.
 *
 * The stride fits the largest request seen so far. A request that needs
 * more waits until no slot is in use, because moving the slots would move
 * scratch that running tasks use. Then the stride grows, and the memory
 * with it. Requests are served in arrival order, so one waiting for a larger
 * stride is not passed by smaller ones that would keep slots held.
 */
import { ensureMemory } from '../backends/wasm/index.js';
import { checkMemoryLimit, PAGE_BYTES, roundUp } from '../backends/wasm/layout.js';
import type { WasmMemory } from '../backends/wasm/webassembly.js';

/** One slot handed to a task: its first byte in the memory. */
export interface Slot {
  readonly index: number;
  readonly base: number;
}

interface Waiter {
  readonly bytes: number;
  readonly resolve: (slot: Slot) => void;
  readonly reject: (error: unknown) => void;
}

/** Hands out the `count` slots that follow the contents at `base` in `memory`. */
export class SlotAllocator {
  private readonly memory: WasmMemory;
  private readonly base: number;
  private readonly count: number;
  private stride = 0;
  private readonly free: number[] = [];
  private inUseCount = 0;
  private readonly waiters: Waiter[] = [];
  private closedError: Error | undefined;

  constructor(memory: WasmMemory, base: number, count: number) {
    this.memory = memory;
    this.base = base;
    this.count = count;
    for (let index = count - 1; index >= 0; index--) this.free.push(index);
  }

  /** Number of slots currently handed out. */
  get inUse(): number {
    return this.inUseCount;
  }

  /**
   * Throws INVALID_INPUT when slots of `bytes` would not fit in the wasm32
   * address space. `description` names the request in the message.
   */
  checkFits(bytes: number, description: string): void {
    const stride = Math.max(this.stride, roundUp(bytes, PAGE_BYTES));
    checkMemoryLimit(this.base + this.count * stride, description);
  }

  /** Resolves with a free slot of at least `bytes` once one is available. */
  acquire(bytes: number): Promise<Slot> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise<Slot>((resolve, reject) => {
      this.waiters.push({ bytes, resolve, reject });
      this.serve();
    });
  }

  /** Takes back `slot`, which its owner must not touch afterwards. */
  release(slot: Slot): void {
    this.free.push(slot.index);
    this.inUseCount--;
    this.serve();
  }

  /** Rejects every waiting and later request with `error`. Slots in use can still be released. */
  close(error: Error): void {
    this.closedError = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  private serve(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0]!;
      if (waiter.bytes > this.stride) {
        if (this.inUseCount > 0) return;
        try {
          this.grow(waiter.bytes);
        } catch (error) {
          this.waiters.shift();
          waiter.reject(error);
          continue;
        }
      }
      const index = this.free.pop();
      if (index === undefined) return;
      this.waiters.shift();
      this.inUseCount++;
      waiter.resolve({ index, base: this.base + index * this.stride });
    }
  }

  /** Grows the stride to fit `bytes`, in whole pages so that small variations need no regrow. */
  private grow(bytes: number): void {
    const stride = roundUp(bytes, PAGE_BYTES);
    const end = this.base + this.count * stride;
    checkMemoryLimit(end, `${this.count} task slots of ${stride} bytes after the contents`);
    ensureMemory(this.memory, end);
    this.stride = stride;
  }
}
