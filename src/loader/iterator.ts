/**
 * `BatchIterator`: one pass of `CellMapDataLoader` over the rest of an epoch, keeping at most
 * `prefetchDepth` batches in flight and handing them out in order.
 *
 * Kept apart from the loader because its job is only the queue and the end of an iteration
 * (done, `break`, an error, the caller's abort): it talks to the loader through the small
 * {@link IteratorHost} it is given, so the loader's bookkeeping (`handedOut`, `detach`) stays
 * private instead of being public methods the iterator could reach.
 */
import { setMaxListeners } from "node:events";
import { CellMapError } from "../errors.js";
import type { Batch } from "./collate.js";
import type { EpochPlan } from "./order.js";

/** What an iterator needs of its loader. */
export interface IteratorHost {
  /** Batches allowed in flight. */
  readonly prefetchDepth: number;
  /** The caller's signal: once aborted, the iteration rejects with `ABORTED`. */
  readonly signal: AbortSignal | undefined;
  /** The plan (order and batches on this rank) of `epoch`. */
  plan(epoch: number): Promise<EpochPlan>;
  /** Starts reading the samples `indices` of `epoch` as one batch. */
  submit(indices: number[], epoch: number, signal: AbortSignal): Promise<Batch>;
  /** Batch `b` of `epoch` was handed out. */
  handedOut(epoch: number, b: number): void;
  /** The iterator is done (finished or stopped). */
  detach(it: BatchIterator): void;
  /** Ends the worker threads. */
  close(): Promise<void>;
}

/** One pass over the rest of an epoch, with a bounded queue of batches in flight. */
export class BatchIterator implements AsyncIterator<Batch>, AsyncIterable<Batch> {
  private readonly abort = new AbortController();
  private readonly queue: { b: number; promise: Promise<Batch> }[] = [];
  private plan: EpochPlan | null = null;
  private nextBatch: number;
  private done = false;

  constructor(
    private readonly loader: IteratorHost,
    private readonly epoch: number,
    start: number,
  ) {
    this.nextBatch = start;
    // Every chunk read in flight listens to this signal (and removes its listener when done).
    setMaxListeners(0, this.abort.signal);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private fill(): void {
    const plan = this.plan!;
    while (this.queue.length < this.loader.prefetchDepth && this.nextBatch < plan.batches) {
      const b = this.nextBatch++;
      const promise = this.loader.submit(plan.batch(b), this.epoch, this.abort.signal);
      promise.catch(() => {}); // observed when its turn comes; avoids unhandled rejections meanwhile
      this.queue.push({ b, promise });
    }
  }

  /** The caller aborted through the loader's `signal`: iteration ends with that error. */
  private aborted(): CellMapError | null {
    const sig = this.loader.signal;
    return sig?.aborted ? new CellMapError("ABORTED", "loader aborted", undefined, { cause: sig.reason }) : null;
  }

  async next(): Promise<IteratorResult<Batch>> {
    const userAbort = this.aborted();
    if (userAbort) throw userAbort;
    if (this.done) return { done: true, value: undefined };
    try {
      if (!this.plan) {
        this.plan = await this.loader.plan(this.epoch);
        if (this.done) return { done: true, value: undefined };
        this.fill();
      }
      const head = this.queue.shift();
      if (!head) {
        this.finish();
        return { done: true, value: undefined };
      }
      this.fill();
      const batch = await head.promise;
      const abortedNow = this.aborted();
      if (abortedNow) throw abortedNow;
      if (this.done) return { done: true, value: undefined };
      this.loader.handedOut(this.epoch, head.b);
      return { done: false, value: batch };
    } catch (err) {
      const abortedNow = this.aborted();
      if (abortedNow) throw abortedNow;
      if (this.done) return { done: true, value: undefined };
      this.stop();
      await this.loader.close();
      throw err;
    }
  }

  /** `break` / early exit: stop reading and end the worker threads. */
  async return(): Promise<IteratorResult<Batch>> {
    if (!this.done) {
      this.stop();
      await this.loader.close();
    }
    return { done: true, value: undefined };
  }

  /** Stops without touching the pool (the loader closes it). */
  stop(): void {
    if (this.done) return;
    this.done = true;
    this.abort.abort(new CellMapError("ABORTED", "iteration stopped"));
    this.queue.length = 0;
    this.loader.detach(this);
  }

  private finish(): void {
    this.done = true;
    this.loader.detach(this);
  }
}
