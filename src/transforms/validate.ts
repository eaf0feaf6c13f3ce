/**
 * Turns zod validation failures into `CellMapError("INVALID_ARGUMENT")` whose message names the
 * offending field (and, for unknown keys, the keys themselves with the closest known one), so a
 * typo in a config is reported where it is, not as a wrong answer later.
 */
import type { z } from "zod";
import { throwIssues } from "../options/options.js";

/** Parses `value` with `schema`; on failure throws INVALID_ARGUMENT naming every issue's field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  return throwIssues(schema, r.error.issues, "", where);
}
