/**
 * Reading a multiscale image group's metadata through zarrita (zarr v2 or v3).
 */
import * as zarr from "zarrita";
import type { Readable, StoreLocation } from "../store/types.js";
import { CellMapError } from "../errors.js";
import { translateZarrError } from "../zarr/array.js";
import { zarritaLocation } from "../zarr/location.js";
import { bioformats2rawSeries, containerError, containerKind, listedChildren, seriesLabel } from "./layout.js";
import type { Multiscale } from "./model.js";
import { parseMultiscales } from "./parse.js";

/** Options of {@link readMultiscale}. */
export interface ReadMultiscaleOptions {
  /** Which entry of `multiscales` to use (default 0). */
  index?: number;
  /** Name used in error messages instead of `path` (e.g. the full URL of the group). */
  id?: string;
  /** Which series of a bioformats2raw root to read (default 0); only for such a root. */
  series?: number;
  signal?: AbortSignal;
}

/**
 * Opens the group at `path` (relative to `location`; `""` = `location` itself) and parses its
 * OME-NGFF multiscales metadata. Zarr v3 (`zarr.json`) is tried first, then v2 (`.zgroup` +
 * `.zattrs`); the format that opened is recorded in `Multiscale.zarrFormat`.
 *
 * A bioformats2raw root (`"bioformats2raw.layout"`) is followed to its series `opts.series`
 * (default 0): the result's levels are paths below the root, `series` lists every series, and
 * when there are several a note says which one was read.
 *
 * @throws CellMapError `NOT_FOUND` when no group exists there (or it is an array),
 *   `INVALID_METADATA` when the group has no (or invalid) multiscales, as from {@link parseMultiscales},
 *   `UNSUPPORTED` for an HCS plate or well (naming the images to give instead),
 *   `INVALID_ARGUMENT` for a series out of range or given for a group that has none
 */
export async function readMultiscale(location: StoreLocation<Readable>, path: string, opts: ReadMultiscaleOptions = {}): Promise<Multiscale> {
  const base = zarritaLocation(location);
  const loc = path === "" || path === "." ? base : base.resolve(path);
  const where = opts.id ?? (path === "" || path === "." ? loc.path : path);
  const { signal } = opts;
  let group: zarr.Group<Readable>;
  let zarrFormat: 2 | 3;
  try {
    try {
      group = await zarr.open.v3(loc, { kind: "group", signal });
      zarrFormat = 3;
    } catch (err) {
      if (!zarr.isZarritaError(err, "NotFoundError")) throw err;
      if (err.found === "array")
        throw new CellMapError("NOT_FOUND", "expected a multiscale image group, found an array (give the group that holds the levels, or voxelSize to open a bare array)", where, {
          cause: err,
        });
      group = await zarr.open.v2(loc, { kind: "group", signal });
      zarrFormat = 2;
    }
  } catch (err) {
    if (zarr.isZarritaError(err, "NotFoundError")) {
      // A v2 array (a pyramid level given instead of its group) deserves the clearer message.
      const zarray = await Promise.resolve(loc.store.get(loc.resolve(".zarray").path, { signal })).catch(() => undefined);
      if (zarray) {
        throw new CellMapError("NOT_FOUND", "expected a multiscale image group, found an array (give the group that holds the levels, or voxelSize to open a bare array)", where, {
          cause: err,
        });
      }
      throw new CellMapError("NOT_FOUND", "no zarr group here (neither zarr.json nor .zgroup)", where, { cause: err });
    }
    throw translateZarrError(err, where);
  }
  const kind = containerKind(group.attrs);
  if (kind === "plate" || kind === "well") throw containerError(kind, listedChildren(group.attrs, kind), where);
  if (kind === "bioformats2raw") return readSeries(location, path, loc, where, opts);
  if (opts.series !== undefined && opts.series !== 0) {
    throw new CellMapError("INVALID_ARGUMENT", `series ${opts.series} given, but this group is one image, not a bioformats2raw root with several`, where);
  }
  return parseMultiscales(group.attrs, { path: where, zarrFormat, index: opts.index });
}

/** The image of series `opts.series` of the bioformats2raw root at `loc`. */
async function readSeries(location: StoreLocation<Readable>, path: string, loc: zarr.Location<Readable>, where: string, opts: ReadMultiscaleOptions): Promise<Multiscale> {
  const all = await bioformats2rawSeries(loc, opts.signal);
  if (all.length === 0) {
    throw new CellMapError("NOT_FOUND", `bioformats2raw layout without images: no series listed in OME/ and no group "0"`, where);
  }
  const k = opts.series ?? 0;
  if (!(Number.isInteger(k) && k >= 0 && k < all.length)) {
    throw new CellMapError("INVALID_ARGUMENT", `series ${k} is out of range: this bioformats2raw root has ${all.length} (${all.map(seriesLabel).join(", ")})`, where);
  }
  const s = all[k];
  const sub = path === "" || path === "." ? s.path : `${path.replace(/\/+$/, "")}/${s.path}`;
  const ms = await readMultiscale(location, sub, { index: opts.index, id: `${where.replace(/\/+$/, "")}/${s.path}`, signal: opts.signal });
  const note = all.length > 1 ? [`bioformats2raw layout: read series ${seriesLabel(s)} of ${all.length} (${all.map(seriesLabel).join(", ")}); give series to read another`] : [];
  return { ...ms, levels: ms.levels.map((l) => ({ ...l, path: `${s.path}/${l.path}` })), notes: [...note, ...ms.notes], series: { all, chosen: k } };
}
