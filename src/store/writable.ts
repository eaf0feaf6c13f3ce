/**
 * The writable side of the store layer: what the writer (`src/zarr/write/`, `src/writer/`) needs
 * of the place it writes to. Two stores implement it:
 * - {@link LocalStore} (local paths, `file://`): each key is written to a temp file and renamed
 *   over its target (`atomic.ts`), so a killed writer leaves whole files plus temp files that
 *   {@link WritableStore.sweep} removes;
 * - {@link S3Store} (`s3://`, AWS or S3-compatible endpoints): each key is one signed PUT, which
 *   S3 stores atomically per object, so there is nothing to sweep.
 * Plain `http(s)://` locations are read-only.
 */
import type { WritableStore } from "./types.js";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { CellMapError } from "../errors.js";
import type { HttpStoreOptions } from "./http.js";
import { LocalStore } from "./local.js";
import { openS3Store } from "./s3.js";

export type { WritableStore } from "./types.js";

/** A writable store with the location it was opened from. */
export interface OpenedWritableStore {
  store: WritableStore;
  /** Canonical location (absolute path, or the `s3://` URL without a trailing slash), for messages. */
  location: string;
  /** Whether the location is remote (`s3://`). */
  remote: boolean;
}

/**
 * Opens a writable store rooted at `location`: a local directory (path or `file://`) or an
 * `s3://bucket/prefix` URL (credentials, region and endpoint from `http.s3` and the
 * environment, as for reads). `http(s)://` is `UNSUPPORTED`: plain HTTP servers take no writes.
 */
export function openWritableStore(location: string, http: HttpStoreOptions = {}): OpenedWritableStore {
  const loc = outputLocation(location, typeof location === "string" ? location : "location");
  if (/^s3:\/\//i.test(loc)) return { store: openS3Store(loc, http).store, location: loc, remote: true };
  return { store: new LocalStore(loc), location: loc, remote: false };
}

/** An output location in canonical form: an absolute path, or an `s3://` URL without a trailing slash. */
export function outputLocation(p: unknown, where: string): string {
  if (typeof p !== "string" || p.length === 0) throw new CellMapError("INVALID_ARGUMENT", "path must be a non-empty string", where);
  if (/^s3:\/\/[^/]/i.test(p)) return p.replace(/\/+$/, "");
  if (/^https?:\/\//i.test(p)) throw new CellMapError("UNSUPPORTED", "writers need a local directory or an s3:// URL, not an http(s) URL", p);
  return path.resolve(p.startsWith("file://") ? fileURLToPath(p) : p);
}

/** `location` relative to `root` ("/"-separated, "" when equal), or null when it is not inside it. */
export function relativeLocation(root: string, location: string): string | null {
  if (/^s3:\/\//i.test(root) !== /^s3:\/\//i.test(location)) return null;
  if (/^s3:\/\//i.test(root)) {
    if (location === root) return "";
    return location.startsWith(`${root}/`) ? location.slice(root.length + 1) : null;
  }
  const rel = path.relative(root, location);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
  return rel.split(path.sep).join("/");
}
