/** Counting foreground voxels of a whole array, chunk by chunk (bounded memory). */
import { throwIfAborted } from "../errors.js";
import type { ZarrArray } from "../zarr/array.js";
import { Float16Bits, float16ToFloat32 } from "../kernels/float16.js";
import { loadChunkUncached } from "../zarr/read.js";

const memo = new Map<string, Promise<number>>();

/**
 * Number of voxels that are non-zero and not NaN, over the spatial dims, at index `fixed[d]` on
 * non-spatial dims (`fixed[d] === -1` marks a spatial dim). Memoised per array for the process.
 * A label array holding other values than 0 and 1 (instance ids, 255 masks) gets a process
 * warning (`CELLMAP_NON_BINARY_LABELS`): they all count as foreground here, and only a target
 * transform such as the default `Binarize` turns them into 1 in the samples.
 */
export function countForeground(za: ZarrArray, fixed: number[], signal?: AbortSignal): Promise<number> {
  const key = `${za.id}|${fixed.join(",")}`;
  let p = memo.get(key);
  if (!p) {
    p = count(za, fixed, signal);
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

async function count(za: ZarrArray, fixed: number[], signal?: AbortSignal): Promise<number> {
  const nd = za.shape.length;
  const grid = za.shape.map((n, d) => (fixed[d] >= 0 ? 1 : Math.ceil(n / za.chunks[d])));
  const cc = new Array<number>(nd).fill(0);
  let total = 0;
  let odd: number | null = null; // a value other than 0, 1 and NaN, if any
  for (;;) {
    throwIfAborted(signal, za.id);
    const coords = cc.map((c, d) => (fixed[d] >= 0 ? Math.floor(fixed[d] / za.chunks[d]) : c));
    const loaded = await loadChunkUncached(za, coords, signal);
    const chunk = loaded.data instanceof Float16Bits ? { ...loaded, data: float16ToFloat32(loaded.data) } : loaded;
    // Count inside the array bounds only (edge chunks are padded).
    const lo = coords.map((c, d) => (fixed[d] >= 0 ? fixed[d] - c * za.chunks[d] : 0));
    const hi = coords.map((c, d) => (fixed[d] >= 0 ? lo[d] + 1 : Math.min(za.chunks[d], za.shape[d] - c * za.chunks[d])));
    const idx = [...lo];
    const last = nd - 1;
    for (;;) {
      let s = 0;
      for (let d = 0; d < last; d++) s += idx[d] * chunk.stride[d];
      const step = chunk.stride[last];
      for (let i = lo[last]; i < hi[last]; i++) {
        const v = chunk.data[s + i * step];
        if (v !== 0 && v === v) {
          total++;
          if (v !== 1) odd = v;
        }
      }
      let d = last - 1;
      while (d >= 0 && ++idx[d] >= hi[d]) {
        idx[d] = lo[d];
        d--;
      }
      if (d < 0) break;
    }
    let d = nd - 1;
    while (d >= 0 && ++cc[d] >= grid[d]) {
      cc[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  if (odd !== null) {
    process.emitWarning(
      `label array ${za.id} holds values other than 0 and 1 (e.g. ${odd}); every non-zero value counts as foreground, and samples carry the stored values unless a target transform (the datasplit default Binarize(threshold 0)) maps them to 0/1`,
      { code: "CELLMAP_NON_BINARY_LABELS" },
    );
  }
  return total;
}
