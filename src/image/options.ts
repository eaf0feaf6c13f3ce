/**
 * The options of `CellMapImage.open`: the interface users write and its schema, which
 * `parseOptions` checks them against (a compile-time check fails when their keys drift apart).
 */
import { z } from "zod";
import { anyNumber, bool, integerAtLeast, nonEmptyString, signalSchema, valueWhere } from "../options/fields.js";
import { optionObject, type SameKeys } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import type { HttpStoreOptions } from "../store/http.js";
import { httpOptionsSchema } from "../store/options.js";
import type { OutputDtype, Tensor } from "../tensor.js";
import type { Rng } from "../util/rng.js";

/** Anything with an `apply(tensor, rng)` (value transforms of `transforms/augment`). */
export interface ValueTransformLike {
  apply(t: Tensor, rng: Rng): Tensor;
}

/** Options of {@link CellMapImage.open}. */
export interface CellMapImageOptions<D extends OutputDtype = "float32"> {
  /** Local path, `file://`, `http(s)://` or `s3://` location of the multiscale group. */
  path: string;
  /** Class label this image holds (`"raw"`, the default, for input images). */
  targetClass?: string;
  /** Requested voxel size in nm, in `axisOrder` (shorter arrays are padded at the front). */
  targetScale: number[];
  /** Patch shape in voxels, in `axisOrder` (shorter arrays get leading 1s). */
  targetVoxelShape: number[];
  /** Pad samples outside the image with `padValue` (otherwise clamp to the edge). Default false. */
  pad?: boolean;
  /** Value of padded samples: default 0 for raw, NaN for labels. */
  padValue?: number;
  /** Resampling: default `linear` for raw, `nearest` for labels. */
  interpolation?: "nearest" | "linear";
  /** `"zyx"` (default) or `"yx"`. */
  axisOrder?: string;
  /**
   * 2-D sections of a 3-D image: choose the level by the y/x voxel size alone and step z by the
   * chosen level's own section spacing (the z entry of `targetScale` is ignored), so that a patch
   * with one z voxel is one stored section. What a 2-entry `{ shape: [y, x], scale: [y, x] }`
   * dataset spec asks for. Default: true when `targetScale` has 2 entries and the image has a z
   * axis (as in a dataset), else false.
   */
  sections?: boolean;
  /** Value transform applied to every patch after spatial sampling. */
  valueTransform?: ValueTransformLike;
  /**
   * Index read along the axis of type `channel` (an axis without a type named `c` or `channel`
   * counts as one). Default 0. Other non-spatial axes must have one entry or be selected by
   * `time`: a larger one is an error naming it.
   */
  channel?: number;
  /** Index read along the axis of type `time` (or one named `t`/`time` without a type). Default 0. */
  time?: number;
  /** Which entry of `multiscales` to use. Default 0. */
  multiscaleIndex?: number;
  /**
   * Which series of a bioformats2raw root (`"bioformats2raw.layout"`, images under `0/`, `1/`, …)
   * to read when `path` is such a root. Default 0; when the root holds several, a note (and
   * `info`'s problems) says which was read.
   */
  series?: number;
  /**
   * Open `path` as a bare Zarr array (no multiscales group) with this voxel size in nm, in
   * `axisOrder` restricted to the array's trailing 2 or 3 dims (`[y, x]` or `[z, y, x]`);
   * leading dims are channels. Leave it out for a multiscale group.
   */
  voxelSize?: number[];
  /** World position (nm) of voxel 0 of a bare array, like `voxelSize` (default zeros). */
  translation?: number[];
  /**
   * Element type of the patches (default float32). float32 holds integers exactly only up to
   * 2^24: a float32 read of an int32/uint32/int64/uint64 array holding larger values (instance
   * ids) raises `UNSUPPORTED` naming the largest one. `int32` / `uint32` give those values
   * exactly (each must fit, and the pad value must be an integer); `float64` holds integers up
   * to 2^53. Such patches are read without a value transform.
   */
  outputDtype?: D;
  /** HTTP options for remote locations. */
  http?: HttpStoreOptions;
  signal?: AbortSignal;
}

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
  return valueWhere<{ apply: unknown }>((v) => typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function", "a transform (an object with apply)");
}

const _image: SameKeys<CellMapImageOptions, z.input<typeof imageOptionsSchema>> = true;
void _image;
