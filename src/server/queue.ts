/**
 * Backpressure for scoring requests: at most `concurrency` run at once, at
 * most `limit` more wait in first-in, first-out order, and the rest are
 * rejected at once so that the client can retry later (HTTP 429).
 */

/** Thrown by {@link RequestQueue.run} when every running and waiting place is taken. */
export class QueueFullError extends Error {
  constructor(limit: number) {
    super(`the scoring queue is full (${limit} requests waiting)`);
    this.name = 'QueueFullError';
  }
}

interface Waiter {
  readonly start: () => void;
}

/** A bounded first-in, first-out queue in front of a limited number of running tasks. */
export class RequestQueue {
  private readonly concurrency: number;
  private readonly limit: number;
  private readonly waiting: Waiter[] = [];
  private active = 0;

  constructor(concurrency: number, limit: number) {
    this.concurrency = concurrency;
    this.limit = limit;
  }

  /** Requests waiting for a place. */
  get depth(): number {
    return this.waiting.length;
  }

  /** Requests running now. */
  get running(): number {
    return this.active;
  }

  /** True when a request arriving now would be rejected: every running and waiting place is taken. */
  get full(): boolean {
    return this.active >= this.concurrency && this.waiting.length >= this.limit;
  }

  /** The number of requests allowed to wait. */
  get capacity(): number {
    return this.limit;
  }

  /**
   * Runs `task` once a place is free. Throws {@link QueueFullError} without
   * waiting when `limit` requests already wait, and the signal's reason when
   * `signal` aborts before the task starts. The place is held until the task
   * settles, even when its caller has stopped waiting for it.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.limit) throw new QueueFullError(this.limit);
      // A finishing task hands its place over without freeing it, so a newcomer cannot take it.
      await this.wait(signal);
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next.start();
      else this.active--;
    }
  }

  /** Waits until a running task hands its place over, or `signal` aborts. */
  private wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
