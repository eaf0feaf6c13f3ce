/**
 * The geometry of sampling a stored level at the points of a patch grid: the types, and the
 * map from output voxel indices to fractional level indices that every sampler shares.
 */

import type { Displacement } from "./displacement.js";

/** Values the sampling reads and writes: float32 patches, or float64 for exact wide integers (`outputDtype`). */
export type Samples = Float32Array | Float64Array;

/** Geometry of the level being sampled, per world axis (z, y, x). */
export interface LevelGeometry {
  /** Voxel count per world axis (1 for a virtual axis). */
  size: number[];
  /** Voxel size (nm). */
  scale: number[];
  /** World position of voxel 0's centre (nm). */
  translation: number[];
  /** Whether the axis exists in storage (false: virtual axis of a 2-D image, always index 0). */
  real: boolean[];
}

/** The patch request. */
export interface PatchGrid {
  center: number[];
  shape: number[];
  scale: number[];
  /** 3x3 matrix A: world point = centre + A · offset (null = identity). */
  matrix: number[][] | null;
  /** Elastic displacement of the offsets (none when absent). */
  displacement?: Displacement | null;
}

/**
 * The displacement of `grid` in level index units per world axis, `Σ_a A[w][a]·d_a / scale_w`
 * at every output voxel, or null (no displacement). Virtual axes get none.
 */
export function indexDisplacement(g: LevelGeometry, grid: PatchGrid): (Float32Array | null)[] | null {
  const d = grid.displacement;
  if (!d) return null;
  // One field per world axis, of the displacements already combined with A and the level's
  // voxel size (the displacement is linear in its control values). The JS reference reads it;
  // the kernels build the same values in the scratch arena (`rotated.ts` sampleDeformed).
  return displacementWeights(g, grid).map((w) => (w ? d.field(grid.shape, grid.scale, w) : null));
}

/**
 * Per world axis w, the weights of the displacement's axes in level index units,
 * `A[w][a] / scale_w`, or null for a virtual axis (which never moves).
 */
export function displacementWeights(g: LevelGeometry, grid: PatchGrid): (number[] | null)[] {
  const m = grid.matrix ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  return [0, 1, 2].map((w) => (g.real[w] ? [0, 1, 2].map((a) => m[w][a] / g.scale[w]) : null));
}

/** Sampling options. */
export interface SampleOptions {
  interpolation: "nearest" | "linear";
  pad: boolean;
  padValue: number;
}

/** Index-space window per world axis (inclusive). */
export interface Window {
  lo: number[];
  hi: number[];
}

/** Tolerance of voxel-centre snapping and of the padding test (in voxels). */
export const SNAP = 1e-6;

function snap(f: number): number {
  const r = Math.round(f);
  return Math.abs(f - r) < SNAP ? r : f;
}

/** Fractional level index of the world coordinate `p` along axis `w`. */
export function fracIndex(g: LevelGeometry, w: number, p: number): number {
  return g.real[w] ? snap((p - g.translation[w]) / g.scale[w]) : 0;
}

/** Whether a fractional index has data: within the level's bounding box (centres +- half a voxel). */
export function inside(f: number, n: number): boolean {
  return f >= -0.5 - SNAP && f <= n - 0.5 + SNAP;
}

/** Fractional level index as an affine function of the output index: f_w = f0_w + i*di_w + j*dj_w + k*dk_w. */
export function affineIndex(g: LevelGeometry, grid: PatchGrid): { f0: number[]; di: number[]; dj: number[]; dk: number[] } {
  const m = grid.matrix ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  // Virtual axes (2-D images) have every coefficient 0 and a one-voxel window.
  const f0 = [0, 0, 0],
    di = [0, 0, 0],
    dj = [0, 0, 0],
    dk = [0, 0, 0];
  for (let w = 0; w < 3; w++) {
    if (!g.real[w]) continue;
    const L = g.scale[w];
    let c = grid.center[w];
    for (let a = 0; a < 3; a++) c -= m[w][a] * ((grid.shape[a] - 1) / 2) * grid.scale[a];
    f0[w] = (c - g.translation[w]) / L;
    di[w] = (m[w][0] * grid.scale[0]) / L;
    dj[w] = (m[w][1] * grid.scale[1]) / L;
    dk[w] = (m[w][2] * grid.scale[2]) / L;
  }
  return { f0, di, dj, dk };
}

/**
 * Whether world z depends on the output z alone and world y/x do not (identity, mirrors, y/x
 * transposes, rotations about z): the grids the section kernels sample (`rotated.ts`).
 */
export function sectionsMatrix(m: number[][] | null): boolean {
  return !m || (m[0][1] === 0 && m[0][2] === 0 && m[1][0] === 0 && m[2][0] === 0);
}
