/**
 * Opening zarr arrays through zarrita, with zarrita's errors translated into tagged
 * {@link CellMapError}s that name the array.
 */
import * as zarr from "zarrita";
import type { AbsolutePath, Readable, StoreGetOptions, StoreLocation } from "../store/types.js";
import { CellMapError } from "../errors.js";
import { installDefaultCodecs } from "./codecs/register.js";
import { type DirectDecode, directDecodePlan } from "./direct.js";
import { zarritaLocation } from "./location.js";
import { float16AsUint16Store, isFloat16Metadata } from "./float16.js";
import type { DataType } from "../tensor.js";

/** Numeric dtypes the read path supports. */
export const SUPPORTED_DTYPES: readonly DataType[] = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"];

/**
 * The part of an opened zarrita array the library uses (zarrita's `Array`; its own type is kept
 * out of the public declarations).
 */
export interface ZarritaArray {
  readonly store: Readable;
  readonly path: AbsolutePath;
  readonly shape: number[];
  readonly chunks: number[];
  /** zarrita's dtype name (float16 arrays read as `uint16`, see float16.ts). */
  readonly dtype: string;
  /** The array's user attributes. */
  readonly attrs: Record<string, unknown>;
  /** Fetches and decodes one chunk (`data` is a typed array, or zarrita's BoolArray). */
  getChunk(coords: number[], opts?: StoreGetOptions): Promise<{ data: unknown; shape: number[]; stride: number[] }>;
}

/** An opened zarr array plus where it came from. */
export interface ZarrArray {
  array: ZarritaArray;
  /** Human-readable location (store location + path), used in messages and cache keys. */
  id: string;
  shape: number[];
  chunks: number[];
  dtype: DataType;
  /** Codec names in pipeline order (for `info`). */
  codecs: string[];
  zarrFormat: 2 | 3;
  /** Store key of the chunk (or shard, for sharded arrays) holding chunk `coords`, for messages. */
  chunkKey(coords: number[]): string;
  /** How to decode chunks straight into a buffer (common v2 layouts), or null: zarrita decodes. */
  direct: DirectDecode | null;
}

/** Maps any zarrita/codec failure to a CellMapError naming `where`. */
export function translateZarrError(err: unknown, where: string): CellMapError {
  if (err instanceof CellMapError) return err;
  if (zarr.isZarritaError(err, "NotFoundError")) return new CellMapError("NOT_FOUND", `not found: ${err.message}`, where, { cause: err });
  if (zarr.isZarritaError(err, "UnknownCodecError")) return new CellMapError("UNSUPPORTED", `unknown codec: ${err.message}`, where, { cause: err });
  if (zarr.isZarritaError(err, "InvalidMetadataError") && /unsupported data ?type/i.test(err.message)) {
    return new CellMapError("UNSUPPORTED", `unsupported dtype: ${err.message}`, where, { cause: err });
  }
  if (zarr.isZarritaError(err, "InvalidMetadataError")) return new CellMapError("INVALID_METADATA", `invalid zarr metadata: ${err.message}`, where, { cause: err });
  if (zarr.isZarritaError(err, "UnsupportedError")) return new CellMapError("UNSUPPORTED", err.message, where, { cause: err });
  if (zarr.isZarritaError(err, "CodecPipelineError")) {
    const cause = (err as { cause?: unknown }).cause;
    if (zarr.isZarritaError(cause, "UnknownCodecError")) return translateZarrError(cause, where);
    return new CellMapError("CORRUPT_CHUNK", `cannot decode chunk: ${err.message}${cause instanceof Error ? `: ${cause.message}` : ""}`, where, { cause: err });
  }
  if (err instanceof SyntaxError) return new CellMapError("INVALID_METADATA", `malformed JSON: ${err.message}`, where, { cause: err });
  const e = err as Error;
  if (e?.name === "AbortError") return new CellMapError("ABORTED", "operation aborted", where, { cause: err });
  return new CellMapError("IO", e?.message ?? String(err), where, { cause: err });
}

/** What {@link describeZarrArray} reports: the array's layout, and why it cannot be read, if so. */
export interface ZarrArrayDescription {
  id: string;
  shape: number[];
  chunks: number[];
  /** dtype name (`float16` for float16 arrays), also when the read path does not support it. */
  dtype: string;
  /** Codec names in pipeline order. */
  codecs: string[];
  zarrFormat: 2 | 3;
  /**
   * Reasons the array cannot be read, which {@link openZarrArray} raises as `UNSUPPORTED`
   * (an unknown codec, an unsupported dtype), one line each; empty when it can be read.
   */
  problems: string[];
}

/** The opened zarrita array, its stored metadata document and format (no readability checks). */
interface OpenedArray {
  root: zarr.Location<Readable>;
  array: zarr.Array<zarr.DataType, Readable>;
  meta: Record<string, unknown> | undefined;
  zarrFormat: 2 | 3;
  dtype: string;
}

async function openArray(location: StoreLocation<Readable>, path: string, id: string, signal?: AbortSignal): Promise<OpenedArray> {
  installDefaultCodecs();
  const root = zarritaLocation(location);
  let array: zarr.Array<zarr.DataType, Readable>;
  let zarrFormat: 2 | 3;
  // The metadata document as stored (zarrita keeps its parsed copy private), read once.
  let meta: Record<string, unknown> | undefined;
  let float16 = false;
  try {
    // Open the format that is there: zarrita's auto-detection hides v3 errors behind a v2 "not found".
    zarrFormat = await detectFormat(root, path, signal);
    const metaKey = `${path}/${zarrFormat === 3 ? "zarr.json" : ".zarray"}`;
    meta = await readJson(root, metaKey, signal).catch((err: unknown) => {
      if (err instanceof SyntaxError) throw err;
      return undefined; // zarrita reports the missing or unreadable document
    });
    let loc = root.resolve(path);
    float16 = isFloat16Metadata(meta);
    if (float16) loc = zarr.root(float16AsUint16Store(root.store, root.resolve(metaKey).path)).resolve(loc.path);
    array = zarrFormat === 3 ? await zarr.open.v3(loc, { kind: "array", signal }) : await zarr.open.v2(loc, { kind: "array", signal });
  } catch (err) {
    throw translateZarrError(err, id);
  }
  if (signal?.aborted) throw new CellMapError("ABORTED", "operation aborted", id);
  return { root, array, meta, zarrFormat, dtype: float16 ? "float16" : (array.dtype as string) };
}

/**
 * Opens the array at `path` inside `location` (a {@link StoreLocation}, e.g. zarrita's
 * `root(store)`), checking that its dtype is one the library can read.
 */
export async function openZarrArray(location: StoreLocation<Readable>, path: string, id: string, signal?: AbortSignal): Promise<ZarrArray> {
  const { root, array, meta, zarrFormat, dtype } = await openArray(location, path, id, signal);
  if (!SUPPORTED_DTYPES.includes(dtype as DataType)) {
    throw new CellMapError("UNSUPPORTED", `unsupported dtype "${dtype}" (expected one of ${SUPPORTED_DTYPES.join(", ")})`, id);
  }
  const unknown = unknownCodecs(meta, zarrFormat);
  if (unknown.length > 0) {
    throw new CellMapError(
      "UNSUPPORTED",
      `unknown codec${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => JSON.stringify(n)).join(", ")} (registered: ${[...zarr.registry.keys()].join(", ")})`,
      id,
    );
  }
  const codecs = readCodecNames(meta, zarrFormat);
  const chunkKey = chunkKeyFunction(meta, path, zarrFormat, array.chunks);
  const direct = process.env.CELLMAP_DIRECT_DECODE === "0" ? null : directDecodePlan(meta, root.resolve(path).path, array.chunks, root.store);
  return { array, id, shape: array.shape, chunks: array.chunks, dtype: dtype as DataType, codecs, zarrFormat, chunkKey, direct };
}

/**
 * Describes the array at `path` like {@link openZarrArray} opens it, but lists what would make
 * opening it fail with `UNSUPPORTED` (unknown codecs, an unsupported dtype) under `problems`
 * instead of raising it, so that `info` can show such an array.
 *
 * @throws CellMapError as {@link openZarrArray} for a missing array or invalid metadata
 */
export async function describeZarrArray(location: StoreLocation<Readable>, path: string, id: string, signal?: AbortSignal): Promise<ZarrArrayDescription> {
  const { array, meta, zarrFormat, dtype } = await openArray(location, path, id, signal);
  const problems: string[] = [];
  if (!SUPPORTED_DTYPES.includes(dtype as DataType)) problems.push(`unsupported dtype "${dtype}": the array cannot be read`);
  for (const name of unknownCodecs(meta, zarrFormat)) problems.push(`unknown codec "${name}": the array cannot be read (no such codec is registered)`);
  return { id, shape: array.shape, chunks: array.chunks, dtype, codecs: readCodecNames(meta, zarrFormat), zarrFormat, problems };
}

async function readJson(root: zarr.Location<Readable>, key: string, signal?: AbortSignal): Promise<Record<string, unknown> | undefined> {
  const bytes = await root.store.get(root.resolve(key).path, { signal });
  if (!bytes) return undefined;
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

async function detectFormat(root: zarr.Location<Readable>, path: string, signal?: AbortSignal): Promise<2 | 3> {
  const bytes = await root.store.get(root.resolve(`${path}/zarr.json`).path, { signal });
  return bytes ? 3 : 2;
}

/**
 * Registry names zarrita will look up for the array's codecs that are not registered (zarrita
 * only loads codecs at the first chunk decode; checking at open turns a failure deep inside a
 * training run into an error when the dataset is opened, and lets `info` report it).
 */
function unknownCodecs(meta: Record<string, unknown> | undefined, format: 2 | 3): string[] {
  const names: string[] = [];
  type Codec = { name?: unknown; configuration?: Record<string, unknown> };
  const walk = (codecs: unknown): void => {
    for (const c of (Array.isArray(codecs) ? codecs : []) as Codec[]) {
      if (typeof c?.name !== "string") continue;
      if (c.name === "sharding_indexed") {
        walk(c.configuration?.codecs);
        walk(c.configuration?.index_codecs);
      } else names.push(c.name);
    }
  };
  if (format === 3) walk(meta?.codecs);
  else {
    for (const f of (Array.isArray(meta?.filters) ? meta.filters : []) as Array<{ id?: unknown }>) {
      if (typeof f?.id === "string" && f.id !== "fixedscaleoffset" && f.id !== "numcodecs.fixedscaleoffset") names.push(`numcodecs.${f.id}`);
    }
    const comp = meta?.compressor as { id?: unknown } | null | undefined;
    if (typeof comp?.id === "string") names.push(`numcodecs.${comp.id}`);
  }
  return [...new Set(names.filter((n) => !zarr.registry.has(n)))];
}

/** Codec names for reporting (`info`): v2 compressor/filters/order, v3 codec list incl. sharding. */
function readCodecNames(meta: Record<string, unknown> | undefined, format: 2 | 3): string[] {
  try {
    if (format === 3) {
      const describe = (codecs: unknown): string[] =>
        (Array.isArray(codecs) ? codecs : []).flatMap((c: { name?: string; configuration?: Record<string, unknown> }) => {
          if (c?.name === "sharding_indexed") return [`sharding_indexed(${describe(c.configuration?.codecs).join("+")})`];
          if (c?.name === "blosc") return [`blosc/${c.configuration?.cname ?? "?"}`];
          if (c?.name === "bytes") return [`bytes/${c.configuration?.endian ?? "little"}`];
          return [String(c?.name)];
        });
      return describe(meta?.codecs);
    }
    const out: string[] = [];
    if (meta?.order === "F") out.push("order F");
    for (const f of (meta?.filters as Array<{ id: string }> | null) ?? []) out.push(f.id);
    const comp = meta?.compressor as { id: string; cname?: string } | null | undefined;
    if (comp) out.push(comp.cname ? `${comp.id}/${comp.cname}` : comp.id);
    const dt = String(meta?.dtype ?? "");
    out.push(`bytes/${dt.startsWith(">") ? "big" : "little"}`);
    return out;
  } catch {
    return [];
  }
}

/** Builds the chunk-key function (v2 separator, v3 chunk_key_encoding; sharded: the shard's key). */
function chunkKeyFunction(meta: Record<string, unknown> | undefined, path: string, format: 2 | 3, inner: number[]): (coords: number[]) => string {
  const prefix = path.replace(/^\/+|\/+$/g, "");
  const join = (key: string) => (prefix ? `${prefix}/${key}` : key);
  try {
    if (format === 2) {
      const sep = (meta?.dimension_separator as string | undefined) ?? ".";
      return (c) => join(c.join(sep) || "0");
    }
    const enc = meta?.chunk_key_encoding as { name?: string; configuration?: { separator?: string } } | undefined;
    const sep = enc?.configuration?.separator ?? (enc?.name === "v2" ? "." : "/");
    const encode = enc?.name === "v2" ? (c: number[]) => c.join(sep) || "0" : (c: number[]) => ["c", ...c].join(sep);
    const outer = (meta?.chunk_grid as { configuration?: { chunk_shape?: number[] } } | undefined)?.configuration?.chunk_shape;
    const sharded = Array.isArray(meta?.codecs) && (meta.codecs as Array<{ name?: string }>).some((c) => c?.name === "sharding_indexed");
    if (sharded && outer) {
      return (c) => `${join(encode(c.map((v, i) => Math.floor((v * inner[i]) / outer[i]))))} (inner chunk ${c.join(",")})`;
    }
    return (c) => join(encode(c));
  } catch {
    return (c) => join(c.join("."));
  }
}
