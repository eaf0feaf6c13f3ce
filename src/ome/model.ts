/**
 * The plain model every reader of OME-NGFF metadata produces: axes plus pyramid levels with
 * their voxel size and the world position of voxel 0, both in nanometres along the spatial axes.
 */

/** Axis type as declared in NGFF (`space`, `time`, `channel`, or a custom string). */
export type AxisType = "space" | "time" | "channel" | string;

/** One axis of the stored arrays, in storage order. */
export interface Axis {
  name: string;
  type?: AxisType;
  /**
   * Unit string as written in the metadata (e.g. `micrometer`). On a spatial axis, the unit its
   * geometry was read in: absent when the axis has no unit of length (none, or e.g. `pixel`: read
   * as nanometres), and taken from a misspelt `units` key when `unit` is missing (see `notes`).
   */
  unit?: string;
}

/** One pyramid level, with geometry restricted to the spatial axes. */
export interface Level {
  /** Array path relative to the multiscale group (e.g. `s0`). */
  path: string;
  /** Index of this level in `datasets` order (0 = finest). */
  index: number;
  /**
   * Voxel size per spatial axis in nm, ordered like `Multiscale.spatialAxes`, with the
   * multiscale-level `coordinateTransformations` composed on top of the dataset's own.
   */
  scale: number[];
  /** World position (nm) of the centre of voxel 0 per spatial axis (same order as `scale`). */
  translation: number[];
}

/** A parsed multiscale image (the first entry of `multiscales`). */
export interface Multiscale {
  /** NGFF version string (`0.4`, `0.5`). */
  version: string;
  name?: string;
  /** All axes in storage order. */
  axes: Axis[];
  /** Names of the spatial axes in storage order (subset of `axes`). */
  spatialAxes: string[];
  /** For each spatial axis (same order as `spatialAxes`), its position in the array dimensions. */
  spatialDims: number[];
  /** Levels, finest first. */
  levels: Level[];
  /** Zarr format of the group the metadata came from. */
  zarrFormat: 2 | 3;
  /**
   * Non-fatal observations about the metadata, one line each, e.g.
   * `NGFF version "0.4-dev-spatialdata" read as 0.4` or `axis y has no unit; assuming nanometer`
   * (every note of a spatial axis read in nanometres for want of a unit of length contains
   * `has no unit`).
   * `cellmap-data info` lists them under *problems*.
   */
  notes: string[];
  /**
   * When the group opened was a bioformats2raw root: every series it holds (paths below it, with
   * their OME-XML names where known) and which one this is. The levels' paths then start with the
   * series path, so they stay relative to the group opened.
   */
  series?: { all: { path: string; name?: string }[]; chosen: number };
}
