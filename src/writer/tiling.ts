/**
 * Pure tiling math of the prediction writers (no I/O).
 *
 * An output image is a voxel grid covering the requested bounds. Per axis it is cut into *cores*
 * of `core` voxels (the last one may be shorter); each core is one zarr chunk and belongs to one
 * tile. A tile's *window* is what the model predicts: `window` voxels that contain the core plus
 * up to `halo` voxels of context on each side. Windows are shifted inward at the volume edges
 * (never dropped, never outside the grid when the grid is at least one window long), so the far
 * edge is always covered — both Python writers missed it.
 *
 * Per axis, with grid size `N`, window `P` and halo `H` (`P - 2H >= 1`):
 * - `N <= P`: one tile; its core is the whole axis (`core = N`), its window starts at
 *   `-floor((P - N) / 2)` so the grid sits in the window's middle (reads outside are padded).
 * - otherwise: `core = P - 2H`, `ceil(N / core)` tiles; tile `k` has core `[k·core, min((k+1)·core, N))`
 *   and window start `clamp(k·core - H, 0, N - P)`.
 * Cores partition `[0, N)`; every core lies inside its window, with `H` voxels of context on each
 * side except at the grid's edges.
 */
import { CellMapError, invalid } from "../errors.js";

/** Tiling of one axis. */
export interface AxisTiling {
  /** Grid voxels along the axis (N). */
  size: number;
  /** Window (model output) length in voxels (P). */
  window: number;
  /** Requested context voxels on each side of a core (H). */
  halo: number;
  /** Core length = chunk length: `P - 2H`, or `N` when the axis has a single tile. */
  core: number;
  /** Number of tiles along the axis. */
  count: number;
  /** Window start of each tile (voxel index; negative only when `N < P`). */
  starts: number[];
}

/** Tiling of an n-dimensional grid: the Cartesian product of its axes, tiles in C order. */
export interface Tiling {
  axes: AxisTiling[];
  /** Tiles per axis. */
  gridShape: number[];
  /** Total number of tiles. */
  count: number;
}

/** One tile in voxel coordinates. */
export interface TileBox {
  /** Tile (= chunk) index per axis. */
  coords: number[];
  /** First voxel of the window per axis. */
  windowStart: number[];
  /** Core (the chunk this tile owns), `[coreStart, coreEnd)` per axis. */
  coreStart: number[];
  coreEnd: number[];
}

/** Tiles one axis of `size` voxels with windows of `window` voxels and `halo` voxels of context. */
export function tileAxis(size: number, window: number, halo = 0, where = "tiling"): AxisTiling {
  if (!Number.isSafeInteger(size) || size < 1) throw invalid(where, `grid size must be a positive integer, got ${size}`);
  if (!Number.isSafeInteger(window) || window < 1) throw invalid(where, `window must be a positive integer, got ${window}`);
  if (!Number.isSafeInteger(halo) || halo < 0 || window - 2 * halo < 1) {
    throw invalid(where, `overlap (halo) must be an integer in [0, ${Math.floor((window - 1) / 2)}] for a window of ${window}, got ${halo}`);
  }
  if (size <= window) {
    return { size, window, halo, core: size, count: 1, starts: [-Math.floor((window - size) / 2)] };
  }
  const core = window - 2 * halo;
  const count = Math.ceil(size / core);
  const starts = new Array<number>(count);
  for (let k = 0; k < count; k++) starts[k] = Math.min(Math.max(k * core - halo, 0), size - window);
  return { size, window, halo, core, count, starts };
}

/** Tiles an n-d grid (`size`, `window`, `halo` per axis). */
export function makeTiling(size: readonly number[], window: readonly number[], halo: readonly number[], where = "tiling"): Tiling {
  if (window.length !== size.length || halo.length !== size.length) {
    throw invalid(where, `size, window and halo need the same number of axes (${size.length}, ${window.length}, ${halo.length})`);
  }
  const axes = size.map((n, a) => tileAxis(n, window[a], halo[a], where));
  const gridShape = axes.map((ax) => ax.count);
  const count = gridShape.reduce((p, v) => p * v, 1);
  if (!Number.isSafeInteger(count)) throw new CellMapError("UNSUPPORTED", `${count} tiles are more than 2^53`, where);
  return { axes, gridShape, count };
}

/** Core `[lo, hi)` of tile `k` along an axis. */
export function coreRange(ax: AxisTiling, k: number): [number, number] {
  const lo = k * ax.core;
  return [lo, Math.min(lo + ax.core, ax.size)];
}

/** Per-axis tile indices of tile `id` (C order: last axis fastest). */
export function tileCoords(t: Tiling, id: number): number[] {
  if (!Number.isInteger(id) || id < 0 || id >= t.count) {
    throw new CellMapError("OUT_OF_RANGE", `tile ${id} is outside [0, ${t.count})`, "tile");
  }
  const out = new Array<number>(t.gridShape.length);
  let rest = id;
  for (let a = t.gridShape.length - 1; a >= 0; a--) {
    out[a] = rest % t.gridShape[a];
    rest = Math.floor(rest / t.gridShape[a]);
  }
  return out;
}

/** Tile id of per-axis tile indices (inverse of {@link tileCoords}). */
export function tileId(t: Tiling, coords: readonly number[]): number {
  let id = 0;
  for (let a = 0; a < coords.length; a++) id = id * t.gridShape[a] + coords[a];
  return id;
}

/** Window and core of tile `id`. */
export function tileBox(t: Tiling, id: number): TileBox {
  const coords = tileCoords(t, id);
  const windowStart = coords.map((k, a) => t.axes[a].starts[k]);
  const cores = coords.map((k, a) => coreRange(t.axes[a], k));
  return { coords, windowStart, coreStart: cores.map((c) => c[0]), coreEnd: cores.map((c) => c[1]) };
}

/**
 * Chunks (= cores) that the window of tile `k` overlaps along an axis, as `[first, last]`
 * (inclusive). With blending, the tile contributes to all of them.
 */
export function axisFootprint(ax: AxisTiling, k: number): [number, number] {
  const lo = Math.max(ax.starts[k], 0);
  const hi = Math.min(ax.starts[k] + ax.window, ax.size); // exclusive
  return [Math.floor(lo / ax.core), Math.floor((hi - 1) / ax.core)];
}

/** For every chunk along an axis, the tiles whose windows overlap it (ascending). */
export function axisContributors(ax: AxisTiling): number[][] {
  const out: number[][] = Array.from({ length: ax.count }, () => []);
  for (let j = 0; j < ax.count; j++) {
    const [a, b] = axisFootprint(ax, j);
    for (let k = a; k <= b; k++) out[k].push(j);
  }
  return out;
}

/** A regular voxel grid in world units (nm): voxel `i` is centred at `translation + i * scale`. */
export interface VoxelGrid {
  translation: number[];
  scale: number[];
  shape: number[];
}

/**
 * The voxel grid covering world bounds `[lo, hi]` per axis at voxel size `scale`: voxel 0 spans
 * `[lo, lo + scale]` (so its centre, the NGFF translation, is `lo + scale/2`) and there are
 * `ceil((hi - lo) / scale)` voxels (a relative tolerance of 1e-9 absorbs float noise). When the
 * bounds are not a multiple of the voxel size, the last voxel reaches past `hi`, so nothing
 * inside the bounds is left out. This matches the read side, whose bounding box is the voxel
 * centres ± half a voxel: a grid over a raw image's bounding box lands on its voxel centres.
 */
export function gridFromBounds(lo: readonly number[], hi: readonly number[], scale: readonly number[], where = "bounds"): VoxelGrid {
  const shape = lo.map((l, a) => {
    const h = hi[a];
    const s = scale[a];
    if (!Number.isFinite(l) || !Number.isFinite(h) || !(h > l)) throw invalid(where, `bounds must be finite with hi > lo, got [${l}, ${h}] on axis ${a}`);
    if (!(Number.isFinite(s) && s > 0)) throw invalid(where, `voxel size must be a positive number, got ${s} on axis ${a}`);
    const n = Math.ceil((h - l) / s - 1e-9);
    return Math.max(1, n);
  });
  return { translation: lo.map((l, a) => l + scale[a] / 2), scale: [...scale], shape };
}
