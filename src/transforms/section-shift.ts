/**
 * Section misalignment of serial-section EM (gunpowder's `ShiftAugment`): the sections from a
 * drawn z onward are shifted in y/x by a drawn offset (a step), or a single section is (a slip).
 * A displacement of the sample grid like the elastic one (`elastic.ts`), so every array of a
 * sample moves alike and is still resampled once.
 */
import { z } from "zod";
import type { Rng } from "../util/rng.js";
import { probability } from "./validate.js";

/** Schema of `spatialTransforms.sectionShift`. */
export const sectionShiftShape = {
  /** Probability per sample of a misalignment. */
  p: probability,
  /** Largest shift (nm), `[y, x]`: each drawn uniformly in `[-max, max]`. */
  maxShift: z.custom<number[]>((v) => Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0), {
    error: (iss) => `must be 2 non-negative numbers (nm) [y, x], got ${JSON.stringify(iss.input)}`,
  }),
  /** Probability that a misalignment is a slip (one section) rather than a step (every section from z on). Default 0. */
  slip: probability.optional(),
};

/** The section misalignment config (nm). */
export interface SectionShiftConfig {
  p: number;
  maxShift: number[];
  slip?: number;
}

/** What the sample metadata reports of a section misalignment. */
export interface SectionShiftDraw {
  /** Offset (nm from the patch centre, output z) where the misalignment starts. */
  z: number;
  /** The shift (nm), `[y, x]`. */
  shift: number[];
  /** A single section (of `thickness` nm) rather than every section from `z` on. */
  slip: boolean;
  thickness: number;
}

/** One drawn misalignment: a displacement of the sample grid (see `image/grid.ts` `Displacement`). */
export class SectionShift {
  readonly maxDisplacement: number[];
  private readonly fields = new Map<string, Float32Array | null>();

  private constructor(readonly draw: SectionShiftDraw) {
    this.maxDisplacement = [0, Math.abs(draw.shift[0]), Math.abs(draw.shift[1])];
  }

  /**
   * Draws, from `rng`: one uniform for `p` (null: no misalignment), then z uniform over the
   * patch (`halfExtentZ` nm either side of the centre), the y and x shifts, and one uniform for
   * `slip`. `thickness`: the section thickness a slip moves (nm).
   */
  static draw(config: SectionShiftConfig, rng: Rng, halfExtentZ: number, thickness: number): SectionShift | null {
    if (rng.random() >= config.p) return null;
    const z0 = rng.uniform(-halfExtentZ, halfExtentZ);
    const shift = [rng.uniform(-config.maxShift[0], config.maxShift[0]), rng.uniform(-config.maxShift[1], config.maxShift[1])];
    const slip = rng.random() < (config.slip ?? 0);
    // A slip moves the one section whose slab holds z0; a step every section at or past it.
    return new SectionShift({ z: z0, shift, slip, thickness });
  }

  /** `Σ weights[a]·d_a` at every voxel of a grid (`Displacement.field`). */
  field(shape: readonly number[], scale: readonly number[], weights: readonly number[]): Float32Array | null {
    const c = weights[1] * this.draw.shift[0] + weights[2] * this.draw.shift[1];
    if (c === 0) return null;
    const key = `${shape.join(",")}|${scale.join(",")}|${c}`;
    if (this.fields.has(key)) return this.fields.get(key)!;
    const [n0, n1, n2] = shape;
    const plane = n1 * n2;
    const out = new Float32Array(n0 * plane);
    const { z: z0, slip, thickness } = this.draw;
    for (let i = 0; i < n0; i++) {
      const oz = (i - (n0 - 1) / 2) * scale[0];
      const moved = slip ? Math.abs(oz - z0) <= thickness / 2 : oz >= z0;
      if (moved) out.fill(c, i * plane, (i + 1) * plane);
    }
    this.fields.set(key, out);
    return out;
  }
}

/** The sum of displacements (elastic and misalignment together). */
export class SumDisplacement {
  readonly maxDisplacement: number[];
  constructor(
    readonly parts: readonly { maxDisplacement: readonly number[]; field(shape: readonly number[], scale: readonly number[], weights: readonly number[]): Float32Array | null }[],
  ) {
    this.maxDisplacement = [0, 1, 2].map((a) => parts.reduce((s, p) => s + p.maxDisplacement[a], 0));
  }
  private readonly fields = new Map<string, Float32Array | null>();
  field(shape: readonly number[], scale: readonly number[], weights: readonly number[]): Float32Array | null {
    const key = `${shape.join(",")}|${scale.join(",")}|${weights.join(",")}`;
    if (this.fields.has(key)) return this.fields.get(key)!;
    const fs = this.parts.map((p) => p.field(shape, scale, weights)).filter((f): f is Float32Array => f !== null);
    let out: Float32Array | null = null;
    if (fs.length === 1) out = fs[0];
    else if (fs.length > 1) {
      out = new Float32Array(fs[0]);
      for (const f of fs.slice(1)) for (let v = 0; v < out.length; v++) out[v] += f[v];
    }
    this.fields.set(key, out);
    return out;
  }
}
