/**
 * Schemas of the values the dataset layer's options share: array specs, classes, class
 * relations, padding, seeds (a compile-time check keeps `arraySpecSchema` and `ArraySpec` to the
 * same keys).
 */
import { z } from "zod";
import { arraySpecShape, integerAtLeast, nameList, valueWhere } from "../options/fields.js";
import { optionObject, type SameKeys } from "../options/options.js";
import type { ArraySpec } from "./types.js";

/** A dataset array spec `{ shape, scale, outputDtype? }` (z y x). */
export const arraySpecSchema = optionObject(arraySpecShape);
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

const _spec: SameKeys<ArraySpec, z.input<typeof arraySpecSchema>> = true;
void _spec;
