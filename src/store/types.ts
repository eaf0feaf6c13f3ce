/**
 * The store contract the library reads through, declared here rather than imported from
 * `@zarrita/storage`: the shapes are the same (zarrita's stores satisfy these types and ours
 * satisfy zarrita's), but the package's public declarations then never load zarrita's, whose
 * dependencies (numcodecs, unzipit) do not type-check under `moduleResolution: nodenext` with
 * `skipLibCheck: false`, and need the DOM lib.
 */

/** A store key: an absolute path inside the store, e.g. `/raw/s0/.zarray`. */
export type AbsolutePath<Rest extends string = string> = `/${Rest}`;

/** A byte range: `length` bytes from `offset`, or the last `suffixLength` bytes. */
export type RangeQuery = { offset: number; length: number } | { suffixLength: number };

/** Options of a store read. */
export interface StoreGetOptions {
  signal?: AbortSignal;
}

/** A store read asynchronously (HTTP, S3, files). `undefined` means the key does not exist. */
export interface AsyncReadable {
  get(key: AbsolutePath, opts?: StoreGetOptions): Promise<Uint8Array | undefined>;
  getRange?(key: AbsolutePath, range: RangeQuery, opts?: StoreGetOptions): Promise<Uint8Array | undefined>;
}

/** A store read synchronously (in-memory maps). */
export interface SyncReadable {
  get(key: AbsolutePath, opts?: StoreGetOptions): Uint8Array | undefined;
  getRange?(key: AbsolutePath, range: RangeQuery, opts?: StoreGetOptions): Uint8Array | undefined;
}

/** Any readable store. */
export type Readable = AsyncReadable | SyncReadable;

/** A store written asynchronously. */
interface AsyncWritable {
  set(key: AbsolutePath, value: Uint8Array): Promise<void>;
}

/** A store read and written asynchronously. */
export type AsyncMutable = AsyncReadable & AsyncWritable;

/** A place in a store: the store plus a path inside it (what zarrita calls a `Location`). */
export interface StoreLocation<Store = Readable> {
  readonly store: Store;
  readonly path: AbsolutePath;
  /** The location of `path` relative to this one (absolute paths replace it). */
  resolve(path: string): StoreLocation<Store>;
}

/** A store the writer can put Zarr data into. Keys are absolute paths inside the store (`/s0/0.0.0`). */
export interface WritableStore extends AsyncReadable {
  /** Writes `key` atomically: readers see the old object, the new one or none, never part of one. */
  set(key: AbsolutePath, value: Uint8Array): Promise<void>;
  /** Removes `key`; no error when it does not exist. */
  delete(key: AbsolutePath): Promise<void>;
  /**
   * Keys of the objects below `prefix` (`/`-separated, relative to it, in no particular order);
   * none when there are none. Leftovers of interrupted writes are not listed.
   */
  list(prefix: AbsolutePath): Promise<string[]>;
  /** Removes every object below `prefix` (an output being replaced). */
  deletePrefix(prefix: AbsolutePath): Promise<void>;
  /** Removes what interrupted writes left below `prefix` (local temp files; nothing on S3). */
  sweep(prefix: AbsolutePath): Promise<void>;
}

export type { S3Credentials, S3Options } from "./options.js";
