/**
 * Turns zod validation failures into `CellMapError("INVALID_ARGUMENT")` whose message names the
 * offending field (and, for unknown keys, the keys themselves), so a typo in a config is reported
 * where it is, not as a wrong answer later.
 */
import type { z } from "zod";
import { CellMapError } from "../errors.js";

/** Formats a zod issue path (`["rotate", "axes", "q"]`) as `rotate.axes.q` under a prefix. */
export function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out;
}

/** Parses `value` with `schema`; on failure throws INVALID_ARGUMENT listing every issue. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const msgs = r.error.issues.map((issue) => {
    const at = fieldPath(where, issue.path);
    if (issue.code === "unrecognized_keys") {
      return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} in ${at}`;
    }
    return `${at}: ${issue.message}`;
  });
  throw new CellMapError("INVALID_ARGUMENT", `invalid ${where}: ${msgs.join("; ")}`, where);
}
