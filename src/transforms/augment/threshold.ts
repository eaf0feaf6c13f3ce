/** Element-wise value maps: `Binarize` and `NaNtoNum`. */
import type { Rng } from "../../util/rng.js";
import { z } from "zod";
import type { Tensor } from "../../tensor.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { parseOrThrow } from "../validate.js";

const binarizeSchema = z.strictObject({ threshold: z.number().default(0) });

/**
 * `y = x > threshold ? 1 : 0`; NaN stays NaN (unknown labels stay unknown). In place: returns
 * `t`; `sourceDtype` is kept (Python casts back to the input dtype).
 */
export class Binarize implements ValueTransform {
  readonly params: { threshold: number };
  constructor(params: { threshold?: number } = {}) {
    this.params = parseOrThrow(binarizeSchema, params, "Binarize.params");
  }
  apply(t: Tensor, _rng?: Rng): Tensor {
    const th = this.params.threshold;
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v === v) d[i] = v > th ? 1 : 0;
    }
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "Binarize", params: { ...this.params } };
  }
}

/** Largest finite float32, the default replacement for ±Infinity (torch `nan_to_num`). */
export const FLOAT32_MAX = 3.4028234663852886e38;

const nanSchema = z.strictObject({
  nan: z.number().default(0),
  posinf: z.number().default(FLOAT32_MAX),
  neginf: z.number().default(-FLOAT32_MAX),
});

/** Parameters of {@link NaNtoNum}. */
export interface NaNtoNumParams {
  /** Replacement for NaN (default 0). */
  nan?: number;
  /** Replacement for +Infinity (default the largest float32). */
  posinf?: number;
  /** Replacement for −Infinity (default the most negative float32). */
  neginf?: number;
}

/** Replaces NaN / +Inf / −Inf by the given numbers (torch `nan_to_num`). In place: returns `t`. */
export class NaNtoNum implements ValueTransform {
  readonly params: Required<NaNtoNumParams>;
  constructor(params: NaNtoNumParams = {}) {
    this.params = parseOrThrow(nanSchema, params, "NaNtoNum.params");
  }
  apply(t: Tensor, _rng?: Rng): Tensor {
    const { nan, posinf, neginf } = this.params;
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v !== v) d[i] = nan;
      else if (v === Infinity) d[i] = posinf;
      else if (v === -Infinity) d[i] = neginf;
    }
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "NaNtoNum", params: { ...this.params } };
  }
}
