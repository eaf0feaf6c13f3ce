/** Affinity channels from a label or mask image. */
import type { Rng } from "../../util/rng.js";
import { z } from "zod";
import { CellMapError } from "../../errors.js";
import type { Tensor } from "../../tensor.js";
import type { TransformSpec, ValueTransform } from "../types.js";
import { parseOrThrow } from "../validate.js";

const schema = z.strictObject({
  offsets: z
    .array(z.array(z.int()).min(1).max(3))
    .min(1)
    .refine((o) => o.every((v) => v.length === o[0].length), "all offsets need the same number of axes"),
});

/**
 * One channel per offset `o` (voxels, one entry per spatial axis, zyx): at voxel p,
 * `1` if `x[p]` is foreground (non-zero) and `x[p + o] === x[p]` (same label; for binary masks:
 * both 1), `0` otherwise, `NaN` if either value is NaN or `p + o` lies outside the patch.
 * The last `offset.length` axes are spatial; output shape `[...leading, nOffsets, ...spatial]`
 * (a `[z,y,x]` input gives `[nOffsets, z, y, x]`). Returns a new tensor, `sourceDtype` float32.
 */
export class Affinities implements ValueTransform {
  readonly params: { offsets: number[][] };
  constructor(params: { offsets: number[][] }) {
    this.params = parseOrThrow(schema, params, "Affinities.params");
  }

  apply(t: Tensor, _rng?: Rng): Tensor {
    const offsets = this.params.offsets;
    const k = offsets[0].length;
    if (t.shape.length < k) {
      throw new CellMapError("INVALID_ARGUMENT", `Affinities with ${k}-axis offsets needs rank >= ${k}, got shape [${t.shape}]`, "Affinities");
    }
    const lead = t.shape.slice(0, t.shape.length - k);
    const spatial = t.shape.slice(t.shape.length - k);
    // Work in 3-D: pad the spatial shape and offsets with leading singleton axes.
    const n3 = [...new Array<number>(3 - k).fill(1), ...spatial];
    const per = n3[0] * n3[1] * n3[2];
    const batches = per === 0 ? 0 : t.data.length / per;
    const out = new Float32Array(batches * offsets.length * per).fill(NaN);
    const sy = n3[2];
    const sz = n3[1] * n3[2];
    for (let b = 0; b < batches; b++) {
      const x = t.data.subarray(b * per, (b + 1) * per);
      offsets.forEach((off, c) => {
        const o = [...new Array<number>(3 - k).fill(0), ...off];
        const y = out.subarray((b * offsets.length + c) * per, (b * offsets.length + c + 1) * per);
        const lo = o.map((v) => Math.max(0, -v));
        const hi = o.map((v, a) => Math.min(n3[a], n3[a] - v));
        const shift = o[0] * sz + o[1] * sy + o[2];
        for (let iz = lo[0]; iz < hi[0]; iz++) {
          for (let iy = lo[1]; iy < hi[1]; iy++) {
            const row = iz * sz + iy * sy;
            for (let ix = lo[2]; ix < hi[2]; ix++) {
              const p = row + ix;
              const a = x[p];
              const q = x[p + shift];
              y[p] = a !== a || q !== q ? NaN : a !== 0 && a === q ? 1 : 0;
            }
          }
        }
      });
    }
    return { data: out, shape: [...lead, offsets.length, ...spatial], sourceDtype: "float32" };
  }

  toJSON(): TransformSpec {
    return { type: "Affinities", params: { offsets: this.params.offsets.map((o) => [...o]) } };
  }
}
