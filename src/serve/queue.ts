/**
 * The batches of one client stream, read ahead: at most `prefetch` batches are being read or
 * wait to be sent. Shared by the HTTP and shared-memory transports of `serve`.
 */
import type { Batch } from "../loader/collate.js";
import type { CellMapDataLoader } from "../loader/loader.js";

type EpochPlan = Awaited<ReturnType<CellMapDataLoader["planFor"]>>;

/** A stream's read-ahead queue; {@link BatchQueue.drain} returns what is left to the pool. */
export interface BatchQueue {
  /** The next batch (in order), or rejects with the read's error or `closed`'s. */
  next(): Promise<Batch>;
  /** Gives every batch still queued back to the loader's pool (when they arrive). */
  drain(): void;
}

/** Reads batches `start, start + 1, …` of `plan` ahead, at most `prefetch` at a time. */
export function batchQueue(loader: CellMapDataLoader, plan: EpochPlan, epoch: number, start: number, prefetch: number, signal: AbortSignal, closed: Promise<never>): BatchQueue {
  const queue: Promise<Batch>[] = [];
  let next = start;
  const fill = () => {
    while (queue.length < prefetch && next < plan.batches && !signal.aborted) {
      const p = loader.submit(plan.batch(next++), epoch, signal);
      // A batch that arrives after the client left goes straight back to the pool.
      p.then(
        (b) => signal.aborted && loader.recycle(b),
        () => {},
      );
      queue.push(p);
    }
  };
  fill();
  return {
    async next() {
      const p = queue.shift();
      if (!p) throw new Error("batch queue is empty");
      const batch = await Promise.race([p, closed]);
      fill();
      return batch;
    },
    drain() {
      for (const p of queue.splice(0))
        p.then(
          (b) => loader.recycle(b),
          () => {},
        );
    },
  };
}
