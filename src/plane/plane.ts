/**
 * The data plane: one shared `WasmMemory` per loader holding the decoded-chunk cache
 * and the pool of batch buffers, mapped by every worker thread. A worker gathers each sample
 * from cached chunks straight into its slot of a batch buffer (one copy per voxel, SIMD), and
 * the consumer gets views of the same memory (no copy, no transfer).
 *
 * Memory is reserved up front and committed by the OS only where it is written, so an unused
 * budget costs address space, not RSS. A wasm32 memory holds at most 4 GiB: the cache budget is
 * cut to fit (see {@link DataPlane.create}'s `warning`).
 */
import { CellMapError } from "../errors.js";
import { mapRegionToFile, type SharedRegionFile } from "./shared-file.js";
import { enableWasmGather } from "../kernels/gather.js";
import { wasm, type WasmMemory } from "../kernels/wasm.js";
import { ChunkCache } from "../zarr/cache.js";
import { type ChunkStore, LocalChunkStore } from "../zarr/chunk-store.js";
import { chunkCacheLayout, initChunkCache, SharedChunkCache, type ChunkCacheLayout } from "./chunk-cache.js";
import { ScratchArena } from "../kernels/scratch.js";
import { type OutputDtype, TENSOR_ARRAYS, type TensorArrays } from "../tensor.js";

const PAGE = 65536;
/** The largest wasm32 memory (pages of 64 KiB). */
const MAX_PAGES = 65536;
/** Bytes kept free past the last region (SIMD loads read up to 15 bytes past a row). */
const GUARD = PAGE;

/** What a thread needs to map the plane (structured-cloneable: the memory is shared). */
export interface DataPlaneInit {
  memory: WasmMemory;
  cache: ChunkCacheLayout | null;
  batches: BatchRegion;
  scratch: ScratchRegion;
}

/** Per-thread scratch arenas: `threads` of `bytes` each from `base` (thread k claims arena k). */
interface ScratchRegion {
  base: number;
  bytes: number;
  threads: number;
}

/** The batch pool's region: `slots` buffers of `slotBytes` each from `base`. */
export interface BatchRegion {
  base: number;
  slotBytes: number;
  slots: number;
}

/** Options of {@link DataPlane.create}. */
export interface DataPlaneOptions {
  /** Decoded-chunk cache budget in bytes (0: keep no chunk between reads). */
  cacheBytes: number;
  /**
   * With `cacheBytes` 0: bytes of shared memory decodes land in while they are read (transit;
   * nothing stays). Default 64 MiB per thread; 0 decodes into private arrays.
   */
  transitBytes?: number;
  /** Bytes of one batch buffer (0: no batch pool). */
  batchBytes: number;
  /** Batch buffers in the pool. */
  batchSlots: number;
  /** Threads that will map the plane (each gets a scratch arena). Default 1. */
  threads?: number;
  /**
   * Scratch bytes per thread (resampling regions and passes; committed only where used).
   * Default 192 MiB, less with many threads (1 GiB in all, at least 32 MiB each).
   */
  scratchBytes?: number;
}

function layout(cacheBytes: number, batch: { slotBytes: number; slots: number }, scratch: { bytes: number; threads: number }, transitBytes = 0) {
  const base = 64; // bytes 0..63: the plane's own words (word 0: arenas claimed)
  const c = cacheBytes > 0 ? chunkCacheLayout(cacheBytes, base) : transitBytes > 0 ? chunkCacheLayout(transitBytes, base, false) : { layout: null, end: base };
  const batchBase = Math.ceil(c.end / PAGE) * PAGE;
  const scratchBase = batchBase + batch.slotBytes * batch.slots;
  const end = scratchBase + scratch.bytes * scratch.threads + GUARD;
  return {
    cache: c.layout,
    batches: { base: batchBase, slotBytes: batch.slotBytes, slots: batch.slots },
    scratch: { base: scratchBase, bytes: scratch.bytes, threads: scratch.threads },
    pages: Math.ceil(end / PAGE),
  };
}

/** One thread's view of a data plane. */
/** The batch pool mapped to a file (see {@link DataPlane.shareBatches}). */
export interface SharedBatches extends SharedRegionFile {
  /** Byte offset of the pool in the plane's memory (file offset 0). */
  base: number;
  /** The plane's memory: a batch whose data views it lies in the file. */
  buffer: SharedArrayBuffer;
}

export class DataPlane {
  readonly buffer: SharedArrayBuffer;
  /** The shared chunk cache (with a budget of 0: the transit area), or null when there is none. */
  readonly cache: SharedChunkCache | null;
  /** This thread's scratch arena in the plane (null when every arena is taken). */
  readonly scratch: ScratchArena | null;
  /** Where this thread's reads get chunks: the shared cache, or (budget 0) a cache that keeps nothing. */
  readonly store: ChunkStore;

  private constructor(
    readonly memory: WasmMemory,
    private readonly layoutInfo: Omit<DataPlaneInit, "memory">,
    readonly warning: string | null,
  ) {
    this.buffer = memory.buffer as unknown as SharedArrayBuffer;
    this.cache = layoutInfo.cache ? new SharedChunkCache(this.buffer, layoutInfo.cache) : null;
    enableWasmGather(memory);
    const sc = layoutInfo.scratch;
    const k = Atomics.add(new Int32Array(this.buffer, 0, 1), 0, 1);
    this.scratch = k < sc.threads && sc.bytes > 0 ? new ScratchArena(this.buffer, sc.base + k * sc.bytes, sc.bytes) : null;
    const store: ChunkStore = this.cache ?? new LocalChunkStore(new ChunkCache(0));
    store.scratch = this.scratch;
    this.store = store;
  }

  /**
   * Reserves a plane. When cache and batches exceed the 4 GiB a wasm32 memory can address, the
   * cache budget is cut to what fits and `warning` says so.
   */
  static create(opts: DataPlaneOptions): DataPlane {
    const batch = { slotBytes: Math.ceil(opts.batchBytes / 64) * 64, slots: opts.batchBytes > 0 ? opts.batchSlots : 0 };
    const threads = opts.threads ?? 1;
    const perThread = opts.scratchBytes ?? Math.min(192 * 2 ** 20, Math.max(32 * 2 ** 20, 2 ** 30 / threads));
    const scratch = { bytes: Math.ceil(perThread / PAGE) * PAGE, threads };
    let cacheBytes = Math.max(0, Math.floor(opts.cacheBytes));
    const transit = cacheBytes > 0 ? 0 : Math.floor(opts.transitBytes ?? 64 * 2 ** 20 * scratch.threads);
    let l = layout(cacheBytes, batch, scratch, transit);
    let warning: string | null = null;
    if (l.pages > MAX_PAGES) {
      const batchPages = Math.ceil((batch.slotBytes * batch.slots + scratch.bytes * scratch.threads + GUARD) / PAGE) + 1;
      if (batchPages >= MAX_PAGES) {
        throw new CellMapError(
          "INVALID_ARGUMENT",
          `${batch.slots} batch buffers of ${batch.slotBytes} bytes do not fit the 4 GiB of shared memory; lower batchSize or prefetchFactor`,
          "batchSize",
        );
      }
      // Shrink the cache (or, with a budget of 0, the transit area) until it fits; metadata
      // grows with it, so iterate.
      let fit = (MAX_PAGES - batchPages) * PAGE;
      const shrunk = (n: number) => (cacheBytes > 0 ? layout(n, batch, scratch) : layout(0, batch, scratch, n));
      for (l = shrunk(fit); l.pages > MAX_PAGES && fit > 0; l = shrunk(fit)) fit -= 64 * PAGE;
      if (cacheBytes > 0) {
        warning = `chunk cache budget cut from ${(cacheBytes / 2 ** 30).toFixed(2)} GiB to ${(fit / 2 ** 30).toFixed(2)} GiB: the shared data plane is one 4 GiB WebAssembly memory`;
        cacheBytes = fit;
      }
    }
    let memory: WasmMemory;
    try {
      memory = new wasm.Memory({ initial: l.pages, maximum: l.pages, shared: true });
    } catch (err) {
      throw new CellMapError(
        "IO",
        `cannot reserve ${((l.pages * PAGE) / 2 ** 20).toFixed(0)} MiB of shared memory for the chunk cache and batches: ${(err as Error).message}`,
        "chunkCacheBytes",
        { cause: err },
      );
    }
    const buffer = memory.buffer as unknown as SharedArrayBuffer;
    if (l.cache) initChunkCache(buffer, l.cache);
    return new DataPlane(memory, { cache: l.cache, batches: l.batches, scratch: l.scratch }, warning);
  }

  /** Maps a plane another thread created. */
  static attach(init: DataPlaneInit): DataPlane {
    return new DataPlane(init.memory, { cache: init.cache, batches: init.batches, scratch: init.scratch }, null);
  }

  /** What to send another thread so it can {@link attach}. */
  init(): DataPlaneInit {
    return { memory: this.memory, cache: this.layoutInfo.cache, batches: this.layoutInfo.batches, scratch: this.layoutInfo.scratch };
  }

  /** The batch pool's geometry. */
  get batches(): BatchRegion {
    return this.layoutInfo.batches;
  }

  private sharedBatches: SharedBatches | null | undefined;

  /**
   * The batch pool as a file another process on this host can map (`serve`'s shared memory):
   * made on the first call, which must come before any batch is built; null without the native
   * addon. Batches in the pool then sit at `byteOffset - base` of the file.
   */
  shareBatches(): SharedBatches | null {
    if (this.sharedBatches === undefined) {
      const r = this.layoutInfo.batches;
      const file = mapRegionToFile(this.buffer, r.base, r.slotBytes * r.slots);
      this.sharedBatches = file ? { ...file, base: r.base, buffer: this.buffer } : null;
    }
    return this.sharedBatches;
  }

  /** Float32 view of `length` values at byte `offset` of batch buffer `slot`. */
  batchView<D extends OutputDtype = "float32">(slot: number, offset: number, length: number, dtype?: D): TensorArrays[D] {
    const r = this.layoutInfo.batches;
    const Type = TENSOR_ARRAYS[dtype ?? "float32"];
    if (!(slot >= 0 && slot < r.slots) || offset + length * Type.BYTES_PER_ELEMENT > r.slotBytes || offset % Type.BYTES_PER_ELEMENT !== 0) {
      throw new CellMapError("OUT_OF_RANGE", `batch buffer ${slot} has no ${length} values at byte ${offset}`, "batch");
    }
    return new Type(this.buffer as unknown as ArrayBuffer, r.base + slot * r.slotBytes + offset, length) as TensorArrays[D];
  }
}
