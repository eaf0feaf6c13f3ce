/**
 * Field schemas shared by the option objects and the config file: numbers with readable
 * messages, array specs, class lists and relations, transforms, HTTP options, and the values
 * that are not data (signals, functions, objects with methods), which are checked by kind only
 * and passed through as given.
 */
import { z } from "zod";
import { OUTPUT_DTYPES, type OutputDtype } from "../tensor.js";

/** A value for a message: JSON where possible (`[4,0,4]`, `"x"`), else its kind. */
function show(v: unknown): string {
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || v === undefined) return String(v);
  if (typeof v === "function") return "a function";
  try {
    const s = JSON.stringify(v, (_k, x: unknown) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x));
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** A schema for values passing `test`; the message reads `<field> must be <what>, got <value>`. */
export function valueWhere<T>(test: (v: unknown) => boolean, what: string) {
  return z.custom<T>(test, { error: (iss) => `must be ${what}, got ${show(iss.input)}` });
}

/** Any number, NaN and ±Infinity included (e.g. `emptyValue`). */
export const anyNumber = valueWhere<number>((v) => typeof v === "number", "a number");
/** A finite number. */
export const finiteNumber = valueWhere<number>((v) => typeof v === "number" && Number.isFinite(v), "a finite number");
/** A finite number >= 0. */
export const nonNegativeNumber = valueWhere<number>((v) => typeof v === "number" && Number.isFinite(v) && v >= 0, "a non-negative number");
/** A finite number > 0. */
export const positiveNumber = valueWhere<number>((v) => typeof v === "number" && Number.isFinite(v) && v > 0, "a positive number");
/** A safe integer >= `min`. */
export function integerAtLeast(min: number) {
  return valueWhere<number>((v) => Number.isSafeInteger(v) && (v as number) >= min, `an integer >= ${min}`);
}
/** `true` or `false`. */
export const bool = valueWhere<boolean>((v) => typeof v === "boolean", "true or false");
/** A non-empty string. */
export const nonEmptyString = valueWhere<string>((v) => typeof v === "string" && v.length > 0, "a non-empty string");
/** A list of non-empty strings. */
export const nameList = valueWhere<string[]>((v) => Array.isArray(v) && v.every((c) => typeof c === "string" && c.length > 0), "a list of names");
/** A list of finite numbers. */
export const numberList = valueWhere<number[]>((v) => Array.isArray(v) && v.every((c) => typeof c === "number" && Number.isFinite(c)), "a list of finite numbers");

/** Patch shape in voxels: `[z, y, x]`, or `[y, x]` for 2-D sections. */
const shapeSchema = valueWhere<number[]>(
  (v) => Array.isArray(v) && (v.length === 2 || v.length === 3) && v.every((x) => Number.isSafeInteger(x) && x >= 1),
  "2 or 3 positive integers (z y x, or y x)",
);
/** Voxel size in nm: 1 (isotropic), 2 (`[y, x]`) or 3 (`[z, y, x]`) positive numbers. */
const scaleSchema = valueWhere<number[]>(
  (v) => Array.isArray(v) && v.length >= 1 && v.length <= 3 && v.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0),
  "1 to 3 positive numbers (nm, z y x)",
);
/** Element type of an array's tensors. */
const outputDtypeSchema = valueWhere<OutputDtype>((v) => (OUTPUT_DTYPES as readonly unknown[]).includes(v), `one of ${OUTPUT_DTYPES.join(", ")}`);

/** Shared by the `ArraySpec` schemas: the keys of an array spec. */
export const arraySpecShape = {
  /** Patch shape in voxels: `[z, y, x]`, or `[y, x]` for 2-D sections. */
  shape: shapeSchema,
  /** Voxel size in nm: 1 (isotropic), 2 (`[y, x]`: sections at the data's own z spacing) or 3 (`[z, y, x]`) numbers. */
  scale: scaleSchema,
  /**
   * Element type of this array's tensors (default float32). `int32` / `uint32` serve instance
   * ids above 2^24 exactly, `float64` integers up to 2^53; such arrays are served as stored
   * (no value transforms), and integer ones need an integer `emptyValue` when they have
   * classes (NaN cannot be stored).
   */
  outputDtype: outputDtypeSchema.optional(),
};

/** Objects with methods: not data, checked by kind and passed through. */
export const signalSchema = valueWhere<AbortSignal>(
  (v) => typeof v === "object" && v !== null && typeof (v as AbortSignal).aborted === "boolean" && typeof (v as AbortSignal).addEventListener === "function",
  "an AbortSignal",
);

/** A value transform object (`apply`, `toJSON`). */
const transformObjectSchema = valueWhere<object>((v) => typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function", "a transform");
/** A transform's JSON spec `{ type, params }` (or a module spec); its params belong to the transform. */
const transformSpecSchema = z.looseObject({ type: z.string().min(1), params: z.unknown().optional() });
/** A transform object or its JSON spec. */
export const transformInputSchema = z.union([transformObjectSchema, transformSpecSchema], {
  error: (iss) => `must be a transform or a spec { type, params }, got ${show(iss.input)}`,
});
/** Target transforms: one transform, a list aligned with `classes`, or `{ className: transform }`. */
export const targetTransformInputSchema = z.union([transformInputSchema, z.array(transformInputSchema.nullable()), z.record(z.string(), transformInputSchema.nullable())], {
  error: (iss) => `must be a transform, a list of transforms or { className: transform }, got ${show(iss.input)}`,
});

/**
 * A field whose value its layer checks itself, typed as `T`: a datasplit entry's paths (a bad
 * entry is a problem of its row, not an error) and the writer's geometry (checked against the
 * fields it depends on, in one place, by the writer's `configure`).
 */
export function checkedByLayer<T>() {
  return z.custom<T>(() => true);
}
