/**
 * The options of `CellMapDatasetWriter.open`, defined once: the schemas below are their only
 * definition, and the option types are their input types.
 */
import { z } from "zod";
import { arraySpecsSchema, transformInput } from "../dataset/fields.js";
import type { ArraySpecs } from "../dataset/types.js";
import { arraySpecShape, bool, checkedByLayer, integerAtLeast, nonEmptyString, numberList, signalSchema } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import { type Bounds, storageShape } from "./image-options.js";

const writerArraySpecShape = {
  ...arraySpecShape,
  /** Channels per class (adds a `c` axis to each output image). */
  nChannels: integerAtLeast(1).optional(),
};
/** A writer target array spec: an array spec plus `nChannels`. */
export const writerArraySpecSchema: OptionObject<typeof writerArraySpecShape> = optionObject(writerArraySpecShape, {
  python: { scale_level: "the writer writes s0 at the spec's scale, plus `pyramid` downsampled levels" },
});
/** A target array spec: window `shape` (voxels) and `scale` (nm), optionally `nChannels`. */
export type WriterArraySpec = z.input<typeof writerArraySpecSchema>;

const datasetWriterShape = {
  /** Raw multiscale group the inputs are read from (local path or URL). */
  rawPath: nonEmptyString,
  /** Where the images go, one per class: a local directory or an `s3://bucket/prefix` URL (credentials, endpoint: `http.s3`). */
  targetPath: nonEmptyString,
  /** Classes to write. */
  classes: checkedByLayer<string[]>(),
  /** Channel order of model outputs given per target array (default `classes`; may be a superset). */
  modelClasses: checkedByLayer<string[]>().optional(),
  /** Input arrays (model inputs) by name: `{ shape, scale }`, z y x (or y x for 2-D). */
  inputArrays: arraySpecsSchema,
  /** Target arrays (model outputs) by name. */
  targetArrays: z.record(z.string(), writerArraySpecSchema),
  /** Region to predict per target array, nm: `{ z: [lo, hi], y: [lo, hi], x: [lo, hi] }`. */
  targetBounds: z.record(z.string(), z.record(z.string(), numberList)) as unknown as z.ZodType<Record<string, Bounds>, Record<string, Bounds>>,
  /** `"zyx"` for 3-D specs (default), `"yx"` for 2-D specs and images. */
  axisOrder: checkedByLayer<"zyx" | "yx">().optional(),
  /**
   * Value transform of every input patch (object or JSON spec). Default: the training default
   * of `CellMapDataSplit` (`defaultRawTransform()`: integer raw scaled to [0, 1], NaN → 0), so a
   * model sees the same input values at inference as in training; `null`: raw values as read.
   */
  rawValueTransforms: transformInput.nullable().optional(),
  /** Halo voxels on each side of a tile (see {@link ImageWriter}). Default 0. */
  overlap: checkedByLayer<number | number[]>().optional(),
  ...storageShape,
  /** Replace existing class images. Default false (existing output is a `WRITE_CONFLICT`). */
  overwrite: bool.optional(),
  /** Continue existing output: the index space becomes the tiles not written yet. */
  resume: bool.optional(),
  /** Request options of remote inputs and `s3://` outputs. */
  http: httpOptionsSchema.optional(),
  /** Aborts the metadata reads of `open`. */
  signal: signalSchema.optional(),
  /** Internal (descriptions): tiles served, as `[start, end)` ranges; null = all. */
  tiles: checkedByLayer<[number, number][] | null>().optional(),
  /** Internal (descriptions): open existing output without touching it. */
  attach: bool.optional(),
};

/** The schema of `CellMapDatasetWriter.open`'s options (their only definition). */
export const datasetWriterOptionsSchema: OptionObject<typeof datasetWriterShape> = optionObject(datasetWriterShape, { aliases: { empty_value: "fillValue" }, python: PYTHON });

/** Options of {@link CellMapDatasetWriter.open} (`I`: the input array specs, which type the samples). */
export type CellMapDatasetWriterOptions<I extends ArraySpecs = ArraySpecs> = Omit<z.input<typeof datasetWriterOptionsSchema>, "inputArrays"> & {
  /** Input arrays (model inputs) by name: `{ shape, scale }`, z y x (or y x for 2-D). */
  inputArrays: I;
};
