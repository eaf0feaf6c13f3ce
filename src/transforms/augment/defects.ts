/**
 * Section defects of serial-section EM, on input patches only: whole z-sections missing, or with
 * low contrast (gunpowder's `DefectAugment`, torch-em's EM defect augmentation). Formulas in
 * docs/transforms.md.
 */
import { z } from "zod";
import { CellMapError } from "../../errors.js";
import type { Tensor } from "../../tensor.js";
import type { Rng } from "../../util/rng.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { minMaxRange, parseOrThrow, probability } from "../validate.js";

const schema = z.strictObject({
  missing: probability.default(0),
  lowContrast: probability.default(0),
  contrast: minMaxRange(0).default([0.1, 0.5]),
  fillValue: z.number().default(0),
});

/** Parameters of {@link DefectAugment}. */
export interface DefectAugmentParams {
  /** Probability per z-section of a missing section (its values become `fillValue`). Default 0. */
  missing?: number;
  /** Probability per z-section of low contrast (see `contrast`). Default 0. */
  lowContrast?: number;
  /** `[lo, hi]` of the contrast factor `c ~ U(lo, hi)` of a low-contrast section. Default `[0.1, 0.5]`. */
  contrast?: [number, number];
  /** Value of a missing section. Default 0. */
  fillValue?: number;
}

/**
 * Per z-section of an input patch (`[…, z, y, x]`; a 2-D patch is one section): with probability
 * `missing` the section becomes `fillValue`; otherwise, with probability `lowContrast`, it becomes
 * `m + c·(x − m)` with `c ~ U(contrast)` and `m` the mean of the section's finite values. NaN stays
 * NaN. Draws come from the sample's random stream, section by section, so a sample is the same
 * for any worker count. In place: returns `t`. Inputs only: a dataset refuses it as a target
 * transform.
 */
export class DefectAugment implements ValueTransform {
  readonly params: Required<DefectAugmentParams>;
  /** Changes input values only (labels would no longer match their raw). */
  readonly inputsOnly = true;
  constructor(params: DefectAugmentParams = {}) {
    this.params = parseOrThrow(schema, params, "DefectAugment.params") as Required<DefectAugmentParams>;
    if (this.params.missing + this.params.lowContrast > 1) {
      throw new CellMapError(
        "INVALID_ARGUMENT",
        `DefectAugment: missing + lowContrast must be at most 1, got ${this.params.missing + this.params.lowContrast}`,
        "DefectAugment.params",
      );
    }
  }
  apply(t: Tensor, rng: Rng): Tensor {
    const { missing, lowContrast, contrast, fillValue } = this.params;
    const [lo, hi] = contrast;
    const d = t.data;
    const plane = t.shape.length >= 2 ? t.shape[t.shape.length - 1] * t.shape[t.shape.length - 2] : d.length;
    const sections = plane > 0 ? d.length / plane : 0;
    for (let s = 0; s < sections; s++) {
      // One uniform decides the section's fate, a second its contrast: the same draws whatever
      // the probabilities, so changing one probability does not reshuffle the others.
      const u = rng.random();
      const c = rng.uniform(lo, hi);
      const from = s * plane;
      const to = from + plane;
      if (u < missing) {
        for (let i = from; i < to; i++) if (d[i] === d[i]) d[i] = fillValue;
      } else if (u < missing + lowContrast) {
        let sum = 0;
        let n = 0;
        for (let i = from; i < to; i++) {
          const v = d[i];
          if (Number.isFinite(v)) {
            sum += v;
            n++;
          }
        }
        if (n === 0) continue;
        const m = sum / n;
        for (let i = from; i < to; i++) d[i] = m + c * (d[i] - m);
      }
    }
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "DefectAugment", params: { ...this.params, contrast: [...this.params.contrast] } };
  }
}
