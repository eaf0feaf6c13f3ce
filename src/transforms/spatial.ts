/**
 * Spatial augmentation: config validation, one seeded draw per sample, and the 3x3 matrix that
 * maps output-patch offsets to world offsets.
 *
 * Geometry convention (the image reader consumes `matrix`). Vectors are zyx-ordered. For an output
 * voxel index k, its offset from the patch centre in nm is `o[a] = (k[a] - (n[a]-1)/2) * s[a]`;
 * it samples the world point `p = c + A·o` with `A = R · M · P`:
 * - `P`: transpose, `(P o)[perm[k]] = o[k]` (output axis k reads world axis perm[k]);
 * - `M`: `diag(±1)`, -1 on mirrored world axes;
 * - `R = Rz(θz)·Ry(θy)·Rx(θx)`, right-handed in physical (x,y,z): Rz turns x toward y, Ry turns
 *   z toward x, Rx turns y toward z (written here as matrices on zyx vectors).
 * Entries within 1e-12 of 0 or ±1 are snapped, so multiples of 90° give exact signed permutation
 * matrices and a reader can take the copy/flip fast path instead of interpolating.
 *
 * Unlike Python CellMap-Data the angles are composed as proper per-axis rotations in
 * the right handedness and the grid keeps (i, j) order.
 */
import { z } from "zod";
import { CellMapError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import { type ElasticConfig, type ElasticDraw, elasticShape } from "./elastic.js";
import { type SectionShiftConfig, type SectionShiftDraw, sectionShiftShape } from "./section-shift.js";
import { parseOrThrow, probability } from "./validate.js";

/** Spatial axis names, in the library's zyx order. */
export type SpatialAxis = "z" | "y" | "x";

/** One sample's spatial draw; plain JSON (reported in sample metadata). */
export interface SpatialDraw {
  /** Mirrored world axes, in zyx order. */
  mirror: string[];
  /** Output axis k takes world axis `transpose[k]` (one entry per data axis, zyx order); null = identity. */
  transpose: string[] | null;
  /** Rotation angle in degrees per configured axis. */
  rotate: Record<string, number>;
  /** `A = R·M·P` (3x3, zyx), see the module comment. */
  matrix: number[][];
  /** The elastic deformation's parameters, when the sample was deformed. */
  elastic?: ElasticDraw;
  /** The section misalignment, when the sample has one. */
  sectionShift?: SectionShiftDraw;
}

/** The parts of a draw that determine its matrix. */
export type SpatialDrawLike = Pick<SpatialDraw, "mirror" | "transpose" | "rotate">;

const WORLD: readonly SpatialAxis[] = ["z", "y", "x"];
const worldIndex = (a: string): number => WORLD.indexOf(a as SpatialAxis);

const angleRange = z.custom<[number, number]>((v) => Array.isArray(v) && v.length === 2 && v.every((a) => typeof a === "number" && Number.isFinite(a)) && v[0] <= v[1], {
  error: (iss) => `must be an angle range [min, max] in degrees with min <= max, got ${JSON.stringify(iss.input)}`,
});

/** `{ axis: value }` over the spatial axes; which axes the data has is checked by {@link parseSpatialConfig}. */
function axisRecord<T>(value: z.ZodType<T>) {
  return z.record(z.string(), value) as unknown as z.ZodType<Partial<Record<SpatialAxis, T>>, Partial<Record<SpatialAxis, T>>>;
}

const spatialShape = {
  /** Probability of mirroring each listed axis. */
  mirror: z.strictObject({ axes: axisRecord(probability) }).optional(),
  /** The listed axes are permuted uniformly at random among themselves. */
  transpose: z.strictObject({ axes: z.array(z.string()) as unknown as z.ZodType<SpatialAxis[], SpatialAxis[]> }).optional(),
  /** Uniform angle in degrees `[min, max]` per rotation axis. */
  rotate: z.strictObject({ axes: axisRecord(angleRange) }).optional(),
  /**
   * Elastic deformation: control points every `controlPointSpacing` nm, displaced by Gaussian
   * draws of `sigma` nm per axis, interpolated by a cubic B-spline; `p` per sample (default 1).
   * Composes with the other transforms in one resampling (`transforms/elastic.ts`).
   */
  elastic: z.strictObject(elasticShape).optional(),
  /**
   * Section misalignment: with probability `p`, the sections from a random z on are shifted in
   * y/x by up to `maxShift` nm (a step), or, with probability `slip`, one section is (a slip).
   */
  sectionShift: z.strictObject(sectionShiftShape).optional(),
};

/**
 * Schema of a spatial augmentation config (keys and value types; which axes are allowed depends
 * on the data and is checked by {@link parseSpatialConfig}). Shared by the library's options and
 * config files; the only definition of {@link SpatialConfig}.
 */
export const spatialConfigSchema: z.ZodObject<typeof spatialShape, z.core.$strict> = z.strictObject(spatialShape);

/** Spatial augmentation config in the Python form; any subset of the keys. */
export type SpatialConfig = z.input<typeof spatialConfigSchema>;

/** Validated config with axes in canonical zyx order (draw order does not depend on key order). */
export interface ParsedSpatialConfig {
  mirror: Array<[SpatialAxis, number]>;
  transpose: SpatialAxis[] | null;
  rotate: Array<[SpatialAxis, number, number]>;
  /** Elastic deformation (drawn by the dataset from its own stream), or null. */
  elastic?: ElasticConfig | null;
  /** Section misalignment (drawn by the dataset from its own stream), or null. */
  sectionShift?: SectionShiftConfig | null;
}

/** Checks the data axes: 3-D `["z","y","x"]` or 2-D `["y","x"]`. */
function checkAxes(axes: readonly string[]): readonly SpatialAxis[] {
  const key = axes.join(",");
  if (key !== "z,y,x" && key !== "y,x") {
    throw new CellMapError("INVALID_ARGUMENT", `spatial axes must be ["z","y","x"] or ["y","x"], got ${JSON.stringify(axes)}`, "axes");
  }
  return axes as readonly SpatialAxis[];
}

/** Axes about which a rotation keeps the data in its own space: all three in 3-D, only z in 2-D. */
function checkRotationAxis(a: string, axes: readonly SpatialAxis[], where: string, at = where): void {
  if (worldIndex(a) < 0) {
    throw new CellMapError("INVALID_ARGUMENT", `unknown axis ${JSON.stringify(a)} in ${where} (expected one of z, y, x)`, at);
  }
  if (axes.length === 2 && a !== "z") {
    throw new CellMapError("INVALID_ARGUMENT", `rotation about ${a} is not possible for 2-D data (axes y,x); only z is allowed`, at);
  }
}

/** `at`: the field path reported (e.g. `spatialTransforms.mirror.axes.q`). */
function checkDataAxis(a: string, axes: readonly SpatialAxis[], where: string, at = where): void {
  if (!axes.includes(a as SpatialAxis)) {
    throw new CellMapError("INVALID_ARGUMENT", `unknown axis ${JSON.stringify(a)} in ${where} (expected one of ${axes.join(", ")})`, at);
  }
}

/**
 * Validates a spatial augmentation config (zod + axis checks). Unknown keys or axes throw
 * `INVALID_ARGUMENT` naming them.
 */
export function parseSpatialConfig(config: unknown, axes: readonly string[] = WORLD): ParsedSpatialConfig {
  const ax = checkAxes(axes);
  const c = parseOrThrow(spatialConfigSchema, config, "spatialTransforms");
  const out: ParsedSpatialConfig = { mirror: [], transpose: null, rotate: [], elastic: null };
  if (c.elastic) {
    if (ax.length === 2 && c.elastic.sigma[0] !== 0) {
      throw new CellMapError(
        "INVALID_ARGUMENT",
        "spatialTransforms.elastic.sigma must have a z of 0 for 2-D data (a section stays one section)",
        "spatialTransforms.elastic.sigma",
      );
    }
    out.elastic = { controlPointSpacing: [...c.elastic.controlPointSpacing], sigma: [...c.elastic.sigma], p: c.elastic.p ?? 1 };
  }
  out.sectionShift = null;
  if (c.sectionShift) {
    if (ax.length === 2) throw new CellMapError("INVALID_ARGUMENT", "spatialTransforms.sectionShift needs 3-D data (a 2-D patch is one section)", "spatialTransforms.sectionShift");
    out.sectionShift = { p: c.sectionShift.p, maxShift: [...c.sectionShift.maxShift], slip: c.sectionShift.slip ?? 0 };
  }
  if (c.mirror) {
    for (const a of Object.keys(c.mirror.axes)) checkDataAxis(a, ax, "spatialTransforms.mirror.axes", `spatialTransforms.mirror.axes.${a}`);
    for (const a of ax) if (a in c.mirror.axes) out.mirror.push([a, c.mirror.axes[a]!]);
  }
  if (c.transpose) {
    const seen = new Set<string>();
    for (const [i, a] of c.transpose.axes.entries()) {
      checkDataAxis(a, ax, "spatialTransforms.transpose.axes", `spatialTransforms.transpose.axes[${i}]`);
      if (seen.has(a)) throw new CellMapError("INVALID_ARGUMENT", `axis ${JSON.stringify(a)} listed twice in spatialTransforms.transpose.axes`, "spatialTransforms.transpose.axes");
      seen.add(a);
    }
    out.transpose = ax.filter((a) => seen.has(a));
  }
  if (c.rotate) {
    for (const a of Object.keys(c.rotate.axes)) checkRotationAxis(a, ax, "spatialTransforms.rotate.axes", `spatialTransforms.rotate.axes.${a}`);
    for (const a of WORLD) {
      const r = c.rotate.axes[a];
      if (r) out.rotate.push([a, r[0], r[1]]);
    }
  }
  return out;
}

/**
 * Draws one sample's spatial transform. Deterministic given `rng` (pass
 * `sampleRng(seed, epoch, idx, RngStream.spatial)`): draws happen in a fixed order — mirror
 * (one uniform per configured axis, zyx order, `u < p` mirrors), transpose (Fisher–Yates over
 * the listed axes), rotate (one uniform angle per configured axis, zyx order) — and the number of
 * draws depends only on the config.
 */
export function drawSpatialTransform(config: SpatialConfig | ParsedSpatialConfig | unknown, rng: Rng, axes: readonly string[] = WORLD): SpatialDraw {
  const ax = checkAxes(axes);
  const cfg = isParsed(config) ? config : parseSpatialConfig(config, ax);
  const mirror: string[] = [];
  for (const [a, p] of cfg.mirror) if (rng.random() < p) mirror.push(a);
  let transpose: string[] | null = null;
  if (cfg.transpose) {
    const perm: string[] = [...ax];
    const shuffled = rng.shuffle([...cfg.transpose]);
    cfg.transpose.forEach((a, i) => (perm[ax.indexOf(a)] = shuffled[i]));
    if (perm.some((a, i) => a !== ax[i])) transpose = perm;
  }
  const rotate: Record<string, number> = {};
  for (const [a, lo, hi] of cfg.rotate) rotate[a] = rng.uniform(lo, hi);
  return { mirror, transpose, rotate, matrix: spatialMatrix({ mirror, transpose, rotate }, ax) };
}

function isParsed(c: unknown): c is ParsedSpatialConfig {
  return typeof c === "object" && c !== null && Array.isArray((c as ParsedSpatialConfig).mirror) && Array.isArray((c as ParsedSpatialConfig).rotate);
}

/** Draw with no effect (identity matrix). */
export function identityDraw(): SpatialDraw {
  return { mirror: [], transpose: null, rotate: {}, matrix: identity3() };
}

function identity3(): number[][] {
  return [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
}

function mul3(a: number[][], b: number[][]): number[][] {
  const r = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
  return r;
}

function snap(v: number): number {
  if (Math.abs(v) < 1e-12) return 0;
  if (Math.abs(v - 1) < 1e-12) return 1;
  if (Math.abs(v + 1) < 1e-12) return -1;
  return v;
}

/** Rotation about one world axis by `deg` degrees, as a matrix on zyx vectors. */
export function axisRotation(axis: SpatialAxis, deg: number): number[][] {
  const t = (deg * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  switch (axis) {
    case "z": // x' = x c − y s, y' = x s + y c
      return [
        [1, 0, 0],
        [0, c, s],
        [0, -s, c],
      ];
    case "y": // z' = z c − x s, x' = z s + x c
      return [
        [c, 0, -s],
        [0, 1, 0],
        [s, 0, c],
      ];
    case "x": // y' = y c − z s, z' = y s + z c
      return [
        [c, s, 0],
        [-s, c, 0],
        [0, 0, 1],
      ];
  }
}

/**
 * The 3x3 zyx matrix `A = R·M·P` of a draw (see the module comment). 2-D axes (`["y","x"]`)
 * keep z fixed. Throws `INVALID_ARGUMENT` for axes that are not data axes, a transpose that is
 * not a permutation of them, rotation about y/x in 2-D, or non-finite angles.
 */
export function spatialMatrix(draw: Partial<SpatialDrawLike>, axes: readonly string[] = WORLD): number[][] {
  const ax = checkAxes(axes);
  const P = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  if (ax.length === 2) P[0][0] = 1;
  const perm = draw.transpose ?? ax;
  if (perm.length !== ax.length || new Set(perm).size !== ax.length || perm.some((a) => !ax.includes(a as SpatialAxis))) {
    throw new CellMapError("INVALID_ARGUMENT", `transpose ${JSON.stringify(perm)} is not a permutation of ${JSON.stringify(ax)}`, "transpose");
  }
  perm.forEach((a, k) => (P[worldIndex(a)][worldIndex(ax[k])] = 1));
  const M = identity3();
  for (const a of draw.mirror ?? []) {
    checkDataAxis(a, ax, "mirror");
    M[worldIndex(a)][worldIndex(a)] = -1;
  }
  let R = identity3();
  const rot = draw.rotate ?? {};
  for (const a of Object.keys(rot)) {
    checkRotationAxis(a, ax, "rotate");
    if (!Number.isFinite(rot[a])) throw new CellMapError("INVALID_ARGUMENT", `rotate.${a} must be a finite angle in degrees, got ${rot[a]}`, `rotate.${a}`);
  }
  for (const a of WORLD) if (a in rot) R = mul3(R, axisRotation(a, rot[a])); // Rz·Ry·Rx
  return mul3(mul3(R, M), P).map((row) => row.map(snap));
}

/** True when every row and column of `A` has exactly one non-zero entry and it is exactly ±1. */
export function isSignedPermutation(A: readonly (readonly number[])[]): boolean {
  const n = A.length;
  const colCount = new Array<number>(n).fill(0);
  for (const row of A) {
    if (row.length !== n) return false;
    let nz = 0;
    for (let j = 0; j < n; j++) {
      const v = row[j];
      if (v === 0) continue;
      if (v !== 1 && v !== -1) return false;
      nz++;
      colCount[j]++;
    }
    if (nz !== 1) return false;
  }
  return colCount.every((c) => c === 1);
}

/**
 * Half-extent per world axis of the box swept by the transformed patch, `|A|·h`, where `h` is
 * the patch half-extent per output axis (nm, zyx). Used to grow the read window. A 2-entry `h`
 * is taken as `[y, x]` (z half-extent 0) and a 2-entry result is returned.
 */
export function rotatedExtent(A: readonly (readonly number[])[], halfExtent: readonly number[]): number[] {
  const h = halfExtent.length === 2 ? [0, ...halfExtent] : [...halfExtent];
  if (h.length !== A.length) {
    throw new CellMapError("INVALID_ARGUMENT", `halfExtent has ${halfExtent.length} entries, matrix is ${A.length}x${A.length}`, "halfExtent");
  }
  const out = A.map((row) => row.reduce((acc, v, j) => acc + Math.abs(v) * h[j], 0));
  return halfExtent.length === 2 ? out.slice(1) : out;
}
