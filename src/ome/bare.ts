/**
 * A bare Zarr array (no multiscales group around it) seen as a one-level image. Many tools write
 * plain arrays (zarr-python, tensorstore, the zarr conformance data); such an array carries no
 * geometry, so the caller states it: the voxel size and the world position of voxel 0, in nm,
 * along the array's trailing 2 or 3 dims (`yx` or `zyx`). Leading dims are non-spatial, in
 * OME-NGFF order: one is a channel axis; of two, the first is time and the second channel;
 * further ones in front are custom axes (read only when they have one entry).
 */
import { CellMapError } from "../errors.js";
import type { Multiscale } from "./model.js";

/** Geometry the caller gives for a bare array. */
export interface BareArrayGeometry {
  /** Voxel size in nm of the trailing spatial dims, `[z, y, x]` or `[y, x]`. */
  voxelSize: readonly number[];
  /** World position (nm) of the centre of voxel 0 on the same dims (default all 0). */
  translation?: readonly number[];
}

/**
 * The {@link Multiscale} of a bare array of `ndim` dims: one level whose path is the array
 * itself (`""`), spatial axes z, y, x (or y, x) on the trailing dims, the leading dims as
 * channel (`c`), time and channel (`t`, `c`), or custom axes then `t`, `c`, and a note saying the
 * geometry came from the caller.
 *
 * @throws CellMapError `INVALID_ARGUMENT` naming `voxelSize` / `translation` when they are not
 *   2 or 3 positive (finite) numbers matching each other and at most `ndim` long
 */
export function bareArrayMultiscale(ndim: number, geometry: BareArrayGeometry, zarrFormat: 2 | 3, where: string): Multiscale {
  const { voxelSize } = geometry;
  const n = voxelSize.length;
  if (!Array.isArray(voxelSize) || (n !== 2 && n !== 3) || voxelSize.some((v) => !(Number.isFinite(v) && v > 0))) {
    throw new CellMapError("INVALID_ARGUMENT", `voxelSize must be 2 or 3 positive numbers (yx or zyx, nm), got ${JSON.stringify(voxelSize)}`, where);
  }
  if (n > ndim) {
    throw new CellMapError("INVALID_ARGUMENT", `voxelSize has ${n} entries but the array has only ${ndim} dimension${ndim === 1 ? "" : "s"}`, where);
  }
  const translation = geometry.translation ?? new Array<number>(n).fill(0);
  if (!Array.isArray(translation) || translation.length !== n || translation.some((t) => !Number.isFinite(t))) {
    throw new CellMapError("INVALID_ARGUMENT", `translation must be ${n} finite numbers like voxelSize, got ${JSON.stringify(geometry.translation)}`, where);
  }
  const spatial = n === 3 ? ["z", "y", "x"] : ["y", "x"];
  const lead = ndim - n;
  const axes = [
    ...Array.from({ length: lead }, (_, d) => {
      const fromEnd = lead - d; // 1: channel, 2: time, more: custom
      return fromEnd === 1 ? { name: "c", type: "channel" } : fromEnd === 2 ? { name: "t", type: "time" } : { name: `d${d}`, type: "custom" };
    }),
    ...spatial.map((name) => ({ name, type: "space", unit: "nanometer" })),
  ];
  return {
    version: "none",
    axes,
    spatialAxes: spatial,
    spatialDims: spatial.map((_, k) => lead + k),
    levels: [{ path: "", index: 0, scale: [...voxelSize], translation: [...translation] }],
    zarrFormat,
    notes: [`bare array: no multiscales metadata; voxel size [${voxelSize.join(", ")}] nm and offset [${translation.join(", ")}] nm given by the caller`],
  };
}
