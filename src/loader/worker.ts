/**
 * Worker-thread side of `CellMapDataLoader` (a piscina task module). Each worker re-opens the
 * dataset from its JSON description (transforms included: built-ins from their specs, user
 * transforms by importing their module) and maps the loader's data plane: it reads through the
 * one shared chunk cache and writes each batch straight into the batch buffer the task names,
 * so only indices and metadata travel back. Without a buffer (all handed out) it builds the
 * batch in new buffers and transfers them.
 *
 * Opening starts as soon as the thread starts, so it overlaps the pool start-up and the first
 * task; failures are reported per task (with the first sample of the batch), never as a crash.
 */
import { workerData } from "node:worker_threads";
import { Piscina } from "piscina";
// Built-in dataset kinds come from one table; other kinds (the writer, users' own) name the
// module that registers them in their description, and openDescription imports it.
import { openDescription } from "../dataset/kinds.js";
import type { DatasetDescription, DatasetLike } from "../dataset/types.js";
import type { CacheStats } from "../zarr/cache.js";
import { DataPlane, type DataPlaneInit } from "../plane/plane.js";
import type { DataType, Tensor } from "../tensor.js";
import { threadId } from "node:worker_threads";
import { registerFastCodecs } from "../zarr/codecs/register.js";
import { batchBuffers, buildBatch, filledTarget, SampleError, serializeError, tensorKeys, type Batch, type BatchLayout, type SerializedError } from "./collate.js";
import { batchTarget } from "./batch-pool.js";

/** What the loader gives each worker at start-up. */
export interface WorkerInit {
  description: DatasetDescription;
  /** The loader's shared memory (chunk cache and batch buffers). */
  plane: DataPlaneInit;
  /** Where each key sits in a batch buffer. */
  layout: BatchLayout;
  /** Samples read at once within a batch. */
  sampleConcurrency: number;
}

/** One task: the samples of one batch. */
export interface BatchTask {
  indices: number[];
  epoch: number;
  /** Recycled batch buffers (transferred in) to fill instead of allocating. */
  reuse?: Record<string, ArrayBuffer>;
  /** Batch buffer of the plane to fill (-1: none free, build in new buffers). */
  slot: number;
  /** Start-up probe: resolves once the dataset is open here (the loader then routes batches to the pool). */
  ping?: boolean;
}

/** A task's outcome; failures are data so that codes, paths and the index survive the thread hop. */
/** `cache`: this worker's decoded-chunk cache counters after the batch (for summaries). */
/** A batch read in place has no `batch`: its tensors are the slot's views, described by `idx`, `metadata` and `sourceDtypes`. */
export type BatchResult =
  | { ok: true; batch?: Batch; idx: number[]; metadata: Batch["metadata"]; sourceDtypes: Record<string, DataType>; cache?: { thread: number; stats: CacheStats } }
  | { ok: false; error: SerializedError };

const init = workerData as WorkerInit;
// Decoding is lossless, so fast and WASM codecs give identical batches; CELLMAP_CODECS=wasm still wins.
registerFastCodecs();
const plane = DataPlane.attach(init.plane);
// Every read of a batch goes through this thread's store of the plane (passed down to the image).
const store = plane.store;

const opened: Promise<DatasetLike> = openDescription(init.description);
opened.catch(() => {}); // reported by the first task instead

/** Builds the batch of `task` (piscina calls the default export). */
export default async function runBatch(task: BatchTask): Promise<BatchResult | ReturnType<typeof Piscina.move>> {
  let dataset: DatasetLike;
  try {
    dataset = await opened;
    if (task.ping) return { ok: true, idx: [], metadata: [], sourceDtypes: {} };
  } catch (err) {
    return { ok: false, error: serializeError(new SampleError(task.indices[0], task.epoch, err, "opening the dataset in a worker thread for")) };
  }
  try {
    // The slot the main thread took from its pool (the pool's bookkeeping lives there).
    const target = task.slot >= 0 ? batchTarget(plane, init.layout, task.slot) : undefined;
    const batch = await buildBatch(dataset, task.indices, task.epoch, { concurrency: init.sampleConcurrency, reuse: task.reuse, target, store });
    const cache = plane.cache ? undefined : { thread: threadId, stats: store.getStats() };
    const sourceDtypes: Record<string, DataType> = {};
    for (const k of tensorKeys(batch)) sourceDtypes[k] = (batch[k] as Tensor).sourceDtype;
    if (target && filledTarget(batch, target)) {
      const result: BatchResult = { ok: true, idx: batch.idx, metadata: batch.metadata, sourceDtypes, cache };
      return result;
    }
    const result: BatchResult = { ok: true, batch, idx: batch.idx, metadata: batch.metadata, sourceDtypes, cache };
    return Piscina.move({ [Piscina.transferableSymbol]: batchBuffers(batch), [Piscina.valueSymbol]: result } as never);
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}
