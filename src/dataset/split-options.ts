/**
 * The options of `CellMapDataSplit.open` (and of the datasplit part of config files), defined
 * once: the schemas below are their only definition, and the option types are their input types.
 */
import { z } from "zod";
import { anyNumber, bool, checkedByLayer, integerAtLeast, nonEmptyString, signalSchema, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import { spatialConfigSchema } from "../transforms/spatial.js";
import { arraySpecsSchema, classesSchema, classRelationDictSchema, foregroundSchema, padSchema, seedSchema, targetTransformInput, transformInput } from "./fields.js";
import type { ArraySpecs, DatasetLike } from "./types.js";

/** The object form of a datasplit. */
export interface DataSplitDict {
  train: DataSplitEntry[];
  validate?: DataSplitEntry[];
}

const datasetLike = valueWhere<DatasetLike>((v) => typeof v === "object" && v !== null && typeof (v as { get?: unknown }).get === "function", "a dataset");
/** One entry of a datasplit dict. Values are checked per entry (a bad entry is a problem of its row). */
const dataSplitEntryShape = {
  /** The raw multiscale group. */
  raw: checkedByLayer<string>(),
  /** The ground truth with its bracket class list; may be omitted in raw-only mode. */
  gt: checkedByLayer<string | null>().optional(),
  /** CSV line the entry came from (set by {@link parseDataSplitCsv}). */
  line: checkedByLayer<number>().optional(),
};
const dataSplitEntrySchema: OptionObject<typeof dataSplitEntryShape> = optionObject(dataSplitEntryShape);
/** One (raw, ground truth) pair. `gt` may be omitted in raw-only mode. */
export type DataSplitEntry = z.input<typeof dataSplitEntrySchema>;
const entries = z.array(dataSplitEntrySchema);

const splitShape = {
  /** Input arrays by name (their names, with the targets', type the samples: see `DatasetItem`). */
  inputArrays: arraySpecsSchema,
  targetArrays: arraySpecsSchema.nullable().optional(),
  /** Output classes; omitted: raw-only (self-supervised) datasets. */
  classes: classesSchema.nullable().optional(),
  emptyValue: anyNumber.optional(),
  /** Pad both splits (`true`), neither (`false`, default), or only `"train"` / `"validate"`. */
  pad: padSchema.optional(),
  datasets: optionObject({ train: z.array(datasetLike), validate: z.array(datasetLike).optional() }).optional(),
  datasetDict: optionObject({ train: entries, validate: entries.optional() }).optional(),
  /** Datasplit CSV: a local path, or a `http(s)://` / `s3://` URL read with the `http` options. */
  csvPath: nonEmptyString.optional(),
  /** CSV content (instead of `csvPath`; relative paths stay relative to the working directory). */
  csvText: z.string().optional(),
  /** Spatial augmentation of the training datasets. */
  spatialTransforms: spatialConfigSchema.nullable().optional(),
  /** Default: normalise integer raw to [0, 1] by its dtype maximum, then NaN → 0. `null`: none. */
  trainRawValueTransforms: transformInput.nullable().optional(),
  /** Default as for training. */
  valRawValueTransforms: transformInput.nullable().optional(),
  /** Default: `Binarize(0)` (raw-only mode: the raw default). `null`: none. */
  targetValueTransforms: targetTransformInput.nullable().optional(),
  classRelationDict: classRelationDictSchema.nullable().optional(),
  forceHasData: bool.optional(),
  /** Base seed; the k-th entry's dataset gets `seed + k` (train entries first). Default 0. */
  /** Training samples that find the foreground (see `CellMapDatasetOptions.foreground`); training rows only. */
  foreground: foregroundSchema.nullable().optional(),
  seed: seedSchema.optional(),
  http: httpOptionsSchema.optional(),
  /** Datasets opened at once (default 16). */
  concurrency: integerAtLeast(1).optional(),
  signal: signalSchema.optional(),
};

/** The schema of `CellMapDataSplit.open`'s options and of the datasplit part of a config file (their only definition). */
export const splitOptionsSchema: OptionObject<typeof splitShape> = optionObject(splitShape, { python: PYTHON });

/**
 * Options of {@link CellMapDataSplit.open}. Exactly one source: `datasets` > `datasetDict` >
 * `csvPath`/`csvText`. Keys may also be given in the Python library's snake_case
 * (`input_arrays`, `train_raw_value_transforms`, …); unknown keys are errors (see `config/`).
 */
export type CellMapDataSplitOptions<I extends ArraySpecs = ArraySpecs, T extends ArraySpecs = ArraySpecs> = Omit<
  z.input<typeof splitOptionsSchema>,
  "inputArrays" | "targetArrays"
> & {
  /** Input arrays by name (their names, with the targets', type the samples: see `DatasetItem`). */
  inputArrays: I;
  /** Target arrays by name. */
  targetArrays?: T | null;
};
