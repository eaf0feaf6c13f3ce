/**
 * Ground-truth path bracket syntax: `.../groundtruth/crop155/[mito,er,nuc]` says that the crop
 * annotates `mito`, `er` and `nuc`, each stored as a multiscale group at `.../crop155/<class>`.
 * The bracket may sit anywhere in the path (`.../[mito,er]/labels` → `.../mito/labels`).
 */
import { CellMapError } from "../errors.js";

/** A parsed target path: a template with one `{label}` slot and the annotated classes. */
export interface TargetPath {
  /** The path with the bracket replaced by `{label}` (unchanged when there is no bracket). */
  template: string;
  /** Annotated classes, in bracket order. */
  classes: string[];
}

/**
 * Splits a target path at its one `[...]` pair. Class names are comma-separated and trimmed;
 * empty names or duplicates are an error. Without brackets the path names a single class group
 * and the class is its last path component (`.../crop1/mito` → `mito`). Unbalanced or repeated
 * brackets throw `INVALID_ARGUMENT` (Python silently took the whole path as one class).
 */
export function splitTargetPath(p: string): TargetPath {
  if (typeof p !== "string" || p.length === 0) {
    throw new CellMapError("INVALID_ARGUMENT", `targetPath must be a non-empty string, got ${JSON.stringify(p)}`, "targetPath");
  }
  const open = p.indexOf("[");
  const close = p.indexOf("]");
  if (open < 0 && close < 0) {
    const parts = p.split(/[\\/]+/).filter(Boolean);
    const last = parts[parts.length - 1];
    if (!last) throw new CellMapError("INVALID_ARGUMENT", "targetPath has no class component", p);
    return { template: p, classes: [last] };
  }
  if (open < 0 || close < open || p.indexOf("[", open + 1) >= 0 || p.indexOf("]", close + 1) >= 0) {
    throw new CellMapError("INVALID_ARGUMENT", "targetPath must contain exactly one [class,list] in brackets", p);
  }
  const classes = p
    .slice(open + 1, close)
    .split(",")
    .map((c) => c.trim());
  if (classes.some((c) => c.length === 0)) {
    throw new CellMapError("INVALID_ARGUMENT", "empty class name in the bracket list", p);
  }
  const dup = classes.find((c, i) => classes.indexOf(c) !== i);
  if (dup !== undefined) throw new CellMapError("INVALID_ARGUMENT", `class ${JSON.stringify(dup)} listed twice in the bracket list`, p);
  return { template: `${p.slice(0, open)}{label}${p.slice(close + 1)}`, classes };
}

/** Location of one class's multiscale group: the template with `{label}` replaced. */
export function classPath(t: TargetPath, label: string): string {
  return t.template.includes("{label}") ? t.template.split("{label}").join(label) : t.template;
}
