/**
 * Ground-truth path bracket syntax: `.../crop155/[mito,er,nuc]` means the classes in brackets are
 * annotated in that crop, each stored at `.../crop155/<class>`.
 */
import { CellMapError } from "../errors.js";

/** Splits a bracketed target path into a `{label}` template and its class list. */
export function splitTargetPath(p: string): { template: string; classes: string[] } {
  const open = p.indexOf("[");
  const close = p.indexOf("]");
  if (open < 0 && close < 0) {
    const parts = p.split(/[\\/]/).filter(Boolean);
    return { template: p, classes: [parts[parts.length - 1] ?? p] };
  }
  if (open < 0 || close < open || p.indexOf("[", open + 1) >= 0 || p.indexOf("]", close + 1) >= 0) {
    throw new CellMapError("INVALID_ARGUMENT", "target path must contain one [class,list] in brackets", p);
  }
  const classes = p.slice(open + 1, close).split(",").map((c) => c.trim()).filter(Boolean);
  if (classes.length === 0) throw new CellMapError("INVALID_ARGUMENT", "empty class list in brackets", p);
  return { template: `${p.slice(0, open)}{label}${p.slice(close + 1)}`, classes };
}
