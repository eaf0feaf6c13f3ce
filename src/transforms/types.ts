/**
 * The value-transform contract. A transform is a small object with `apply` and `toJSON`; the
 * JSON form (`{ type, params }`) is what crosses into worker threads, where
 * `transformFromSpec` / `loadTransform` (registry.ts) rebuild it.
 */
import type { Rng } from "../util/rng.js";
import type { Tensor } from "../tensor.js";

/**
 * Serialised transform. Built-ins: `{ type: "GaussianNoise", params: { mean: 0, std: 0.1 } }`.
 * User transforms: `{ type: "module", module: "/abs/file.js" | "file:///…", export: "name", params }`.
 */
export interface TransformSpec {
  type: string;
  params?: unknown;
  /** Only for `type: "module"`: absolute path or file URL of an ES module. */
  module?: string;
  /** Only for `type: "module"`: the named export (class or factory). */
  export?: string;
}

/**
 * A transform of tensor values. `apply` may modify `t` in place; callers must use the returned
 * tensor (built-ins document whether it is `t` itself or a new tensor). Random transforms take
 * all their randomness from `rng`, so results are a function of the sample's seed only.
 */
export interface ValueTransform {
  apply(t: Tensor, rng: Rng): Tensor;
  toJSON(): TransformSpec;
}

/** True for integer (and bool) source dtypes, whose values are scaled by `dtypeMax`. */
export function isIntegerDtype(d: Tensor["sourceDtype"]): boolean {
  return d !== "float32" && d !== "float64";
}
