/**
 * The schemas of every option object of the library and of the config file — one schema per
 * object, used by the library itself (`parseOptions` at each entry point), by `loadConfig` and
 * by the CLI, so that a key means one thing wherever it is written.
 *
 * Each schema lists every key of its options interface (a compile-time check below fails when
 * they drift apart) with the Python library's names that differ (`aliases`) and its options that
 * have no counterpart here (`python`, rejected with the reason). Values checked in detail by the
 * code that uses them (geometry, stores, writers) are typed loosely here; everything a config
 * file can hold is typed fully.
 */
import { z } from "zod";
import type { CellMapDatasetOptions } from "../dataset/dataset.js";
import type { MultiDatasetOptions } from "../dataset/multi.js";
import type { CellMapDataSplitOptions, DataSplitEntry } from "../dataset/split.js";
import type { ArraySpec } from "../dataset/types.js";
import type { CellMapImageOptions } from "../image/image.js";
import type { CellMapDataLoaderOptions } from "../loader/loader.js";
import type { HttpStoreOptions } from "../store/http.js";
import type { S3Credentials, S3Options } from "../store/types.js";
import { spatialConfigSchema as spatialSchema, type SpatialConfig } from "../transforms/spatial.js";
import type { CellMapDatasetWriterOptions, WriterArraySpec } from "../writer/dataset-writer.js";
import type { ImageWriterOptions } from "../writer/image-writer.js";
import {
  anyNumber,
  arraySpecShape,
  bool,
  finiteNumber,
  functionSchema,
  integerAtLeast,
  nameList,
  nonEmptyString,
  nonNegativeNumber,
  numberList,
  positiveNumber,
  signalSchema,
  targetTransformInputSchema,
  transformInputSchema,
  valueOf,
} from "./fields.js";
import { optionInfo, optionObject, type SameKeys } from "./options.js";

/** The spatial augmentation config (`transforms/spatial.ts`), typed as the library's `SpatialConfig`. */
export const spatialConfigSchema = spatialSchema as unknown as z.ZodType<SpatialConfig>;

/** Python options no object here has: the same reasons everywhere. */
const PYTHON = {
  device: "tensors are CPU typed arrays; move a batch to a device in the training loop (toTfjs / toOnnx hand it over without a copy)",
  context: "chunks are cached in the loader's shared chunk cache (chunkCacheBytes) or the process cache (setChunkCacheBytes)",
  rng: "every random draw is a function of seed, epoch and sample index; give seed",
  max_workers: "the reads of a sample run concurrently; CellMapDataLoader's numWorkers adds threads",
} as const;

/** A dataset array spec `{ shape, scale, outputDtype? }` (z y x). */
export const arraySpecSchema = optionObject(arraySpecShape);
/** Array specs by array name. */
export const arraySpecsSchema = z.record(z.string(), arraySpecSchema);
/** A writer target array spec: an array spec plus `nChannels`. */
export const writerArraySpecSchema = optionObject(
  { ...arraySpecShape, nChannels: integerAtLeast(1).optional() },
  { python: { scale_level: "the writer writes s0 at the spec's scale, plus `pyramid` downsampled levels" } },
);

/** Output classes: a non-empty list of distinct names. */
export const classesSchema = valueOf<string[]>(
  (v) => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === "string" && c.length > 0) && new Set(v).size === v.length,
  "a non-empty list of distinct class names (omit it for raw-only mode)",
);
/** `{ class: [mutually exclusive classes] }`. */
export const classRelationDictSchema = z.record(z.string(), nameList);
/** Padding of a split: both (`true`), neither (`false`), or only `"train"` / `"validate"`. */
export const padSchema = valueOf<boolean | "train" | "validate">(
  (v) => typeof v === "boolean" || (typeof v === "string" && ["train", "validate"].includes(v.toLowerCase())),
  'true, false, "train" or "validate"',
);
/** A random seed. */
export const seedSchema = integerAtLeast(0);

const s3CredentialsSchema = optionObject({ accessKeyId: z.string(), secretAccessKey: z.string(), sessionToken: z.string().optional() });
/** `http.s3`: credentials, profile, region, endpoint of `s3://` locations. */
export const s3OptionsSchema = optionObject({
  anonymous: bool.optional(),
  credentials: s3CredentialsSchema.optional(),
  profile: z.string().optional(),
  region: z.string().optional(),
  endpoint: z.string().optional(),
  forcePathStyle: bool.optional(),
});
const httpShape = optionObject({
  timeoutMs: positiveNumber.optional(),
  retries: integerAtLeast(0).optional(),
  backoffMs: nonNegativeNumber.optional(),
  maxConcurrency: integerAtLeast(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  coalesceGapBytes: nonNegativeNumber.nullable().optional(),
  forbiddenAsMissing: bool.optional(),
  s3: s3OptionsSchema.optional(),
  fetch: functionSchema.optional(),
});
/** HTTP options of remote locations (values checked by the store). */
export const httpOptionsSchema = httpShape as unknown as z.ZodType<HttpStoreOptions>;

/** Options of `CellMapImage.open`. */
export const imageOptionsSchema = optionObject(
  {
    path: nonEmptyString,
    targetClass: z.string().optional(),
    targetScale: z.unknown(),
    targetVoxelShape: z.unknown(),
    pad: bool.optional(),
    padValue: anyNumber.optional(),
    interpolation: z.unknown().optional(),
    axisOrder: z.unknown().optional(),
    sections: bool.optional(),
    valueTransform: transformObjectOrNull().optional(),
    channel: integerAtLeast(0).optional(),
    time: integerAtLeast(0).optional(),
    series: integerAtLeast(0).optional(),
    multiscaleIndex: integerAtLeast(0).optional(),
    voxelSize: z.unknown().optional(),
    translation: z.unknown().optional(),
    outputDtype: z.unknown().optional(),
    http: httpOptionsSchema.optional(),
    signal: signalSchema.optional(),
  },
  { python: { device: PYTHON.device, context: PYTHON.context } },
);

function transformObjectOrNull() {
  return valueOf<{ apply: unknown }>((v) => typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function", "a transform (an object with apply)");
}

/** Options of `CellMapDataset.open`. */
export const datasetOptionsSchema = optionObject(
  {
    rawPath: nonEmptyString,
    targetPath: z.string().nullable().optional(),
    classes: classesSchema.nullable().optional(),
    inputArrays: arraySpecsSchema,
    targetArrays: arraySpecsSchema.nullable().optional(),
    spatialTransforms: spatialConfigSchema.nullable().optional(),
    rawValueTransforms: transformInputSchema.nullable().optional(),
    targetValueTransforms: targetTransformInputSchema.nullable().optional(),
    classRelationDict: classRelationDictSchema.nullable().optional(),
    isTrain: bool.optional(),
    axisOrder: valueOf<"zyx">((v) => v === "zyx", '"zyx"').optional(),
    forceHasData: bool.optional(),
    emptyValue: anyNumber.optional(),
    pad: bool.optional(),
    seed: seedSchema.optional(),
    http: httpOptionsSchema.optional(),
    signal: signalSchema.optional(),
    knownHasData: bool.optional(),
  },
  { python: PYTHON },
);

const datasetLike = valueOf<object>((v) => typeof v === "object" && v !== null && typeof (v as { get?: unknown }).get === "function", "a dataset");
/** One entry of a datasplit dict. Values are checked per entry (a bad entry is a problem of its row). */
export const dataSplitEntrySchema = optionObject({ raw: z.unknown().optional(), gt: z.unknown().optional(), line: z.unknown().optional() });
const entries = z.array(dataSplitEntrySchema);

/** Options of `CellMapDataSplit.open` (and the datasplit part of a config file). */
export const splitOptionsSchema = optionObject(
  {
    inputArrays: arraySpecsSchema,
    targetArrays: arraySpecsSchema.nullable().optional(),
    classes: classesSchema.nullable().optional(),
    emptyValue: anyNumber.optional(),
    pad: padSchema.optional(),
    datasets: optionObject({ train: z.array(datasetLike), validate: z.array(datasetLike).optional() }).optional(),
    datasetDict: optionObject({ train: entries, validate: entries.optional() }).optional(),
    csvPath: nonEmptyString.optional(),
    csvText: z.string().optional(),
    spatialTransforms: spatialConfigSchema.nullable().optional(),
    trainRawValueTransforms: transformInputSchema.nullable().optional(),
    valRawValueTransforms: transformInputSchema.nullable().optional(),
    targetValueTransforms: targetTransformInputSchema.nullable().optional(),
    classRelationDict: classRelationDictSchema.nullable().optional(),
    forceHasData: bool.optional(),
    seed: seedSchema.optional(),
    http: httpOptionsSchema.optional(),
    concurrency: integerAtLeast(1).optional(),
    signal: signalSchema.optional(),
  },
  { python: PYTHON },
);

/** Options of `CellMapMultiDataset`. */
export const multiDatasetOptionsSchema = optionObject({
  classes: nameList.optional(),
  inputArrays: arraySpecsSchema.optional(),
  targetArrays: arraySpecsSchema.optional(),
  seed: seedSchema.optional(),
});

/** Options of `CellMapDataLoader`. */
export const loaderOptionsSchema = optionObject(
  {
    batchSize: integerAtLeast(1).optional(),
    numWorkers: integerAtLeast(0).optional(),
    prefetchFactor: integerAtLeast(1).optional(),
    weightedSampler: valueOf<boolean | "weights" | "classBalanced">((v) => typeof v === "boolean" || v === "weights" || v === "classBalanced", 'true, false, "weights" or "classBalanced"').optional(),
    sampler: z.unknown().optional(),
    isTrain: bool.optional(),
    seed: seedSchema.optional(),
    iterationsPerEpoch: integerAtLeast(1).optional(),
    dropLast: bool.optional(),
    rank: integerAtLeast(0).optional(),
    worldSize: integerAtLeast(1).optional(),
    chunkCacheBytes: nonNegativeNumber.optional(),
    memoryBudgetBytes: positiveNumber.optional(),
    sampleConcurrency: integerAtLeast(1).optional(),
    state: z.unknown().optional(),
    startWorkers: bool.optional(),
    signal: signalSchema.optional(),
  },
  {
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
  },
);

/** Options of `CellMapDatasetWriter.open`. */
export const datasetWriterOptionsSchema = optionObject(
  {
    rawPath: nonEmptyString,
    targetPath: nonEmptyString,
    classes: z.unknown(),
    modelClasses: z.unknown().optional(),
    inputArrays: arraySpecsSchema,
    targetArrays: z.record(z.string(), writerArraySpecSchema),
    targetBounds: z.record(z.string(), z.record(z.string(), numberList)),
    axisOrder: z.unknown().optional(),
    rawValueTransforms: transformInputSchema.nullable().optional(),
    overlap: z.unknown().optional(),
    blend: z.unknown().optional(),
    dtype: z.unknown().optional(),
    fillValue: finiteNumber.optional(),
    format: z.unknown().optional(),
    compressor: z.unknown().optional(),
    pyramid: z.unknown().optional(),
    pyramidMethod: z.unknown().optional(),
    overwrite: bool.optional(),
    resume: bool.optional(),
    http: httpOptionsSchema.optional(),
    signal: signalSchema.optional(),
    tiles: z.unknown().optional(),
    attach: bool.optional(),
  },
  { aliases: { empty_value: "fillValue" }, python: PYTHON },
);

/** Options of `ImageWriter.open`. */
export const imageWriterOptionsSchema = optionObject(
  {
    path: nonEmptyString,
    scale: z.unknown(),
    bounds: z.unknown(),
    writeShape: z.unknown(),
    overlap: z.unknown().optional(),
    blend: z.unknown().optional(),
    nChannels: integerAtLeast(1).optional(),
    dtype: z.unknown().optional(),
    fillValue: finiteNumber.optional(),
    format: z.unknown().optional(),
    compressor: z.unknown().optional(),
    pyramid: z.unknown().optional(),
    pyramidMethod: z.unknown().optional(),
    overwrite: bool.optional(),
    resume: bool.optional(),
    root: z.string().optional(),
    name: z.string().optional(),
    attach: bool.optional(),
    http: httpOptionsSchema.optional(),
  },
  {
    aliases: { bounding_box: "bounds", write_voxel_shape: "writeShape" },
    python: {
      device: PYTHON.device,
      context: PYTHON.context,
      target_class: "the class is the image's folder (path) and multiscale name (name)",
      axis_order: "the axes follow the length of scale: [z, y, x] or [y, x]",
      scale_level: "the writer writes s0 at scale, plus `pyramid` downsampled levels",
    },
  },
);

// The schemas list exactly the keys of the options interfaces (a compile error names any drift).
const _image: SameKeys<CellMapImageOptions, z.input<typeof imageOptionsSchema>> = true;
const _dataset: SameKeys<CellMapDatasetOptions, z.input<typeof datasetOptionsSchema>> = true;
const _split: SameKeys<CellMapDataSplitOptions, z.input<typeof splitOptionsSchema>> = true;
const _entry: SameKeys<DataSplitEntry, z.input<typeof dataSplitEntrySchema>> = true;
const _multi: SameKeys<MultiDatasetOptions, z.input<typeof multiDatasetOptionsSchema>> = true;
const _loader: SameKeys<CellMapDataLoaderOptions, z.input<typeof loaderOptionsSchema>> = true;
const _writer: SameKeys<CellMapDatasetWriterOptions, z.input<typeof datasetWriterOptionsSchema>> = true;
const _imageWriter: SameKeys<ImageWriterOptions, z.input<typeof imageWriterOptionsSchema>> = true;
const _spec: SameKeys<ArraySpec, z.input<typeof arraySpecSchema>> = true;
const _writerSpec: SameKeys<WriterArraySpec, z.input<typeof writerArraySpecSchema>> = true;
const _http: SameKeys<HttpStoreOptions, z.input<typeof httpShape>> = true;
const _s3: SameKeys<S3Options, z.input<typeof s3OptionsSchema>> = true;
const _creds: SameKeys<S3Credentials, z.input<typeof s3CredentialsSchema>> = true;
void [_image, _dataset, _split, _entry, _multi, _loader, _writer, _imageWriter, _spec, _writerSpec, _http, _s3, _creds];

export const configSchema = optionObject(
  {
    csvPath: nonEmptyString.optional(),
    inputArrays: arraySpecsSchema,
    targetArrays: arraySpecsSchema.optional(),
    classes: classesSchema.optional(),
    classRelationDict: classRelationDictSchema.optional(),
    spatialTransforms: spatialConfigSchema.optional(),
    rawValueTransforms: transformInputSchema.nullable().optional(),
    trainRawValueTransforms: transformInputSchema.nullable().optional(),
    valRawValueTransforms: transformInputSchema.nullable().optional(),
    targetValueTransforms: targetTransformInputSchema.nullable().optional(),
    pad: padSchema.optional(),
    emptyValue: anyNumber.optional(),
    forceHasData: bool.optional(),
    seed: seedSchema.optional(),
    http: httpOptionsSchema.optional(),
    concurrency: integerAtLeast(1).optional(),
    ...(({ batchSize, numWorkers, prefetchFactor, iterationsPerEpoch, weightedSampler, chunkCacheBytes, dropLast, sampleConcurrency, memoryBudgetBytes }) =>
      ({ batchSize, numWorkers, prefetchFactor, iterationsPerEpoch, weightedSampler, chunkCacheBytes, dropLast, sampleConcurrency, memoryBudgetBytes }))(loaderOptionsSchema.shape),
  },
  {
    aliases: { datasplit: "csvPath", datasplit_path: "csvPath", tensorstore_cache_bytes: "chunkCacheBytes" },
    python: Object.fromEntries(Object.entries({ ...PYTHON, ...optionInfo.get(loaderOptionsSchema)?.python }).filter(([k]) => k !== "classes")),
  },
);

type ConfigKeys = Exclude<keyof z.input<typeof configSchema>, "csvPath" | "rawValueTransforms">;
const _configKeys: [Exclude<ConfigKeys, keyof CellMapDataSplitOptions | keyof CellMapDataLoaderOptions>] extends [never] ? true : never = true;
void _configKeys;
