/** Additive Gaussian noise. */
import { z } from "zod";
import type { Rng } from "../../util/rng.js";
import type { Tensor } from "../../tensor.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { parseOrThrow } from "../validate.js";

const schema = z.strictObject({ mean: z.number().default(0), std: z.number().min(0).default(0.1) });

/** Parameters of {@link GaussianNoise}. */
export interface GaussianNoiseParams {
  mean?: number;
  std?: number;
}

/**
 * `y = x + ε`, `ε ~ N(mean, std²)` drawn independently per element from `rng` (Box–Muller, two
 * normals per pair of uniforms; one draw per element in C order, NaN elements included, so the
 * stream does not depend on the data). NaN stays NaN. `std = 0` adds `mean` without drawing.
 * In place: returns `t` (`sourceDtype` becomes `float32`, as Python promotes integers to float).
 */
export class GaussianNoise implements ValueTransform {
  readonly params: Required<GaussianNoiseParams>;
  constructor(params: GaussianNoiseParams = {}) {
    this.params = parseOrThrow(schema, params, "GaussianNoise.params");
  }
  apply(t: Tensor, rng: Rng): Tensor {
    const { mean, std } = this.params;
    const d = t.data;
    const n = d.length;
    if (std === 0) {
      if (mean !== 0) for (let i = 0; i < n; i++) d[i] += mean;
    } else {
      for (let i = 0; i < n; i += 2) {
        const r = std * Math.sqrt(-2 * Math.log(1 - rng.random())); // 1 − u ∈ (0, 1]
        const a = 2 * Math.PI * rng.random();
        d[i] += mean + r * Math.cos(a);
        if (i + 1 < n) d[i + 1] += mean + r * Math.sin(a);
      }
    }
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "GaussianNoise", params: { ...this.params } };
  }
}
