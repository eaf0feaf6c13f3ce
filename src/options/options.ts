/**
 * Option objects. Each option object of the library (`CellMapDataset.open`, `CellMapDataSplit.open`,
 * `CellMapDataLoader`, …) and the config file has one zod schema ({@link optionObject}); the
 * schema alone says which keys exist and what they hold. {@link parseOptions} then
 *
 * - respells keys: every key may be given in the API's camelCase (`batchSize`) or in the Python
 *   library's snake_case (`batch_size`), plus the Python names that differ (`aliases`, e.g.
 *   `tensorstore_cache_bytes` for `chunkCacheBytes`), at every level the schema describes (array
 *   specs inside `inputArrays`, `spatialTransforms`, `http.s3` …) — user names such as arrays,
 *   classes and axes are record keys and are never renamed;
 * - rejects an unknown key with the closest known one: `unknown option "clases" (did you mean
 *   "classes"?)`, and a Python option with no counterpart with the reason (`python`);
 * - rejects an object that gives one key in two spellings (`batchSize` and `batch_size`);
 * - validates the values with the schema, naming the field path (`spatialTransforms.mirror.axes.x`).
 *
 * Values that are not plain objects (an `AbortSignal`, transform objects, a `fetch` function,
 * datasets) are passed through untouched: only plain objects and arrays are walked, and the
 * returned options hold the caller's values (respelt keys, same references).
 */
import { z } from "zod";
import { CellMapError } from "../errors.js";
import { itemSchema, schemaAt, strictShape } from "./introspect.js";
import { looksSnake, snakeCase } from "./names.js";
import { didYouMean } from "./suggest.js";

/** What an option object's schema adds to its keys. */
export interface OptionInfo {
  /** Further accepted names, name → API key (Python names that differ from the API's). */
  aliases?: Record<string, string>;
  /** Python library options with no counterpart here, name → why (and what to use instead). */
  python?: Record<string, string>;
}

/** Aliases and Python-only names of the option object schemas. */
export const optionInfo = z.registry<OptionInfo>();

/**
 * A strict object schema for an option object (unknown keys are errors), with its aliases and
 * Python-only names registered for {@link parseOptions}.
 */
export function optionObject<T extends z.core.$ZodLooseShape>(
  shape: T,
  info?: OptionInfo,
  refine?: (value: z.input<z.ZodObject<T, z.core.$strict>>, ctx: z.core.$RefinementCtx<z.output<z.ZodObject<T, z.core.$strict>>>) => void,
): OptionObject<T> {
  let s = z.strictObject(shape);
  if (refine) s = s.superRefine(refine as never);
  if (info) optionInfo.add(s, info);
  return s;
}

/**
 * The type of an option object's schema. Annotating an exported schema with it
 * (`const s: OptionObject<typeof shape> = optionObject(shape)`) keeps the TSDoc of the shape's
 * fields in the shipped `.d.ts`, so that the option types derived from the schema show them.
 */
export type OptionObject<T extends z.core.$ZodLooseShape> = z.ZodObject<T, z.core.$strict>;

/** A field path for messages: `inputArrays.raw.shape[1]`. */
export function fieldPath(path: readonly PropertyKey[], prefix = ""): string {
  let out = prefix;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out;
}

function optionError(where: string, message: string, path: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", `${where ? `${where}: ` : ""}${message}`, path || undefined);
}

/** Plain data objects (object literals, JSON), the only objects whose keys are checked. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Names accepted for each key of a strict object schema: spelling → API key. */
function spellings(schema: z.ZodType, shape: Record<string, z.ZodType>): Map<string, string> {
  const names = new Map<string, string>();
  for (const k of Object.keys(shape)) {
    names.set(k, k);
    names.set(snakeCase(k), k);
  }
  for (const [alias, key] of Object.entries(optionInfo.get(schema)?.aliases ?? {})) names.set(alias, key);
  return names;
}

/** The error for a key the schema does not have. */
function unknownKey(schema: z.ZodType, shape: Record<string, z.ZodType>, name: string, path: readonly PropertyKey[], where: string): CellMapError {
  const at = fieldPath([...path, name]);
  const inside = path.length ? ` in ${fieldPath(path)}` : "";
  const python = optionInfo.get(schema)?.python ?? {};
  if (Object.hasOwn(python, name)) return optionError(where, `option "${name}"${inside} of the Python library has no counterpart here: ${python[name]}`, at);
  const keys = Object.keys(shape);
  const candidates = looksSnake(name) ? keys.map(snakeCase) : keys;
  const hint = didYouMean(name, candidates) || didYouMean(name, [...keys, ...keys.map(snakeCase), ...Object.keys(optionInfo.get(schema)?.aliases ?? {})]);
  return optionError(where, `unknown option "${name}"${inside}${hint}`, at);
}

/**
 * Respells the keys of `value` to the API's names, following `schema` (strict objects, records,
 * arrays), and rejects unknown keys and keys given twice. Returns a new object / array where
 * something was walked; every other value is returned as given.
 */
export function normaliseKeys(schema: z.ZodType, value: unknown, where = "", path: readonly PropertyKey[] = []): unknown {
  const shape = strictShape(schema);
  if (shape && (isPlainObject(value) || (path.length === 0 && typeof value === "object" && value !== null && !Array.isArray(value)))) {
    const names = spellings(schema, shape);
    const out: Record<string, unknown> = {};
    const usedName = new Map<string, string>();
    for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
      const key = names.get(name);
      if (key === undefined) throw unknownKey(schema, shape, name, path, where);
      const before = usedName.get(key);
      if (before !== undefined && v !== undefined && out[key] !== undefined) {
        const at = fieldPath([...path, key]);
        throw optionError(where, `${at} is given twice, as "${before}" and as "${name}"; give one`, at);
      }
      if (v === undefined && out[key] !== undefined) continue;
      usedName.set(key, name);
      out[key] = normaliseKeys(shape[key], v, where, [...path, key]);
    }
    return out;
  }
  const item = itemSchema(schema);
  if (item && Array.isArray(value)) return value.map((v, i) => normaliseKeys(item, v, where, [...path, i]));
  if (item && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = normaliseKeys(item, v, where, [...path, k]);
    return out;
  }
  return value;
}

/** One zod issue as a message: the field path, then what is wrong there. */
function issueText(root: z.ZodType, issue: z.core.$ZodIssue, prefix: string): string {
  const at = fieldPath(issue.path, prefix);
  if (issue.code === "unrecognized_keys") {
    const s = schemaAt(root, issue.path);
    const keys = s ? Object.keys(strictShape(s) ?? {}) : [];
    return issue.keys.map((k) => `unknown option "${k}"${at ? ` in ${at}` : ""}${didYouMean(k, keys)}`).join("; ");
  }
  if (issue.code === "invalid_union") {
    // A member that matched the value's form and failed inside it tells the most.
    const inner = issue.errors.map((list) => list.filter((i) => i.path.length > 0 && i.code !== "invalid_type")).find((list) => list.length > 0);
    if (inner) return issueText(root, { ...inner[0], path: [...issue.path, ...inner[0].path] }, prefix);
  }
  const msg = issue.message;
  if (!at) return msg;
  return /^(must|is|needs|has|entries) /.test(msg) ? `${at} ${msg}` : `${at}: ${msg}`;
}

/**
 * Throws the `INVALID_ARGUMENT` error of a failed zod parse: one line, every issue, the
 * error's `path` the first issue's field path. `where` names the option object or file;
 * `prefix` is the field path of the parsed value (`spatialTransforms`).
 */
export function throwIssues(root: z.ZodType, issues: readonly z.core.$ZodIssue[], where: string, prefix = ""): never {
  const first = issues[0];
  const text =
    issues
      .slice(0, 4)
      .map((i) => issueText(root, i, prefix))
      .join("; ") + (issues.length > 4 ? `; and ${issues.length - 4} more` : "");
  throw optionError(where, text, first ? fieldPath(first.path, prefix) : prefix);
}

/**
 * Checks an option object against its schema (see the module comment) and returns it with the
 * API's key names. Throws `INVALID_ARGUMENT` naming `where` (`"CellMapDataSplit.open"`) and the
 * field path.
 */
export function parseOptions<T>(schema: z.ZodType, value: T, where: string): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw optionError(where, `options must be an object, got ${value === null ? "null" : Array.isArray(value) ? "a list" : typeof value}`, "");
  }
  if (parsed.has(value)) return value;
  const normalised = normaliseKeys(schema, value, where);
  const r = schema.safeParse(normalised);
  if (!r.success) throwIssues(schema, r.error.issues, where);
  parsed.add(normalised as object);
  return normalised as T;
}

/**
 * Option objects that have been checked: the results of {@link parseOptions}, and the options a
 * layer builds for the layer below out of options it has checked ({@link checked}). Handed down
 * as they are, they are not parsed again: a public `open()` parses its options once.
 */
const parsed = new WeakSet<object>();

/**
 * Marks options built from checked options (a dataset's options for its images, a split's for
 * its rows) so that the `open()` they are handed to does not parse them again. Only for options
 * whose every field comes from a checked value.
 */
export function checked<T extends object>(options: T): T {
  parsed.add(options);
  return options;
}
