/** Patch sample grids: `n` points spaced `s` centred on `c` are `c + (k - (n-1)/2) * s`. */

/** Offset (nm) of output voxel `k` from the patch centre along one axis. */
export function sampleOffset(k: number, n: number, s: number): number {
  return (k - (n - 1) / 2) * s;
}

/** Half-extent (nm) of the sample points of a patch along each axis: `(n-1)/2 * s`. */
export function halfExtent(shape: readonly number[], scale: readonly number[]): number[] {
  return shape.map((n, a) => ((n - 1) / 2) * scale[a]);
}
