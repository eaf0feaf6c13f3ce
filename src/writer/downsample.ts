/**
 * Block downsampling for prediction pyramids (pure functions). Level `l+1` voxel `j` summarises
 * the level-`l` voxels `[f·j, f·j + f)` per axis; at the far edge of an odd-sized axis the block
 * is shorter and only the voxels that exist are used. With factor 2 on every spatial axis the
 * centre of level-`l` voxel 0 is `t0 + (s_l - s0) / 2`, which is what the NGFF metadata states.
 */

/** `mean` for continuous outputs (probabilities, distances), `mode` for labels. */
export type DownsampleMethod = "mean" | "mode";

/** Output shape of downsampling `shape` by `factors` (ceil division). */
export function downsampledShape(shape: readonly number[], factors: readonly number[]): number[] {
  return shape.map((n, a) => Math.ceil(n / factors[a]));
}

/**
 * Downsamples a C-order array of shape `[C, z, y, x]` by `factors` (z, y, x; the channel axis is
 * kept). `mean`: the average of the block (NaN if any voxel is NaN). `mode`: the most frequent
 * value of the block, the smallest one on ties, NaN voxels ignored (NaN if all are NaN).
 */
export function downsample(src: ArrayLike<number>, shape: readonly number[], factors: readonly number[], method: DownsampleMethod): { data: Float64Array; shape: number[] } {
  const [C, sz, sy, sx] = shape;
  const [fz, fy, fx] = factors;
  const [dz, dy, dx] = downsampledShape([sz, sy, sx], factors);
  const out = new Float64Array(C * dz * dy * dx);
  const block = new Float64Array(fz * fy * fx);
  let o = 0;
  for (let c = 0; c < C; c++) {
    for (let z = 0; z < dz; z++) {
      const z1 = Math.min(z * fz + fz, sz);
      for (let y = 0; y < dy; y++) {
        const y1 = Math.min(y * fy + fy, sy);
        for (let x = 0; x < dx; x++) {
          const x1 = Math.min(x * fx + fx, sx);
          let n = 0;
          for (let zz = z * fz; zz < z1; zz++) {
            for (let yy = y * fy; yy < y1; yy++) {
              const row = ((c * sz + zz) * sy + yy) * sx;
              for (let xx = x * fx; xx < x1; xx++) block[n++] = src[row + xx];
            }
          }
          out[o++] = method === "mean" ? mean(block, n) : mode(block, n);
        }
      }
    }
  }
  return { data: out, shape: [C, dz, dy, dx] };
}

function mean(v: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i];
  return s / n;
}

/** Most frequent of `v[0..n)`, smallest on ties, NaN ignored. Blocks are tiny (≤ 8), so O(n²) is fine. */
function mode(v: Float64Array, n: number): number {
  let best = NaN;
  let bestCount = 0;
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (Number.isNaN(x)) continue;
    let count = 0;
    for (let j = 0; j < n; j++) if (v[j] === x) count++;
    if (count > bestCount || (count === bestCount && x < best)) {
      best = x;
      bestCount = count;
    }
  }
  return best;
}
