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
import { enableWasmGather } from "../kernels/gather.js";
import { wasm, type WasmMemory } from "../kernels/wasm.js";
import { chunkCacheLayout, initChunkCache, SharedChunkCache, type ChunkCacheLayout } from "./chunk-cache.js";

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
}

/** The batch pool's region: `slots` buffers of `slotBytes` each from `base`. */
export interface BatchRegion {
  base: number;
  slotBytes: number;
  slots: number;
}

/** Options of {@link DataPlane.create}. */
export interface DataPlaneOptions {
  /** Decoded-chunk cache budget in bytes (0: no shared cache). */
  cacheBytes: number;
  /** Bytes of one batch buffer (0: no batch pool). */
  batchBytes: number;
  /** Batch buffers in the pool. */
  batchSlots: number;
}

function layout(cacheBytes: number, batch: { slotBytes: number; slots: number }) {
  const base = 64; // word 0 unused: a null offset is never valid
  const c = cacheBytes > 0 ? chunkCacheLayout(cacheBytes, base) : { layout: null, end: base };
  const batchBase = Math.ceil(c.end / PAGE) * PAGE;
  const end = batchBase + batch.slotBytes * batch.slots + GUARD;
  return { cache: c.layout, batches: { base: batchBase, slotBytes: batch.slotBytes, slots: batch.slots }, pages: Math.ceil(end / PAGE) };
}

/** One thread's view of a data plane. */
export class DataPlane {
  readonly buffer: SharedArrayBuffer;
  /** The shared chunk cache, or null when the budget holds no cache page. */
  readonly cache: SharedChunkCache | null;

  private constructor(readonly memory: WasmMemory, private readonly layoutInfo: Omit<DataPlaneInit, "memory">, readonly warning: string | null) {
    this.buffer = memory.buffer as unknown as SharedArrayBuffer;
    this.cache = layoutInfo.cache ? new SharedChunkCache(this.buffer, layoutInfo.cache) : null;
    enableWasmGather(memory);
  }

  /**
   * Reserves a plane. When cache and batches exceed the 4 GiB a wasm32 memory can address, the
   * cache budget is cut to what fits and `warning` says so.
   */
  static create(opts: DataPlaneOptions): DataPlane {
    const batch = { slotBytes: Math.ceil(opts.batchBytes / 64) * 64, slots: opts.batchBytes > 0 ? opts.batchSlots : 0 };
    let cacheBytes = Math.max(0, Math.floor(opts.cacheBytes));
    let l = layout(cacheBytes, batch);
    let warning: string | null = null;
    if (l.pages > MAX_PAGES) {
      const batchPages = Math.ceil((batch.slotBytes * batch.slots + GUARD) / PAGE) + 1;
      if (batchPages >= MAX_PAGES) {
        throw new CellMapError("INVALID_ARGUMENT", `${batch.slots} batch buffers of ${batch.slotBytes} bytes do not fit the 4 GiB of shared memory; lower batchSize or prefetchFactor`, "batchSize");
      }
      // Shrink until it fits (metadata grows with the cache, so iterate).
      let fit = (MAX_PAGES - batchPages) * PAGE;
      for (l = layout(fit, batch); l.pages > MAX_PAGES; l = layout(fit, batch)) fit -= 64 * PAGE;
      warning = `chunk cache budget cut from ${(cacheBytes / 2 ** 30).toFixed(2)} GiB to ${(fit / 2 ** 30).toFixed(2)} GiB: the shared data plane is one 4 GiB WebAssembly memory`;
      cacheBytes = fit;
    }
    let memory: WasmMemory;
    try {
      memory = new wasm.Memory({ initial: l.pages, maximum: l.pages, shared: true });
    } catch (err) {
      throw new CellMapError("IO", `cannot reserve ${(l.pages * PAGE / 2 ** 20).toFixed(0)} MiB of shared memory for the chunk cache and batches: ${(err as Error).message}`, "chunkCacheBytes", { cause: err });
    }
    const buffer = memory.buffer as unknown as SharedArrayBuffer;
    if (l.cache) initChunkCache(buffer, l.cache);
    return new DataPlane(memory, { cache: l.cache, batches: l.batches }, warning);
  }

  /** Maps a plane another thread created. */
  static attach(init: DataPlaneInit): DataPlane {
    return new DataPlane(init.memory, { cache: init.cache, batches: init.batches }, null);
  }

  /** What to send another thread so it can {@link attach}. */
  init(): DataPlaneInit {
    return { memory: this.memory, cache: this.layoutInfo.cache, batches: this.layoutInfo.batches };
  }

  /** The batch pool's geometry. */
  get batches(): BatchRegion {
    return this.layoutInfo.batches;
  }

  /** Float32 view of `length` values at byte `offset` of batch buffer `slot`. */
  batchView(slot: number, offset: number, length: number): Float32Array {
    const r = this.layoutInfo.batches;
    if (!(slot >= 0 && slot < r.slots) || offset + length * 4 > r.slotBytes) {
      throw new CellMapError("OUT_OF_RANGE", `batch buffer ${slot} has no ${length} values at byte ${offset}`, "batch");
    }
    return new Float32Array(this.buffer, r.base + slot * r.slotBytes + offset, length);
  }
}
