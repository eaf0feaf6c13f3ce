/**
 * zarrita's `Location` for a {@link StoreLocation}. Kept in its own module so that the public
 * declarations, which speak of `StoreLocation`, never import zarrita's types.
 */
import * as zarr from "zarrita";
import type { Readable, StoreLocation } from "../store/types.js";

/** zarrita's Location for `loc` (zarrita's own locations pass through). */
export function zarritaLocation(loc: StoreLocation<Readable>): zarr.Location<Readable> {
  return loc instanceof zarr.Location ? (loc as zarr.Location<Readable>) : new zarr.Location(loc.store, loc.path);
}
