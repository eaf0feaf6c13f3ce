/**
 * The options of `CellMapDataset` and everything about them that needs no I/O: the schema (their
 * only definition; `CellMapDatasetOptions` is its input type), array specs resolved to z y x ({@link resolveSpec}), transforms resolved from objects
 * or JSON specs, and the checks of classes, relations, spatial config, seed and dtypes
 * ({@link checkOptions}; {@link validateDatasetOptions} for the datasplit, which checks the
 * options shared by its rows once). Every problem is `INVALID_ARGUMENT` naming the field.
 */
import { z } from "zod";
import { anyNumber, bool, nonEmptyString, signalSchema, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject, parseOptions } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import { spatialConfigSchema } from "../transforms/spatial.js";
import {
  arraySpecsSchema,
  classesSchema,
  classRelationDictSchema,
  foregroundSchema,
  seedSchema,
  type TargetTransformInput,
  targetTransformInput,
  type TransformInput,
  transformInput,
} from "./fields.js";
import { didYouMean } from "../options/suggest.js";
import { invalid } from "../errors.js";
import { MAX_PATCH_VOXELS } from "../image/options.js";
import type { OutputDtype } from "../tensor.js";
import { PerClass } from "../transforms/augment/compose.js";
import { loadTransform } from "../transforms/registry.js";
import { parseSpatialConfig } from "../transforms/spatial.js";
import type { TransformSpec, ValueTransform } from "../transforms/types.js";
import type { ArraySpec, ArraySpecs, DatasetItem } from "./types.js";

export type { TargetTransformInput, TransformInput };

const datasetShape = {
  /** Raw multiscale group (local path, `file://`, `http(s)://`, `s3://`). */
  rawPath: nonEmptyString,
  /** Ground-truth path with the bracket class list, e.g. `.../crop155/[mito,er,nuc]`. */
  targetPath: z.string().nullable().optional(),
  /** Output class order. Omitted (or null): raw-only mode, targets are raw patches. */
  classes: classesSchema.nullable().optional(),
  /** Input arrays by name (at least one). */
  inputArrays: arraySpecsSchema,
  /** Target arrays by name. */
  targetArrays: arraySpecsSchema.nullable().optional(),
  /** Spatial augmentation config (used only when `isTrain`). */
  spatialTransforms: spatialConfigSchema.nullable().optional(),
  /** Value transform of every input patch. */
  rawValueTransforms: transformInput.nullable().optional(),
  /** Value transforms of target patches (per class, before stacking). */
  targetValueTransforms: targetTransformInput.nullable().optional(),
  /** Mutually exclusive classes: `{ cyto: ["mito", "nuc"] }` infers true negatives of `cyto`. */
  classRelationDict: classRelationDictSchema.nullable().optional(),
  /** Enables spatial augmentation. Default false. */
  isTrain: bool.optional(),
  /** Only `"zyx"` (the API axis order of specs, centres and tensors). */
  axisOrder: valueWhere<"zyx">((v) => v === "zyx", '"zyx"').optional(),
  /** Report data present without reading class counts; `verify()` is then true. Default false. */
  forceHasData: bool.optional(),
  /** Value of unknown label voxels. Default NaN. */
  emptyValue: anyNumber.optional(),
  /** Pad reads outside the data (raw with 0, labels with `emptyValue`). Default true. */
  pad: bool.optional(),
  /** Seed of all random draws. Default 0. */
  seed: seedSchema.optional(),
  /**
   * Training samples that find the foreground: with probability `p`, a centre whose target patch
   * has less than `minFraction` foreground voxels (over `classes`, default all; NaN is unknown,
   * not foreground) is redrawn, up to `maxTries` (default 20) centres. Redraws come from a
   * stream of (seed, epoch, index, try); the metadata reports the tries. Used when `isTrain`.
   */
  foreground: foregroundSchema.nullable().optional(),
  /** HTTP options for remote locations (only plain-data fields survive `describe()`). */
  http: httpOptionsSchema.optional(),
  /** Aborts the metadata and class-count reads of `open`. */
  signal: signalSchema.optional(),
  /** Internal (set by `fromDescription`): the known result of the class-count check. */
  knownHasData: bool.optional(),
};

/** The schema of `CellMapDataset.open`'s options (their only definition). */
export const datasetOptionsSchema: OptionObject<typeof datasetShape> = optionObject(datasetShape, { python: PYTHON });

/**
 * Options of {@link CellMapDataset.open}. `I` and `T` are the input and target array specs (their
 * names type the samples, see {@link DatasetItem}).
 */
export type CellMapDatasetOptions<I extends ArraySpecs = ArraySpecs, T extends ArraySpecs = ArraySpecs> = Omit<
  z.input<typeof datasetOptionsSchema>,
  "inputArrays" | "targetArrays"
> & {
  /** Input arrays by name (at least one). */
  inputArrays: I;
  /** Target arrays by name. */
  targetArrays?: T | null;
};

/** An array spec resolved to z y x. */
export interface Resolved {
  name: string;
  spec: ArraySpec;
  shape: number[];
  /** z y x; for `sections`, z is the data's section spacing once the images are open. */
  scale: number[];
  /** A 2-entry shape with a 2-entry scale: z-sections at the data's own z spacing. */
  sections: boolean;
  /** Element type of the array's tensors. */
  dtype: OutputDtype;
}

/** Array names a sample uses for itself. */
const RESERVED = new Set(["idx", "metadata"]);

/**
 * Resolves one spec (its fields already checked by `arraySpecSchema`) to z y x, with the checks
 * no single field can make; returns whether it is 2-D.
 */
function resolveSpec(name: string, spec: ArraySpec, where: string): { r: Resolved; twoD: boolean } {
  const p = `${where}.${name}`;
  if (RESERVED.has(name) || name.length === 0) throw invalid(p, `array name ${JSON.stringify(name)} is reserved or empty`);
  const { shape, scale } = spec;
  if (shape.reduce((a, b) => a * b, 1) > MAX_PATCH_VOXELS) {
    throw invalid(`${p}.shape`, `shape ${JSON.stringify(shape)} has more than ${MAX_PATCH_VOXELS} voxels`);
  }
  if (shape.length === 3 && scale.length === 2) throw invalid(`${p}.scale`, "a 3-D shape needs a 3-entry (or 1-entry) scale");
  const twoD = shape.length === 2;
  const scale3 = [...Array(3 - scale.length).fill(scale[0]), ...scale];
  const shape3 = twoD ? [1, ...shape] : [...shape];
  const sections = twoD && scale.length === 2;
  const dtype = spec.outputDtype ?? "float32";
  const kept = { shape: [...shape], scale: [...scale], ...(spec.outputDtype !== undefined && { outputDtype: dtype }) };
  return { r: { name, spec: kept, shape: shape3, scale: scale3, sections, dtype }, twoD };
}

/** A transform object, or one built from its spec (module transforms imported). */
export async function resolveTransform(t: TransformInput | null | undefined, where: string): Promise<ValueTransform | null> {
  if (t === null || t === undefined) return null;
  if (typeof (t as ValueTransform).apply === "function") return t as ValueTransform;
  return loadTransform(t, where);
}

function isSpecOrTransform(t: unknown): t is TransformInput {
  if (typeof t !== "object" || t === null) return false;
  return typeof (t as ValueTransform).apply === "function" || typeof (t as TransformSpec).type === "string";
}

/** Throws when `t` (or a transform it composes) changes input values only (`inputsOnly`). */
function refuseInputsOnly(t: ValueTransform | null, where: string): ValueTransform | null {
  if (t === null) return t;
  const inner = (t as { transforms?: unknown }).transforms;
  const parts = Array.isArray(inner) ? inner : inner && typeof inner === "object" ? Object.values(inner) : [];
  for (const p of parts) refuseInputsOnly(p as ValueTransform, where);
  if ((t as { inputsOnly?: boolean }).inputsOnly) {
    const name = t.toJSON().type;
    throw invalid(where, `${name} changes input values only (labels would no longer match their raw): give it in rawValueTransforms`);
  }
  return t;
}

/** Normalises target transforms to one transform for all classes, or a PerClass mapping. */
export async function resolveTargetTransforms(t: TargetTransformInput | null | undefined, classes: string[] | null): Promise<ValueTransform | null> {
  return refuseInputsOnly(await resolveTargetTransformsOf(t, classes), "targetValueTransforms");
}

async function resolveTargetTransformsOf(t: TargetTransformInput | null | undefined, classes: string[] | null): Promise<ValueTransform | null> {
  const where = "targetValueTransforms";
  if (t === null || t === undefined) return null;
  if (Array.isArray(t)) {
    if (!classes || t.length !== classes.length) {
      throw invalid(where, `a list of target transforms must have one entry per class (${classes?.length ?? 0}), got ${t.length}`);
    }
    const map: Record<string, ValueTransform> = {};
    for (const [i, x] of t.entries()) {
      const r = await resolveTransform(x, `${where}[${i}]`);
      if (r) map[classes[i]] = r;
    }
    return new PerClass(map, classes);
  }
  if (isSpecOrTransform(t)) {
    const r = await resolveTransform(t, where);
    if (r instanceof PerClass && !classes) throw invalid(where, "per-class target transforms need classes (raw-only mode has none)");
    return r;
  }
  if (typeof t !== "object") throw invalid(where, "expected a transform, a list or { className: transform }");
  if (!classes) throw invalid(where, "per-class target transforms need classes (raw-only mode has none)");
  const map: Record<string, ValueTransform> = {};
  for (const [k, x] of Object.entries(t)) {
    const r = await resolveTransform(x, `${where}.${k}`);
    if (r) map[k] = r;
  }
  return new PerClass(map, classes);
}

/**
 * Resolves options their schema has checked (every field on its own) to what the dataset uses,
 * with the checks that span fields (2-D against 3-D specs, names, relations against classes,
 * the spatial config against the dimensionality, dtypes against `emptyValue`). Needs no I/O;
 * throws `INVALID_ARGUMENT` naming the field.
 */
export function checkOptions(opts: Omit<CellMapDatasetOptions, "rawPath">) {
  const classes = opts.classes ?? null;
  if (Object.keys(opts.inputArrays).length === 0) {
    throw invalid("inputArrays", "inputArrays must name at least one array");
  }
  const inputSpecs = Object.entries(opts.inputArrays).map(([k, v]) => resolveSpec(k, v, "inputArrays"));
  const targetSpecs = Object.entries(opts.targetArrays ?? {}).map(([k, v]) => resolveSpec(k, v, "targetArrays"));
  const twoD = inputSpecs[0].twoD;
  for (const s of [...inputSpecs, ...targetSpecs]) {
    if (s.twoD !== twoD) throw invalid(s.r.name, "all array shapes must be 2-D ([y, x]) or all 3-D ([z, y, x])");
  }
  const clash = targetSpecs.find((t) => t.r.name in opts.inputArrays);
  if (clash) throw invalid("targetArrays", `array ${JSON.stringify(clash.r.name)} is both an input and a target`);
  const relations = opts.classRelationDict ?? {};
  checkRelations(relations, classes);
  const fg = opts.foreground ?? null;
  if (fg) {
    if (!classes || targetSpecs.length === 0) throw invalid("foreground", "foreground needs classes and targetArrays (it measures the target patch)");
    (fg.classes ?? []).forEach((c, k) => {
      if (!classes.includes(c))
        throw invalid(`foreground.classes[${k}]`, `foreground.classes names ${JSON.stringify(c)}, which is not in classes [${classes.join(", ")}]${didYouMean(c, classes)}`);
    });
  }
  const spatial = opts.spatialTransforms ? parseSpatialConfig(opts.spatialTransforms, twoD ? ["y", "x"] : ["z", "y", "x"]) : null;
  const emptyValue = opts.emptyValue ?? NaN;
  for (const { r } of targetSpecs) {
    if (
      classes &&
      (r.dtype === "int32" || r.dtype === "uint32") &&
      !(Number.isInteger(emptyValue) && (r.dtype === "int32" ? Math.abs(emptyValue) < 2 ** 31 : emptyValue >= 0 && emptyValue < 2 ** 32))
    ) {
      throw invalid(
        `targetArrays.${r.name}.outputDtype`,
        `outputDtype ${r.dtype} needs an integer emptyValue that fits it (unknown voxels), got ${emptyValue}: NaN cannot be stored in ${r.dtype}`,
      );
    }
  }
  return { inputSpecs, targetSpecs, twoD, classes, relations, spatial };
}

/** Every class a relation names, key or value, must be an output class (else it has no effect). */
function checkRelations(relations: Record<string, string[]>, classes: string[] | null): void {
  const keys = Object.keys(relations);
  if (keys.length === 0) return;
  if (!classes) throw invalid("classRelationDict", "classRelationDict needs classes (raw-only mode has none)");
  for (const c of keys) {
    if (!classes.includes(c)) {
      throw invalid(`classRelationDict.${c}`, `classRelationDict names class ${JSON.stringify(c)}, which is not in classes [${classes.join(", ")}]${didYouMean(c, classes)}`);
    }
    relations[c].forEach((x, i) => {
      if (!classes.includes(x)) {
        throw invalid(
          `classRelationDict.${c}[${i}]`,
          `classRelationDict.${c} names class ${JSON.stringify(x)}, which is not in classes [${classes.join(", ")}]${didYouMean(x, classes)}`,
        );
      }
    });
  }
}

/**
 * Checks the options that do not depend on the data (array specs, classes, relations, spatial
 * config, seed …) and throws `INVALID_ARGUMENT` naming the field. `CellMapDataSplit` calls it
 * once so that a bad option is an error, not one problem per row.
 */
export function validateDatasetOptions(opts: Omit<CellMapDatasetOptions, "rawPath">): void {
  checkOptions(parseOptions(DATASET_CHECK_SCHEMA, opts, "options"));
}

/** The dataset options without `rawPath` (what is common to every row of a split). */
const DATASET_CHECK_SCHEMA = datasetOptionsSchema.partial({ rawPath: true });
