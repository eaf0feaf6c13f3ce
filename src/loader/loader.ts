/**
 * `CellMapDataLoader`: batches out of any dataset-like object, read by a pool of worker threads
 * (piscina) while the training thread stays free.
 *
 * This module ties the parts together and owns the loader's place in its sequence of batches
 * (epoch, position, resume state, the per-epoch plan); the parts each do one job:
 * - `options.ts`: the option and state types, their checks and defaults;
 * - `sampling.ts`: the sampling mode, i.e. how each epoch's sequence of indices is made;
 * - `pool.ts`: reading a list of indices as one batch into the data plane, on worker threads
 *   or on this thread (the piscina pool, the plane, recycled buffers, cache counters);
 * - `iterator.ts`: one pass over an epoch with a bounded queue of batches in flight.
 *
 * Design:
 * - The order of an epoch is a pure function of (seed, epoch) (see order.ts), so batches depend
 *   on nothing but the seed, the epoch and the options — not on `numWorkers`, timing or which
 *   process asks. Values are deterministic too, because the dataset draws its augmentations from
 *   (dataset seed, epoch, index).
 * - One data plane per loader (`plane/`): a shared WebAssembly memory holding the decoded-chunk
 *   cache every thread reads through (each chunk decoded once per process) and a pool of batch
 *   buffers. Each worker builds whole batches, gathering every sample straight from cached
 *   chunks into its slot of a batch buffer (one copy per voxel), and returns only indices and
 *   metadata; the consumer gets views of the buffer. `numWorkers = 0` runs the same batch
 *   builder on the main thread, which also builds the first batch while the workers start.
 *   The process-wide chunk cache (`setChunkCacheBytes`) is left alone.
 * - At most `prefetchDepth` (= `prefetchFactor · max(1, numWorkers)`, cut to fit the memory
 *   budget) batches are in flight: a batch is requested only when one is handed out.
 * - The loader moves to the next epoch by itself when the last batch of an epoch is handed
 *   out; `state()` tells (epoch, position) so a new loader can resume exactly there.
 * - Worker threads start at construction (module loading and opening the dataset take ~0.5 s)
 *   and stay up across epochs; `recycle(batch)` optionally hands buffers back for reuse.
 */
import { invalid } from "../errors.js";
import { parseOptions } from "../options/options.js";
import { loaderOptionsSchema } from "./options.js";
import type { AnyDatasetItem, DatasetLike, SampleBase } from "../dataset/types.js";
import type { CacheStats } from "../zarr/cache.js";
import { batchLayout, buildBatch, type Batch } from "./collate.js";
import { BatchIterator } from "./iterator.js";
import { batchMemoryBytes, batchSlots, fitPrefetch } from "./memory.js";
import { checkState, intOption, loaderSettings, memorySettings, type CellMapDataLoaderOptions, type LoaderState, type WeightedMode } from "./options.js";
import { batchesPerEpoch, EpochPlan, type PlanShape } from "./order.js";
import { BatchReader } from "./pool.js";
import { EpochSampling } from "./sampling.js";
import type { SharedBatches } from "../plane/plane.js";

export type { CellMapDataLoaderOptions, LoaderState, SamplerInput, WeightedMode } from "./options.js";

/**
 * Batches of a dataset, in a deterministic order, optionally read by worker threads.
 *
 * ```ts
 * const loader = new CellMapDataLoader(dataset, { batchSize: 8, numWorkers: 2, seed: 1 });
 * for await (const batch of loader) {
 *   await train(batchTensor(batch, "raw"), batchTensor(batch, "labels"));
 *   loader.recycle(batch); // optional: reuse its buffers for a later batch
 * }
 * await loader.close();
 * ```
 * Breaking out of the loop (or an error) closes the worker pool; idle workers never keep the
 * process alive. Iterating again starts a new pool.
 *
 * `S` is the dataset's sample type: batches are `Batch<S>`, so over a dataset opened with
 * `inputArrays: { raw: … }` `batch.raw` is a `Tensor` (see {@link Batch}).
 */
export class CellMapDataLoader<S extends SampleBase = AnyDatasetItem> implements AsyncIterable<Batch<S>> {
  readonly dataset: DatasetLike;
  readonly batchSize: number;
  readonly numWorkers: number;
  readonly prefetchFactor: number;
  readonly isTrain: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly rank: number;
  readonly worldSize: number;
  readonly iterationsPerEpoch: number | null;
  readonly weightedSampler: WeightedMode | null;
  readonly sampleConcurrency: number;
  /** Batches allowed in flight (`prefetchFactor · max(1, numWorkers)`, cut to the memory budget). */
  readonly prefetchDepth: number;
  /** Budget of the loader's shared chunk cache in bytes (what the slab holds; 0: none). */
  readonly chunkCacheBytes: number;
  /** Memory budget the prefetch queue was sized for. */
  readonly memoryBudgetBytes: number;
  /** Warning issued at construction about the memory budget, or null. */
  readonly memoryWarning: string | null;
  /** The caller's signal (`signal` option): once aborted, iteration and `get` reject. */
  readonly signal: AbortSignal | undefined;

  private readonly sampling: EpochSampling;
  /** The data plane and the worker pool that read batches into it. */
  private readonly reader: BatchReader;
  private epochValue = 0;
  private positionValue = 0;
  private planCache: { epoch: number; plan: Promise<EpochPlan> } | null = null;
  private active: BatchIterator | null = null;
  /** Listens to `signal` while there is something to stop (removed by `close()`). */
  private readonly onAbort = (): void => {
    this.listening = false;
    this.active?.stop();
    void this.close();
  };
  private listening = false;

  constructor(source: DatasetLike<S>, opts: CellMapDataLoaderOptions = {}) {
    // Batches are built from untyped samples; `S` only types what the loader hands out.
    const dataset = source as DatasetLike<SampleBase> as DatasetLike;
    if (typeof dataset?.get !== "function" || !Number.isSafeInteger(dataset.length)) {
      throw invalid("dataset", "dataset must be a dataset-like object (get(i), length)");
    }
    opts = parseOptions(loaderOptionsSchema, opts, "CellMapDataLoader");
    this.dataset = dataset;
    const s = loaderSettings(dataset, opts);
    this.batchSize = s.batchSize;
    this.numWorkers = s.numWorkers;
    this.prefetchFactor = s.prefetchFactor;
    this.worldSize = s.worldSize;
    this.rank = s.rank;
    this.sampleConcurrency = s.sampleConcurrency;
    this.isTrain = s.isTrain;
    this.dropLast = s.dropLast;
    this.seed = s.seed;
    this.iterationsPerEpoch = s.iterationsPerEpoch;
    this.weightedSampler = s.weightedSampler;
    this.signal = opts.signal;

    // Sampling mode and samples per epoch (known synchronously, so `length` is too).
    this.sampling = new EpochSampling(dataset, opts.sampler, s);

    // Memory: caches + prefetch queue must fit the budget.
    const mem = memorySettings(opts);
    this.memoryBudgetBytes = mem.memoryBudgetBytes;
    const fit = fitPrefetch({
      requested: this.prefetchFactor * Math.max(1, this.numWorkers),
      batchBytes: this.batchMemoryBytes(),
      sampleBytes: batchMemoryBytes(dataset.inputArrays, dataset.targetArrays, dataset.classes.length, 1),
      readers: Math.max(1, this.numWorkers) * this.sampleConcurrency,
      cacheBytes: mem.cacheBytes,
      budgetBytes: this.memoryBudgetBytes,
    });
    this.prefetchDepth = fit.depth;

    // The data plane: the loader's own chunk cache plus a pool of batch buffers (batchSlots).
    const layout = batchLayout(dataset, this.batchSize);
    this.reader = new BatchReader({
      dataset,
      numWorkers: this.numWorkers,
      sampleConcurrency: this.sampleConcurrency,
      spareCap: this.prefetchDepth + 1,
      plane: { cacheBytes: mem.cacheBytes, batchBytes: layout.bytes, batchSlots: batchSlots(this.prefetchDepth, fit.spares), threads: this.numWorkers + 1 },
      layout,
    });
    const plane = this.reader.plane;
    this.chunkCacheBytes = plane.cache?.capacityBytes ?? 0;
    this.memoryWarning = [fit.warning, plane.warning].filter(Boolean).join("; ") || null;
    if (this.memoryWarning) process.emitWarning(this.memoryWarning, { code: "CELLMAP_LOADER_MEMORY" });

    // Workers re-open the dataset from its description: fail now, not in a thread, if it has none.
    if (this.numWorkers > 0) this.reader.setDescription(dataset.describe());
    if (opts.state !== undefined) this.setState(opts.state);
    this.listen();
    // Start the threads now: module loading and opening the dataset (~0.5 s) then overlap
    // whatever the caller does before the first batch. Idle workers never keep the process alive.
    if (this.numWorkers > 0 && (opts.startWorkers ?? true)) this.reader.start();
  }

  /** Samples per epoch before the rank split (sampler length, subset size or dataset length). */
  get samplesPerEpoch(): number {
    return this.sampling.samplesPerEpoch;
  }

  /** Batches per epoch on this rank. */
  get length(): number {
    return batchesPerEpoch(this.sampling.samplesPerEpoch, this.planShape());
  }

  /** Current epoch. */
  get epoch(): number {
    return this.epochValue;
  }

  /** Batches of the current epoch already handed out. */
  get position(): number {
    return this.positionValue;
  }

  /** Live worker threads (0 when no pool is running). */
  get threads(): number {
    return this.reader.threads;
  }

  /**
   * Bytes of one collated batch: `batchSize · (Σ inputs ∏shape + Σ targets ∏shape · nClasses)`
   * float32 values (the Python `_calculate_batch_memory_mb` estimate, in bytes).
   */
  batchMemoryBytes(): number {
    return batchMemoryBytes(this.dataset.inputArrays, this.dataset.targetArrays, this.dataset.classes.length, this.batchSize);
  }

  /** Small JSON to resume from: pass it as the `state` option of a new loader. */
  state(): LoaderState {
    return {
      version: 1,
      seed: this.seed,
      epoch: this.epochValue,
      position: this.positionValue,
      batchSize: this.batchSize,
      worldSize: this.worldSize,
      samplesPerEpoch: this.sampling.samplesPerEpoch,
    };
  }

  /** Moves to `state` (same seed, batch size, world size and samples per epoch required). */
  setState(state: LoaderState): void {
    this.checkIdle("setState");
    const { epoch, position } = checkState(state, this.state(), this.length);
    this.epochValue = epoch;
    this.positionValue = position;
    this.normalise();
  }

  /** Starts epoch `epoch` from its first batch. */
  setEpoch(epoch: number): void {
    this.checkIdle("setEpoch");
    this.epochValue = intOption(epoch, 0, 0, "epoch");
    this.positionValue = 0;
  }

  /**
   * Starts the next epoch (a new random subset and order), abandoning what is left of the
   * current one; a sampler factory is called again. Not needed between full epochs: the loader
   * moves on by itself when an epoch's last batch is handed out.
   */
  refresh(): void {
    this.checkIdle("refresh");
    this.sampling.refresh();
    this.planCache = null;
    this.epochValue++;
    this.positionValue = 0;
  }

  private checkIdle(what: string): void {
    if (this.active) throw invalid(what, `cannot call ${what}() while an iteration is running; finish or break out of it first`);
  }

  private normalise(): void {
    if (this.positionValue >= this.length && this.length > 0) {
      this.epochValue++;
      this.positionValue = 0;
    }
  }

  private planShape(): PlanShape {
    return { batchSize: this.batchSize, dropLast: this.dropLast, rank: this.rank, worldSize: this.worldSize };
  }

  /** The plan (order and batches on this rank) of `epoch`. */
  plan(epoch: number = this.epochValue): Promise<EpochPlan> {
    if (this.planCache?.epoch !== epoch) {
      const p = this.sampling.sequence(epoch).then((seq) => {
        const expected = this.sampling.samplesPerEpoch;
        if (seq.length !== expected) {
          throw invalid("sampler", `the sampler gave ${seq.length} indices for epoch ${epoch}, expected ${expected}`);
        }
        return new EpochPlan(epoch, seq, this.planShape());
      });
      const entry = { epoch, plan: p };
      p.catch(() => {
        if (this.planCache === entry) this.planCache = null;
      });
      this.planCache = entry;
    }
    return this.planCache.plan;
  }

  /**
   * The plan of `epoch` for another rank layout than this loader's own (same order, same batch
   * size): what a loader built with `{ rank, worldSize }` would iterate. `cellmap-data serve`
   * uses it to give each client its share from one pool and one cache.
   */
  async planFor(epoch: number, rank: number, worldSize: number): Promise<EpochPlan> {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw invalid("epoch", `epoch must be a non-negative integer, got ${epoch}`);
    if (!Number.isInteger(worldSize) || worldSize < 1) throw invalid("worldSize", `worldSize must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw invalid("rank", `rank must be an integer in [0, ${worldSize}), got ${rank}`);
    if (rank === this.rank && worldSize === this.worldSize) return this.plan(epoch);
    const seq = (await this.plan(epoch)).sequence;
    return new EpochPlan(epoch, seq, { ...this.planShape(), rank, worldSize });
  }

  /** Reads the samples `indices` as one batch (current epoch's random draws), on this thread. */
  get(indices: number | readonly number[], opts: { signal?: AbortSignal } = {}): Promise<Batch<S>> {
    const list = typeof indices === "number" ? [indices] : [...indices];
    const signals = [opts.signal, this.signal].filter((x): x is AbortSignal => !!x);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    return buildBatch(this.dataset, list, this.epochValue, { concurrency: this.sampleConcurrency, signal, store: this.reader.store }) as Promise<Batch<SampleBase>> as Promise<
      Batch<S>
    >;
  }

  /**
   * Starts reading the samples `indices` of `epoch` as one batch, through the loader's pool and
   * plane (worker threads when `numWorkers > 0`), outside any iteration: what `for await` does
   * for each batch of a plan, for callers that schedule batches themselves (`cellmap-data
   * serve` reads `planFor(...).batch(b)` for each client this way). `indices` are dataset
   * indices; `epoch` selects the samples' random draws. `signal` cancels the batch: it then
   * rejects with `ABORTED`. Does not move `epoch`/`position`. Hand the batch back with
   * {@link recycle} when done with it; `close()` ends the threads it may have started.
   */
  submit(indices: number[], epoch: number, signal: AbortSignal): Promise<Batch<S>> {
    this.listen();
    return this.reader.submit(indices, epoch, signal) as Promise<Batch<SampleBase>> as Promise<Batch<S>>;
  }

  /** Iterates the rest of the current epoch (from `position`). One iteration at a time. */
  [Symbol.asyncIterator](): AsyncIterator<Batch<S>> & AsyncIterable<Batch<S>> {
    this.checkIdle("[Symbol.asyncIterator]");
    this.normalise();
    this.listen();
    const it = new BatchIterator(
      {
        prefetchDepth: this.prefetchDepth,
        signal: this.signal,
        plan: (epoch) => this.plan(epoch),
        submit: (indices, epoch, signal) => this.reader.submit(indices, epoch, signal),
        handedOut: (epoch, b) => this.handedOut(epoch, b),
        detach: (done) => {
          if (this.active === done) this.active = null;
        },
        close: () => this.close(),
      },
      this.epochValue,
      this.positionValue,
    );
    this.active = it;
    return it as BatchIterator as unknown as AsyncIterator<Batch<S>> & AsyncIterable<Batch<S>>;
  }

  /** Records that batch `b` of `epoch` was handed out. */
  private handedOut(epoch: number, b: number): void {
    if (epoch !== this.epochValue) return;
    this.positionValue = b + 1;
    this.normalise();
  }

  /** Listens to the caller's signal (once), unless it has already fired. */
  private listen(): void {
    if (!this.signal || this.listening || this.signal.aborted) return;
    this.signal.addEventListener("abort", this.onAbort, { once: true });
    this.listening = true;
  }

  /** Ends the worker threads (and any running iteration). Safe to call more than once. */
  async close(): Promise<void> {
    if (this.listening) {
      this.listening = false;
      this.signal!.removeEventListener("abort", this.onAbort);
    }
    const it = this.active;
    if (it) it.stop();
    await this.reader.close();
  }

  /**
   * The batch pool as a file another process on this host can map (`serve`'s shared-memory
   * transport), or null (no native addon, not Linux). Call it before the first batch is read.
   */
  shareBatchPool(): SharedBatches | null {
    return this.reader.plane.shareBatches();
  }

  /**
   * Hands a batch you are done with back to the loader. Batches live in the loader's pool of
   * shared batch buffers; a recycled batch's buffer is filled again by a later batch at once
   * (the batch's tensors are emptied to length 0, so `batch.raw.data` can no longer be read by
   * mistake; a view you took of it yourself would see the later batch). Optional: a batch you
   * keep is never overwritten, and its buffer returns to the pool when its tensors are garbage
   * collected; while the pool is empty, batches get new buffers.
   */
  recycle(batch: Batch<S>): void {
    this.reader.recycle(batch as Batch<SampleBase> as Batch);
  }

  /**
   * Decoded-chunk cache counters: the shared cache's (every thread together), or with a budget
   * of 0 the sum over the threads that read.
   */
  cacheStats(): CacheStats {
    return this.reader.cacheStats();
  }

  toString(): string {
    return `CellMapDataLoader(dataset=${this.dataset.kind}(${this.dataset.length}), batchSize=${this.batchSize}, numWorkers=${this.numWorkers}, isTrain=${this.isTrain}, length=${this.length})`;
  }
}
