/**
 * `CellMapDataLoader`: batches out of any dataset-like object, read by a pool of worker threads
 * (piscina) while the training thread stays free.
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
 * - At most `prefetchDepth` (= `prefetchFactor · max(1, numWorkers)`, cut to fit the memory
 *   budget) batches are in flight: a batch is requested only when one is handed out.
 * - The loader moves to the next epoch by itself when the last batch of an epoch is handed
 *   out; `state()` tells (epoch, position) so a new loader can resume exactly there.
 * - Worker threads start at construction (module loading and opening the dataset take ~0.5 s)
 *   and stay up across epochs; `recycle(batch)` optionally hands buffers back for reuse.
 */
import { setMaxListeners } from "node:events";
import * as os from "node:os";
import { Piscina } from "piscina";
import { LOADER_DEFAULTS } from "../config/defaults.js";
import { parseOptions } from "../config/options.js";
import { loaderOptionsSchema } from "../config/schema.js";
import { CellMapError } from "../errors.js";
import type { AnyDatasetItem, DatasetDescription, DatasetLike, SampleBase } from "../dataset/types.js";
import { ClassBalancedSampler, type Sampler } from "../sampling/samplers.js";
import { envChunkCacheBytes, type CacheStats } from "../zarr/cache.js";
import type { ChunkStore } from "../zarr/chunk-store.js";
import { DataPlane } from "../plane/plane.js";
import { BatchPool } from "./batch-pool.js";
import type { Tensor } from "../tensor.js";
import { batchLayout, buildBatch, deserializeError, filledTarget, SampleError, tensorKeys, type Batch } from "./collate.js";
import { Limiter } from "../store/limit.js";
import { batchMemoryBytes, fitPrefetch } from "./memory.js";
import { arraySequence, batchesPerEpoch, EpochPlan, identitySequence, shuffledSequence, type IndexSequence, type PlanShape } from "./order.js";
import type { BatchResult, BatchTask, WorkerInit } from "./worker.js";

/** A sampler, a fixed list of indices, or a factory of either (called again at every `refresh()`). */
export type SamplerInput = Sampler | readonly number[] | (() => Sampler | readonly number[]);

/** How `weightedSampler` draws: by dataset weights or class-balanced. */
export type WeightedMode = "weights" | "classBalanced";

/** Options of {@link CellMapDataLoader}. */
export interface CellMapDataLoaderOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Worker threads (default 0: batches are read on the calling thread). */
  numWorkers?: number;
  /** Batches in flight per worker (default 2). */
  prefetchFactor?: number;
  /**
   * Weighted sampling: `true` / `"weights"` draws datasets ∝ their class-weighted foreground
   * (multi-datasets; a single dataset has nothing to weigh and is shuffled), `"classBalanced"`
   * draws the least-seen class first (`ClassBalancedSampler`). Datasets above 2^24 samples need
   * `iterationsPerEpoch`.
   */
  weightedSampler?: boolean | WeightedMode;
  /** Explicit sampler (wins over every other sampling option; never shuffled again). */
  sampler?: SamplerInput;
  /** Shuffle when no sampler applies (default true); false reads in index order. */
  isTrain?: boolean;
  /** Seed of the sample order (default: the dataset's `seed`, else 0). */
  seed?: number;
  /**
   * Batches per epoch *per rank*: each epoch draws a fresh random subset of
   * `iterationsPerEpoch · batchSize · worldSize` samples (weighted if `weightedSampler`).
   */
  iterationsPerEpoch?: number;
  /** Drop the last short batch (and, with ranks, the `n mod worldSize` tail). Default false. */
  dropLast?: boolean;
  /** This process's rank in `[0, worldSize)` (default 0). */
  rank?: number;
  /** Number of training processes sharing each epoch (default 1). */
  worldSize?: number;
  /**
   * Budget in bytes of the loader's decoded-chunk cache: one cache in shared memory, used by
   * every worker thread (and by this thread with `numWorkers = 0`), so each chunk is decoded
   * once per process whatever the worker count. Default `CELLMAP_CHUNK_CACHE_BYTES`, else 1 GiB;
   * 0 keeps no chunk between reads. At most about 4 GiB (one WebAssembly memory holds the cache
   * and the batch buffers; a larger budget is cut with a warning).
   */
  chunkCacheBytes?: number;
  /** Memory the loader may plan for (default half of the machine's RAM); see {@link CellMapDataLoader.prefetchDepth}. */
  memoryBudgetBytes?: number;
  /**
   * Samples each thread reads at once within a batch (default: the batch size, at most 16). Reads
   * of one batch then overlap, so samples that share chunks share their decodes (with a chunk
   * budget of 0 too). Samples are read into the batch buffer directly: more costs no memory.
   */
  sampleConcurrency?: number;
  /** Resume from {@link CellMapDataLoader.state} output. */
  state?: LoaderState;
  /** Start the worker threads at construction (default true) rather than at the first iteration. */
  startWorkers?: boolean;
  /**
   * Aborting stops the loader: the iteration in progress rejects with `ABORTED`, reads in flight
   * are cancelled and the worker threads end (as with `close()`).
   */
  signal?: AbortSignal;
}

/** Where a loader is in its sequence of batches (small JSON). */
export interface LoaderState {
  version: 1;
  seed: number;
  /** Current epoch. */
  epoch: number;
  /** Batches of `epoch` already handed out. */
  position: number;
  /** Consistency checks: a resumed loader must agree on these. */
  batchSize: number;
  worldSize: number;
  samplesPerEpoch: number;
}

/** How each epoch's sequence is made. */
type Mode =
  | { kind: "user" }
  | { kind: "subset"; weighted: boolean }
  | { kind: "weighted" }
  | { kind: "classBalanced" }
  | { kind: "shuffle" }
  | { kind: "sequential" };

const WEIGHTED_LIMIT = 2 ** 24;

function bad(message: string, path: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", message, path);
}

function intOption(v: number | undefined, def: number, min: number, name: string): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < min) throw bad(`${name} must be an integer >= ${min}, got ${v}`, name);
  return v;
}

/** The worker module next to this file: `worker.ts` when running from source (tsx), `worker.js` when built. */
function workerFile(): string {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./worker${ext}`, import.meta.url).href;
}

/** Node versions whose `--import tsx` also registers tsx in worker threads (tsx 4.2x's own table). */
function tsxRegistersInWorkers(): boolean {
  const [major, minor, patch] = process.versions.node.split(".").map(Number);
  const atLeast = (m: number, p: number) => minor > m || (minor === m && patch >= p);
  if (major === 22) return atLeast(22, 3);
  if (major === 24) return atLeast(11, 1);
  if (major === 25) return atLeast(1, 0);
  return major >= 26;
}

/** Keeps the module-loading options of an `execArgv` (the ones a worker needs and accepts). */
function loaderArgs(argv: readonly string[]): string[] {
  const withValue = new Set(["--import", "--require", "-r", "--loader", "--experimental-loader", "--conditions", "-C"]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.split("=")[0];
    if (withValue.has(name)) {
      out.push(a);
      if (!a.includes("=") && i + 1 < argv.length) out.push(argv[++i]);
    } else if (a === "--enable-source-maps" || a === "--no-warnings" || a.startsWith("--experimental-")) out.push(a);
  }
  return out;
}

/**
 * Worker `execArgv`: undefined (Node then inherits the parent's, skipping per-process flags such
 * as `--trace-gc`) unless running from source under tsx on a Node version where tsx only hooks
 * the main thread; then a preload registers tsx's loader in each worker so it can import `.ts`.
 */
function tsxPreload(file: string): string | null {
  if (!file.endsWith(".ts") || tsxRegistersInWorkers()) return null;
  try {
    const api = import.meta.resolve("tsx/esm/api");
    return `data:text/javascript,import{register}from${JSON.stringify(api)};register();`;
  } catch {
    return null; // not tsx: whatever runs TypeScript here must also handle workers
  }
}

interface DatasetExtras {
  seed?: number;
  weightedSampler?: (o: { numSamples?: number; seed?: number }) => Promise<Sampler>;
  classBalancedSampler?: (o: { samplesPerEpoch?: number; seed?: number }) => Sampler;
  cropClassRow?: () => boolean[];
}

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
  /** The shared memory of the chunk cache and the batch buffers. */
  private plane: DataPlane;
  /** Where reads on this thread (numWorkers = 0, `get`) find chunks. */
  private store: ChunkStore;
  private batchPool: BatchPool;
  /** How the data plane was made (a new one replaces it after worker threads were terminated). */
  private readonly planeOptions: Parameters<typeof DataPlane.create>[0];
  /** Memory budget the prefetch queue was sized for. */
  readonly memoryBudgetBytes: number;
  /** Warning issued at construction about the memory budget, or null. */
  readonly memoryWarning: string | null;

  private readonly mode: Mode;
  private readonly samplerInput: SamplerInput | undefined;
  private userSampler: Sampler | readonly number[] | null = null;
  private builtSampler: Promise<Sampler> | null = null;
  private samplesValue: number;
  private epochValue = 0;
  private positionValue = 0;
  private planCache: { epoch: number; plan: Promise<EpochPlan> } | null = null;
  private description: DatasetDescription | null = null;
  private pool: Piscina | null = null;
  /** Whether a worker of the current pool has opened the dataset (until then this thread reads). */
  private poolReady = false;
  /** Batches this thread is building while the pool starts. */
  private localBuilds = 0;
  private poolError: unknown = null;
  /** Recycled batch buffers by key (see {@link recycle}). */
  private readonly spare = new Map<string, ArrayBuffer[]>();
  private active: BatchIterator | null = null;
  /** The caller's signal (`signal` option): once aborted, iteration and `get` reject. */
  readonly signal: AbortSignal | undefined;
  /** Main-thread reads (numWorkers = 0): one FIFO bound across the batches in flight. */
  /** FIFO bound on sample reads shared by the batches in flight (earlier batches finish first). */
  private slots: Limiter;

  constructor(source: DatasetLike<S>, opts: CellMapDataLoaderOptions = {}) {
    // Batches are built from untyped samples; `S` only types what the loader hands out.
    const dataset = source as DatasetLike<SampleBase> as DatasetLike;
    if (typeof dataset?.get !== "function" || !Number.isSafeInteger(dataset.length)) {
      throw bad("dataset must be a dataset-like object (get(i), length)", "dataset");
    }
    opts = parseOptions(loaderOptionsSchema, opts, "CellMapDataLoader");
    this.dataset = dataset;
    this.batchSize = intOption(opts.batchSize, LOADER_DEFAULTS.batchSize, 1, "batchSize");
    this.numWorkers = intOption(opts.numWorkers, LOADER_DEFAULTS.numWorkers, 0, "numWorkers");
    this.prefetchFactor = intOption(opts.prefetchFactor, LOADER_DEFAULTS.prefetchFactor, 1, "prefetchFactor");
    this.worldSize = intOption(opts.worldSize, LOADER_DEFAULTS.worldSize, 1, "worldSize");
    this.rank = intOption(opts.rank, LOADER_DEFAULTS.rank, 0, "rank");
    if (this.rank >= this.worldSize) throw bad(`rank must be in [0, worldSize = ${this.worldSize}), got ${this.rank}`, "rank");
    this.sampleConcurrency = intOption(opts.sampleConcurrency, Math.min(this.batchSize, LOADER_DEFAULTS.maxSampleConcurrency), 1, "sampleConcurrency");
    this.slots = new Limiter(this.sampleConcurrency);
    this.isTrain = opts.isTrain ?? LOADER_DEFAULTS.isTrain;
    this.signal = opts.signal;
    opts.signal?.addEventListener("abort", () => {
      this.active?.stop();
      void this.close();
    }, { once: true });
    this.dropLast = opts.dropLast ?? LOADER_DEFAULTS.dropLast;
    const dsSeed = (dataset as DatasetExtras).seed;
    this.seed = intOption(opts.seed ?? opts.state?.seed, Number.isSafeInteger(dsSeed) && dsSeed! >= 0 ? dsSeed! : 0, 0, "seed");
    this.iterationsPerEpoch = opts.iterationsPerEpoch === undefined ? null : intOption(opts.iterationsPerEpoch, 0, 1, "iterationsPerEpoch");
    const w = opts.weightedSampler;
    if (w !== undefined && typeof w !== "boolean" && w !== "weights" && w !== "classBalanced") {
      throw bad(`weightedSampler must be a boolean, "weights" or "classBalanced", got ${JSON.stringify(w)}`, "weightedSampler");
    }
    this.weightedSampler = w === true ? "weights" : w ? w : null;

    // Sampling mode and samples per epoch (known synchronously, so `length` is too).
    this.samplerInput = opts.sampler;
    if (opts.sampler !== undefined) {
      this.mode = { kind: "user" };
      this.userSampler = this.makeUserSampler();
      this.samplesValue = this.userSampler.length;
    } else if (this.iterationsPerEpoch !== null) {
      this.samplesValue = this.iterationsPerEpoch * this.batchSize * this.worldSize;
      this.mode = this.weightedSampler === "classBalanced" ? { kind: "classBalanced" } : { kind: "subset", weighted: this.weightedSampler === "weights" };
    } else {
      this.samplesValue = dataset.length;
      if (this.weightedSampler && dataset.length > WEIGHTED_LIMIT) {
        throw bad(`iterationsPerEpoch must be given for weighted sampling of a large dataset (${dataset.length} samples > 2^24)`, "iterationsPerEpoch");
      }
      const ex = dataset as DatasetLike & DatasetExtras;
      if (this.weightedSampler === "classBalanced") this.mode = { kind: "classBalanced" };
      else if (this.weightedSampler === "weights" && typeof ex.weightedSampler === "function") this.mode = { kind: "weighted" };
      else this.mode = this.isTrain ? { kind: "shuffle" } : { kind: "sequential" };
    }
    if (this.mode.kind === "classBalanced") {
      const ex = dataset as DatasetLike & DatasetExtras;
      if (typeof ex.classBalancedSampler !== "function" && typeof ex.cropClassRow !== "function") {
        throw new CellMapError("UNSUPPORTED", `${dataset.kind} cannot tell which classes its crops annotate, so it cannot be class-balanced`, "weightedSampler");
      }
    }

    // Memory: caches + prefetch queue must fit the budget.
    if (opts.chunkCacheBytes !== undefined && !(Number.isFinite(opts.chunkCacheBytes) && opts.chunkCacheBytes >= 0)) {
      throw bad(`chunkCacheBytes must be a non-negative number, got ${opts.chunkCacheBytes}`, "chunkCacheBytes");
    }
    const requestedCache = Math.floor(opts.chunkCacheBytes ?? envChunkCacheBytes());
    if (opts.memoryBudgetBytes !== undefined && !(opts.memoryBudgetBytes > 0)) throw bad(`memoryBudgetBytes must be > 0, got ${opts.memoryBudgetBytes}`, "memoryBudgetBytes");
    this.memoryBudgetBytes = opts.memoryBudgetBytes ?? Math.floor(os.totalmem() / 2);
    const sampleBytes = batchMemoryBytes(dataset.inputArrays, dataset.targetArrays, dataset.classes.length, 1);
    const fit = fitPrefetch({
      requested: this.prefetchFactor * Math.max(1, this.numWorkers),
      batchBytes: this.batchMemoryBytes(),
      sampleBytes,
      readers: Math.max(1, this.numWorkers) * this.sampleConcurrency,
      cacheBytes: requestedCache,
      budgetBytes: this.memoryBudgetBytes,
    });
    this.prefetchDepth = fit.depth;

    // The data plane: the shared chunk cache plus a pool of batch buffers (the batches in
    // flight, those the consumer holds, and slack for batches awaiting garbage collection).
    const layout = batchLayout(dataset, this.batchSize);
    this.planeOptions = { cacheBytes: requestedCache, batchBytes: layout.bytes, batchSlots: 2 * this.prefetchDepth + 2, threads: this.numWorkers + 1 };
    this.plane = DataPlane.create(this.planeOptions);
    this.chunkCacheBytes = this.plane.cache?.capacityBytes ?? 0;
    this.store = this.plane.store;
    this.batchPool = new BatchPool(this.plane, layout);
    this.memoryWarning = [fit.warning, this.plane.warning].filter(Boolean).join("; ") || null;
    if (this.memoryWarning) process.emitWarning(this.memoryWarning, { code: "CELLMAP_LOADER_MEMORY" });

    // Workers re-open the dataset from its description: fail now, not in a thread, if it has none.
    if (this.numWorkers > 0) this.description = dataset.describe();
    if (opts.state !== undefined) this.setState(opts.state);
    // Start the threads now: module loading and opening the dataset (~0.5 s) then overlap
    // whatever the caller does before the first batch. Idle workers never keep the process alive.
    if (this.numWorkers > 0 && (opts.startWorkers ?? true)) this.ensurePool();
  }

  private makeUserSampler(): Sampler | readonly number[] {
    const input = this.samplerInput!;
    const s = typeof input === "function" ? input() : input;
    const len = (s as { length?: unknown })?.length;
    if (typeof s !== "object" || s === null || typeof (s as Iterable<number>)[Symbol.iterator] !== "function" || typeof len !== "number" || !Number.isSafeInteger(len)) {
      throw bad("sampler must be a Sampler, a list of indices, or a function returning one", "sampler");
    }
    return s;
  }

  /** Samples per epoch before the rank split (sampler length, subset size or dataset length). */
  get samplesPerEpoch(): number {
    return this.samplesValue;
  }

  /** Batches per epoch on this rank. */
  get length(): number {
    return batchesPerEpoch(this.samplesValue, this.planShape());
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
    return this.pool?.threads.length ?? 0;
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
    return { version: 1, seed: this.seed, epoch: this.epochValue, position: this.positionValue, batchSize: this.batchSize, worldSize: this.worldSize, samplesPerEpoch: this.samplesValue };
  }

  /** Moves to `state` (same seed, batch size, world size and samples per epoch required). */
  setState(state: LoaderState): void {
    this.checkIdle("setState");
    const s = state as Partial<LoaderState>;
    if (typeof s !== "object" || s === null || s.version !== 1) throw bad("state must be a version-1 loader state (from loader.state())", "state");
    for (const k of ["seed", "epoch", "position", "batchSize", "worldSize", "samplesPerEpoch"] as const) {
      if (!Number.isSafeInteger(s[k]) || s[k]! < 0) throw bad(`state.${k} must be a non-negative integer, got ${JSON.stringify(s[k])}`, `state.${k}`);
    }
    const mine = this.state();
    for (const k of ["seed", "batchSize", "worldSize", "samplesPerEpoch"] as const) {
      if (s[k] !== mine[k]) throw bad(`state.${k} is ${s[k]} but this loader has ${mine[k]}; resume with the same options`, `state.${k}`);
    }
    if (s.position! > this.length) throw bad(`state.position ${s.position} is beyond the ${this.length} batches of an epoch`, "state.position");
    this.epochValue = s.epoch!;
    this.positionValue = s.position!;
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
    if (this.mode.kind === "user" && typeof this.samplerInput === "function") {
      this.userSampler = this.makeUserSampler();
      this.samplesValue = this.userSampler.length;
    }
    this.planCache = null;
    this.epochValue++;
    this.positionValue = 0;
  }

  private checkIdle(what: string): void {
    if (this.active) throw bad(`cannot call ${what}() while an iteration is running; finish or break out of it first`, what);
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
      const p = this.sequence(epoch).then((seq) => {
        if (seq.length !== this.samplesValue) {
          throw bad(`the sampler gave ${seq.length} indices for epoch ${epoch}, expected ${this.samplesValue}`, "sampler");
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
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw bad(`epoch must be a non-negative integer, got ${epoch}`, "epoch");
    if (!Number.isInteger(worldSize) || worldSize < 1) throw bad(`worldSize must be a positive integer, got ${worldSize}`, "worldSize");
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw bad(`rank must be an integer in [0, ${worldSize}), got ${rank}`, "rank");
    if (rank === this.rank && worldSize === this.worldSize) return this.plan(epoch);
    const seq = (await this.plan(epoch)).sequence;
    return new EpochPlan(epoch, seq, { ...this.planShape(), rank, worldSize });
  }

  private async sequence(epoch: number): Promise<IndexSequence> {
    switch (this.mode.kind) {
      case "sequential":
        return identitySequence(this.dataset.length);
      case "shuffle":
        return shuffledSequence(this.dataset.length, this.seed, epoch);
      case "user": {
        const s = this.userSampler!;
        if (Array.isArray(s)) return arraySequence([...s]);
        const smp = s as Sampler;
        if (typeof smp.epochIndices === "function") return arraySequence(smp.epochIndices(epoch));
        if (typeof smp.setEpoch === "function") smp.setEpoch(epoch);
        return arraySequence([...smp]);
      }
      default:
        return arraySequence((await this.sampler()).epochIndices(epoch));
    }
  }

  /** The built-in sampler of the subset / weighted / class-balanced modes (made once). */
  private sampler(): Promise<Sampler> {
    if (!this.builtSampler) {
      const ds = this.dataset as DatasetLike & DatasetExtras;
      const n = this.samplesValue;
      const seed = this.seed;
      const m = this.mode;
      const p = (async (): Promise<Sampler> => {
        if (m.kind === "subset") return ds.subsetRandomSampler(n, { seed, weighted: m.weighted });
        if (m.kind === "weighted") return ds.weightedSampler!({ numSamples: n, seed });
        if (typeof ds.classBalancedSampler === "function") return ds.classBalancedSampler({ samplesPerEpoch: n, seed });
        return new ClassBalancedSampler({ matrix: [ds.cropClassRow!()], sizes: [ds.length], samplesPerEpoch: n, seed, classes: ds.classes });
      })();
      p.catch(() => (this.builtSampler = null));
      this.builtSampler = p;
    }
    return this.builtSampler;
  }

  /** Reads the samples `indices` as one batch (current epoch's random draws), on this thread. */
  get(indices: number | readonly number[], opts: { signal?: AbortSignal } = {}): Promise<Batch<S>> {
    const list = typeof indices === "number" ? [indices] : [...indices];
    const signals = [opts.signal, this.signal].filter((x): x is AbortSignal => !!x);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    return buildBatch(this.dataset, list, this.epochValue, { concurrency: this.sampleConcurrency, signal, store: this.store }) as Promise<Batch<SampleBase>> as Promise<Batch<S>>;
  }

  /** Iterates the rest of the current epoch (from `position`). One iteration at a time. */
  [Symbol.asyncIterator](): AsyncIterator<Batch<S>> & AsyncIterable<Batch<S>> {
    this.checkIdle("[Symbol.asyncIterator]");
    this.normalise();
    const it = new BatchIterator(this, this.epochValue, this.positionValue);
    this.active = it;
    return it as BatchIterator as unknown as AsyncIterator<Batch<S>> & AsyncIterable<Batch<S>>;
  }

  /** Ends the worker threads (and any running iteration). Safe to call more than once. */
  async close(): Promise<void> {
    const it = this.active;
    if (it) it.stop();
    const pool = this.pool;
    this.pool = null;
    if (pool) {
      await pool.destroy();
      this.replacePlane();
    }
  }

  /**
   * After worker threads were terminated (close, break, a dead worker), the shared plane may hold
   * what they left mid-way: a chunk claimed but never published, pins never released, the index
   * lock held. The next pool gets a new plane (a fresh cache and batch pool); batches already
   * handed out keep the old memory alive and stay valid.
   */
  private replacePlane(): void {
    this.retiredStats = addStats(this.retiredStats, this.currentStats(), false);
    this.plane = DataPlane.create(this.planeOptions);
    this.store = this.plane.store;
    this.batchPool = new BatchPool(this.plane, this.batchPool.layout);
    this.workerCache.clear();
  }

  /** @internal Called by the iterator when it is done. */
  detach(it: BatchIterator): void {
    if (this.active === it) this.active = null;
  }

  /** @internal Records that batch `b` of `epoch` was handed out. */
  handedOut(epoch: number, b: number): void {
    if (epoch !== this.epochValue) return;
    this.positionValue = b + 1;
    this.normalise();
  }

  /**
   * Hands a batch you are done with back to the loader. Batches live in the loader's pool of
   * shared batch buffers; a recycled batch's buffer is filled again by a later batch at once
   * (the batch's tensors are emptied to length 0, so `batch.raw.data` can no longer be read by
   * mistake; a view you took of it yourself would see the later batch). Optional: a batch you
   * keep is never overwritten, and its buffer returns to the pool when its tensors are garbage
   * collected; while the pool is empty, batches get new buffers.
   */
  recycle(typed: Batch<S>): void {
    const batch = typed as Batch<SampleBase> as Batch;
    if (this.batchPool.recycle(batch)) return;
    const cap = this.prefetchDepth + 1;
    for (const key of tensorKeys(batch)) {
      const t = batch[key] as Tensor;
      const buf = t.data.buffer;
      if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0 || t.data.byteOffset !== 0 || t.data.byteLength !== buf.byteLength) continue;
      let list = this.spare.get(key);
      if (!list) this.spare.set(key, (list = []));
      // Transferring to ourselves detaches the caller's view without copying the memory.
      const moved = structuredClone(buf, { transfer: [buf] });
      if (list.length < cap) list.push(moved);
    }
  }

  private takeSpare(): Record<string, ArrayBuffer> | undefined {
    if (this.spare.size === 0) return undefined;
    const out: Record<string, ArrayBuffer> = {};
    let any = false;
    for (const [key, list] of this.spare) {
      const b = list.pop();
      if (b) (out[key] = b), (any = true);
    }
    return any ? out : undefined;
  }

  private readonly workerCache = new Map<number, CacheStats>();
  /** Counters of the planes replaced so far (their caches are gone; their work still counts). */
  private retiredStats: CacheStats | null = null;

  /**
   * Decoded-chunk cache counters: the shared cache's (every thread together), or with a budget
   * of 0 the sum over the threads that read.
   */
  cacheStats(): CacheStats {
    const now = this.currentStats();
    return this.retiredStats ? addStats(now, this.retiredStats, false) : now;
  }

  /** Counters of the current plane only. */
  private currentStats(): CacheStats {
    let now: CacheStats;
    if (this.plane.cache || this.numWorkers === 0) now = this.store.getStats();
    else {
      now = { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: 0, capacityBytes: 0, inflight: 0 };
      for (const s of this.workerCache.values()) now = addStats(now, s, true);
    }
    return now;
  }

  /** @internal Starts reading batch `indices` of `epoch`. */
  submit(indices: number[], epoch: number, signal: AbortSignal): Promise<Batch> {
    // The pool (and plane) of this batch, even if the loader replaces them meanwhile.
    const batchPool = this.batchPool;
    const store = this.store;
    const slot = batchPool.take();
    const reuse = slot < 0 ? this.takeSpare() : undefined;
    const built = (batch: Batch): Batch => {
      if (slot >= 0) {
        if (filledTarget(batch, batchPool.target(slot))) batchPool.handOut(batch, slot);
        else batchPool.release(slot);
      }
      return batch;
    };
    const failed = (err: unknown): never => {
      if (slot >= 0) batchPool.release(slot);
      throw err;
    };
    // While the workers start (module loading, re-opening the dataset: a few hundred ms), this
    // idle thread builds a batch itself, so the first batch does not wait for the pool. Batches
    // are identical wherever they are built.
    const local = this.numWorkers === 0 || (!this.poolReady && this.localBuilds === 0);
    if (local) {
      const target = slot >= 0 ? batchPool.target(slot) : undefined;
      if (this.numWorkers > 0) this.localBuilds++;
      const done = () => {
        if (this.numWorkers > 0) this.localBuilds--;
      };
      return buildBatch(this.dataset, indices, epoch, { concurrency: this.sampleConcurrency, slots: this.slots, reuse, target, store, signal }).then(
        (b) => (done(), built(b)),
        (e) => (done(), failed(e)),
      );
    }
    const pool = this.ensurePool();
    const task: BatchTask = { indices, epoch, reuse, slot };
    // No abort signal for pool tasks: piscina would kill the thread running an aborted task; a
    // stopped iteration destroys the whole pool instead, which rejects what is still pending.
    return pool.run(task, { transferList: reuse ? Object.values(reuse) : undefined }).then(
      (r: BatchResult) => {
        if (r.ok && r.cache) this.workerCache.set(r.cache.thread, r.cache.stats);
        if (!r.ok) return failed(deserializeError(r.error));
        if (r.batch) return built(r.batch);
        // Read in place: the tensors are views of the slot.
        const target = batchPool.target(slot);
        const batch: Batch = { idx: r.idx, metadata: r.metadata };
        for (const k of batchPool.layout.keys) {
          batch[k.name] = {
            data: target.views[k.name].subarray(0, r.idx.length * k.sampleSize), shape: [r.idx.length, ...k.sampleShape], sourceDtype: r.sourceDtypes[k.name],
            ...(k.dtype !== "float32" && { dtype: k.dtype }),
          };
        }
        batchPool.handOut(batch, slot);
        return batch;
      },
      (err: unknown) => {
        if (signal.aborted) return failed(new CellMapError("ABORTED", "batch aborted", undefined, { cause: err }));
        return failed(new SampleError(indices[0], epoch, this.poolError ?? err, "a worker thread died reading the batch starting at"));
      },
    );
  }

  private ensurePool(): Piscina {
    if (!this.pool) {
      const file = workerFile();
      const init: WorkerInit = {
        description: this.description!,
        plane: this.plane.init(),
        layout: this.batchPool.layout,
        sampleConcurrency: this.sampleConcurrency,
      };
      const preload = tsxPreload(file);
      const make = (execArgv: string[] | undefined) =>
        new Piscina({
          filename: file,
          minThreads: this.numWorkers,
          maxThreads: this.numWorkers,
          idleTimeout: Infinity,
          // Two batches per worker at once: the next one is already in the thread when one
          // finishes (no idle round trip), and more reads in flight share more decodes
          // (measured: +50% with the cache off, +5% warm).
          concurrentTasksPerWorker: 2,
          // Keep the workers' event loops running between tasks (the dataset opens in the background).
          atomics: "disabled",
          execArgv,
          workerData: init,
        });
      if (!preload) this.pool = make(undefined);
      else {
        try {
          this.pool = make([...process.execArgv, "--import", preload]);
        } catch (err) {
          // Explicit execArgv is validated: drop per-process flags, keep the module loaders.
          if ((err as { code?: string }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw err;
          this.pool = make([...loaderArgs(process.execArgv), "--import", preload]);
        }
      }
      // A worker that dies outside a task (e.g. its module fails to load) must not crash the
      // process, nor leave queued tasks waiting for replacements piscina will not start:
      // remember why and end the pool, which rejects every pending task.
      const pool = this.pool;
      pool.on("error", (err: unknown) => {
        this.poolError = err;
        if (this.pool === pool) this.pool = null;
        void pool.destroy().then(() => this.replacePlane());
      });
      this.poolError = null;
      this.poolReady = false;
      const ping: BatchTask = { indices: [], epoch: 0, slot: -1, ping: true };
      for (let w = 0; w < this.numWorkers; w++) {
        pool.run(ping).then(
          () => {
            if (this.pool === pool) this.poolReady = true;
          },
          () => {},
        );
      }
    }
    return this.pool;
  }

  toString(): string {
    return `CellMapDataLoader(dataset=${this.dataset.kind}(${this.dataset.length}), batchSize=${this.batchSize}, numWorkers=${this.numWorkers}, isTrain=${this.isTrain}, length=${this.length})`;
  }
}

/**
 * `a + b` for the counters (hits, misses, evictions, waits, bypassed); the gauges (bytes,
 * entries, capacity, inflight) are summed only when `gauges` (threads of one moment), else a's.
 */
function addStats(a: CacheStats | null, b: CacheStats, gauges: boolean): CacheStats {
  if (!a) return { ...b, ...(gauges ? {} : { bytes: 0, entries: 0, inflight: 0 }) };
  const out: CacheStats = { ...a };
  for (const k of ["hits", "misses", "evictions", "waits", "bypassed"] as const) {
    if (a[k] !== undefined || b[k] !== undefined) out[k] = (a[k] ?? 0) + (b[k] ?? 0);
  }
  if (gauges) for (const k of ["bytes", "entries", "capacityBytes", "inflight"] as const) out[k] = a[k] + b[k];
  return out;
}

/** One pass over the rest of an epoch, with a bounded queue of batches in flight. */
class BatchIterator implements AsyncIterator<Batch>, AsyncIterable<Batch> {
  private readonly abort = new AbortController();
  private readonly queue: { b: number; promise: Promise<Batch> }[] = [];
  private plan: EpochPlan | null = null;
  private nextBatch: number;
  private done = false;

  constructor(
    private readonly loader: CellMapDataLoader<SampleBase>,
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
