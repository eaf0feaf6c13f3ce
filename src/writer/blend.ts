/**
 * Blending of overlapping tile predictions (pure functions on typed arrays).
 *
 * A voxel `x` covered by the windows of tiles `t` gets `Σ_t w_t(x)·p_t(x) / Σ_t w_t(x)`. Weights
 * are separable, `w_t(x) = Π_a w_a(x_a - start_{t,a})`, and the tiles are the Cartesian product
 * of per-axis window starts, so the normaliser is separable too:
 * `Σ_t w_t(x) = Π_a W_a(x_a)` with `W_a(i) = Σ_k w_a(i - start_k)`. It is therefore computed, not
 * stored. Sums run in float64, so a constant prediction comes back as exactly that constant.
 */
import type { AxisTiling } from "./tiling.js";

/**
 * `crop`: each voxel comes from the one tile whose core holds it (centre-crop stitching).
 * `linear`: weights ramp over the `2·halo` voxels shared by neighbouring windows (where windows
 * sit at their regular places and `window >= 4·halo`, they sum to 1 there), 1 elsewhere. `gaussian`: `exp(-d²/(2σ²))` about the window centre with `σ = window/8`.
 */
export type BlendMode = "crop" | "linear" | "gaussian";

/** The blend modes, for validation. */
export const BLEND_MODES: readonly BlendMode[] = ["crop", "linear", "gaussian"];

/**
 * Per-axis weights of a window of `window` voxels with `halo` voxels of context on each side
 * (all > 0, so a voxel seen by a single window keeps that window's value). `crop` gives 1 on the
 * core and 0 on the halo; the writer does not blend in that mode, this is for reference/tests.
 */
export function windowWeights(window: number, halo: number, mode: BlendMode): Float64Array {
  const w = new Float64Array(window);
  for (let i = 0; i < window; i++) {
    if (mode === "linear") {
      const ramp = 2 * halo;
      w[i] = ramp === 0 ? 1 : Math.min(1, (i + 0.5) / ramp, (window - i - 0.5) / ramp);
    } else if (mode === "gaussian") {
      const sigma = window / 8;
      const d = i - (window - 1) / 2;
      w[i] = Math.exp(-(d * d) / (2 * sigma * sigma));
    } else {
      w[i] = i >= halo && i < window - halo ? 1 : 0;
    }
  }
  return w;
}

/** `W(i) = Σ_k w(i - start_k)` over the windows of an axis, for every grid voxel `i`. */
export function axisNormaliser(ax: AxisTiling, weights: Float64Array): Float64Array {
  const out = new Float64Array(ax.size);
  for (const s of ax.starts) {
    const lo = Math.max(s, 0);
    const hi = Math.min(s + ax.window, ax.size);
    for (let i = lo; i < hi; i++) out[i] += weights[i - s];
  }
  return out;
}

/**
 * Adds `w · pred` of one tile into the accumulator of one chunk.
 * - `acc`: float64, C order `[C, cz, cy, cx]` (`accShape`), whose voxel `[c, 0, 0, 0]` is grid voxel
 *   `accOrigin` (z, y, x); only `[accOrigin, accOrigin + region)` is touched.
 * - `pred`: float32, C order `[C, pz, py, px]` (`predShape`), window starting at grid voxel `windowStart`.
 * - `weights`: per-axis window weights (z, y, x).
 */
export function accumulateTile(
  acc: Float64Array,
  accShape: readonly number[],
  accOrigin: readonly number[],
  region: readonly number[],
  pred: Float32Array,
  predShape: readonly number[],
  windowStart: readonly number[],
  weights: readonly Float64Array[],
): void {
  const lo = [0, 0, 0];
  const hi = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    lo[a] = Math.max(accOrigin[a], windowStart[a]);
    hi[a] = Math.min(accOrigin[a] + region[a], windowStart[a] + predShape[a + 1]);
    if (hi[a] <= lo[a]) return;
  }
  const [C, az, ay, ax] = accShape;
  const [, pz, py, px] = predShape;
  const [wz, wy, wx] = weights;
  const n = hi[2] - lo[2];
  const ox = lo[2] - accOrigin[2];
  const px0 = lo[2] - windowStart[2];
  for (let c = 0; c < C; c++) {
    for (let z = lo[0]; z < hi[0]; z++) {
      const fz = wz[z - windowStart[0]];
      for (let y = lo[1]; y < hi[1]; y++) {
        const fzy = fz * wy[y - windowStart[1]];
        const a0 = ((c * az + (z - accOrigin[0])) * ay + (y - accOrigin[1])) * ax + ox;
        const p0 = ((c * pz + (z - windowStart[0])) * py + (y - windowStart[1])) * px + px0;
        for (let i = 0; i < n; i++) acc[a0 + i] += fzy * wx[px0 + i] * pred[p0 + i];
      }
    }
  }
}

/**
 * Divides the accumulated region by the separable normaliser (`norm[a]` indexed by grid voxel),
 * in place.
 */
export function normaliseRegion(acc: Float64Array, accShape: readonly number[], accOrigin: readonly number[], region: readonly number[], norm: readonly Float64Array[]): void {
  const [C, az, ay, ax] = accShape;
  const [nz, ny, nx] = norm;
  for (let c = 0; c < C; c++) {
    for (let z = 0; z < region[0]; z++) {
      const fz = nz[accOrigin[0] + z];
      for (let y = 0; y < region[1]; y++) {
        const fzy = fz * ny[accOrigin[1] + y];
        const a0 = ((c * az + z) * ay + y) * ax;
        for (let x = 0; x < region[2]; x++) acc[a0 + x] /= fzy * nx[accOrigin[2] + x];
      }
    }
  }
}
