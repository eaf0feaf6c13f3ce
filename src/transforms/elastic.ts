/**
 * Elastic deformation of the sample grid (gunpowder's `DeformAugment`, MONAI's `Rand3DElastic`):
 * control points on a regular grid spanning the patch, each displaced by a Gaussian draw, the
 * displacement interpolated to every output voxel with a uniform cubic B-spline. The displacement
 * `d(o)` of an output offset `o` (nm from the patch centre) enters the sample grid as
 * `world = centre + A·(o + d(o))`, so one resampling per array composes it with mirror,
 * transpose, rotation and level choice; every array of a sample reads through the same `d`.
 */
import { z } from "zod";
import type { SeparableField } from "../image/displacement.js";
import type { Rng } from "../util/rng.js";
import { probability } from "./validate.js";

const triple = (what: string, min: number) =>
  z.custom<number[]>((v) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && Number.isFinite(x) && x >= min && (min > 0 || x >= 0)), {
    error: (iss) => `must be ${what} [z, y, x], got ${JSON.stringify(iss.input)}`,
  });

/** Schema of `spatialTransforms.elastic`. */
export const elasticShape = {
  /** Distance between control points (nm), `[z, y, x]`. */
  controlPointSpacing: triple("3 positive numbers (nm)", Number.MIN_VALUE),
  /** Standard deviation of the control points' displacements (nm), `[z, y, x]`; a `z` of 0 keeps sections flat. */
  sigma: triple("3 non-negative numbers (nm)", 0),
  /** Probability per sample (default 1). */
  p: probability.optional(),
};

/** The elastic deformation config (nm). */
export interface ElasticConfig {
  controlPointSpacing: number[];
  sigma: number[];
  p?: number;
}

/** What the sample metadata reports of an elastic draw (plain JSON). */
export interface ElasticDraw {
  controlPointSpacing: number[];
  sigma: number[];
  /** Largest displacement per axis (nm), z y x: a bound on every voxel's. */
  maxDisplacement: number[];
}

/** Uniform cubic B-spline weights of fractional position `t` in [0, 1). */
function bspline(t: number, w: Float64Array): void {
  const t2 = t * t;
  const t3 = t2 * t;
  w[0] = (1 - 3 * t + 3 * t2 - t3) / 6;
  w[1] = (4 - 6 * t2 + 3 * t3) / 6;
  w[2] = (1 + 3 * t + 3 * t2 - 3 * t3) / 6;
  w[3] = t3 / 6;
}

/** One drawn deformation: control displacements (nm) on a grid from `origin` (nm) by `spacing`. */
export class Deformation {
  private readonly fields = new Map<string, Float32Array | null>();
  private readonly separables = new Map<string, SeparableField>();
  /** Largest |control displacement| per axis: B-spline weights are non-negative and sum to 1, so no voxel moves further. */
  readonly maxDisplacement: number[];

  private constructor(
    readonly spacing: number[],
    readonly sigma: number[],
    readonly origin: number[],
    readonly dims: number[],
    /** Per axis (z, y, x): displacement of every control point (C order over dims), or null (sigma 0). */
    readonly values: (Float64Array | null)[],
  ) {
    this.maxDisplacement = values.map((v) => (v ? v.reduce((m, x) => Math.max(m, Math.abs(x)), 0) : 0));
  }

  /**
   * Draws the control displacements for patches reaching `halfExtent` (nm per axis) from the
   * centre: 4 normal draws per control point and axis with a non-zero sigma, in C order, axis by
   * axis (z, y, x). The grid extends past the patch by the cubic support on each side.
   */
  static draw(config: ElasticConfig, rng: Rng, halfExtent: number[]): Deformation {
    const spacing = config.controlPointSpacing;
    const origin: number[] = [];
    const dims: number[] = [];
    for (let a = 0; a < 3; a++) {
      const cells = Math.max(1, Math.ceil((2 * halfExtent[a]) / spacing[a]));
      // Control points from -cells·s/2 - s: every offset in [-h, h] has its 4 taps inside
      // (the last one's weight may be 0 at the far edge, but it is still a real point).
      origin.push(-(cells / 2) * spacing[a] - spacing[a]);
      dims.push(cells + 4);
    }
    const n = dims[0] * dims[1] * dims[2];
    const values = config.sigma.map((s) => {
      if (s === 0) return null;
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = rng.normal(0, s);
      return v;
    });
    return new Deformation([...spacing], [...config.sigma], origin, dims, values);
  }

  /** The metadata of the draw. */
  report(): ElasticDraw {
    return { controlPointSpacing: [...this.spacing], sigma: [...this.sigma], maxDisplacement: [...this.maxDisplacement] };
  }

  /**
   * `Σ_a weights[a]·d_a` (nm per axis a, z y x) at every voxel of a patch of `shape` voxels of
   * `scale` nm (C order), or null when no axis with a weight moves. The B-spline is linear in the
   * control values, so the weighted control values are interpolated once. Memoised: the arrays
   * of a sample on the same grid share it.
   */
  field(shape: readonly number[], scale: readonly number[], weights: readonly number[]): Float32Array | null {
    const key = `${shape.join(",")}|${scale.join(",")}|${weights.join(",")}`;
    let f = this.fields.get(key);
    if (f === undefined) {
      const sep = this.separable(shape, scale, weights);
      f = sep ? zPass(sep, shape) : null;
      this.fields.set(key, f);
    }
    return f;
  }

  /** The field before its z pass (memoised): see `Displacement.separable` (`image/grid.ts`). */
  separable(shape: readonly number[], scale: readonly number[], weights: readonly number[]): SeparableField | null {
    const used = [0, 1, 2].filter((a) => weights[a] !== 0 && this.values[a] !== null);
    if (used.length === 0) return null;
    const key = `${shape.join(",")}|${scale.join(",")}|${weights.join(",")}`;
    let s = this.separables.get(key);
    if (!s) {
      const v = new Float64Array(this.values[used[0]]!.length);
      for (const a of used) {
        const src = this.values[a]!;
        const w = weights[a];
        for (let i = 0; i < v.length; i++) v[i] += w * src[i];
      }
      s = this.evaluateXY(v, shape, scale);
      this.separables.set(key, s);
    }
    return s;
  }

  /** Per axis a: for each output index, the first control index and 4 weights. */
  private taps(shape: readonly number[], scale: readonly number[], a: number): { first: Int32Array; w: Float64Array } {
    const n = shape[a];
    const first = new Int32Array(n);
    const w = new Float64Array(4 * n);
    const tmp = new Float64Array(4);
    for (let i = 0; i < n; i++) {
      const o = (i - (n - 1) / 2) * scale[a];
      const u = (o - this.origin[a]) / this.spacing[a]; // control-grid coordinate
      const c = Math.floor(u);
      bspline(u - c, tmp);
      first[i] = c - 1;
      w.set(tmp, 4 * i);
    }
    return { first, w };
  }

  /** The x and y passes of the B-spline of control values `v`: planes [D0, n1, n2] and the z taps. */
  private evaluateXY(v: Float64Array, shape: readonly number[], scale: readonly number[]): SeparableField {
    const [D0, D1, D2] = this.dims;
    const [, n1, n2] = shape;
    const tz = this.taps(shape, scale, 0);
    const ty = this.taps(shape, scale, 1);
    const tx = this.taps(shape, scale, 2);
    // x: [D0, D1, n2]
    const a = new Float64Array(D0 * D1 * n2);
    for (let p = 0; p < D0 * D1; p++) {
      for (let k = 0; k < n2; k++) {
        const f = tx.first[k];
        let s = 0;
        for (let r = 0; r < 4; r++) s += tx.w[4 * k + r] * v[p * D2 + f + r];
        a[p * n2 + k] = s;
      }
    }
    // y: [D0, n1, n2], the four taps of a row at once
    const b = new Float32Array(D0 * n1 * n2);
    for (let p = 0; p < D0; p++) {
      for (let j = 0; j < n1; j++) sweep4(b, (p * n1 + j) * n2, a, (p * D1 + ty.first[j]) * n2, n2, ty.w, 4 * j, n2);
    }
    return { planes: b, first: tz.first, w: tz.w };
  }
}

/** The z pass of a separable field: section i is `Σ_r w[4i+r]·planes[first[i]+r]` (f64, in order). */
function zPass(sep: SeparableField, shape: readonly number[]): Float32Array {
  const [n0, n1, n2] = shape;
  const plane = n1 * n2;
  const out = new Float32Array(n0 * plane);
  for (let i = 0; i < n0; i++) sweep4(out, i * plane, sep.planes, sep.first[i] * plane, plane, sep.w, 4 * i, plane);
  return out;
}

/**
 * One cubic B-spline pass over a row: `dst[o + q] = w0·src[s + q] + w1·src[s + step + q] +
 * w2·src[s + 2·step + q] + w3·src[s + 3·step + q]` for `q < n`, weights `w[wi…wi+3]`, summed in
 * f64 in that order (the kernels' `bspline_z` gives the same bits).
 */
function sweep4(dst: Float32Array, o: number, src: Float32Array | Float64Array, s: number, step: number, w: Float64Array, wi: number, n: number): void {
  const w0 = w[wi];
  const w1 = w[wi + 1];
  const w2 = w[wi + 2];
  const w3 = w[wi + 3];
  const s1 = s + step;
  const s2 = s1 + step;
  const s3 = s2 + step;
  for (let q = 0; q < n; q++) dst[o + q] = w0 * src[s + q] + w1 * src[s1 + q] + w2 * src[s2 + q] + w3 * src[s3 + q];
}
