/**
 * Batch reading of `CellMapDataLoader`: the data plane (shared chunk cache + batch buffers), the
 * piscina worker pool that reads into it, and the main-thread builder used with `numWorkers = 0`
 * and while the workers start.
 *
 * Owns everything that has to agree about one plane: which batch buffer a batch goes to, the
 * worker start-up data (`WorkerInit`), replacing the plane after worker threads were
 * terminated, recycled buffers, and the cache counters summed over threads and retired planes.
 * Kept apart from the loader, which decides *which* batches to read (order, epochs, resume);
 * this module only knows how to read a list of indices as one batch, wherever that happens.
 */
import { Piscina } from "piscina";
import { CellMapError } from "../errors.js";
import type { DatasetDescription, DatasetLike } from "../dataset/types.js";
import { DataPlane, type DataPlaneOptions } from "../plane/plane.js";
import { Limiter } from "../util/limit.js";
import type { Tensor } from "../tensor.js";
import type { CacheStats } from "../zarr/cache.js";
import type { ChunkStore } from "../zarr/chunk-store.js";
import { BatchPool } from "./batch-pool.js";
import { Reclaimer } from "./reclaim.js";
import { buildBatch, deserializeError, filledTarget, SampleError, tensorKeys, type Batch, type BatchLayout } from "./collate.js";
import type { BatchResult, BatchTask, WorkerInit } from "./worker.js";

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

/** What a {@link BatchReader} reads with. */
export interface BatchReaderOptions {
  dataset: DatasetLike;
  numWorkers: number;
  sampleConcurrency: number;
  /** Recycled non-plane buffers kept per key (the loader's `prefetchDepth + 1`). */
  spareCap: number;
  /** How each data plane is made (a new one replaces it after worker threads were terminated). */
  plane: DataPlaneOptions;
  /** Where each key sits in a batch buffer. */
  layout: BatchLayout;
}

/** Reads batches into the loader's data plane, on worker threads or on this thread. */
export class BatchReader {
  /** The shared memory of the chunk cache and the batch buffers. */
  private planeValue: DataPlane;
  /** Where reads on this thread (numWorkers = 0, `get`) find chunks. */
  private storeValue: ChunkStore;
  private batchPool: BatchPool;
  /** Finds dropped batches for every plane's pool (its judgement carries over). */
  private readonly reclaimer: Reclaimer;
  private readonly dataset: DatasetLike;
  private readonly numWorkers: number;
  private readonly sampleConcurrency: number;
  private readonly spareCap: number;
  private readonly planeOptions: DataPlaneOptions;
  /** The dataset's description, which workers re-open (set by the loader when it has workers). */
  private description: DatasetDescription | null = null;
  private pool: Piscina | null = null;
  /** Whether a worker of the current pool has opened the dataset (until then this thread reads). */
  private poolReady = false;
  /** Batches this thread is building while the pool starts. */
  private localBuilds = 0;
  private poolError: unknown = null;
  /** Recycled batch buffers by key (see {@link recycle}). */
  private readonly spare = new Map<string, ArrayBuffer[]>();
  /** FIFO bound on sample reads shared by the batches in flight (earlier batches finish first). */
  private readonly slots: Limiter;
  /** Latest cache counters of each worker thread (cache budget 0: no shared counters). */
  private readonly workerCache = new Map<number, CacheStats>();
  /** Counters of the planes replaced so far (their caches are gone; their work still counts). */
  private retiredStats: CacheStats | null = null;

  constructor(o: BatchReaderOptions) {
    this.dataset = o.dataset;
    this.numWorkers = o.numWorkers;
    this.sampleConcurrency = o.sampleConcurrency;
    this.spareCap = o.spareCap;
    this.planeOptions = o.plane;
    this.slots = new Limiter(o.sampleConcurrency);
    this.planeValue = DataPlane.create(this.planeOptions);
    this.storeValue = this.planeValue.store;
    this.reclaimer = new Reclaimer();
    this.batchPool = new BatchPool(this.planeValue, o.layout, this.reclaimer);
  }

  /** The current data plane. */
  get plane(): DataPlane {
    return this.planeValue;
  }

  /** The chunk store of reads on this thread. */
  get store(): ChunkStore {
    return this.storeValue;
  }

  /** Live worker threads (0 when no pool is running). */
  get threads(): number {
    return this.pool?.threads.length ?? 0;
  }

  /** Gives the description workers re-open the dataset from (needed before the pool starts). */
  setDescription(d: DatasetDescription): void {
    this.description = d;
  }

  /** Starts reading `indices` as one batch of `epoch`; `signal` cancels the reads on this thread. */
  submit(indices: number[], epoch: number, signal: AbortSignal): Promise<Batch> {
    // The pool (and plane) of this batch, even if the loader replaces them meanwhile.
    const batchPool = this.batchPool;
    const store = this.storeValue;
    const slot = batchPool.take();
    if (slot >= 0) return this.read(batchPool, store, slot, indices, epoch, signal);
    // Every buffer is out: look for batches the consumer dropped (or build in fresh memory).
    return batchPool.reclaim().then((s) => this.read(batchPool, store, s, indices, epoch, signal));
  }

  /** Reads the batch into `slot` of `batchPool` (-1: fresh memory). */
  private read(batchPool: BatchPool, store: ChunkStore, slot: number, indices: number[], epoch: number, signal: AbortSignal): Promise<Batch> {
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
    const pool = this.start();
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
            data: target.views[k.name].subarray(0, r.idx.length * k.sampleSize),
            shape: [r.idx.length, ...k.sampleShape],
            sourceDtype: r.sourceDtypes[k.name],
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

  /** Hands a batch back: its plane buffer (or, outside the plane, its own buffers) is reused. */
  recycle(batch: Batch): void {
    if (this.batchPool.recycle(batch)) return;
    for (const key of tensorKeys(batch)) {
      const t = batch[key] as Tensor;
      const buf = t.data.buffer;
      if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0 || t.data.byteOffset !== 0 || t.data.byteLength !== buf.byteLength) continue;
      let list = this.spare.get(key);
      if (!list) this.spare.set(key, (list = []));
      // Transferring to ourselves detaches the caller's view without copying the memory.
      const moved = structuredClone(buf, { transfer: [buf] });
      if (list.length < this.spareCap) list.push(moved);
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

  /** Ends the worker threads, if any; the next pool gets a new plane. */
  async close(): Promise<void> {
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
    this.planeValue = DataPlane.create(this.planeOptions);
    this.storeValue = this.planeValue.store;
    this.batchPool = new BatchPool(this.planeValue, this.batchPool.layout, this.reclaimer);
    this.workerCache.clear();
  }

  /** Decoded-chunk cache counters, over the current plane and the replaced ones. */
  cacheStats(): CacheStats {
    const now = this.currentStats();
    return this.retiredStats ? addStats(now, this.retiredStats, false) : now;
  }

  /** Counters of the current plane only. */
  private currentStats(): CacheStats {
    let now: CacheStats;
    if (this.planeValue.cache || this.numWorkers === 0) now = this.storeValue.getStats();
    else {
      now = { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: 0, capacityBytes: 0, inflight: 0 };
      for (const s of this.workerCache.values()) now = addStats(now, s, true);
    }
    return now;
  }

  /** The worker pool, started if it is not running (the threads open the dataset at once). */
  start(): Piscina {
    if (!this.pool) {
      const file = workerFile();
      const init: WorkerInit = {
        description: this.description!,
        plane: this.planeValue.init(),
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
}
