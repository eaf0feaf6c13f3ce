/**
 * The options of `CellMapImage.open`, defined once: the zod schema below is their only
 * definition, and {@link CellMapImageOptions} is its input type. The schema checks each field and,
 * in one refinement, what depends on several (entries per axis order, patch size, the output
 * dtype against the pad value and value transform), so that `open` checks nothing by hand.
 */
import { z } from "zod";
import { anyNumber, bool, integerAtLeast, nonEmptyString, numberList, signalSchema, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import { OUTPUT_DTYPES, type OutputDtype, sizeOf, type Tensor } from "../tensor.js";
import type { Rng } from "../util/rng.js";

/** Anything with an `apply(tensor, rng)` (value transforms of `transforms/augment`). */
export interface ValueTransformLike {
  apply(t: Tensor, rng: Rng): Tensor;
}

/** Largest patch (voxels) a read may produce: 2^30 float32 values, 4 GiB. */
export const MAX_PATCH_VOXELS = 2 ** 30;

const FLOAT32_EXACT = 2 ** 24;
/** Range of exactly representable integers of each output dtype. */
export const EXACT_RANGE: Record<OutputDtype, [number, number]> = {
  float32: [-FLOAT32_EXACT, FLOAT32_EXACT],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  float64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Whether an image of this class holds labels (everything but `"raw"`). */
export function isLabelClass(c: string | undefined): boolean {
  return c !== undefined && c !== "raw";
}

const anyList = valueWhere<number[]>((v) => Array.isArray(v), "a list of numbers");

const imageShape = {
  /** Local path, `file://`, `http(s)://` or `s3://` location of the multiscale group. */
  path: nonEmptyString,
  /** Class label this image holds (`"raw"`, the default, for input images). */
  targetClass: z.string().optional(),
  /** Requested voxel size in nm, in `axisOrder` (shorter arrays are padded at the front). */
  targetScale: anyList,
  /** Patch shape in voxels, in `axisOrder` (shorter arrays get leading 1s). */
  targetVoxelShape: anyList,
  /** Pad samples outside the image with `padValue` (otherwise clamp to the edge). Default false. */
  pad: bool.optional(),
  /** Value of padded samples: default 0 for raw, NaN for labels. */
  padValue: anyNumber.optional(),
  /** Resampling: default `linear` for raw, `nearest` for labels. */
  interpolation: valueWhere<"nearest" | "linear">((v) => v === "nearest" || v === "linear", '"nearest" or "linear"').optional(),
  /** `"zyx"` (default) or `"yx"`. */
  axisOrder: valueWhere<string>((v) => v === "zyx" || v === "yx", '"zyx" or "yx"').optional(),
  /**
   * 2-D sections of a 3-D image: choose the level by the y/x voxel size alone and step z by the
   * chosen level's own section spacing (the z entry of `targetScale` is ignored), so that a patch
   * with one z voxel is one stored section. What a 2-entry `{ shape: [y, x], scale: [y, x] }`
   * dataset spec asks for. Default: true when `targetScale` has 2 entries and the image has a z
   * axis (as in a dataset), else false.
   */
  sections: bool.optional(),
  /** Value transform applied to every patch after spatial sampling. */
  valueTransform: valueWhere<ValueTransformLike>(
    (v) => typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function",
    "a transform (an object with apply)",
  ).optional(),
  /**
   * Index read along the axis of type `channel` (an axis without a type named `c` or `channel`
   * counts as one). Default 0. Other non-spatial axes must have one entry or be selected by
   * `time`: a larger one is an error naming it.
   */
  channel: integerAtLeast(0).optional(),
  /** Index read along the axis of type `time` (or one named `t`/`time` without a type). Default 0. */
  time: integerAtLeast(0).optional(),
  /**
   * Which series of a bioformats2raw root (`"bioformats2raw.layout"`, images under `0/`, `1/`, …)
   * to read when `path` is such a root. Default 0; when the root holds several, a note (and
   * `info`'s problems) says which was read.
   */
  series: integerAtLeast(0).optional(),
  /** Which entry of `multiscales` to use. Default 0. */
  multiscaleIndex: integerAtLeast(0).optional(),
  /**
   * Open `path` as a bare Zarr array (no multiscales group) with this voxel size in nm, in
   * `axisOrder` restricted to the array's trailing 2 or 3 dims (`[y, x]` or `[z, y, x]`);
   * leading dims are channels. Leave it out for a multiscale group.
   */
  voxelSize: numberList.optional(),
  /** World position (nm) of voxel 0 of a bare array, like `voxelSize` (default zeros). */
  translation: numberList.optional(),
  /**
   * Element type of the patches (default float32). float32 holds integers exactly only up to
   * 2^24: a float32 read of an int32/uint32/int64/uint64 array holding larger values (instance
   * ids) raises `UNSUPPORTED` naming the largest one. `int32` / `uint32` give those values
   * exactly (each must fit, and the pad value must be an integer); `float64` holds integers up
   * to 2^53. Such patches are read without a value transform.
   */
  outputDtype: valueWhere<OutputDtype>((v) => (OUTPUT_DTYPES as readonly unknown[]).includes(v), `one of ${OUTPUT_DTYPES.join(", ")}`).optional(),
  /** HTTP options for remote locations. */
  http: httpOptionsSchema.optional(),
  /** Aborts the metadata reads of `open`. */
  signal: signalSchema.optional(),
};

type ImageInput = z.input<z.ZodObject<typeof imageShape, z.core.$strict>>;

/** Adds an issue at `path` (the message reads `<path> <message>`). */
function issue(ctx: z.core.$RefinementCtx<unknown>, path: string, message: string): void {
  ctx.addIssue({ code: "custom", path: [path], message, input: undefined });
}

/** The checks that span fields: entries per axis order, integer shape, patch size, dtype. */
function checkTogether(o: ImageInput, ctx: z.core.$RefinementCtx<unknown>): void {
  const axisOrder = o.axisOrder ?? "zyx";
  const n = axisOrder.length;
  for (const [name, v] of [
    ["targetScale", o.targetScale],
    ["targetVoxelShape", o.targetVoxelShape],
  ] as const) {
    if (v.length === 0 || v.length > n) return void issue(ctx, name, `must have 1..${n} entries (${axisOrder}), got ${JSON.stringify(v)}`);
    if (v.some((x) => !(typeof x === "number" && Number.isFinite(x) && x > 0))) return void issue(ctx, name, `entries must be positive numbers, got ${JSON.stringify(v)}`);
  }
  if (o.targetVoxelShape.some((x) => !Number.isInteger(x))) return void issue(ctx, "targetVoxelShape", `entries must be integers, got ${JSON.stringify(o.targetVoxelShape)}`);
  const voxels = sizeOf(o.targetVoxelShape);
  if (voxels > MAX_PATCH_VOXELS)
    return void issue(ctx, "targetVoxelShape", `${JSON.stringify(o.targetVoxelShape)} has ${voxels} voxels, more than the ${MAX_PATCH_VOXELS} a patch may hold`);
  if (o.translation !== undefined && o.voxelSize === undefined) {
    return void issue(ctx, "translation", "is only for bare arrays, together with voxelSize (a multiscale group states its own)");
  }
  const d = o.outputDtype;
  if (d === undefined || d === "float32") return;
  if (o.valueTransform) return void issue(ctx, "outputDtype", `${d}: value transforms work on float32 patches; an outputDtype ${d} image is read as stored`);
  if (d === "float64") return;
  const pad = o.padValue ?? (isLabelClass(o.targetClass) ? NaN : 0);
  const [min, max] = EXACT_RANGE[d];
  if ((o.pad ?? false) && !(Number.isInteger(pad) && pad >= min && pad <= max)) {
    issue(ctx, "outputDtype", `${d} needs an integer padValue in [${min}, ${max}], got ${pad} (NaN cannot be stored in ${d})`);
  }
}

/** The schema of `CellMapImage.open`'s options (the only definition of them). */
export const imageOptionsSchema: OptionObject<typeof imageShape> = optionObject(imageShape, { python: { device: PYTHON.device, context: PYTHON.context } }, checkTogether);

/** Options of {@link CellMapImage.open}; `D` is the element type of the patches (`outputDtype`). */
export type CellMapImageOptions<D extends OutputDtype = "float32"> = Omit<ImageInput, "outputDtype"> & {
  /**
   * Element type of the patches (default float32). float32 holds integers exactly only up to
   * 2^24: a float32 read of an int32/uint32/int64/uint64 array holding larger values (instance
   * ids) raises `UNSUPPORTED` naming the largest one. `int32` / `uint32` give those values
   * exactly (each must fit, and the pad value must be an integer); `float64` holds integers up
   * to 2^53. Such patches are read without a value transform.
   */
  outputDtype?: D;
};
