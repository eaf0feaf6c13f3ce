/** Pyramid level choice and per-level geometry (pure functions, world units = nm). */

/** Relative tolerance when comparing voxel sizes. */
const SCALE_RTOL = 1e-3;

/**
 * Index of the level to read for a requested voxel size: the coarsest level that is not coarser
 * than the request on any axis (relative tolerance {@link SCALE_RTOL}); level 0 when the request is
 * finer than every level. `levelScales[i][a]` and `request[a]` are in the same axis order.
 */
export function chooseLevel(levelScales: readonly (readonly number[])[], request: readonly number[]): number {
  let chosen = 0;
  for (let i = 0; i < levelScales.length; i++) {
    const ok = levelScales[i].every((s, a) => s <= request[a] * (1 + SCALE_RTOL));
    if (ok) chosen = i;
  }
  return chosen;
}

/** Whether two voxel sizes agree within {@link SCALE_RTOL} on every axis. */
export function sameScale(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= SCALE_RTOL * Math.max(Math.abs(v), Math.abs(b[i])));
}

/** An axis-aligned box in world units: `lo[a] <= x <= hi[a]`. */
export interface Box {
  lo: number[];
  hi: number[];
}

/**
 * Bounding box of a level: the span of its voxel centres, `translation + [0, n-1] * scale`,
 * extended by half a voxel on each side.
 */
export function levelBoundingBox(shape: readonly number[], scale: readonly number[], translation: readonly number[]): Box {
  return {
    lo: translation.map((t, a) => t - scale[a] / 2),
    hi: translation.map((t, a) => t + (shape[a] - 1) * scale[a] + scale[a] / 2),
  };
}

/**
 * Centres at which a patch of `n` voxels spaced `s` has all its sample points within the span of
 * voxel centres (so no sample needs padding). Per axis `[t + h, t + (N-1)L - h]` with
 * `h = (n-1)/2 * s`. When an axis is too small: with `pad`, the single centre at the span's
 * middle; without, `null`.
 */
export function samplingBox(
  shape: readonly number[],
  scale: readonly number[],
  translation: readonly number[],
  patchShape: readonly number[],
  patchScale: readonly number[],
  pad: boolean,
): Box | null {
  const lo: number[] = [];
  const hi: number[] = [];
  for (let a = 0; a < shape.length; a++) {
    const first = translation[a];
    const last = translation[a] + (shape[a] - 1) * scale[a];
    const h = ((patchShape[a] - 1) / 2) * patchScale[a];
    let l = first + h;
    let u = last - h;
    if (l > u + 1e-9 * Math.max(1, Math.abs(u))) {
      if (!pad) return null;
      l = u = (first + last) / 2;
    } else if (l > u) {
      u = l;
    }
    lo.push(l);
    hi.push(u);
  }
  return { lo, hi };
}

/** Intersection of boxes (null if any is null or the intersection is empty). */
export function intersectBoxes(boxes: readonly (Box | null)[]): Box | null {
  if (boxes.length === 0) return null;
  let lo: number[] | null = null;
  let hi: number[] | null = null;
  for (const b of boxes) {
    if (!b) return null;
    lo = lo ? lo.map((v, a) => Math.max(v, b.lo[a])) : [...b.lo];
    hi = hi ? hi.map((v, a) => Math.min(v, b.hi[a])) : [...b.hi];
  }
  if (!lo || !hi || lo.some((v, a) => v > hi![a])) return null;
  return { lo, hi };
}
