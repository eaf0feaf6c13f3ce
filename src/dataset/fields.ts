/**
 * Schemas of the values the dataset layer's options share, and the only definitions of their
 * types: array specs, classes, class relations, padding, seeds, transform inputs.
 */
import { z } from "zod";
import { arraySpecShape, integerAtLeast, nameList, targetTransformInputSchema, transformInputSchema, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import type { TransformSpec, ValueTransform } from "../transforms/types.js";

/** A dataset array spec `{ shape, scale, outputDtype? }` (z y x). */
export const arraySpecSchema: OptionObject<typeof arraySpecShape> = optionObject(arraySpecShape);
/**
 * One requested array: patch `shape` in voxels and voxel `scale` in nm, both z y x. A 2-entry
 * shape `[y, x]` asks for 2-D z-slices (see `CellMapDataset`); its scale may have 2 entries
 * (`[y, x]`: sections, the level is chosen by y/x alone and z steps by the data's own section
 * spacing) or 3 (`[z, y, x]`, an explicit z step).
 */
export type ArraySpec = z.input<typeof arraySpecSchema>;
/** Array specs by array name. */
export const arraySpecsSchema = z.record(z.string(), arraySpecSchema);
/** Output classes: a non-empty list of distinct names. */
export const classesSchema = valueWhere<string[]>(
  (v) => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === "string" && c.length > 0) && new Set(v).size === v.length,
  "a non-empty list of distinct class names (omit it for raw-only mode)",
);
/** `{ class: [mutually exclusive classes] }`. */
export const classRelationDictSchema = z.record(z.string(), nameList);
/** Padding of a split: both (`true`), neither (`false`), or only `"train"` / `"validate"`. */
export const padSchema = valueWhere<boolean | "train" | "validate">(
  (v) => typeof v === "boolean" || (typeof v === "string" && ["train", "validate"].includes(v.toLowerCase())),
  'true, false, "train" or "validate"',
);
/** A random seed. */
export const seedSchema = integerAtLeast(0);

const fraction = valueWhere<number>((v) => typeof v === "number" && v >= 0 && v <= 1, "a number in [0, 1]");
const foregroundShape = {
  /** Least fraction of the target patch's voxels that must be foreground (> 0 in a listed class). */
  minFraction: fraction,
  /** Classes that count as foreground (default: every class). */
  classes: nameList.optional(),
  /** Centres tried at most per sample; the last is kept whatever its foreground. Default 20. */
  maxTries: integerAtLeast(1).optional(),
  /** Probability that a sample seeks the foreground at all. Default 1. */
  p: fraction.optional(),
};
/** `foreground`: samples that find the foreground (training datasets). */
export const foregroundSchema: OptionObject<typeof foregroundShape> = optionObject(foregroundShape);
/**
 * Foreground-seeking samples: with probability `p` a training sample whose target patch has less
 * than `minFraction` foreground voxels (NaN is unknown, not foreground) is redrawn at another
 * centre, up to `maxTries` centres in all.
 */
export type ForegroundOptions = z.input<typeof foregroundSchema>;

/** A value transform object or its JSON spec. */
export type TransformInput = ValueTransform | TransformSpec;

/**
 * Target value transforms: one for every class, a list aligned with `classes`, or
 * `{ className: transform }` (classes without an entry are left as read).
 */
export type TargetTransformInput = TransformInput | (TransformInput | null)[] | Record<string, TransformInput | null>;

/** A value transform or its spec (checked by kind; a spec is built by the transform registry). */
export const transformInput = transformInputSchema as unknown as z.ZodType<TransformInput, TransformInput>;
/** Target value transforms (see {@link TargetTransformInput}). */
export const targetTransformInput = targetTransformInputSchema as unknown as z.ZodType<TargetTransformInput, TargetTransformInput>;
