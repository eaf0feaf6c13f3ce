/** Random intensity scale and shift, per patch or per z-section (gunpowder's `IntensityAugment`). */
import { z } from "zod";
import type { Tensor } from "../../tensor.js";
import type { Rng } from "../../util/rng.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { minMaxRange, parseOrThrow } from "../validate.js";

const schema = z.strictObject({
  scale: minMaxRange().default([0.9, 1.1]),
  shift: minMaxRange().default([-0.1, 0.1]),
  perSection: z.boolean().default(false),
});

/** Parameters of {@link IntensityScaleShift}. */
export interface IntensityScaleShiftParams {
  /** `[lo, hi]` of the factor `a ~ U(lo, hi)`. Default `[0.9, 1.1]`. */
  scale?: [number, number];
  /** `[lo, hi]` of the offset `b ~ U(lo, hi)`. Default `[-0.1, 0.1]`. */
  shift?: [number, number];
  /** Draw `a` and `b` per z-section (`[…, z, y, x]`) instead of once per patch. Default false. */
  perSection?: boolean;
}

/**
 * `y = a·x + b` with `a ~ U(scale)` and `b ~ U(shift)`, drawn once per patch or, with
 * `perSection`, once per z-section. Not clipped; NaN stays NaN. In place: returns `t`.
 */
export class IntensityScaleShift implements ValueTransform {
  readonly params: Required<IntensityScaleShiftParams>;
  constructor(params: IntensityScaleShiftParams = {}) {
    this.params = parseOrThrow(schema, params, "IntensityScaleShift.params") as Required<IntensityScaleShiftParams>;
  }
  apply(t: Tensor, rng: Rng): Tensor {
    const { scale, shift, perSection } = this.params;
    const d = t.data;
    const plane = perSection && t.shape.length >= 2 ? t.shape[t.shape.length - 1] * t.shape[t.shape.length - 2] : d.length;
    for (let from = 0; from < d.length; from += plane) {
      const a = rng.uniform(scale[0], scale[1]);
      const b = rng.uniform(shift[0], shift[1]);
      const to = Math.min(d.length, from + plane);
      for (let i = from; i < to; i++) d[i] = a * d[i] + b;
    }
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "IntensityScaleShift", params: { scale: [...this.params.scale], shift: [...this.params.shift], perSection: this.params.perSection } };
  }
}
