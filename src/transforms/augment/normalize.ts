/** Intensity scaling to [0, 1]: `Normalize` and torchvision-style `ToDtype`. */
import type { Rng } from "../../util/rng.js";
import { z } from "zod";
import { CellMapError } from "../../errors.js";
import { dtypeMax, type Tensor } from "../../tensor.js";
import { isIntegerDtype, type TransformSpec, type ValueTransform } from "../types.js";
import { parseOrThrow } from "../validate.js";

const normalizeSchema = z
  .strictObject({ min: z.number().optional(), max: z.number().optional() })
  .refine((p) => (p.min === undefined) === (p.max === undefined), "give both min and max, or neither")
  .refine((p) => p.min === undefined || p.max! > p.min, "max must be greater than min");

/** Parameters of {@link Normalize}. */
export interface NormalizeParams {
  /** Value mapped to 0 (with `max`). */
  min?: number;
  /** Value mapped to 1 (with `min`). */
  max?: number;
}

/**
 * Scales values to [0, 1]. With `min`/`max`: `y = (x − min) / (max − min)` (no clamping).
 * Without: integer sources are divided by their dtype's maximum, `y = x / dtypeMax(sourceDtype)`
 * (uint8 /255, uint16 /65535, int16 /32767 …); float sources are left unchanged.
 * In place: returns `t`, with `sourceDtype` set to `float32` so a second scaling is a no-op.
 */
export class Normalize implements ValueTransform {
  readonly params: NormalizeParams;
  constructor(params: NormalizeParams = {}) {
    this.params = parseOrThrow(normalizeSchema, params, "Normalize.params");
  }
  apply(t: Tensor, _rng?: Rng): Tensor {
    const { min, max } = this.params;
    const d = t.data;
    if (min !== undefined && max !== undefined) {
      const inv = 1 / (max - min);
      for (let i = 0; i < d.length; i++) d[i] = (d[i] - min) * inv;
    } else if (isIntegerDtype(t.sourceDtype)) {
      scaleBy(d, 1 / dtypeMax(t.sourceDtype));
    }
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "Normalize", params: { ...this.params } };
  }
}

function scaleBy(d: Float32Array, f: number): void {
  if (f === 1) return;
  for (let i = 0; i < d.length; i++) d[i] *= f;
}

const toDtypeSchema = z.strictObject({ dtype: z.string().default("float32"), scale: z.boolean().default(false) });

/** Parameters of {@link ToDtype}. */
export interface ToDtypeParams {
  /** Target dtype; only `"float32"` (tensors are float32 throughout). */
  dtype?: string;
  /** Scale integer sources by their dtype's maximum (torchvision `scale=True`). */
  scale?: boolean;
}

/**
 * torchvision `ToDtype(torch.float32, scale=…)`. Values already live in a Float32Array, so the
 * cast is a relabel (`sourceDtype = "float32"`); with `scale: true` an integer source is first
 * divided by its dtype's maximum (uint8 /255, uint16 /65535, int16 /32767; bool /1); a float
 * source is never rescaled. In place: returns `t`. Integer targets are not supported.
 */
export class ToDtype implements ValueTransform {
  readonly params: Required<ToDtypeParams>;
  constructor(params: ToDtypeParams = {}) {
    this.params = parseOrThrow(toDtypeSchema, params, "ToDtype.params");
    if (this.params.dtype !== "float32") {
      throw new CellMapError("UNSUPPORTED", `ToDtype only converts to "float32", got ${JSON.stringify(this.params.dtype)}`, "ToDtype.params.dtype");
    }
  }
  apply(t: Tensor, _rng?: Rng): Tensor {
    if (this.params.scale && isIntegerDtype(t.sourceDtype)) scaleBy(t.data, 1 / dtypeMax(t.sourceDtype));
    t.sourceDtype = "float32";
    return t;
  }
  toJSON(): TransformSpec {
    return { type: "ToDtype", params: { ...this.params } };
  }
}
