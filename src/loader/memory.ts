/**
 * Memory arithmetic of the loader. The Python library estimated batch megabytes to decide on
 * CUDA streams (`MIN_BATCH_MEMORY_FOR_STREAMS_MB`); here the same estimate sizes the prefetch
 * queue so that prefetching can never push the process past its memory budget.
 */
import type { ArraySpecs } from "../dataset/types.js";

/** Bytes per value of a collated batch (batches are float32 whatever the source dtype). */
const BATCH_VALUE_BYTES = 4;

function product(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/**
 * Bytes of one collated batch: `Σ_inputs N·∏shape + Σ_targets N·∏shape·C` values of 4 bytes,
 * with `C = nClasses` (1 in raw-only mode). Python's worked example: batch 4, inputs 32³ and
 * 16³, one 32³ target with 3 classes → 540,672 values → 2,162,688 bytes (2.0625 MiB).
 */
export function batchMemoryBytes(inputArrays: ArraySpecs, targetArrays: ArraySpecs, nClasses: number, batchSize: number): number {
  const c = Math.max(1, nClasses);
  let values = 0;
  for (const s of Object.values(inputArrays)) values += batchSize * product(s.shape);
  for (const s of Object.values(targetArrays)) values += batchSize * product(s.shape) * c;
  return values * BATCH_VALUE_BYTES;
}

/**
 * Memory of the spare batch buffers, kept for batches the consumer dropped and a collection has
 * not found yet (see reclaim.ts). Each collection finds all of them, so more spares mean fewer
 * collections; one costs 10–30 ms on the dev machine whatever the batch size. Measured there
 * (std workload, 2 workers, batches of 33.5 MB, median of 3 interleaved runs, samples/s against
 * 1,004 recycled): 64 MiB of spares 594 (RSS 456 MB), 256 MiB 871 (645 MB), 512 MiB 798–923
 * (905 MB). 256 MiB is the knee; the memory budget cuts it first.
 */
const SPARE_BYTES = 256 * 2 ** 20;

/** Spare buffers for batches of `batchBytes` within `spareBytes`: at least 2, at most 1024. */
function spareSlots(batchBytes: number, spareBytes: number = SPARE_BYTES): number {
  return Math.max(2, Math.min(1024, Math.floor(spareBytes / Math.max(1, batchBytes))));
}

/**
 * Batch buffers of a loader's pool for `depth` batches in flight: those, the batch the consumer
 * holds, one more, and `spares` for batches the consumer dropped ({@link spareSlots}).
 */
export function batchSlots(depth: number, spares: number): number {
  return depth + 2 + spares;
}

/** Result of {@link fitPrefetch}. */
export interface PrefetchFit {
  /** Batches allowed in flight (at least 1). */
  depth: number;
  /** Spare batch buffers for dropped batches (at least 2). */
  spares: number;
  /** Estimated peak bytes: chunk caches + in-flight batches + the batch the caller holds + samples being read. */
  estimateBytes: number;
  /** Why the requested depth was cut or cannot fit, or null. */
  warning: string | null;
}

/**
 * Largest prefetch depth (≤ `requested`) and spare count whose estimate fits `budgetBytes`; the
 * spares are cut first (down to 2), then the depth. The estimate counts the chunk caches, the
 * batch buffers of the pool ({@link batchSlots}: in flight, consumed, and dropped ones awaiting
 * a collection), and the sample patches workers hold while filling a batch
 * (`readers · sampleBytes`).
 */
export function fitPrefetch(opts: { requested: number; batchBytes: number; sampleBytes: number; readers: number; cacheBytes: number; budgetBytes: number }): PrefetchFit {
  const { requested, batchBytes, sampleBytes, readers, cacheBytes, budgetBytes } = opts;
  const fixed = cacheBytes + readers * sampleBytes;
  const need = (d: number, spares: number) => fixed + batchSlots(d, spares) * batchBytes;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const wanted = spareSlots(batchBytes);
  if (need(requested, wanted) <= budgetBytes) return { depth: requested, spares: wanted, estimateBytes: need(requested, wanted), warning: null };
  if (need(requested, 2) <= budgetBytes) {
    const spares = Math.min(wanted, Math.floor((budgetBytes - fixed) / Math.max(1, batchBytes)) - requested - 2);
    return { depth: requested, spares, estimateBytes: need(requested, spares), warning: null };
  }
  let fit = requested;
  while (fit >= 1 && need(fit, 2) > budgetBytes) fit--;
  if (fit >= 1) {
    return {
      depth: fit,
      spares: 2,
      estimateBytes: need(fit, 2),
      warning: `prefetch queue cut from ${requested} to ${fit} batches: ${requested} batches of ${mib(batchBytes)} plus ${mib(cacheBytes)} of chunk cache would need ${mib(need(requested, 2))}, over the memory budget of ${mib(budgetBytes)}`,
    };
  }
  return {
    depth: 1,
    spares: 2,
    estimateBytes: need(1, 2),
    warning: `this configuration cannot fit the memory budget of ${mib(budgetBytes)}: one batch in flight (${mib(batchBytes)} each) plus ${mib(cacheBytes)} of chunk cache needs ${mib(need(1, 2))}; lower batchSize, numWorkers or chunkCacheBytes`,
  };
}
