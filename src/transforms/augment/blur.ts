/** Separable, NaN-aware Gaussian blur over the last 2 or 3 axes. */
import type { Rng } from "../../util/rng.js";
import { z } from "zod";
import { CellMapError } from "../../errors.js";
import type { Tensor } from "../../tensor.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { parseOrThrow } from "../validate.js";

const schema = z
  .strictObject({
    sigma: z.union([z.number().min(0), z.array(z.number().min(0))]),
    dims: z.union([z.literal(2), z.literal(3)]).default(2),
    kernelSize: z
      .int()
      .min(1)
      .refine((k) => k % 2 === 1, "kernelSize must be odd")
      .optional(),
  })
  .refine((p) => !Array.isArray(p.sigma) || p.sigma.length === p.dims, "sigma array needs one entry per blurred axis (dims)");

/** Parameters of {@link GaussianBlur}. */
export interface GaussianBlurParams {
  /** Standard deviation in voxels: one number, or one per blurred axis (in tensor axis order). */
  sigma: number | number[];
  /** Blur the last 2 (y, x) or 3 (z, y, x) axes; leading axes are independent channels. Default 2. */
  dims?: 2 | 3;
  /** Odd kernel width in voxels (all axes); default `2·ceil(3σ) + 1` per axis. */
  kernelSize?: number;
}

/**
 * Gaussian blur, `y(p) = Σ_q w(q)·m(p+q)·x(p+q) / Σ_q w(q)·m(p+q)` with `w(q) = exp(−Σ q_a²/(2σ_a²))`
 * over the kernel window, applied separably (one 1-D pass per axis). This is *normalised
 * convolution*: `m` is 0 for NaN voxels and for positions outside the tensor, 1 elsewhere, so NaN
 * never spreads into known values and borders use only real data (constant input stays constant;
 * Python used replicate padding instead). Output is NaN exactly where the input was NaN.
 * Infinite inputs propagate. In place: returns `t` with the blurred values (`sourceDtype`
 * float32); scratch buffers are allocated per call.
 */
export class GaussianBlur implements ValueTransform {
  readonly params: GaussianBlurParams & { dims: 2 | 3 };
  private readonly kernels: Float64Array[];
  constructor(params: GaussianBlurParams) {
    this.params = parseOrThrow(schema, params, "GaussianBlur.params");
    const sig = Array.isArray(this.params.sigma) ? this.params.sigma : new Array<number>(this.params.dims).fill(this.params.sigma);
    this.kernels = sig.map((s) => gaussianKernel(s, this.params.kernelSize));
  }

  apply(t: Tensor, _rng?: Rng): Tensor {
    const dims = this.params.dims;
    const rank = t.shape.length;
    if (rank < dims) {
      throw new CellMapError("INVALID_ARGUMENT", `GaussianBlur with dims=${dims} needs a tensor of rank >= ${dims}, got shape [${t.shape}]`, "GaussianBlur");
    }
    const d = t.data;
    let hasNaN = false;
    for (let i = 0; i < d.length; i++) {
      if (d[i] !== d[i]) {
        hasNaN = true;
        break;
      }
    }
    if (!hasNaN) {
      // Mask is the tensor box, a separable product: normalising each 1-D pass is exact.
      let a: Float32Array = d;
      let b: Float32Array = new Float32Array(d.length);
      for (let k = 0; k < dims; k++) {
        if (this.kernels[k].length === 1) continue; // σ = 0 on this axis
        convAxis(a, b, t.shape, rank - dims + k, this.kernels[k], true);
        [a, b] = [b, a];
      }
      if (a !== d) d.set(a);
    } else {
      let num: Float32Array = new Float32Array(d.length);
      let den: Float32Array = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) {
        const v = d[i];
        if (v === v) {
          num[i] = v;
          den[i] = 1;
        }
      }
      let tmp: Float32Array = new Float32Array(d.length);
      for (let k = 0; k < dims; k++) {
        if (this.kernels[k].length === 1) continue;
        const axis = rank - dims + k;
        convAxis(num, tmp, t.shape, axis, this.kernels[k], false);
        [num, tmp] = [tmp, num];
        convAxis(den, tmp, t.shape, axis, this.kernels[k], false);
        [den, tmp] = [tmp, den];
      }
      for (let i = 0; i < d.length; i++) if (d[i] === d[i]) d[i] = num[i] / den[i];
    }
    t.sourceDtype = "float32";
    return t;
  }

  toJSON(): TransformSpec {
    const p: Record<string, unknown> = { sigma: Array.isArray(this.params.sigma) ? [...this.params.sigma] : this.params.sigma, dims: this.params.dims };
    if (this.params.kernelSize !== undefined) p.kernelSize = this.params.kernelSize;
    return { type: "GaussianBlur", params: p };
  }
}

/** Unnormalised 1-D Gaussian weights `exp(−q²/(2σ²))`, `q = −r…r`; σ = 0 gives `[1]`. */
function gaussianKernel(sigma: number, kernelSize: number | undefined): Float64Array {
  if (sigma === 0) return new Float64Array([1]);
  const r = kernelSize !== undefined ? (kernelSize - 1) / 2 : Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  for (let q = -r; q <= r; q++) k[q + r] = Math.exp(-(q * q) / (2 * sigma * sigma));
  return k;
}

/**
 * 1-D convolution of `src` along `axis` into `dst` with zero padding; with `normalise`, each
 * output is divided by the sum of the weights that fell inside the tensor. Loops run over the
 * contiguous inner extent so every tap is a vectorisable sweep.
 */
function convAxis(src: Float32Array, dst: Float32Array, shape: readonly number[], axis: number, kernel: Float64Array, normalise: boolean): void {
  const n = shape[axis];
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const outer = src.length / (n * inner);
  const r = (kernel.length - 1) / 2;
  const norm = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let q = Math.max(-r, -i); q <= Math.min(r, n - 1 - i); q++) s += kernel[q + r];
    norm[i] = normalise ? 1 / s : 1;
  }
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let i = 0; i < n; i++) {
      const out = base + i * inner;
      const qLo = Math.max(-r, -i);
      const qHi = Math.min(r, n - 1 - i);
      if (inner === 1) {
        let s = 0;
        for (let q = qLo; q <= qHi; q++) s += kernel[q + r] * src[out + q];
        dst[out] = s * norm[i];
        continue;
      }
      const w0 = kernel[qLo + r];
      const from0 = out + qLo * inner;
      for (let j = 0; j < inner; j++) dst[out + j] = w0 * src[from0 + j];
      for (let q = qLo + 1; q <= qHi; q++) {
        const w = kernel[q + r];
        const from = out + q * inner;
        for (let j = 0; j < inner; j++) dst[out + j] += w * src[from + j];
      }
      const f = norm[i];
      if (f !== 1) for (let j = 0; j < inner; j++) dst[out + j] *= f;
    }
  }
}
