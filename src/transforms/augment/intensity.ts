/** Random intensity changes: contrast and gamma. */
import { z } from "zod";
import type { Rng } from "../../util/rng.js";
import { dtypeMax, type Tensor } from "../../tensor.js";
import { isIntegerDtype, type TransformSpec, type ValueTransform } from "../types.js";
import { minMaxRange, parseOrThrow } from "../validate.js";

const contrastSchema = z.strictObject({ range: minMaxRange(0).default([0.5, 1.5]), clip: z.boolean().default(true) });

/** Parameters of {@link RandomContrast}. */
export interface RandomContrastParams {
  /** `[lo, hi]` for the contrast factor `r ~ U(lo, hi)`; default `[0.5, 1.5]`. */
  range?: [number, number];
  /** Clamp to `[0, 1]` (float sources) or `[0, dtypeMax]` (integer sources); default true. */
  clip?: boolean;
}

/**
 * `y = r·x + (1 − r)·m` with one `r ~ U(lo, hi)` per call and `m` the mean of the finite values
 * of the whole tensor (Python used the mean over dim 0 only), then optionally clamped.
 * NaN stays NaN (Python turned it into 0). In place: returns `t`.
 */
export class RandomContrast implements ValueTransform {
  readonly params: Required<RandomContrastParams>;
  constructor(params: RandomContrastParams = {}) {
    this.params = parseOrThrow(contrastSchema, params, "RandomContrast.params") as Required<RandomContrastParams>;
  }
  apply(t: Tensor, rng: Rng): Tensor {
    const [lo, hi] = this.params.range;
    const r = rng.uniform(lo, hi);
    const d = t.data;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (Number.isFinite(v)) {
        sum += v;
        count++;
      }
    }
    if (count === 0) return t;
    const shift = (1 - r) * (sum / count);
    const top = isIntegerDtype(t.sourceDtype) ? dtypeMax(t.sourceDtype) : 1;
    if (this.params.clip) {
      for (let i = 0; i < d.length; i++) {
        const v = r * d[i] + shift;
        d[i] = v < 0 ? 0 : v > top ? top : v; // NaN fails both tests and stays NaN
      }
    } else {
      for (let i = 0; i < d.length; i++) d[i] = r * d[i] + shift;
    }
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "RandomContrast", params: { range: [...this.params.range], clip: this.params.clip } };
  }
}

const gammaSchema = z.strictObject({
  range: minMaxRange(0)
    .refine(([a]) => a > 0, "gamma must be > 0")
    .default([0.5, 1.5]),
});

/** Parameters of {@link RandomGamma}. */
export interface RandomGammaParams {
  /** `[lo, hi]` for `g ~ U(lo, hi)`, `lo > 0`; default `[0.5, 1.5]`. */
  range?: [number, number];
}

/**
 * `y = clamp(x, 0, 1)^g` with one `g ~ U(lo, hi)` per call, for data on [0, 1]; an integer
 * source is first scaled by its dtype maximum (as Python does). `g < 1` brightens mid-tones,
 * `g > 1` darkens; monotonic in x. Clamping before the power keeps negative inputs from turning
 * into NaN; NaN stays NaN (Python turned it into 0). In place: returns `t` (`sourceDtype` float32).
 */
export class RandomGamma implements ValueTransform {
  readonly params: Required<RandomGammaParams>;
  constructor(params: RandomGammaParams = {}) {
    this.params = parseOrThrow(gammaSchema, params, "RandomGamma.params") as Required<RandomGammaParams>;
  }
  apply(t: Tensor, rng: Rng): Tensor {
    const [lo, hi] = this.params.range;
    const g = rng.uniform(lo, hi);
    const d = t.data;
    const scale = isIntegerDtype(t.sourceDtype) ? 1 / dtypeMax(t.sourceDtype) : 1;
    for (let i = 0; i < d.length; i++) {
      const v = d[i] * scale;
      d[i] = v <= 0 ? 0 : v >= 1 ? 1 : v === v ? Math.pow(v, g) : v;
    }
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "RandomGamma", params: { range: [...this.params.range] } };
  }
}
