/** Box copies between C-ordered typed arrays, and the all-fill test, used to cut chunks and shards out of regions. */
import { sizeOf, stridesOf } from "../../tensor.js";
import type { ArrayData } from "./spec.js";

/** Loosely-typed view used to copy between typed arrays of the same class. */
interface Buf {
  length: number;
  set(src: Buf, offset?: number): void;
  subarray(begin: number, end?: number): Buf;
  fill(v: unknown, start?: number, end?: number): Buf;
  [i: number]: unknown;
}
const buf = (a: ArrayData): Buf => a as unknown as Buf;

/**
 * Copies the box `size` from `src` (C order, shape `srcShape`, box corner `srcStart`) into
 * `dst` (C order, shape `dstShape`, corner `dstStart`). Rows along the last axis are copied
 * with `set`, so the cost is one call per row.
 */
export function copyBox(
  src: ArrayData,
  srcShape: readonly number[],
  srcStart: readonly number[],
  dst: ArrayData,
  dstShape: readonly number[],
  dstStart: readonly number[],
  size: readonly number[],
): void {
  const n = size.length;
  if (size.some((s) => s <= 0)) return;
  const ss = stridesOf(srcShape);
  const ds = stridesOf(dstShape);
  const row = n === 0 ? 1 : size[n - 1];
  const s = buf(src);
  const d = buf(dst);
  const idx = new Array<number>(Math.max(n - 1, 0)).fill(0);
  const rows = n === 0 ? 1 : sizeOf(size.slice(0, n - 1));
  for (let r = 0; r < rows; r++) {
    let so = 0;
    let doff = 0;
    for (let k = 0; k < n; k++) {
      const i = k < n - 1 ? idx[k] : 0;
      so += (srcStart[k] + i) * ss[k];
      doff += (dstStart[k] + i) * ds[k];
    }
    d.set(s.subarray(so, so + row), doff);
    for (let k = n - 2; k >= 0; k--) {
      if (++idx[k] < size[k]) break;
      idx[k] = 0;
    }
  }
}

/** Sets every element of `a` to `v` (bigint for 64-bit integer arrays). */
export function fillArray(a: ArrayData, v: number | bigint): void {
  buf(a).fill(v);
}

/** True if every element equals `fill` (NaN matches NaN). */
export function allFill(data: ArrayData, fill: number | bigint): boolean {
  const d = buf(data);
  if (typeof fill === "number" && Number.isNaN(fill)) {
    for (let i = 0; i < d.length; i++) if (!Number.isNaN(d[i])) return false;
    return true;
  }
  for (let i = 0; i < d.length; i++) if (d[i] !== fill) return false;
  return true;
}
