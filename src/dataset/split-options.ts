/**
 * The options of `CellMapDataSplit.open` (and of the datasplit part of config files): the
 * interfaces users write and their schemas (a compile-time check keeps their keys together).
 */
import { z } from "zod";
import { anyNumber, bool, integerAtLeast, nonEmptyString, signalSchema, targetTransformInputSchema, transformInputSchema, valueWhere } from "../options/fields.js";
import { optionObject, type SameKeys } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import type { HttpStoreOptions } from "../store/http.js";
import { httpOptionsSchema } from "../store/options.js";
import { spatialConfigSchema, type SpatialConfig } from "../transforms/spatial.js";
import { arraySpecsSchema, classesSchema, classRelationDictSchema, padSchema, seedSchema } from "./fields.js";
import type { TargetTransformInput, TransformInput } from "./options.js";
import type { ArraySpecs, DatasetLike } from "./types.js";

/** One (raw, ground truth) pair. `gt` may be omitted in raw-only mode. */
export interface DataSplitEntry {
  raw: string;
  gt?: string | null;
  /** CSV line the entry came from (set by {@link parseDataSplitCsv}). */
  line?: number;
}

/** The object form of a datasplit. */
export interface DataSplitDict {
  train: DataSplitEntry[];
  validate?: DataSplitEntry[];
}

/**
 * Options of {@link CellMapDataSplit.open}. Exactly one source: `datasets` > `datasetDict` >
 * `csvPath`/`csvText`. Keys may also be given in the Python library's snake_case
 * (`input_arrays`, `train_raw_value_transforms`, …); unknown keys are errors (see `config/`).
 */
export interface CellMapDataSplitOptions<I extends ArraySpecs = ArraySpecs, T extends ArraySpecs = ArraySpecs> {
  /** Input arrays by name (their names, with the targets', type the samples: see `DatasetItem`). */
  inputArrays: I;
  targetArrays?: T | null;
  /** Output classes; omitted: raw-only (self-supervised) datasets. */
  classes?: string[] | null;
  emptyValue?: number;
  /** Pad both splits (`true`), neither (`false`, default), or only `"train"` / `"validate"`. */
  pad?: boolean | "train" | "validate";
  datasets?: { train: DatasetLike[]; validate?: DatasetLike[] };
  datasetDict?: DataSplitDict;
  /** Datasplit CSV: a local path, or a `http(s)://` / `s3://` URL read with the `http` options. */
  csvPath?: string;
  /** CSV content (instead of `csvPath`; relative paths stay relative to the working directory). */
  csvText?: string;
  /** Spatial augmentation of the training datasets. */
  spatialTransforms?: SpatialConfig | null;
  /** Default: normalise integer raw to [0, 1] by its dtype maximum, then NaN → 0. `null`: none. */
  trainRawValueTransforms?: TransformInput | null;
  /** Default as for training. */
  valRawValueTransforms?: TransformInput | null;
  /** Default: `Binarize(0)` (raw-only mode: the raw default). `null`: none. */
  targetValueTransforms?: TargetTransformInput | null;
  classRelationDict?: Record<string, string[]> | null;
  forceHasData?: boolean;
  /** Base seed; the k-th entry's dataset gets `seed + k` (train entries first). Default 0. */
  seed?: number;
  http?: HttpStoreOptions;
  /** Datasets opened at once (default 16). */
  concurrency?: number;
  signal?: AbortSignal;
}

const datasetLike = valueWhere<object>((v) => typeof v === "object" && v !== null && typeof (v as { get?: unknown }).get === "function", "a dataset");
/** One entry of a datasplit dict. Values are checked per entry (a bad entry is a problem of its row). */
const dataSplitEntrySchema = optionObject({ raw: z.unknown().optional(), gt: z.unknown().optional(), line: z.unknown().optional() });
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
    spatialTransforms: (spatialConfigSchema as unknown as z.ZodType<SpatialConfig>).nullable().optional(),
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

const _split: SameKeys<CellMapDataSplitOptions, z.input<typeof splitOptionsSchema>> = true;
const _entry: SameKeys<DataSplitEntry, z.input<typeof dataSplitEntrySchema>> = true;
void [_split, _entry];
