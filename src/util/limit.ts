import { CellMapError } from "../errors.js";
import { onAbort } from "./abort.js";

/** A counting semaphore bounding concurrent async work (chunk requests, HTTP connections). */
export class Limiter {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  constructor(readonly max: number) {
    if (!(max >= 1)) throw new CellMapError("INVALID_ARGUMENT", `a concurrency limit must be >= 1, got ${max}`, "maxConcurrency");
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Runs `fn` once a slot is free. A task still waiting when `signal` fires leaves the queue at
   * once with an `ABORTED` error (so an aborted read never waits behind slow requests).
   */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.max) await this.wait(signal);
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  private wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted(signal));
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        stop();
        resolve();
      };
      const stop = signal
        ? onAbort(signal, () => {
            const i = this.queue.indexOf(grant);
            if (i >= 0) this.queue.splice(i, 1);
            reject(aborted(signal));
          })
        : () => {};
      this.queue.push(grant);
    });
  }
}

function aborted(signal: AbortSignal): CellMapError {
  return new CellMapError("ABORTED", "operation aborted while waiting for a free slot", undefined, { cause: signal.reason });
}
