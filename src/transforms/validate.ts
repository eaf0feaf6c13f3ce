/**
 * Turns zod validation failures into `CellMapError("INVALID_ARGUMENT")` whose message names the
 * offending field (and, for unknown keys, the keys themselves with the closest known one), so a
 * typo in a config is reported where it is, not as a wrong answer later.
 */
import { z } from "zod";
import { throwIssues } from "../options/options.js";

/** A probability in [0, 1] (the augmentations' `p`s). */
export const probability = z.custom<number>((v) => typeof v === "number" && v >= 0 && v <= 1, {
  error: (iss) => `must be a probability in [0, 1], got ${typeof iss.input === "number" ? iss.input : JSON.stringify(iss.input)}`,
});

/** `[min, max]` with min <= max, each at least `lo` (the augmentations' ranges). */
export function minMaxRange(lo = Number.NEGATIVE_INFINITY) {
  return z.tuple([z.number().min(lo), z.number().min(lo)]).refine(([a, b]) => a <= b, "expected [min, max] with min <= max");
}

/** Parses `value` with `schema`; on failure throws INVALID_ARGUMENT naming every issue's field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  return throwIssues(schema, r.error.issues, "", where);
}
