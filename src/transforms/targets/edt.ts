/**
 * Exact squared Euclidean distance transform with anisotropic spacing, linear time
 * (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions", 2012): the 1-D
 * lower envelope of parabolas applied separably along each axis.
 */

/**
 * Squared distance (in the units of `spacing`) from every voxel to the nearest voxel with
 * `feature[i] !== 0`; `Infinity` where there is none. `shape`/`spacing` list the axes in C order.
 * `out` (length = product of shape) receives the result.
 */
export function squaredEdt(feature: Uint8Array, shape: readonly number[], spacing: readonly number[], out: Float64Array): Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = feature[i] ? 0 : Infinity;
  const maxN = Math.max(1, ...shape);
  const f = new Float64Array(maxN);
  const d = new Float64Array(maxN);
  const v = new Int32Array(maxN);
  const z = new Float64Array(maxN + 1);
  for (let axis = 0; axis < shape.length; axis++) {
    const n = shape[axis];
    if (n <= 1) continue; // a single sample per line: nothing moves along this axis
    let inner = 1;
    for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
    const outer = out.length / (n * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const start = o * n * inner + j;
        for (let i = 0; i < n; i++) f[i] = out[start + i * inner];
        lowerEnvelope(f, d, v, z, n, spacing[axis]);
        for (let i = 0; i < n; i++) out[start + i * inner] = d[i];
      }
    }
  }
  return out;
}

/** `d[p] = min_q f[q] + (s·(p − q))²` for one line of length n; f may contain Infinity. */
function lowerEnvelope(f: Float64Array, d: Float64Array, v: Int32Array, z: Float64Array, n: number, s: number): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q];
    if (fq === Infinity) continue;
    const xq = q * s;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    let sx: number;
    for (;;) {
      // z[0] = −∞, so k never drops below 0
      const p = v[k];
      const xp = p * s;
      sx = (fq + xq * xq - (f[p] + xp * xp)) / (2 * (xq - xp));
      if (sx <= z[k]) k--;
      else break;
    }
    k++;
    v[k] = q;
    z[k] = sx;
    z[k + 1] = Infinity;
  }
  if (k < 0) {
    for (let i = 0; i < n; i++) d[i] = Infinity;
    return;
  }
  k = 0;
  for (let i = 0; i < n; i++) {
    const x = i * s;
    while (z[k + 1] < x) k++;
    const dx = x - v[k] * s;
    d[i] = dx * dx + f[v[k]];
  }
}
