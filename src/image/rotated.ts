/**
 * Rotated sample grids on the WebAssembly kernels (`scripts/build-kernels.ts`), reading the
 * region in its source element type where it lives in the data plane.
 *
 * Two plans, both equal to the JS reference `sampleGeneral` (`resample.ts`): bit for bit, since
 * they evaluate the same f64 operations in the same order.
 * - **Sections**: when world z depends on the output z alone and world y/x do not (a rotation
 *   about z, the usual EM augmentation, with any mirror or y/x transpose), one output section
 *   maps to the level's y/x the same way as every other. The y/x map (an offset per output
 *   pixel, plus the blend weights for linear) is computed once, kept for the other arrays of the
 *   sample that share the grid (the classes of a crop), and applied to every section: a gather
 *   for nearest, four loads and three blends for linear.
 * - **General**: any other affine grid (rotations about y or x), each point evaluated along
 *   its output row.
 */
import { wasmRotatedFor, type WasmRotated } from "../kernels/gather.js";
import type { ScratchArena } from "../kernels/scratch.js";
import { affineIndex, displacementWeights, inside, type LevelGeometry, type PatchGrid, type SampleOptions, SNAP, type Window } from "./grid.js";

/** A region kept in its source element type (the kernels widen while sampling). */
export type SourceRegion = Uint8Array | Int8Array | Uint16Array | Int16Array | Float32Array;

const clampF = (v: number, max: number) => (v < 0 ? 0 : v > max ? max : v);
const clampI = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** A y/x map of the section plan, kept in the thread's scratch arena. */
interface SectionMap {
  key: string;
  at: number;
}

/** Recent maps per arena (the arrays of one sample that share a grid reuse them). */
const maps = new WeakMap<ScratchArena, SectionMap[]>();
const MAPS_KEPT = 4;

/**
 * The map of `key` in `arena`: found among the recent ones, or `bytes` allocated and filled by
 * `fill(at)`. Returns its offset, or -1 when the arena is full.
 */
function keptMap(arena: ScratchArena, key: string, bytes: number, fill: (at: number) => void): number {
  let list = maps.get(arena);
  if (!list) maps.set(arena, (list = []));
  const hit = list.findIndex((m) => m.key === key);
  if (hit >= 0) {
    const [m] = list.splice(hit, 1);
    list.unshift(m);
    return m.at;
  }
  let at = arena.alloc(bytes);
  while (at < 0 && list.length > 0) {
    arena.release(list.pop()!.at);
    at = arena.alloc(bytes);
  }
  if (at < 0) return -1;
  fill(at);
  list.unshift({ key, at });
  while (list.length > MAPS_KEPT) arena.release(list.pop()!.at);
  return at;
}

/** Returns the scratch space of the y/x maps kept for `arena` (they are recomputed when needed). */
export function releaseSectionMaps(arena: ScratchArena): void {
  for (const m of maps.get(arena) ?? []) arena.release(m.at);
  maps.delete(arena);
}

/**
 * Samples `grid` from `region` into `out` with the kernels; false (nothing written) when the
 * kernels are not there (region and output outside one plane, an element type without kernels)
 * or scratch space is short.
 */
export function sampleRotated(
  arena: ScratchArena,
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: ArrayBufferView & { length: number },
  win: Window,
  stride: number[],
  out: Float32Array,
): boolean {
  if (region.buffer !== arena.buffer) return false;
  const k = wasmRotatedFor(region, out);
  if (!k) return false;
  const a = affineIndex(g, grid);
  // On the coefficients (not the matrix): a virtual z axis has none.
  const sections = a.dj[0] === 0 && a.dk[0] === 0 && a.di[1] === 0 && a.di[2] === 0;
  const e = (region as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return sections
    ? sampleSections(arena, k, g, grid, opt, region.byteOffset, e, win, stride, out, a)
    : sampleGeneralWasm(arena, k, g, grid, opt, region.byteOffset, e, win, stride, out, a);
}

type Affine = ReturnType<typeof affineIndex>;

function sampleSections(
  arena: ScratchArena,
  k: WasmRotated,
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: number,
  e: number,
  win: Window,
  stride: number[],
  out: Float32Array,
  { f0, di, dj, dk }: Affine,
): boolean {
  const [n0, n1, n2] = grid.shape;
  const nearest = opt.interpolation === "nearest";
  const pairs = !nearest && k.zrot_linear4 !== undefined;
  const map = sectionMap(arena, g, opt, nearest ? "nearest" : pairs ? "pairs" : "linear", e, win, stride, n1, n2, f0, dj, dk);
  if (map < 0) return false;
  const zBytes = nearest ? 4 * n0 : 24 * n0;
  const zt = arena.alloc(zBytes);
  if (zt < 0) return false;
  try {
    const N0 = g.size[0];
    const lo = win.lo[0];
    const hi = win.hi[0];
    const s0 = stride[0] * e;
    if (nearest) {
      const z = new Int32Array(arena.buffer, zt, n0);
      for (let i = 0; i < n0; i++) {
        // The reference's f = (f0 + i·di + j·dj) + k·dk, with dj = dk = 0 along z.
        const fz = f0[0] + i * di[0];
        z[i] = opt.pad && !inside(fz, N0) ? -1 : (clampI(Math.round(clampF(fz, N0 - 1)), lo, hi) - lo) * s0;
      }
      k.zrot_nearest(region, zt, n0, map, n1 * n2, opt.padValue, out.byteOffset);
    } else {
      const zi = new Int32Array(arena.buffer, zt, 6 * n0);
      const zf = new Float64Array(arena.buffer, zt, 3 * n0);
      for (let i = 0; i < n0; i++) {
        const fz = f0[0] + i * di[0];
        const cz = clampF(fz, N0 - 1);
        const z0 = Math.floor(cz);
        zi[6 * i] = (clampI(z0, lo, hi) - lo) * s0;
        zi[6 * i + 1] = (clampI(z0 + 1, lo, hi) - lo) * s0;
        zi[6 * i + 2] = opt.pad && !inside(fz, N0) ? 0 : 1;
        zf[3 * i + 2] = cz - z0;
      }
      (pairs ? k.zrot_linear4! : k.zrot_linear)(region, zt, n0, map, n1 * n2, opt.padValue, out.byteOffset);
    }
    return true;
  } finally {
    arena.release(zt);
  }
}

/**
 * The y/x map of one output section (arena offset), computed or found among the recent ones.
 * `nearest`: an i32 byte offset per pixel (-1: padding). `linear`: 32 bytes per pixel: offset of
 * (y0, x0), x1 − x0 and y1 − y0 in bytes, valid, then wy and wx as f64. `pairs`: 112 bytes per
 * pair of pixels, the layout of `zrot_linear4` (scripts/build-kernels.ts): their three offsets,
 * the four tap weights as f64 pairs, and a 64-bit mask per pixel.
 */
function sectionMap(
  arena: ScratchArena,
  g: LevelGeometry,
  opt: SampleOptions,
  layout: "nearest" | "linear" | "pairs",
  e: number,
  win: Window,
  stride: number[],
  n1: number,
  n2: number,
  f0: number[],
  dj: number[],
  dk: number[],
): number {
  const N1 = g.size[1];
  const N2 = g.size[2];
  const nearest = layout === "nearest";
  const key = [layout, e, f0[1], f0[2], dj[1], dj[2], dk[1], dk[2], N1, N2, win.lo[1], win.lo[2], win.hi[1], win.hi[2], stride[1], stride[2], opt.pad ? 1 : 0, n1, n2].join(",");
  const n = n1 * n2;
  const bytes = nearest ? 4 * n : layout === "pairs" ? 112 * Math.ceil(n / 2) : 32 * n;
  return keptMap(arena, key, bytes, (at) => {
    const [lo1, lo2] = [win.lo[1], win.lo[2]];
    const [hi1, hi2] = [win.hi[1], win.hi[2]];
    const s1 = stride[1] * e;
    const s2 = stride[2] * e;
    const pad = opt.pad;
    // Nearest: one i32 per pixel. Linear: 8 i32 words per pixel, the last two holding wy, wx.
    // Pairs: 28 i32 words per pair of pixels (see above).
    const words = bytes / 4;
    const mi = new Int32Array(arena.buffer, at, words);
    const mf = new Float64Array(arena.buffer, at, words / 2);
    if (layout === "pairs") mi.fill(0); // an odd count's last pair: a padded second pixel
    let p = 0;
    for (let j = 0; j < n1; j++) {
      const by = f0[1] + j * dj[1];
      const bx = f0[2] + j * dj[2];
      for (let k = 0; k < n2; k++, p++) {
        const fy = by + k * dk[1];
        const fx = bx + k * dk[2];
        const padded = pad && !(inside(fy, N1) && inside(fx, N2));
        const cy = clampF(fy, N1 - 1);
        const cx = clampF(fx, N2 - 1);
        if (nearest) {
          mi[p] = padded ? -1 : (clampI(Math.round(cy), lo1, hi1) - lo1) * s1 + (clampI(Math.round(cx), lo2, hi2) - lo2) * s2;
          continue;
        }
        const y0 = Math.floor(cy);
        const x0 = Math.floor(cx);
        const ya = (clampI(y0, lo1, hi1) - lo1) * s1;
        const yb = (clampI(y0 + 1, lo1, hi1) - lo1) * s1;
        const xa = (clampI(x0, lo2, hi2) - lo2) * s2;
        const xb = (clampI(x0 + 1, lo2, hi2) - lo2) * s2;
        const wy = cy - y0;
        const wx = cx - x0;
        if (layout === "pairs") {
          const q = 28 * (p >> 1);
          const l = p & 1;
          mi[q + l] = padded ? 0 : ya + xa;
          mi[q + 2 + l] = padded ? 0 : xb - xa;
          mi[q + 4 + l] = padded ? 0 : yb - ya;
          const w = q / 2 + 4 + l; // f64 index of w00 for this lane
          mf[w] = (1 - wy) * (1 - wx);
          mf[w + 2] = (1 - wy) * wx;
          mf[w + 4] = wy * (1 - wx);
          mf[w + 6] = wy * wx;
          mi[q + 24 + 2 * l] = mi[q + 25 + 2 * l] = padded ? 0 : -1;
          continue;
        }
        mi[8 * p] = ya + xa;
        mi[8 * p + 1] = xb - xa;
        mi[8 * p + 2] = yb - ya;
        mi[8 * p + 3] = padded ? 0 : 1;
        mf[4 * p + 2] = wy;
        mf[4 * p + 3] = wx;
      }
    }
  });
}

/** Bytes of the tables of the general kernels ({@link writeGeneralTables}), 8-byte aligned. */
const GENERAL_TABLES = 208;

/**
 * Writes the tables the general kernels read at arena offset `at`: 20 f64 (the affine index, the
 * clamps and padding bounds, the pad value) from `at`, then 12 i32 (window, byte strides, pad on,
 * and a zero z-table entry at `at + 200` for the gathers) from `at + 160`.
 */
function writeGeneralTables(arena: ScratchArena, at: number, g: LevelGeometry, opt: SampleOptions, e: number, win: Window, stride: number[], { f0, di, dj, dk }: Affine): void {
  const [N0, N1, N2] = g.size;
  const eps = SNAP;
  new Float64Array(arena.buffer, at, 20).set([...f0, ...di, ...dj, ...dk, N0 - 1, N1 - 1, N2 - 1, N0 - 0.5 + eps, N1 - 0.5 + eps, N2 - 0.5 + eps, -0.5 - eps, opt.padValue]);
  new Int32Array(arena.buffer, at + 160, 12).set([...win.lo, ...win.hi, stride[0] * e, stride[1] * e, stride[2] * e, opt.pad ? 1 : 0, 0, 0]);
}

/** Any affine grid: the kernels evaluate each point along its output row. */
function sampleGeneralWasm(
  arena: ScratchArena,
  k: WasmRotated,
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: number,
  e: number,
  win: Window,
  stride: number[],
  out: Float32Array,
  { f0, di, dj, dk }: Affine,
): boolean {
  const at = arena.alloc(GENERAL_TABLES);
  if (at < 0) return false;
  try {
    const [N0, N1, N2] = g.size;
    writeGeneralTables(arena, at, g, opt, e, win, stride, { f0, di, dj, dk });
    const [n0, n1, n2] = grid.shape;
    if (opt.interpolation === "linear") {
      k.gen_linear(region, at, at + 160, n0, n1, n2, out.byteOffset);
      return true;
    }
    // Nearest: the offset of every voxel's sample, computed once for the arrays sharing the
    // grid (the classes of a crop), then a gather per array (as one section of n0·n1·n2 pixels).
    const n = n0 * n1 * n2;
    const key = ["g", e, ...f0, ...di, ...dj, ...dk, N0, N1, N2, ...win.lo, ...win.hi, ...stride, opt.pad ? 1 : 0, n0, n1, n2].join(",");
    const map = keptMap(arena, key, 4 * n, (m) => k.gen_nearest_map(at, at + 160, n0, n1, n2, m));
    if (map < 0) return false;
    k.zrot_nearest(region, at + 200, 1, map, n, opt.padValue, out.byteOffset);
    return true;
  } finally {
    arena.release(at);
  }
}

/** Identity of each displacement (the nearest maps of the arrays sharing one are kept). */
const displacementIds = new WeakMap<object, number>();
let nextDisplacementId = 1;
function displacementId(d: object): number {
  let id = displacementIds.get(d);
  if (id === undefined) displacementIds.set(d, (id = nextDisplacementId++));
  return id;
}

/**
 * A deformed grid (elastic, misalignment): the general kernels with a displacement per voxel,
 * equal to the reference `sampleGeneral` given `indexDisplacement` (`grid.ts`). The displacement
 * in level index units per world axis is built here in the scratch arena: a separable B-spline
 * by its last pass on the kernels (`bspline_z`), anything else copied from its `field`. Nearest
 * computes the offset map once for the arrays sharing grid and displacement (the classes of a
 * crop), then gathers. False when the kernels or scratch space are missing.
 */
export function sampleDeformed(
  arena: ScratchArena,
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: ArrayBufferView & { length: number },
  win: Window,
  stride: number[],
  out: Float32Array,
): boolean {
  const disp = grid.displacement;
  if (!disp || region.buffer !== arena.buffer) return false;
  const k = wasmRotatedFor(region, out);
  if (!k) return false;
  const affine = affineIndex(g, grid);
  const { f0, di, dj, dk } = affine;
  const e = (region as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const [n0, n1, n2] = grid.shape;
  const n = n0 * n1 * n2;
  const [N0, N1, N2] = g.size;
  // The displacement of world axis w in level index units: Σ_a A[w][a]·d_a / scale_w.
  const weights = displacementWeights(g, grid);
  const key = [
    "d",
    displacementId(disp),
    ...weights.flat(),
    ...grid.shape,
    ...grid.scale,
    e,
    ...f0,
    ...di,
    ...dj,
    ...dk,
    N0,
    N1,
    N2,
    ...win.lo,
    ...win.hi,
    ...stride,
    opt.pad ? 1 : 0,
  ].join(",");
  const nearest = opt.interpolation === "nearest";
  if (nearest && maps.get(arena)?.some((x) => x.key === key)) {
    // The map of an array sharing grid and displacement: gather through it.
    const map = keptMap(arena, key, 4 * n, () => {});
    const zero = arena.alloc(8);
    if (zero < 0) return false;
    try {
      new Int32Array(arena.buffer, zero, 2).fill(0);
      k.zrot_nearest(region.byteOffset, zero, 1, map, n, opt.padValue, out.byteOffset);
    } finally {
      arena.release(zero);
    }
    return true;
  }
  const seps = weights.map((w) => (w && disp.separable ? disp.separable(grid.shape, grid.scale, w) : undefined));
  const planeBytes = Math.max(0, ...seps.map((s) => (s ? s.planes.byteLength : 0)));
  const tabBytes = ((4 * n0 + 7) & ~7) + 32 * n0;
  const at = arena.alloc(GENERAL_TABLES + 12 * n + planeBytes + tabBytes);
  if (at < 0) return false;
  try {
    writeGeneralTables(arena, at, g, opt, e, win, stride, affine);
    const D = at + GENERAL_TABLES;
    const planes = D + 12 * n;
    const tab = planes + planeBytes;
    for (let w = 0; w < 3; w++) {
      const dst = D + 4 * n * w;
      const sep = seps[w];
      if (sep) {
        // The B-spline's last pass on the kernels, straight into the arena.
        new Float32Array(arena.buffer, planes, sep.planes.length).set(sep.planes);
        new Int32Array(arena.buffer, tab, n0).set(sep.first);
        new Float64Array(arena.buffer, tab + ((4 * n0 + 7) & ~7), 4 * n0).set(sep.w);
        k.bspline_z(dst, planes, tab, n0, n1 * n2);
        continue;
      }
      const field = sep === null || !weights[w] ? null : disp.field(grid.shape, grid.scale, weights[w]!);
      const view = new Float32Array(arena.buffer, dst, n);
      if (field) view.set(field);
      else view.fill(0);
    }
    if (!nearest) {
      k.gen_linear_deformed(region.byteOffset, at, at + 160, n0, n1, n2, out.byteOffset, D);
      return true;
    }
    const map = keptMap(arena, key, 4 * n, (mp) => k.gen_nearest_map_deformed(at, at + 160, n0, n1, n2, mp, D));
    if (map < 0) return false;
    k.zrot_nearest(region.byteOffset, at + 200, 1, map, n, opt.padValue, out.byteOffset);
    return true;
  } finally {
    arena.release(at);
  }
}
