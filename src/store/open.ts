/**
 * One entry point from a user-supplied location (local path, `file://`, `http(s)://`, `s3://`)
 * to a zarrita store plus the path of the node inside it. `s3://` goes through `./s3.ts`
 * (credential chain, endpoint, signed requests) onto the same {@link HttpStore}.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable } from "./types.js";
import { CellMapError } from "../errors.js";
import { HttpStore, type HttpStoreOptions } from "./http.js";
import { LocalStore } from "./local.js";
import { openS3Store } from "./s3.js";

/** A store with the location it was opened from. */
export interface OpenedStore {
  store: Readable;
  /** Canonical location string (absolute path or URL), used in cache keys and messages. */
  location: string;
  /** Whether the location is remote (HTTP). */
  remote: boolean;
}

/** Maps `s3://bucket/key` to its public virtual-hosted HTTPS endpoint (AWS, no endpoint override). */
export function s3ToHttps(url: string): string {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new CellMapError("INVALID_ARGUMENT", `not an s3:// URL: ${url}`, url);
  return `https://${m[1]}.s3.amazonaws.com/${m[2]}`;
}

/** Whether a location string is remote. */
export function isRemote(location: string): boolean {
  return /^(https?|s3):\/\//i.test(location);
}

/** Joins a child path onto a location (path or URL). */
export function joinLocation(base: string, ...parts: string[]): string {
  if (isRemote(base) || base.startsWith("file://")) {
    return [base.replace(/\/+$/, ""), ...parts.map((p) => p.replace(/^\/+|\/+$/g, ""))].filter(Boolean).join("/");
  }
  return path.join(base, ...parts);
}

/**
 * Opens a store rooted at `location` itself (the group or array lives at the store root).
 * Each call returns a new store; caching of decoded chunks is keyed by `location`.
 */
export function openStore(location: string, http: HttpStoreOptions = {}): OpenedStore {
  if (/^s3:\/\//i.test(location)) {
    const { store, resolved } = openS3Store(location, http);
    return { store, location: resolved.url, remote: true };
  }
  if (/^https?:\/\//i.test(location)) {
    const url = location.replace(/\/+$/, "");
    return { store: new HttpStore(url, http), location: url, remote: true };
  }
  const dir = location.startsWith("file://") ? fileURLToPath(location) : path.resolve(location);
  return { store: new LocalStore(dir), location: dir, remote: false };
}

/**
 * Reads one whole file from a location (local path, `file://`, `http(s)://` or `s3://`, with
 * the same `http` options and error codes as data reads). A missing file is `NOT_FOUND`.
 */
export async function readLocation(location: string, http: HttpStoreOptions = {}, signal?: AbortSignal): Promise<Uint8Array> {
  if (!isRemote(location)) {
    const file = location.startsWith("file://") ? fileURLToPath(location) : location;
    try {
      return new Uint8Array(await fs.promises.readFile(file));
    } catch (err) {
      throw new CellMapError("NOT_FOUND", `cannot read file: ${(err as Error).message}`, location, { cause: err });
    }
  }
  const m = /^(.*?[^/])\/+([^/]+)\/*$/.exec(location);
  if (!m || /^[a-z0-9]+:\/*$/i.test(m[1])) throw new CellMapError("INVALID_ARGUMENT", "expected the URL of a file", location);
  const { store, location: dir } = openStore(m[1], http);
  const name = /^https?:/i.test(location) ? decodeURIComponent(m[2]) : m[2];
  const bytes = await store.get(`/${name}`, { signal });
  if (bytes === undefined) throw new CellMapError("NOT_FOUND", "no such file (HTTP 404)", `${dir}/${m[2]}`);
  return bytes;
}
