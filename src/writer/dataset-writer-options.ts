/**
 * The options of `CellMapDatasetWriter.open`: the interfaces users write and their schemas (a
 * compile-time check keeps their keys together).
 */
import { z } from "zod";
import { arraySpecsSchema } from "../dataset/fields.js";
import type { ArraySpec, ArraySpecs } from "../dataset/types.js";
import { arraySpecShape, bool, finiteNumber, integerAtLeast, nonEmptyString, numberList, signalSchema, transformInputSchema } from "../options/fields.js";
import { optionObject, type SameKeys } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import type { HttpStoreOptions } from "../store/http.js";
import { httpOptionsSchema } from "../store/options.js";
import type { TransformSpec, ValueTransform } from "../transforms/types.js";
import type { Bounds, ImageWriterOptions } from "./image-options.js";

/** A target array spec: window `shape` (voxels) and `scale` (nm), optionally `nChannels`. */
export interface WriterArraySpec extends ArraySpec {
  /** Channels per class (adds a `c` axis to each output image). */
  nChannels?: number;
}

/** The storage options of each class image, as {@link ImageWriter} takes them. */
type ImageStorageOptions = Pick<ImageWriterOptions, "blend" | "dtype" | "fillValue" | "format" | "compressor" | "pyramid" | "pyramidMethod">;

/** Options of {@link CellMapDatasetWriter.open} (`I`: the input array specs, which type the samples). */
export interface CellMapDatasetWriterOptions<I extends ArraySpecs = ArraySpecs> extends ImageStorageOptions {
  /** Raw multiscale group the inputs are read from (local path or URL). */
  rawPath: string;
  /** Where the images go, one per class: a local directory or an `s3://bucket/prefix` URL (credentials, endpoint: `http.s3`). */
  targetPath: string;
  /** Classes to write. */
  classes: string[];
  /** Channel order of model outputs given per target array (default `classes`; may be a superset). */
  modelClasses?: string[];
  /** Input arrays (model inputs) by name: `{ shape, scale }`, z y x (or y x for 2-D). */
  inputArrays: I;
  /** Target arrays (model outputs) by name. */
  targetArrays: Record<string, WriterArraySpec>;
  /** Region to predict per target array, nm: `{ z: [lo, hi], y: [lo, hi], x: [lo, hi] }`. */
  targetBounds: Record<string, Bounds>;
  /** `"zyx"` for 3-D specs (default), `"yx"` for 2-D specs and images. */
  axisOrder?: "zyx" | "yx";
  /**
   * Value transform of every input patch (object or JSON spec). Default: the training default
   * of `CellMapDataSplit` (`defaultRawTransform()`: integer raw scaled to [0, 1], NaN → 0), so a
   * model sees the same input values at inference as in training; `null`: raw values as read.
   */
  rawValueTransforms?: ValueTransform | TransformSpec | null;
  /** Halo voxels on each side of a tile (see {@link ImageWriter}). Default 0. */
  overlap?: number | number[];
  /** Replace existing class images. Default false (existing output is a `WRITE_CONFLICT`). */
  overwrite?: boolean;
  /** Continue existing output: the index space becomes the tiles not written yet. */
  resume?: boolean;
  http?: HttpStoreOptions;
  signal?: AbortSignal;
  /** Internal (descriptions): tiles served, as `[start, end)` ranges; null = all. */
  tiles?: [number, number][] | null;
  /** Internal (descriptions): open existing output without touching it. */
  attach?: boolean;
}

/** A writer target array spec: an array spec plus `nChannels`. */
export const writerArraySpecSchema = optionObject(
  { ...arraySpecShape, nChannels: integerAtLeast(1).optional() },
  { python: { scale_level: "the writer writes s0 at the spec's scale, plus `pyramid` downsampled levels" } },
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

const _writer: SameKeys<CellMapDatasetWriterOptions, z.input<typeof datasetWriterOptionsSchema>> = true;
const _writerSpec: SameKeys<WriterArraySpec, z.input<typeof writerArraySpecSchema>> = true;
void [_writer, _writerSpec];
