/**
 * Options of `CellMapDataLoader`: the public option and resume-state types, and the checks and
 * defaults that turn what the caller passed into the settings the loader runs with.
 *
 * Kept apart from the loader so that the option surface (what the config schema, the CLI and
 * `serve` build) can be read and validated without the worker pool or the sampling code, and
 * so that every default lives in one place (`LOADER_DEFAULTS`, applied here).
 */
import * as os from "node:os";
import type { z } from "zod";
import { bool, integerAtLeast, nonNegativeNumber, positiveNumber, signalSchema, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { seedSchema } from "../dataset/fields.js";
import { invalid } from "../errors.js";
import type { DatasetLike } from "../dataset/types.js";
import type { Sampler } from "../sampling/samplers.js";
import { envChunkCacheBytes } from "../zarr/cache.js";

/** Defaults of `CellMapDataLoader`. */
export const LOADER_DEFAULTS = {
  batchSize: 1,
  numWorkers: 0,
  prefetchFactor: 2,
  isTrain: true,
  dropLast: false,
  rank: 0,
  worldSize: 1,
  /** Samples read at once per thread: the batch size, at most this. */
  maxSampleConcurrency: 16,
} as const;

/** A sampler, a fixed list of indices, or a factory of either (called again at every `refresh()`). */
export type SamplerInput = Sampler | readonly number[] | (() => Sampler | readonly number[]);

/** How `weightedSampler` draws: by dataset weights or class-balanced. */
export type WeightedMode = "weights" | "classBalanced";

const loaderShape = {
  /** Samples per batch (default 1). */
  batchSize: integerAtLeast(1).optional(),
  /** Worker threads (default 0: batches are read on the calling thread). */
  numWorkers: integerAtLeast(0).optional(),
  /** Batches in flight per worker (default 2). */
  prefetchFactor: integerAtLeast(1).optional(),
  /**
   * Weighted sampling: `true` / `"weights"` draws datasets ∝ their class-weighted foreground
   * (multi-datasets; a single dataset has nothing to weigh and is shuffled), `"classBalanced"`
   * draws the least-seen class first (`ClassBalancedSampler`). Datasets above 2^24 samples need
   * `iterationsPerEpoch`.
   */
  weightedSampler: valueWhere<boolean | "weights" | "classBalanced">(
    (v) => typeof v === "boolean" || v === "weights" || v === "classBalanced",
    'true, false, "weights" or "classBalanced"',
  ).optional(),
  /** Explicit sampler (wins over every other sampling option; never shuffled again). */
  sampler: valueWhere<SamplerInput>((v) => v !== null && (typeof v === "object" || typeof v === "function"), "a sampler, a list of indices or a function returning one").optional(),
  /** Shuffle when no sampler applies (default true); false reads in index order. */
  isTrain: bool.optional(),
  /** Seed of the sample order (default: the dataset's `seed`, else 0). */
  seed: seedSchema.optional(),
  /**
   * Batches per epoch *per rank*: each epoch draws a fresh random subset of
   * `iterationsPerEpoch · batchSize · worldSize` samples (weighted if `weightedSampler`).
   */
  iterationsPerEpoch: integerAtLeast(1).optional(),
  /** Drop the last short batch (and, with ranks, the `n mod worldSize` tail). Default false. */
  dropLast: bool.optional(),
  /** This process's rank in `[0, worldSize)` (default 0). */
  rank: integerAtLeast(0).optional(),
  /** Number of training processes sharing each epoch (default 1). */
  worldSize: integerAtLeast(1).optional(),
  /**
   * Budget in bytes of the loader's decoded-chunk cache: one cache in shared memory, used by
   * every worker thread (and by this thread with `numWorkers = 0`), so each chunk is decoded
   * once per process whatever the worker count. Default `CELLMAP_CHUNK_CACHE_BYTES`, else 1 GiB;
   * 0 keeps no chunk between reads. At most about 4 GiB (one WebAssembly memory holds the cache
   * and the batch buffers; a larger budget is cut with a warning).
   */
  chunkCacheBytes: nonNegativeNumber.optional(),
  /** Memory the loader may plan for (default half of the machine's RAM); see {@link CellMapDataLoader.prefetchDepth}. */
  memoryBudgetBytes: positiveNumber.optional(),
  /**
   * Samples each thread reads at once within a batch (default: the batch size, at most 16). Reads
   * of one batch then overlap, so samples that share chunks share their decodes (with a chunk
   * budget of 0 too). Samples are read into the batch buffer directly: more costs no memory.
   */
  sampleConcurrency: integerAtLeast(1).optional(),
  /** Resume from {@link CellMapDataLoader.state} output. */
  state: valueWhere<LoaderState>((v) => typeof v === "object" && v !== null, "the object CellMapDataLoader.state() returned").optional(),
  /** Start the worker threads at construction (default true) rather than at the first iteration. */
  startWorkers: bool.optional(),
  /**
   * Aborting stops the loader: the iteration in progress rejects with `ABORTED`, reads in flight
   * are cancelled and the worker threads end (as with `close()`).
   */
  signal: signalSchema.optional(),
};

/** The schema of the `CellMapDataLoaderOptions` options (their only definition). */
export const loaderOptionsSchema: OptionObject<typeof loaderShape> = optionObject(loaderShape, {
  aliases: { tensorstore_cache_bytes: "chunkCacheBytes" },
  python: {
    ...PYTHON,
    classes: "the loader serves the dataset's classes; give classes to the dataset or the split",
    pin_memory: "batches are typed arrays in shared memory; there is nothing to pin",
    persistent_workers: "worker threads always persist across epochs (close() ends them)",
    non_blocking: "there is no device transfer",
    collate_fn: "batches are collated into one buffer per array by the loader",
    worker_init_fn: "workers re-open the dataset from its description; randomness comes from seed",
    generator: PYTHON.rng,
    timeout: "give signal (an AbortSignal) to stop a loader",
    multiprocessing_context: "workers are threads (numWorkers)",
  },
});

/** Options of {@link CellMapDataLoader}. */
export type CellMapDataLoaderOptions = z.input<typeof loaderOptionsSchema>;

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

export function intOption(v: number | undefined, def: number, min: number, name: string): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < min) throw invalid(name, `${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** The batching, threading and ordering settings of a loader, checked and defaulted. */
export interface LoaderSettings {
  batchSize: number;
  numWorkers: number;
  prefetchFactor: number;
  worldSize: number;
  rank: number;
  sampleConcurrency: number;
  isTrain: boolean;
  dropLast: boolean;
  seed: number;
  iterationsPerEpoch: number | null;
  weightedSampler: WeightedMode | null;
}

/**
 * Checks and defaults the batching, threading and ordering options (in this order, so the
 * first bad option is the one reported). `dataset.seed`, when a non-negative integer, is the
 * default seed.
 */
export function loaderSettings(dataset: DatasetLike, opts: CellMapDataLoaderOptions): LoaderSettings {
  const batchSize = intOption(opts.batchSize, LOADER_DEFAULTS.batchSize, 1, "batchSize");
  const numWorkers = intOption(opts.numWorkers, LOADER_DEFAULTS.numWorkers, 0, "numWorkers");
  const prefetchFactor = intOption(opts.prefetchFactor, LOADER_DEFAULTS.prefetchFactor, 1, "prefetchFactor");
  const worldSize = intOption(opts.worldSize, LOADER_DEFAULTS.worldSize, 1, "worldSize");
  const rank = intOption(opts.rank, LOADER_DEFAULTS.rank, 0, "rank");
  if (rank >= worldSize) throw invalid("rank", `rank must be in [0, worldSize = ${worldSize}), got ${rank}`);
  const sampleConcurrency = intOption(opts.sampleConcurrency, Math.min(batchSize, LOADER_DEFAULTS.maxSampleConcurrency), 1, "sampleConcurrency");
  const isTrain = opts.isTrain ?? LOADER_DEFAULTS.isTrain;
  const dropLast = opts.dropLast ?? LOADER_DEFAULTS.dropLast;
  const dsSeed = (dataset as { seed?: number }).seed;
  const seed = intOption(opts.seed ?? opts.state?.seed, Number.isSafeInteger(dsSeed) && dsSeed! >= 0 ? dsSeed! : 0, 0, "seed");
  const iterationsPerEpoch = opts.iterationsPerEpoch === undefined ? null : intOption(opts.iterationsPerEpoch, 0, 1, "iterationsPerEpoch");
  const w = opts.weightedSampler;
  if (w !== undefined && typeof w !== "boolean" && w !== "weights" && w !== "classBalanced") {
    throw invalid("weightedSampler", `weightedSampler must be a boolean, "weights" or "classBalanced", got ${JSON.stringify(w)}`);
  }
  const weightedSampler = w === true ? "weights" : w ? w : null;
  return { batchSize, numWorkers, prefetchFactor, worldSize, rank, sampleConcurrency, isTrain, dropLast, seed, iterationsPerEpoch, weightedSampler };
}

/** The memory options, checked and defaulted: the requested chunk-cache budget and the memory budget. */
export function memorySettings(opts: CellMapDataLoaderOptions): { cacheBytes: number; memoryBudgetBytes: number } {
  if (opts.chunkCacheBytes !== undefined && !(Number.isFinite(opts.chunkCacheBytes) && opts.chunkCacheBytes >= 0)) {
    throw invalid("chunkCacheBytes", `chunkCacheBytes must be a non-negative number, got ${opts.chunkCacheBytes}`);
  }
  const cacheBytes = Math.floor(opts.chunkCacheBytes ?? envChunkCacheBytes());
  if (opts.memoryBudgetBytes !== undefined && !(opts.memoryBudgetBytes > 0)) throw invalid("memoryBudgetBytes", `memoryBudgetBytes must be > 0, got ${opts.memoryBudgetBytes}`);
  return { cacheBytes, memoryBudgetBytes: opts.memoryBudgetBytes ?? Math.floor(os.totalmem() / 2) };
}

/**
 * Checks a resume state against the loader's own (`mine`, from `state()`) and its batches per
 * epoch; returns the (epoch, position) to move to.
 */
export function checkState(state: LoaderState, mine: LoaderState, batchesPerEpoch: number): { epoch: number; position: number } {
  const s = state as Partial<LoaderState>;
  if (typeof s !== "object" || s === null || s.version !== 1) throw invalid("state", "state must be a version-1 loader state (from loader.state())");
  for (const k of ["seed", "epoch", "position", "batchSize", "worldSize", "samplesPerEpoch"] as const) {
    if (!Number.isSafeInteger(s[k]) || s[k]! < 0) throw invalid(`state.${k}`, `state.${k} must be a non-negative integer, got ${JSON.stringify(s[k])}`);
  }
  for (const k of ["seed", "batchSize", "worldSize", "samplesPerEpoch"] as const) {
    if (s[k] !== mine[k]) throw invalid(`state.${k}`, `state.${k} is ${s[k]} but this loader has ${mine[k]}; resume with the same options`);
  }
  if (s.position! > batchesPerEpoch) throw invalid("state.position", `state.position ${s.position} is beyond the ${batchesPerEpoch} batches of an epoch`);
  return { epoch: s.epoch!, position: s.position! };
}
