/**
 * Reading the structure of zod schemas: which object keys a schema accepts at a field path, so
 * that option keys can be checked, respelt and suggested from the one schema that validates
 * them (no second list of names to keep in step).
 */
import type { z } from "zod";

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: readonly z.ZodType[];
  in?: z.ZodType;
  getter?: () => z.ZodType;
}

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional", "success"]);

/** The schema under optional / nullable / default / readonly / catch / pipe / lazy wrappers. */
function unwrap(s: z.ZodType): z.ZodType {
  for (let i = 0; i < 32; i++) {
    const d = defOf(s);
    if (WRAPPERS.has(d.type) && d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else if (d.type === "lazy" && d.getter) s = d.getter();
    else break;
  }
  return s;
}

/**
 * The keys of a *strict* object schema (one that rejects unknown keys), else null. Loose and
 * stripping objects (transform specs, whose params belong to the transform) are not checked.
 */
export function strictShape(s: z.ZodType): Record<string, z.ZodType> | null {
  const d = defOf(unwrap(s));
  if (d.type !== "object" || !d.shape || !d.catchall || defOf(d.catchall).type !== "never") return null;
  return d.shape;
}

/** The value schema of a record, or the element schema of an array (else null). */
export function itemSchema(s: z.ZodType): z.ZodType | null {
  const d = defOf(unwrap(s));
  if (d.type === "record") return d.valueType ?? null;
  if (d.type === "array") return d.element ?? null;
  return null;
}

/** The schema at a field path (object keys, record keys, array indices), or null. */
export function schemaAt(root: z.ZodType, path: readonly PropertyKey[]): z.ZodType | null {
  let s: z.ZodType | null = root;
  for (const key of path) {
    if (!s) return null;
    const d: Def = defOf(unwrap(s));
    const shape: Record<string, z.ZodType> | null = d.type === "object" ? (d.shape ?? null) : null;
    if (shape) s = Object.hasOwn(shape, String(key)) ? shape[String(key)] : null;
    else s = itemSchema(s);
  }
  return s;
}
