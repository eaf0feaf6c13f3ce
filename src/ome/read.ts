/**
 * Reading a multiscale image group's metadata through zarrita (zarr v2 or v3).
 */
import * as zarr from "zarrita";
import type { Readable, StoreLocation } from "../store/types.js";
import { CellMapError } from "../errors.js";
import { translateZarrError } from "../zarr/array.js";
import { zarritaLocation } from "../zarr/location.js";
import type { Multiscale } from "./model.js";
import { parseMultiscales } from "./parse.js";

/** Options of {@link readMultiscale}. */
export interface ReadMultiscaleOptions {
  /** Which entry of `multiscales` to use (default 0). */
  index?: number;
  /** Name used in error messages instead of `path` (e.g. the full URL of the group). */
  id?: string;
  signal?: AbortSignal;
}

/**
 * Opens the group at `path` (relative to `location`; `""` = `location` itself) and parses its
 * OME-NGFF multiscales metadata. Zarr v3 (`zarr.json`) is tried first, then v2 (`.zgroup` +
 * `.zattrs`); the format that opened is recorded in `Multiscale.zarrFormat`.
 *
 * @throws CellMapError `NOT_FOUND` when no group exists there (or it is an array),
 *   `INVALID_METADATA` when the group has no (or invalid) multiscales, as from {@link parseMultiscales}
 */
export async function readMultiscale(
  location: StoreLocation<Readable>,
  path: string,
  opts: ReadMultiscaleOptions = {},
): Promise<Multiscale> {
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
      if (err.found === "array") throw new CellMapError("NOT_FOUND", "expected a multiscale image group, found an array (give the group that holds the levels, or voxelSize to open a bare array)", where, { cause: err });
      group = await zarr.open.v2(loc, { kind: "group", signal });
      zarrFormat = 2;
    }
  } catch (err) {
    if (zarr.isZarritaError(err, "NotFoundError")) {
      // A v2 array (a pyramid level given instead of its group) deserves the clearer message.
      const zarray = await Promise.resolve(loc.store.get(loc.resolve(".zarray").path, { signal })).catch(() => undefined);
      if (zarray) {
        throw new CellMapError("NOT_FOUND", "expected a multiscale image group, found an array (give the group that holds the levels, or voxelSize to open a bare array)", where, { cause: err });
      }
      throw new CellMapError("NOT_FOUND", "no zarr group here (neither zarr.json nor .zgroup)", where, { cause: err });
    }
    throw translateZarrError(err, where);
  }
  return parseMultiscales(group.attrs, { path: where, zarrFormat, index: opts.index });
}
