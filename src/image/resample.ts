/**
 * Sampling a stored level at the points of a (possibly transformed) patch grid.
 * Everything is 3-D here (2-D images carry a virtual axis of one voxel). Axis-aligned grids
 * (identity, mirror, transpose, 90-degree rotations) use separable per-axis index tables; other
 * rotations evaluate each point. Points that land on voxel centres copy the stored value exactly.
 */

import { wasmResampleFor } from "../kernels/gather.js";
import type { ScratchArena } from "../kernels/scratch.js";
import { fracIndex, indexDisplacement, inside, type LevelGeometry, type PatchGrid, type Samples, type SampleOptions, SNAP, type Window, affineIndex } from "./grid.js";
import { sampleDeformed, sampleRotated, type SourceRegion } from "./rotated.js";

export type { LevelGeometry, PatchGrid, Samples, SampleOptions, Window } from "./grid.js";

/** Axis-aligned decomposition of A, or null. */
export function axisAligned(m: number[][] | null): { perm: number[]; sign: number[] } | null {
  if (!m) return { perm: [0, 1, 2], sign: [1, 1, 1] };
  const perm: number[] = [];
  const sign: number[] = [];
  for (let k = 0; k < 3; k++) {
    let found = -1;
    for (let w = 0; w < 3; w++) {
      const v = m[w][k];
      if (v === 0) continue;
      if ((v !== 1 && v !== -1) || found >= 0) return null;
      found = w;
    }
    if (found < 0 || perm.includes(found)) return null;
    perm.push(found);
    sign.push(m[found][k]);
  }
  return { perm, sign };
}

/** The index window (inclusive, clamped to the level) that the grid's samples can touch. */
export function sampleWindow(g: LevelGeometry, grid: PatchGrid): Window {
  const lo: number[] = [];
  const hi: number[] = [];
  const m = grid.matrix ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  const reach = grid.displacement?.maxDisplacement ?? [0, 0, 0];
  for (let w = 0; w < 3; w++) {
    let ext = 0;
    // The displacement moves a point by at most `reach` along each offset axis.
    for (let k = 0; k < 3; k++) ext += Math.abs(m[w][k]) * (((grid.shape[k] - 1) / 2) * grid.scale[k] + reach[k]);
    const f0 = fracIndex(g, w, grid.center[w] - ext);
    const f1 = fracIndex(g, w, grid.center[w] + ext);
    const n = g.size[w];
    lo.push(Math.min(n - 1, Math.max(0, Math.floor(f0))));
    hi.push(Math.min(n - 1, Math.max(0, Math.ceil(f1))));
  }
  return { lo, hi };
}

interface Taps {
  off0: Int32Array;
  off1: Int32Array;
  w1: Float64Array;
  valid: Uint8Array;
}

/** Per-output-axis taps for the separable path. */
function axisTaps(g: LevelGeometry, grid: PatchGrid, opt: SampleOptions, win: Window, stride: number[], k: number, w: number, sign: number): Taps {
  const n = grid.shape[k];
  const t: Taps = { off0: new Int32Array(n), off1: new Int32Array(n), w1: new Float64Array(n), valid: new Uint8Array(n) };
  const N = g.size[w];
  for (let i = 0; i < n; i++) {
    const p = grid.center[w] + sign * (i - (n - 1) / 2) * grid.scale[k];
    const f = fracIndex(g, w, p);
    t.valid[i] = !opt.pad || inside(f, N) ? 1 : 0;
    let i0: number;
    let i1: number;
    let wt = 0;
    if (opt.interpolation === "nearest") {
      i0 = i1 = Math.min(N - 1, Math.max(0, Math.round(f)));
    } else {
      const fc = Math.min(N - 1, Math.max(0, f));
      i0 = Math.floor(fc);
      wt = fc - i0;
      i1 = wt > 0 ? Math.min(N - 1, i0 + 1) : i0;
    }
    t.off0[i] = (Math.min(win.hi[w], Math.max(win.lo[w], i0)) - win.lo[w]) * stride[w];
    t.off1[i] = (Math.min(win.hi[w], Math.max(win.lo[w], i1)) - win.lo[w]) * stride[w];
    t.w1[i] = wt;
  }
  return t;
}

/**
 * Fills `out` (C order over `grid.shape`) by sampling `region`, the level's values inside `win`,
 * where `stride[w]` is the region's element stride along world axis `w` (0 for virtual axes).
 */
export function samplePatch(
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: Samples | SourceRegion,
  win: Window,
  stride: number[],
  out: Samples,
  arena?: ScratchArena | null,
): void {
  if (grid.displacement) {
    // Deformed: every voxel has its own displacement (the general kernels, else the reference).
    if (arena && out instanceof Float32Array && sampleDeformed(arena, g, grid, opt, region, win, stride, out)) return;
    sampleGeneral(g, grid, opt, isSamples(region) ? region : Float32Array.from(region), win, stride, out, indexDisplacement(g, grid));
    return;
  }
  const aligned = axisAligned(grid.matrix);
  if (aligned && isSamples(region)) {
    sampleSeparable(g, grid, opt, region, win, stride, out, aligned.perm, aligned.sign, arena ?? null);
    return;
  }
  if (arena && out instanceof Float32Array && sampleRotated(arena, g, grid, opt, region, win, stride, out)) return;
  // The JS reference: every point evaluated on its own (regions in their source type widened first).
  sampleGeneral(g, grid, opt, isSamples(region) ? region : Float32Array.from(region), win, stride, out);
}

function isSamples(r: Samples | SourceRegion): r is Samples {
  return r instanceof Float32Array || r instanceof Float64Array;
}

function sampleSeparable(
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: Samples,
  win: Window,
  stride: number[],
  out: Samples,
  perm: number[],
  sign: number[],
  arena: ScratchArena | null,
): void {
  const [n0, n1, n2] = grid.shape;
  const a = axisTaps(g, grid, opt, win, stride, 0, perm[0], sign[0]);
  const b = axisTaps(g, grid, opt, win, stride, 1, perm[1], sign[1]);
  const c = axisTaps(g, grid, opt, win, stride, 2, perm[2], sign[2]);
  const pad = opt.padValue;
  let o = 0;
  // Samples on voxel centres (all linear weights zero) are plain gathers: take the nearest loop.
  const onCentres = !a.w1.some((w) => w !== 0) && !b.w1.some((w) => w !== 0) && !c.w1.some((w) => w !== 0);
  const nearest = opt.interpolation === "nearest" || onCentres;
  if (
    arena &&
    region instanceof Float32Array &&
    out instanceof Float32Array &&
    region.buffer === arena.buffer &&
    out.buffer === arena.buffer &&
    separableWasm(arena, region, a, b, c, grid.shape, win, perm, stride, pad, nearest, out)
  )
    return;
  if (nearest) {
    const allValid = !a.valid.includes(0) && !b.valid.includes(0) && !c.valid.includes(0);
    // Consecutive x taps (identity or mirrored-free rows): one native copy per row.
    const unitRuns = allValid && c.off0.every((v, k) => v === c.off0[0] + k);
    for (let i = 0; i < n0; i++) {
      for (let j = 0; j < n1; j++) {
        const base = a.off0[i] + b.off0[j];
        if (unitRuns) {
          const start = base + c.off0[0];
          out.set(region.subarray(start, start + n2), o);
          o += n2;
          continue;
        }
        const rowValid = a.valid[i] & b.valid[j];
        for (let k = 0; k < n2; k++) out[o++] = rowValid & c.valid[k] ? region[base + c.off0[k]] : pad;
      }
    }
    return;
  }
  linearSeparable(region, a, b, c, [n0, n1, n2], win, perm, stride, pad, out);
}

/**
 * The separable sampling with the WebAssembly passes, when region and output both live in the
 * data plane: tap tables and intermediates go to the thread's scratch arena. Same arithmetic as
 * the JS forms (f64, same order), so bit-identical. Returns false (nothing done) when the
 * kernels or scratch space are missing.
 */
function separableWasm(
  arena: ScratchArena,
  region: Float32Array,
  a: Taps,
  b: Taps,
  c: Taps,
  [n0, n1, n2]: number[],
  win: Window,
  perm: number[],
  stride: number[],
  pad: number,
  nearest: boolean,
  out: Float32Array,
): boolean {
  const k = wasmResampleFor(out.buffer);
  if (!k) return false;
  const sa = stride[perm[0]];
  const sb = stride[perm[1]];
  const _na = sa === 0 ? 1 : win.hi[perm[0]] - win.lo[perm[0]] + 1;
  const nb = sb === 0 ? 1 : win.hi[perm[1]] - win.lo[perm[1]] + 1;
  // Linear: plane by plane (window planes along output axis 0), so the intermediates stay in
  // cache: x pass of one plane (nb rows), y pass into a ring of RING planes, then each output
  // plane blends the two ring planes it needs. Same arithmetic, same order as the one-shot form.
  const RING = 4;
  const f64s = nearest ? 0 : n0 + n1 + n2 + nb * n2 + RING * n1 * n2 + 2;
  const i32s = 3 * (n0 + n1 + n2) + 4;
  const at = arena.alloc(f64s * 8 + i32s * 4);
  if (at < 0) return false;
  try {
    const buf = arena.buffer;
    const f = new Float64Array(buf, at, f64s);
    const iv = new Int32Array(buf, at + f64s * 8, i32s);
    // i32 tables: [a0 | a1 | av], [b0 | b1 | bv], [c0 | c1 | cv], then one output plane's [p0, p1, av]
    const A = 0,
      B = 3 * n0,
      C = 3 * (n0 + n1),
      P = 3 * (n0 + n1 + n2);
    const addr = (i: number) => at + f64s * 8 + i * 4;
    const fill = (base: number, t: Taps, n: number, unit: (off: number) => number) => {
      for (let i = 0; i < n; i++) {
        iv[base + i] = unit(t.off0[i]);
        iv[base + n + i] = unit(t.off1[i]);
        iv[base + 2 * n + i] = t.valid[i];
      }
    };
    if (nearest) {
      const bytes = (off: number) => off * 4;
      fill(A, a, n0, bytes);
      fill(B, b, n1, bytes);
      fill(C, c, n2, bytes);
      k.nearest(region.byteOffset, addr(A), addr(B), addr(C), n0, n1, n2, addr(A + 2 * n0), addr(B + 2 * n1), addr(C + 2 * n2), pad, out.byteOffset);
      return true;
    }
    fill(A, a, n0, (off) => (sa === 0 ? 0 : off / sa));
    fill(B, b, n1, (off) => (sb === 0 ? 0 : off / sb));
    fill(C, c, n2, (off) => off * 4);
    f.set(a.w1, 0);
    f.set(b.w1, n0);
    f.set(c.w1, n0 + n1);
    const tmpx = at + (n0 + n1 + n2) * 8; // one plane after the x pass: nb × n2
    const ring = tmpx + nb * n2 * 8; // RING planes after the y pass: n1 × n2 each
    const wa1 = ring + RING * n1 * n2 * 8; // this output plane's weight
    const planeOf = new Int32Array(RING).fill(-1); // window plane held by each ring slot
    let next = 0;
    const ensure = (p: number): number => {
      for (let r = 0; r < RING; r++) if (planeOf[r] === p) return r;
      const r = next;
      next = (next + 1) % RING;
      planeOf[r] = p;
      k.lin_x(region.byteOffset + p * sa * 4, 0, sb * 4, 1, nb, addr(C), addr(C + n2), at + (n0 + n1) * 8, n2, tmpx);
      k.lin_y(tmpx, 1, nb, n1, n2, addr(B), addr(B + n1), at + n0 * 8, ring + r * n1 * n2 * 8);
      return r;
    };
    for (let i = 0; i < n0; i++) {
      const r0 = ensure(iv[A + i]);
      const r1 = a.w1[i] === 0 ? r0 : ensure(iv[A + n0 + i]);
      iv[P] = r0;
      iv[P + 1] = r1;
      iv[P + 2] = iv[A + 2 * n0 + i];
      f[f64s - 2] = a.w1[i];
      k.lin_z(ring, 1, n1, n2, addr(P), addr(P + 1), wa1, addr(P + 2), addr(B + 2 * n1), addr(C + 2 * n2), pad, out.byteOffset + i * n1 * n2 * 4);
    }
    return true;
  } finally {
    arena.release(at);
  }
}

/** Reusable float64 scratch of the separable passes (sampling is synchronous, so one per thread). */
let passScratch = new Float64Array(0);

function scratch(n: number): Float64Array {
  if (passScratch.length < n) passScratch = new Float64Array(Math.max(n, passScratch.length * 2));
  return passScratch;
}

/**
 * Trilinear sampling as three 1-D passes (x rows of the window, then y, then z), 3 lerps per
 * source row element instead of 7 per output voxel. Each pass evaluates exactly the blends of
 * {@link trilinear}, in the same order and in float64, so the values are bit-identical to the
 * per-point form (zero weights skip their second tap, on-centre samples stay exact copies).
 */
function linearSeparable(region: Samples, a: Taps, b: Taps, c: Taps, [n0, n1, n2]: number[], win: Window, perm: number[], stride: number[], pad: number, out: Samples): void {
  // Window extents (and strides) along the world axes read by output axes 0 and 1.
  const sa = stride[perm[0]];
  const sb = stride[perm[1]];
  const na = sa === 0 ? 1 : win.hi[perm[0]] - win.lo[perm[0]] + 1;
  const nb = sb === 0 ? 1 : win.hi[perm[1]] - win.lo[perm[1]] + 1;
  const t1Size = na * nb * n2;
  const tmp = scratch(t1Size + na * n1 * n2);
  // Pass 1 (output axis 2): every window row (ia, ib) blended along c.
  const c0 = c.off0,
    c1 = c.off1,
    wc = c.w1;
  for (let ia = 0; ia < na; ia++) {
    for (let ib = 0; ib < nb; ib++) {
      const base = ia * sa + ib * sb;
      const o = (ia * nb + ib) * n2;
      for (let k = 0; k < n2; k++) {
        const w = wc[k];
        tmp[o + k] = w === 0 ? region[base + c0[k]] : region[base + c0[k]] * (1 - w) + region[base + c1[k]] * w;
      }
    }
  }
  // Pass 2 (output axis 1): blend rows along b.
  for (let ia = 0; ia < na; ia++) {
    for (let j = 0; j < n1; j++) {
      const w = b.w1[j];
      const r0 = (ia * nb + (sb === 0 ? 0 : b.off0[j] / sb)) * n2;
      const r1 = (ia * nb + (sb === 0 ? 0 : b.off1[j] / sb)) * n2;
      const o = t1Size + (ia * n1 + j) * n2;
      if (w === 0) for (let k = 0; k < n2; k++) tmp[o + k] = tmp[r0 + k];
      else for (let k = 0; k < n2; k++) tmp[o + k] = tmp[r0 + k] * (1 - w) + tmp[r1 + k] * w;
    }
  }
  // Pass 3 (output axis 0): blend planes along a; padded samples get `pad`.
  const cValid = c.valid;
  let o = 0;
  for (let i = 0; i < n0; i++) {
    const w = a.w1[i];
    const p0 = sa === 0 ? 0 : a.off0[i] / sa;
    const p1 = sa === 0 ? 0 : a.off1[i] / sa;
    for (let j = 0; j < n1; j++) {
      const r0 = t1Size + (p0 * n1 + j) * n2;
      const r1 = t1Size + (p1 * n1 + j) * n2;
      const rowValid = a.valid[i] & b.valid[j];
      if (!rowValid) {
        out.fill(pad, o, o + n2);
        o += n2;
        continue;
      }
      if (w === 0) for (let k = 0; k < n2; k++) out[o++] = cValid[k] ? tmp[r0 + k] : pad;
      else for (let k = 0; k < n2; k++) out[o++] = cValid[k] ? tmp[r0 + k] * (1 - w) + tmp[r1 + k] * w : pad;
    }
  }
}

/** Trilinear blend; taps with zero weight are skipped so on-centre samples are exact copies. */
function trilinear(r: Samples, a0: number, a1: number, wa: number, b0: number, b1: number, wb: number, c0: number, c1: number, wc: number): number {
  let v = lerp2(r, a0, b0, b1, wb, c0, c1, wc);
  if (wa !== 0) v = v * (1 - wa) + lerp2(r, a1, b0, b1, wb, c0, c1, wc) * wa;
  return v;
}

function lerp2(r: Samples, base: number, b0: number, b1: number, wb: number, c0: number, c1: number, wc: number): number {
  let v = lerp1(r, base + b0, c0, c1, wc);
  if (wb !== 0) v = v * (1 - wb) + lerp1(r, base + b1, c0, c1, wc) * wb;
  return v;
}

function lerp1(r: Samples, base: number, c0: number, c1: number, wc: number): number {
  return wc === 0 ? r[base + c0] : r[base + c0] * (1 - wc) + r[base + c1] * wc;
}

function sampleGeneral(
  g: LevelGeometry,
  grid: PatchGrid,
  opt: SampleOptions,
  region: Samples,
  win: Window,
  stride: number[],
  out: Samples,
  delta: (Float32Array | null)[] | null = null,
): void {
  const Dz = delta?.[0] ?? null;
  const Dy = delta?.[1] ?? null;
  const Dx = delta?.[2] ?? null;
  const [n0, n1, n2] = grid.shape;
  const { f0, di, dj, dk } = affineIndex(g, grid);
  const [N0, N1, N2] = g.size;
  const [lo0, lo1, lo2] = win.lo;
  const [hi0, hi1, hi2] = win.hi;
  const [s0, s1, s2] = stride;
  const pad = opt.pad;
  const padValue = opt.padValue;
  const nearest = opt.interpolation === "nearest";
  const eps = SNAP;
  let o = 0;
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      const bz = f0[0] + i * di[0] + j * dj[0];
      const by = f0[1] + i * di[1] + j * dj[1];
      const bx = f0[2] + i * di[2] + j * dj[2];
      for (let k = 0; k < n2; k++) {
        // The deformed kernels add the displacement after the affine part, as here.
        const fz = Dz ? bz + k * dk[0] + Dz[o] : bz + k * dk[0];
        const fy = Dy ? by + k * dk[1] + Dy[o] : by + k * dk[1];
        const fx = Dx ? bx + k * dk[2] + Dx[o] : bx + k * dk[2];
        if (pad && (fz < -0.5 - eps || fz > N0 - 0.5 + eps || fy < -0.5 - eps || fy > N1 - 0.5 + eps || fx < -0.5 - eps || fx > N2 - 0.5 + eps)) {
          out[o++] = padValue;
          continue;
        }
        // clamp into the level (edge values within the outer half voxel, or without padding)
        const cz = fz < 0 ? 0 : fz > N0 - 1 ? N0 - 1 : fz;
        const cy = fy < 0 ? 0 : fy > N1 - 1 ? N1 - 1 : fy;
        const cx = fx < 0 ? 0 : fx > N2 - 1 ? N2 - 1 : fx;
        if (nearest) {
          const z = Math.round(cz),
            y = Math.round(cy),
            x = Math.round(cx);
          out[o++] = region[(clampI(z, lo0, hi0) - lo0) * s0 + (clampI(y, lo1, hi1) - lo1) * s1 + (clampI(x, lo2, hi2) - lo2) * s2];
          continue;
        }
        const z0 = Math.floor(cz),
          y0 = Math.floor(cy),
          x0 = Math.floor(cx);
        const wz = cz - z0,
          wy = cy - y0,
          wx = cx - x0;
        const za = (clampI(z0, lo0, hi0) - lo0) * s0,
          zb = (clampI(z0 + 1, lo0, hi0) - lo0) * s0;
        const ya = (clampI(y0, lo1, hi1) - lo1) * s1,
          yb = (clampI(y0 + 1, lo1, hi1) - lo1) * s1;
        const xa = (clampI(x0, lo2, hi2) - lo2) * s2,
          xb = (clampI(x0 + 1, lo2, hi2) - lo2) * s2;
        out[o++] = trilinear(region, za, zb, wz, ya, yb, wy, xa, xb, wx);
      }
    }
  }
}

function clampI(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * True when the grid samples exactly the voxels of `win`, in order (identity transform, native
 * scale, centres on voxels, nothing outside): the region read for `win` is then the patch itself.
 */
export function isDirectCopy(g: LevelGeometry, grid: PatchGrid, win: Window): boolean {
  if (grid.displacement) return false;
  const m = grid.matrix;
  if (m && !(m[0][0] === 1 && m[1][1] === 1 && m[2][2] === 1 && m[0][1] === 0 && m[0][2] === 0 && m[1][0] === 0 && m[1][2] === 0 && m[2][0] === 0 && m[2][1] === 0)) return false;
  for (let w = 0; w < 3; w++) {
    const n = grid.shape[w];
    if (win.hi[w] - win.lo[w] + 1 !== n) return false;
    if (!g.real[w]) {
      if (n !== 1) return false;
      continue;
    }
    if (n > 1 && Math.abs(grid.scale[w] - g.scale[w]) > 1e-9 * g.scale[w]) return false;
    const f0 = fracIndex(g, w, grid.center[w] - ((n - 1) / 2) * grid.scale[w]);
    if (f0 !== win.lo[w]) return false;
  }
  return true;
}
