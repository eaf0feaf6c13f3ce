/**
 * Contracts shared by `CellMapDataset`, `CellMapMultiDataset` and `CellMapSubset`: array specs,
 * sample items, the common dataset interface, and the per-thread table of registered description
 * kinds (the registry that re-opens descriptions, with the built-in kinds, is `kinds.ts`).
 */
import { CellMapError } from "../errors.js";
import type { MutableSubsetRandomSampler } from "../sampling/samplers.js";
import type { AnyTensor, OutputDtype, Tensor, TensorArrays, TensorData } from "../tensor.js";
import type { ChunkStore } from "../zarr/chunk-store.js";
import type { SpatialDraw } from "../transforms/spatial.js";
import type { ClassCounts } from "./counts.js";

export type { ArraySpec } from "./fields.js";
import type { ArraySpec } from "./fields.js";

/** Array specs by array name (the keys of a sample). */
export type ArraySpecs = Record<string, ArraySpec>;

/**
 * The tensor an array spec yields: `Tensor` (float32) when the spec has no `outputDtype`, the
 * typed array of a literal `outputDtype` (`outputDtype: "uint32"` gives `Tensor<Uint32Array>`),
 * and {@link AnyTensor} when the dtype is not known statically.
 */
export type SpecTensor<S extends ArraySpec> = "outputDtype" extends keyof S
  ? S extends { outputDtype: infer D extends OutputDtype }
    ? Tensor<TensorArrays[D]>
    : AnyTensor
  : Tensor;

/** Pyramid level a source was read from. */
export interface LevelInfo {
  /** Array path inside the multiscale group (e.g. `s1`). */
  path: string;
  /** Level index (0 = finest). */
  index: number;
  /** Voxel size of that level in nm, z y x. */
  scale: number[];
}

/** How a foreground-seeking sample found its centre (sample metadata `foreground`). */
export interface ForegroundReport {
  /** Centres tried (1: the sample's own centre was kept). */
  tries: number;
  /** Index of the centre kept (the sample's own at try 1). */
  index: number;
  /** Foreground fraction of the kept target patch. */
  fraction: number;
}

/** Per-sample metadata (plain JSON). */
export interface SampleMetadata {
  rawPath: string;
  /** Target path as given (bracket form), `null` in raw-only mode. */
  targetPath: string | null;
  /** Patch centre in nm, z y x (2-D: the slice's z, then y, x). */
  center: number[];
  /** Index inside the `CellMapDataset` that produced the sample. */
  index: number;
  /** Epoch the random draws were made for. */
  epoch: number;
  /** The spatial draw applied to every source, or `null` (no augmentation). */
  spatialTransform: SpatialDraw | null;
  /**
   * Pyramid level read per source: input arrays and raw-only targets by array name, class
   * targets as `"<array>/<class>"` (annotated classes only).
   */
  levels: Record<string, LevelInfo>;
  /** With the dataset's `foreground` option, when the sample sought the foreground. */
  foreground?: ForegroundReport;
}

/** What every sample has besides its tensors. */
export interface SampleBase {
  /** The index passed to the `get` of the object you called. */
  idx: number;
  metadata: SampleMetadata;
}

/**
 * A sample whose array names are not known statically: tensors by name, next to `idx` and
 * `metadata` (narrow with `as Tensor`, or use a typed dataset).
 */
export interface AnyDatasetItem extends SampleBase {
  [name: string]: AnyTensor | number | SampleMetadata;
}

/**
 * One sample: each input array `[1, z, y, x]` (2-D: `[1, y, x]`), each target array
 * `[nClasses, z, y, x]` (raw-only: `[1, …]`), plus `idx` (the index passed to the `get` of the
 * object you called) and `metadata`.
 *
 * Typed by the dataset's array specs: `DatasetItem<{ raw: … }, { gt: … }>` has `raw` and `gt`
 * tensors (see {@link SpecTensor} for their element type). When the names are not known
 * statically (`ArraySpecs`, the default) it is {@link AnyDatasetItem}.
 */
export type DatasetItem<I extends ArraySpecs = ArraySpecs, T extends ArraySpecs = ArraySpecs> = string extends keyof I | keyof T
  ? AnyDatasetItem
  : {
      [K in keyof SampleBase | keyof I | keyof T]: K extends keyof SampleBase ? SampleBase[K] : K extends keyof I ? SpecTensor<I[K]> : K extends keyof T ? SpecTensor<T[K]> : never;
    };

/** Options of `get`. */
export interface GetOptions {
  /** Epoch of the random draws (default 0): augmentation is a function of (seed, epoch, index). */
  epoch?: number;
  signal?: AbortSignal;
  /**
   * Buffers to write the sample's tensors into, by key, each exactly the tensor's size (the
   * loader passes the sample's slots of a batch buffer, so reads land in the batch directly).
   * A key that is missing or of another size gets a new array. The item's tensors then view
   * these buffers.
   */
  into?: Record<string, TensorData>;
  /** Decoded-chunk cache to read through (default: this thread's). */
  store?: ChunkStore;
}

/** A serialised dataset (`openDescription` of `kinds.ts` re-opens it). */
export interface DatasetDescription {
  kind: string;
  [key: string]: unknown;
}

/**
 * What every dataset-like object offers (dataset, multi-dataset, subset, writer). `S` is the
 * type of its samples ({@link DatasetItem} of its array specs; {@link AnyDatasetItem} when the
 * names are not known statically).
 */
export interface DatasetLike<S extends SampleBase = AnyDatasetItem> {
  /** `"CellMapDataset"`, `"CellMapMultiDataset"` or `"CellMapSubset"`. */
  readonly kind: string;
  /** Number of samples (an integer up to 2^53; never materialise `Array(length)`). */
  readonly length: number;
  /** Output class order (channel order of class targets); empty in raw-only mode. */
  readonly classes: readonly string[];
  readonly inputArrays: ArraySpecs;
  readonly targetArrays: ArraySpecs;
  /** Reads sample `i`; out-of-range or non-integer `i` throws `OUT_OF_RANGE`. */
  get(i: number, opts?: GetOptions): Promise<S>;
  /** Foreground/background voxels per class at the training resolution. */
  classCounts(signal?: AbortSignal): Promise<ClassCounts>;
  /** `background / foreground` per class (1 when a class has no foreground). */
  classWeights(signal?: AbortSignal): Promise<Record<string, number>>;
  /** Indices of non-overlapping tiles covering the sampling region (validation). */
  validationIndices(): number[];
  /** Whether the dataset has samples (or was forced to report data). */
  verify(): boolean;
  /** A random subset of `numSamples` indices of this object, redrawn each epoch. */
  subsetRandomSampler(numSamples: number, opts?: { seed?: number; weighted?: boolean }): Promise<MutableSubsetRandomSampler>;
  /** JSON description from which `openDescription` (`kinds.ts`) re-opens an identical object. */
  describe(): DatasetDescription;
}

/** Options for re-opening a description. */
export interface OpenDescriptionOptions {
  signal?: AbortSignal;
}

/**
 * What an opener gets besides the description: the options, and `open`, which re-opens a child
 * description of any kind (multi-datasets and subsets hold children; the registry in `kinds.ts`
 * passes itself, so no dataset module imports the registry).
 */
export interface DescriptionContext extends OpenDescriptionOptions {
  open(desc: DatasetDescription): Promise<DatasetLike>;
}

/** Re-opens descriptions of one kind. */
export type DescriptionOpener = (desc: DatasetDescription, opts: DescriptionContext) => Promise<DatasetLike>;
/** Kinds registered in this thread (built-ins are listed in `kinds.ts`). */
const registered = new Map<string, DescriptionOpener>();

/**
 * Registers how to re-open descriptions of `kind`, in this thread (for kinds other than the
 * built-ins of `kinds.ts`: the writer's, users' own; see `kinds.ts` for worker threads).
 */
export function registerDescriptionKind(kind: string, open: DescriptionOpener): void {
  registered.set(kind, open);
}

/** The opener registered for `kind` in this thread, if any. */
export function registeredDescriptionKind(kind: string): DescriptionOpener | undefined {
  return registered.get(kind);
}

/** Kinds registered in this thread. */
export function registeredDescriptionKinds(): string[] {
  return [...registered.keys()];
}

/** Throws `OUT_OF_RANGE` unless `i` is an integer in `[0, length)`. */
export function checkIndex(i: number, length: number, where: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new CellMapError("OUT_OF_RANGE", `index ${i} is outside [0, ${length}) (no wrap-around)`, where);
  }
}
