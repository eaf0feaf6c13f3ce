/**
 * Worker-thread side of `CellMapDataLoader` (a piscina task module). Each worker re-opens the
 * dataset from its JSON description (transforms included: built-ins from their specs, user
 * transforms by importing their module), with its own codecs and its share of the chunk-cache
 * budget, then builds whole batches and transfers their buffers back (no copy on the way).
 *
 * Opening starts as soon as the thread starts, so it overlaps the pool start-up and the first
 * task; failures are reported per task (with the first sample of the batch), never as a crash.
 */
import { workerData } from "node:worker_threads";
import { Piscina } from "piscina";
import "../dataset/index.js"; // registers every dataset kind with openDescription
import "../writer/index.js"; // registers CellMapDatasetWriter (inference tiles served by workers)
import { openDescription, type DatasetDescription, type DatasetLike } from "../dataset/types.js";
import { chunkCache, setChunkCacheBytes, type CacheStats } from "../zarr/cache.js";
import { threadId } from "node:worker_threads";
import { registerFastCodecs } from "../zarr/codecs/register.js";
import { batchBuffers, buildBatch, SampleError, serializeError, type Batch, type SerializedError } from "./collate.js";

/** What the loader gives each worker at start-up. */
export interface WorkerInit {
  description: DatasetDescription;
  /** This worker's chunk-cache budget (null: keep the default). */
  chunkCacheBytes: number | null;
  /** Samples read at once within a batch. */
  sampleConcurrency: number;
}

/** One task: the samples of one batch. */
export interface BatchTask {
  indices: number[];
  epoch: number;
  /** Recycled batch buffers (transferred in) to fill instead of allocating. */
  reuse?: Record<string, ArrayBuffer>;
}

/** A task's outcome; failures are data so that codes, paths and the index survive the thread hop. */
/** `cache`: this worker's decoded-chunk cache counters after the batch (for summaries). */
export type BatchResult = { ok: true; batch: Batch; cache?: { thread: number; stats: CacheStats } } | { ok: false; error: SerializedError };

const init = workerData as WorkerInit;
// Decoding is lossless, so fast and WASM codecs give identical batches; CELLMAP_CODECS=wasm still wins.
registerFastCodecs();
if (init.chunkCacheBytes !== null) setChunkCacheBytes(init.chunkCacheBytes);
const opened: Promise<DatasetLike> = openDescription(init.description);
opened.catch(() => {}); // reported by the first task instead

/** Builds the batch of `task` (piscina calls the default export). */
export default async function runBatch(task: BatchTask): Promise<BatchResult | ReturnType<typeof Piscina.move>> {
  let dataset: DatasetLike;
  try {
    dataset = await opened;
  } catch (err) {
    return { ok: false, error: serializeError(new SampleError(task.indices[0], task.epoch, err, "opening the dataset in a worker thread for")) };
  }
  try {
    const batch = await buildBatch(dataset, task.indices, task.epoch, { concurrency: init.sampleConcurrency, reuse: task.reuse });
    const result: BatchResult = { ok: true, batch, cache: { thread: threadId, stats: chunkCache.getStats() } };
    return Piscina.move({ [Piscina.transferableSymbol]: batchBuffers(batch), [Piscina.valueSymbol]: result } as never);
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}
