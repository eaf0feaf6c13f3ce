/**
 * Writing Zarr arrays (v2 and v3, plain or sharded) through the store layer: a local directory
 * (atomic temp file + rename per key) or `s3://` (one PUT per key), see `src/store/writable.ts`.
 *
 * Metadata: v2 `.zarray`/`.zattrs` from `metadata.ts`, plain v3 arrays through zarrita's
 * `create`, sharded v3 from `shard.ts`. Chunks are encoded by zarrita's codec pipeline over the
 * registered codecs (`encode.ts`); shards are assembled by `shard.ts`. Data passed in is always
 * C-ordered and in the platform's (little-endian) byte order; the pipeline applies the array's
 * memory order (F / transpose), byte order and compressor.
 */
import * as zarr from "zarrita";
import type { AbsolutePath } from "../../store/types.js";
import { CellMapError } from "../../errors.js";
import type { HttpStoreOptions } from "../../store/http.js";
import { openWritableStore, type WritableStore } from "../../store/writable.js";
import { DTYPES, sizeOf } from "../../tensor.js";
import { translateZarrError } from "../array.js";
import { allFill, copyBox, fillArray } from "./box.js";
import { chunkEncoder, type ChunkEncoder } from "./encode.js";
import { METADATA_NAMES, v2ArrayDocuments, v3CreateOptions } from "./metadata.js";
import { encodeShard, shardedArrayDocument, type ShardOptions } from "./shard.js";
import { allocArray, fillScalar, normalizeArraySpec, type ArrayData, type NormalizedArraySpec, type ZarrArraySpec } from "./spec.js";

/** Where an array is written: a store and the array's path inside it. */
interface ArrayLocation {
  store: WritableStore;
  /** Path of the array inside the store (default the store root). */
  path?: string;
  /** How messages name the array (default: the path). */
  location?: string;
}

/** A local directory, an `s3://` URL, or a store location. */
export type WriteTarget = string | ArrayLocation;

/** Options of writes that cover whole chunks. */
export interface WriteOptions {
  /** Don't store chunks (or inner chunks) made only of the fill value; delete them if present. */
  skipEmptyChunks?: boolean;
}

/** Writes chunks of one array; made by {@link createZarrArray} or {@link zarrArrayWriter}. */
export interface ZarrArrayWriter {
  readonly store: WritableStore;
  /** Path of the array inside the store (`/` for the root). */
  readonly path: AbsolutePath;
  /** Where the array is (directory or URL), for messages. */
  readonly location: string;
  readonly spec: NormalizedArraySpec;
  /** Shape of one stored object: the shard shape if sharded, else the chunk shape. */
  readonly unitShape: number[];
  /** Number of stored objects (chunks or shards) per dimension. */
  readonly gridShape: number[];
  /** Key (relative to the array, "/"-separated) of the chunk or shard at `coords`. */
  key(coords: number[]): string;
  /** Store key (absolute in the store) of the chunk or shard at `coords`. */
  storeKey(coords: number[]): AbsolutePath;
  /** Writes one full chunk (C order, chunk shape, edge chunks padded). Not for sharded arrays. */
  writeChunk(coords: number[], data: ArrayData): Promise<void>;
  /**
   * Writes one full shard (C order, shard shape, padded at the array edge). Inner chunks that
   * lie wholly outside the array, are listed in `omitChunks` (coordinates within the shard), or
   * are all fill with `skipEmptyChunks` are stored as missing (index entry 2^64-1).
   */
  writeShard(coords: number[], data: ArrayData, opts?: ShardOptions): Promise<void>;
  /**
   * Writes a box of the array (C order, shape `regionShape`) starting at `start`. The box must
   * be aligned to chunks (shards if sharded); at the array edge it may end at the array bound.
   */
  writeRegion(start: number[], regionShape: number[], data: ArrayData, opts?: WriteOptions): Promise<void>;
  /** Writes the whole array (C order, full shape). */
  writeAll(data: ArrayData, opts?: WriteOptions): Promise<void>;
}

/** Options of {@link createZarrArray} and {@link zarrArrayWriter} for string targets. */
export interface TargetOptions {
  /** Request options of `s3://` targets (credentials, endpoint, retries). */
  http?: HttpStoreOptions;
}

/** A node (array or group) in a writable store. */
export interface NodeLocation {
  store: WritableStore;
  /** Path of the node inside the store (`/` for the root). */
  path: AbsolutePath;
  /** How messages name it (directory or URL). */
  location: string;
}

/** The store and path a target names (string targets open a writable store rooted there). */
export function openTarget(target: WriteTarget, opts: TargetOptions = {}): NodeLocation {
  if (typeof target === "string") {
    const { store, location } = openWritableStore(target, opts.http);
    return { store, path: "/", location };
  }
  const p = `/${(target.path ?? "").replace(/^\/+|\/+$/g, "")}` as AbsolutePath;
  return { store: target.store, path: p, location: target.location ?? p };
}

/** `key` (relative) inside the node at `path`. */
export function childKey(path: AbsolutePath, key: string): AbsolutePath {
  return `${path === "/" ? "" : path}/${key}` as AbsolutePath;
}

/** Stores a JSON document (2-space indented, trailing newline). */
export async function putJson(store: WritableStore, key: AbsolutePath, doc: unknown): Promise<void> {
  await store.set(key, new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n"));
}

/** Writes the metadata of the array `spec` describes at `path`. */
async function writeMetadata(r: NodeLocation, spec: NormalizedArraySpec): Promise<void> {
  if (spec.zarrFormat === 2) {
    for (const [name, doc] of Object.entries(v2ArrayDocuments(spec))) await putJson(r.store, childKey(r.path, name), doc);
  } else if (spec.shards) {
    await putJson(r.store, childKey(r.path, "zarr.json"), shardedArrayDocument(spec));
  } else {
    try {
      await zarr.create(zarr.root(r.store).resolve(r.path), v3CreateOptions(spec));
    } catch (err) {
      throw translateZarrError(err, r.location);
    }
  }
}

/**
 * Writes array metadata at `target` and returns a writer for its chunks. Refuses
 * (`WRITE_CONFLICT`) if zarr metadata already exists there unless `spec.overwrite`.
 */
export async function createZarrArray(target: WriteTarget, spec: ZarrArraySpec, opts: TargetOptions = {}): Promise<ZarrArrayWriter> {
  const r = openTarget(target, opts);
  const norm = normalizeArraySpec(spec, r.location);
  const found = await Promise.all(METADATA_NAMES.map(async (f) => ((await r.store.get(childKey(r.path, f))) !== undefined ? f : null)));
  const existing = found.filter((f): f is (typeof METADATA_NAMES)[number] => f !== null);
  if (existing.length > 0) {
    if (!spec.overwrite) {
      throw new CellMapError("WRITE_CONFLICT", `zarr metadata already exists (${existing.join(", ")}); pass overwrite: true`, r.location);
    }
    // Stale metadata of the other format would make readers see the wrong node.
    for (const f of existing) await r.store.delete(childKey(r.path, f));
  }
  await writeMetadata(r, norm);
  return makeWriter(r, norm);
}

/** A writer for an array whose metadata already exists (e.g. in a worker); writes no metadata. */
export function zarrArrayWriter(target: WriteTarget, spec: ZarrArraySpec, opts: TargetOptions = {}): ZarrArrayWriter {
  const r = openTarget(target, opts);
  return makeWriter(r, normalizeArraySpec(spec, r.location));
}

/** Creates the array and writes all of `data` (C order, full shape) into it. */
export async function writeArray(target: WriteTarget, spec: ZarrArraySpec, data: ArrayData, opts: WriteOptions & TargetOptions = {}): Promise<ZarrArrayWriter> {
  const w = await createZarrArray(target, spec, opts);
  await w.writeAll(data, opts);
  return w;
}

/** Waits for every write in `pending` (emptying it), then throws the first failure if any. */
async function drain(pending: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(pending.splice(0));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Number of chunk writes in flight in `writeRegion`. */
const WRITE_WINDOW = 16;

function invalid(msg: string, where: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", msg, where);
}

function makeWriter(r: NodeLocation, spec: NormalizedArraySpec): ZarrArrayWriter {
  const where = r.location;
  const info = DTYPES[spec.dtype];
  const n = spec.shape.length;
  const unitShape = spec.shards ?? spec.chunks;
  const gridShape = spec.shape.map((s, i) => Math.ceil(s / unitShape[i]));
  const fill = fillScalar(spec);
  let encoderP: Promise<ChunkEncoder> | undefined;
  const encoder = () => (encoderP ??= chunkEncoder(spec, where));

  const checkData = (data: ArrayData, len: number, what: string): void => {
    if (!(data instanceof info.array)) {
      throw invalid(`${what} must be a ${info.array.name} for dtype ${spec.dtype}, got ${data?.constructor?.name}`, where);
    }
    if (data.length !== len) throw invalid(`${what} has ${data.length} elements, expected ${len}`, where);
  };
  const checkCoords = (coords: number[], what: string): void => {
    if (coords.length !== n || coords.some((c, i) => !Number.isInteger(c) || c < 0 || c >= gridShape[i])) {
      throw new CellMapError("OUT_OF_RANGE", `${what} ${JSON.stringify(coords)} outside grid ${JSON.stringify(gridShape)}`, where);
    }
  };

  const key = (coords: number[]): string => {
    const sep = spec.dimensionSeparator;
    if (spec.zarrFormat === 2) return n === 0 ? "0" : coords.join(sep);
    return n === 0 ? "c" : ["c", ...coords].join(sep);
  };
  const storeKey = (coords: number[]): AbsolutePath => childKey(r.path, key(coords));

  /** Stores `bytes` at the chunk/shard key, or removes the object when `bytes` is null (all fill). */
  const put = (coords: number[], bytes: Uint8Array | null): Promise<void> => (bytes === null ? r.store.delete(storeKey(coords)) : r.store.set(storeKey(coords), bytes));

  const writeChunk = async (coords: number[], data: ArrayData): Promise<void> => {
    if (spec.shards) throw invalid("writeChunk on a sharded array; use writeShard or writeRegion", where);
    checkCoords(coords, "chunk");
    checkData(data, sizeOf(spec.chunks), "chunk data");
    await put(coords, await (await encoder()).encode(data));
  };

  const writeShard = async (coords: number[], data: ArrayData, opts: ShardOptions = {}): Promise<void> => {
    if (!spec.shards) throw invalid("writeShard on an array without shards", where);
    checkCoords(coords, "shard");
    checkData(data, sizeOf(spec.shards), "shard data");
    await put(coords, await encodeShard(spec, await encoder(), coords, data, opts));
  };

  const writeRegion = async (start: number[], regionShape: number[], data: ArrayData, opts: WriteOptions = {}): Promise<void> => {
    if (start.length !== n || regionShape.length !== n) throw invalid(`region needs ${n} dims`, where);
    for (let i = 0; i < n; i++) {
      const end = start[i] + regionShape[i];
      if (start[i] < 0 || regionShape[i] < 0 || end > spec.shape[i]) {
        throw new CellMapError("OUT_OF_RANGE", `region dim ${i} [${start[i]}, ${end}) outside [0, ${spec.shape[i]})`, where);
      }
      if (start[i] % unitShape[i] !== 0 || (end % unitShape[i] !== 0 && end !== spec.shape[i])) {
        throw invalid(`region dim ${i} [${start[i]}, ${end}) is not aligned to ${spec.shards ? "shards" : "chunks"} of ${unitShape[i]}`, where);
      }
    }
    checkData(data, sizeOf(regionShape), "region data");
    if (regionShape.some((s) => s === 0)) return;
    const enc = await encoder();
    const first = start.map((s, i) => s / unitShape[i]);
    const count = regionShape.map((s, i) => Math.ceil(s / unitShape[i]));
    const unit = allocArray(spec.dtype, sizeOf(unitShape));
    const u = new Array<number>(n).fill(0);
    const zero = new Array<number>(n).fill(0);
    const pending: Promise<void>[] = [];
    try {
      for (let k = 0, total = sizeOf(count); k < total; k++) {
        const coords = u.map((v, i) => first[i] + v);
        const origin = coords.map((c, i) => c * unitShape[i]);
        const size = origin.map((o, i) => Math.min(unitShape[i], spec.shape[i] - o));
        if (size.some((s, i) => s < unitShape[i])) fillArray(unit, fill);
        copyBox(
          data,
          regionShape,
          origin.map((o, i) => o - start[i]),
          unit,
          unitShape,
          zero,
          size,
        );
        // Encoding is CPU-bound and sequential; writes overlap in a window.
        let bytes: Uint8Array | null;
        if (spec.shards) bytes = await encodeShard(spec, enc, coords, unit, opts);
        else {
          bytes = opts.skipEmptyChunks && allFill(unit, fill) ? null : await enc.encode(unit);
          if (bytes && bytes.buffer === unit.buffer) bytes = bytes.slice(); // `unit` is reused below
        }
        pending.push(put(coords, bytes));
        if (pending.length >= WRITE_WINDOW) await drain(pending);
        for (let j = n - 1; j >= 0; j--) {
          if (++u[j] < count[j]) break;
          u[j] = 0;
        }
      }
      await drain(pending);
    } catch (err) {
      await Promise.allSettled(pending); // no stray rejections, no writes racing the caller
      throw err;
    }
  };

  return {
    store: r.store,
    path: r.path,
    location: r.location,
    spec,
    unitShape: [...unitShape],
    gridShape,
    key,
    storeKey,
    writeChunk,
    writeShard,
    writeRegion,
    writeAll: (data, opts) => writeRegion(new Array(n).fill(0), spec.shape, data, opts),
  };
}
