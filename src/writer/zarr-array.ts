/**
 * A small Zarr array writer (v2 and v3, including v3 `sharding_indexed`).
 *
 * zarrita can only create v3 arrays, cannot encode gzip/zlib and cannot write shards, so test
 * fixtures and prediction outputs go through this module instead. Chunks are encoded with
 * numcodecs (blosc, zstd, lz4) or node:zlib (gzip, zlib) and written atomically.
 *
 * Data passed in is always C-ordered and in the platform's (little-endian) byte order; the
 * writer applies the array's memory order (F / transpose), byte order and compressor.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import { CellMapError } from "../errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../store/atomic.js";
import { crc32c } from "./crc32c.js";

/** Element types the writer supports. `bool` data is held in a `Uint8Array` of 0/1. */
export type DataType =
  | "bool"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float32"
  | "float64";

/** Typed arrays the writer accepts (64-bit integers as BigInt arrays). */
export type ArrayData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A fill value: number (NaN/±Infinity allowed for floats), bigint for 64-bit ints, boolean for bool. */
export type FillValue = number | bigint | boolean;

/** Byte-to-byte compressor, in numcodecs (v2 `compressor`) terms. */
export type CompressorSpec =
  | {
      id: "blosc";
      cname?: "blosclz" | "lz4" | "lz4hc" | "snappy" | "zlib" | "zstd";
      clevel?: number;
      /** 0 = none, 1 = byte shuffle, 2 = bit shuffle. */
      shuffle?: 0 | 1 | 2;
      blocksize?: number;
    }
  | { id: "zstd"; level?: number }
  | { id: "lz4"; acceleration?: number }
  | { id: "gzip"; level?: number }
  | { id: "zlib"; level?: number };

/** What {@link createZarrArray} creates. */
export interface ZarrArraySpec {
  zarrFormat: 2 | 3;
  shape: number[];
  /** Chunk shape; for sharded arrays the *inner* chunk shape. */
  chunks: number[];
  dtype: DataType;
  /** Compressor, or null / undefined for raw bytes. */
  compressor?: CompressorSpec | null;
  /** Memory order inside a chunk: "C" (default), "F", or (v3 only) a transpose permutation. */
  order?: "C" | "F" | number[];
  /** Byte order of multi-byte elements on disk (default little). */
  endian?: "little" | "big";
  /** Default 0 (false for bool). */
  fillValue?: FillValue;
  /** Chunk key separator; default "." for v2 and "/" for v3. */
  dimensionSeparator?: "." | "/";
  /** User attributes (`.zattrs` for v2, `attributes` for v3). */
  attributes?: Record<string, unknown>;
  /** Axis names (v3 `dimension_names`; v2 `_ARRAY_DIMENSIONS` attribute). */
  dimensionNames?: string[];
  /** v3 only: shard shape (a multiple of `chunks`); enables `sharding_indexed`. */
  shards?: number[];
  /** Replace existing metadata at `dir` (existing chunks are not removed). Default false. */
  overwrite?: boolean;
}

/** A spec with every default filled in and the order as a permutation. */
export interface NormalizedArraySpec {
  zarrFormat: 2 | 3;
  shape: number[];
  chunks: number[];
  dtype: DataType;
  compressor: CompressorSpec | null;
  /** Axis permutation of the stored layout (identity for C order). */
  order: number[];
  endian: "little" | "big";
  fillValue: FillValue;
  dimensionSeparator: "." | "/";
  attributes: Record<string, unknown>;
  dimensionNames: string[] | null;
  shards: number[] | null;
}

/** Options for writes that cover whole chunks. */
export interface WriteOptions {
  /** Don't store chunks (or inner chunks) made only of the fill value; delete them if present. */
  skipEmptyChunks?: boolean;
}

/** Writes chunks of one array; made by {@link createZarrArray} or {@link zarrArrayWriter}. */
export interface ZarrArrayWriter {
  readonly dir: string;
  readonly spec: NormalizedArraySpec;
  /** Shape of one stored object: the shard shape if sharded, else the chunk shape. */
  readonly unitShape: number[];
  /** Number of stored objects (chunks or shards) per dimension. */
  readonly gridShape: number[];
  /** Store key (relative, "/"-separated) of the chunk or shard at `coords`. */
  key(coords: number[]): string;
  /** Encodes one full (inner) chunk given in C order: transpose, byte order, compressor. */
  encodeChunk(data: ArrayData): Promise<Uint8Array>;
  /** Writes one full chunk (C order, chunk shape, edge chunks padded). Not for sharded arrays. */
  writeChunk(coords: number[], data: ArrayData): Promise<void>;
  /**
   * Writes one full shard (C order, shard shape, padded at the array edge). Inner chunks that
   * lie wholly outside the array, are listed in `omitChunks` (coordinates within the shard), or
   * are all fill with `skipEmptyChunks` are stored as missing (index entry 2^64-1).
   */
  writeShard(
    coords: number[],
    data: ArrayData,
    opts?: WriteOptions & { omitChunks?: number[][] },
  ): Promise<void>;
  /**
   * Writes a box of the array (C order, shape `regionShape`) starting at `start`. The box must
   * be aligned to chunks (shards if sharded); at the array edge it may end at the array bound.
   */
  writeRegion(start: number[], regionShape: number[], data: ArrayData, opts?: WriteOptions): Promise<void>;
  /** Writes the whole array (C order, full shape). */
  writeAll(data: ArrayData, opts?: WriteOptions): Promise<void>;
}

interface DTypeInfo {
  ctor: { new (n: number): ArrayData; readonly BYTES_PER_ELEMENT: number };
  size: number;
  /** v2 dtype without the byte-order character. */
  v2: string;
  kind: "bool" | "int" | "uint" | "float";
}

const DTYPES: Record<DataType, DTypeInfo> = {
  bool: { ctor: Uint8Array, size: 1, v2: "b1", kind: "bool" },
  int8: { ctor: Int8Array, size: 1, v2: "i1", kind: "int" },
  int16: { ctor: Int16Array, size: 2, v2: "i2", kind: "int" },
  int32: { ctor: Int32Array, size: 4, v2: "i4", kind: "int" },
  int64: { ctor: BigInt64Array, size: 8, v2: "i8", kind: "int" },
  uint8: { ctor: Uint8Array, size: 1, v2: "u1", kind: "uint" },
  uint16: { ctor: Uint16Array, size: 2, v2: "u2", kind: "uint" },
  uint32: { ctor: Uint32Array, size: 4, v2: "u4", kind: "uint" },
  uint64: { ctor: BigUint64Array, size: 8, v2: "u8", kind: "uint" },
  float32: { ctor: Float32Array, size: 4, v2: "f4", kind: "float" },
  float64: { ctor: Float64Array, size: 8, v2: "f8", kind: "float" },
};

/** All data types the writer supports. */
export const DATA_TYPES = Object.keys(DTYPES) as DataType[];

/** Allocates a zeroed typed array of the right class for `dtype`. */
export function allocArray(dtype: DataType, length: number): ArrayData {
  return new DTYPES[dtype].ctor(length);
}

/** Bytes per element of `dtype`. */
export function dtypeSize(dtype: DataType): number {
  return DTYPES[dtype].size;
}

/** The v2 dtype string (`|u1`, `<u2`, `>f4`, `|b1`, ...). */
export function v2DtypeString(dtype: DataType, endian: "little" | "big" = "little"): string {
  const info = DTYPES[dtype];
  const bo = info.size === 1 ? "|" : endian === "big" ? ">" : "<";
  return bo + info.v2;
}

/** Loosely-typed view used to copy between typed arrays of the same class. */
interface Buf {
  length: number;
  set(src: Buf, offset?: number): void;
  subarray(begin: number, end?: number): Buf;
  fill(v: unknown, start?: number, end?: number): Buf;
  [i: number]: unknown;
}
const buf = (a: ArrayData): Buf => a as unknown as Buf;

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function cStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = step;
    step *= shape[i];
  }
  return s;
}

/**
 * Copies the box `size` from `src` (C order, shape `srcShape`, box corner `srcStart`) into
 * `dst` (C order, shape `dstShape`, corner `dstStart`). Rows along the last axis are copied
 * with `set`, so the cost is one call per row.
 */
export function copyBox(
  src: ArrayData,
  srcShape: readonly number[],
  srcStart: readonly number[],
  dst: ArrayData,
  dstShape: readonly number[],
  dstStart: readonly number[],
  size: readonly number[],
): void {
  const n = size.length;
  if (size.some((s) => s <= 0)) return;
  const ss = cStrides(srcShape);
  const ds = cStrides(dstShape);
  const row = n === 0 ? 1 : size[n - 1];
  const s = buf(src);
  const d = buf(dst);
  const idx = new Array<number>(Math.max(n - 1, 0)).fill(0);
  const rows = n === 0 ? 1 : prod(size.slice(0, n - 1));
  for (let r = 0; r < rows; r++) {
    let so = 0;
    let doff = 0;
    for (let k = 0; k < n; k++) {
      const i = k < n - 1 ? idx[k] : 0;
      so += (srcStart[k] + i) * ss[k];
      doff += (dstStart[k] + i) * ds[k];
    }
    d.set(s.subarray(so, so + row), doff);
    for (let k = n - 2; k >= 0; k--) {
      if (++idx[k] < size[k]) break;
      idx[k] = 0;
    }
  }
}

/**
 * Permutes a C-ordered array of shape `shape` so the result is the C-ordered array of shape
 * `order.map(i => shape[i])` — the stored layout of a v3 `transpose` codec with that order.
 */
export function transposeC(data: ArrayData, shape: readonly number[], order: readonly number[]): ArrayData {
  const n = shape.length;
  const outShape = order.map((i) => shape[i]);
  const inStr = cStrides(shape);
  const step = order.map((i) => inStr[i]);
  const out = buf(new (data.constructor as DTypeInfo["ctor"])(data.length));
  const src = buf(data);
  const idx = new Array<number>(n).fill(0);
  let off = 0;
  for (let o = 0; o < data.length; o++) {
    out[o] = src[off];
    for (let k = n - 1; k >= 0; k--) {
      off += step[k];
      if (++idx[k] < outShape[k]) break;
      off -= step[k] * outShape[k];
      idx[k] = 0;
    }
  }
  return out as unknown as ArrayData;
}

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) {
    for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k];
  }
  return out;
}

function invalid(msg: string, where: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", msg, where);
}

function checkIntList(xs: unknown, name: string, where: string, min: number): number[] {
  if (!Array.isArray(xs) || xs.some((x) => !Number.isInteger(x) || x < min)) {
    throw invalid(`${name} must be a list of integers >= ${min}, got ${JSON.stringify(xs)}`, where);
  }
  return xs as number[];
}

const BLOSC_CNAMES = new Set(["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"]);

function normalizeCompressor(c: CompressorSpec | null | undefined, where: string): CompressorSpec | null {
  if (c == null) return null;
  switch (c.id) {
    case "blosc": {
      const cname = c.cname ?? "lz4";
      const clevel = c.clevel ?? 5;
      const shuffle = c.shuffle ?? 1;
      if (!BLOSC_CNAMES.has(cname)) throw new CellMapError("UNSUPPORTED", `unknown blosc cname '${cname}'`, where);
      if (!Number.isInteger(clevel) || clevel < 0 || clevel > 9) throw invalid(`blosc clevel must be 0..9, got ${clevel}`, where);
      if (![0, 1, 2].includes(shuffle)) throw invalid(`blosc shuffle must be 0, 1 or 2, got ${shuffle}`, where);
      return { id: "blosc", cname, clevel, shuffle, blocksize: c.blocksize ?? 0 };
    }
    case "zstd":
      return { id: "zstd", level: c.level ?? 1 };
    case "lz4":
      return { id: "lz4", acceleration: c.acceleration ?? 1 };
    case "gzip":
      return { id: "gzip", level: c.level ?? 1 };
    case "zlib":
      return { id: "zlib", level: c.level ?? 1 };
    default:
      throw new CellMapError("UNSUPPORTED", `unknown compressor id '${(c as { id: string }).id}'`, where);
  }
}

function normalizeFill(dtype: DataType, fv: FillValue | undefined, where: string): FillValue {
  const info = DTYPES[dtype];
  if (fv === undefined) return info.kind === "bool" ? false : 0;
  if (info.kind === "bool") {
    if (typeof fv === "boolean") return fv;
    if (fv === 0 || fv === 1) return fv === 1;
    throw invalid(`fillValue for bool must be true/false, got ${String(fv)}`, where);
  }
  if (info.kind === "float") {
    if (typeof fv !== "number") throw invalid(`fillValue for ${dtype} must be a number, got ${String(fv)}`, where);
    return fv;
  }
  const big = typeof fv === "bigint" ? fv : typeof fv === "number" && Number.isInteger(fv) ? BigInt(fv) : null;
  if (big === null) throw invalid(`fillValue for ${dtype} must be an integer, got ${String(fv)}`, where);
  const bits = BigInt(info.size * 8);
  const lo = info.kind === "uint" ? 0n : -(1n << (bits - 1n));
  const hi = info.kind === "uint" ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
  if (big < lo || big > hi) throw invalid(`fillValue ${big} out of range for ${dtype}`, where);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new CellMapError("UNSUPPORTED", `fillValue ${big} cannot be written exactly as JSON`, where);
  }
  return Number(big);
}

/** Checks `spec` and fills in defaults. Throws `INVALID_ARGUMENT` / `UNSUPPORTED` naming the field. */
export function normalizeArraySpec(spec: ZarrArraySpec, where = "zarr array"): NormalizedArraySpec {
  if (spec.zarrFormat !== 2 && spec.zarrFormat !== 3) throw invalid(`zarrFormat must be 2 or 3, got ${String(spec.zarrFormat)}`, where);
  if (!(spec.dtype in DTYPES)) throw new CellMapError("UNSUPPORTED", `unsupported dtype '${String(spec.dtype)}'`, where);
  const shape = checkIntList(spec.shape, "shape", where, 0);
  const chunks = checkIntList(spec.chunks, "chunks", where, 1);
  const n = shape.length;
  if (chunks.length !== n) throw invalid(`chunks has ${chunks.length} dims but shape has ${n}`, where);

  let order: number[];
  const o = spec.order ?? "C";
  if (o === "C") order = [...Array(n).keys()];
  else if (o === "F") order = [...Array(n).keys()].reverse();
  else {
    const ok = Array.isArray(o) && o.length === n && [...o].sort((a, b) => a - b).every((v, i) => v === i);
    if (!ok) throw invalid(`order must be "C", "F" or a permutation of 0..${n - 1}, got ${JSON.stringify(o)}`, where);
    order = [...o];
  }
  const identity = order.every((v, i) => v === i);
  const reversed = order.every((v, i) => v === n - 1 - i);
  if (spec.zarrFormat === 2 && !identity && !reversed) {
    throw new CellMapError("UNSUPPORTED", `zarr v2 only supports order "C" or "F", got ${JSON.stringify(o)}`, where);
  }

  let shards: number[] | null = null;
  if (spec.shards !== undefined) {
    if (spec.zarrFormat !== 3) throw new CellMapError("UNSUPPORTED", "sharding needs zarr v3 (zarrFormat: 3)", where);
    shards = checkIntList(spec.shards, "shards", where, 1);
    if (shards.length !== n || shards.some((s, i) => s % chunks[i] !== 0)) {
      throw invalid(`shards ${JSON.stringify(shards)} must be a multiple of chunks ${JSON.stringify(chunks)}`, where);
    }
  }
  const endian = spec.endian ?? "little";
  if (endian !== "little" && endian !== "big") throw invalid(`endian must be "little" or "big", got ${String(endian)}`, where);
  const sep = spec.dimensionSeparator ?? (spec.zarrFormat === 2 ? "." : "/");
  if (sep !== "." && sep !== "/") throw invalid(`dimensionSeparator must be "." or "/", got ${String(sep)}`, where);
  if (spec.dimensionNames && spec.dimensionNames.length !== n) {
    throw invalid(`dimensionNames has ${spec.dimensionNames.length} entries but shape has ${n}`, where);
  }
  return {
    zarrFormat: spec.zarrFormat,
    shape: [...shape],
    chunks: [...chunks],
    dtype: spec.dtype,
    compressor: normalizeCompressor(spec.compressor, where),
    order,
    endian,
    fillValue: normalizeFill(spec.dtype, spec.fillValue, where),
    dimensionSeparator: sep,
    attributes: { ...(spec.attributes ?? {}) },
    dimensionNames: spec.dimensionNames ? [...spec.dimensionNames] : null,
    shards,
  };
}

function fillJson(fv: FillValue): number | boolean | string {
  if (typeof fv === "boolean") return fv;
  const x = Number(fv);
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  return x;
}

function v2Compressor(c: CompressorSpec | null): Record<string, unknown> | null {
  return c ? { ...c } : null;
}

function v3Compressor(c: CompressorSpec, dtype: DataType): Record<string, unknown> {
  switch (c.id) {
    case "blosc":
      return {
        name: "blosc",
        configuration: {
          cname: c.cname,
          clevel: c.clevel,
          shuffle: ["noshuffle", "shuffle", "bitshuffle"][c.shuffle ?? 1],
          typesize: DTYPES[dtype].size,
          blocksize: c.blocksize ?? 0,
        },
      };
    case "zstd":
      return { name: "zstd", configuration: { level: c.level, checksum: false } };
    case "gzip":
      return { name: "gzip", configuration: { level: c.level } };
    // Not in the core v3 spec; zarr-python 3 writes these numcodecs names.
    case "zlib":
      return { name: "numcodecs.zlib", configuration: { level: c.level } };
    case "lz4":
      return { name: "numcodecs.lz4", configuration: { acceleration: c.acceleration } };
  }
}

function v3Codecs(s: NormalizedArraySpec): Record<string, unknown>[] {
  const codecs: Record<string, unknown>[] = [];
  if (!s.order.every((v, i) => v === i)) codecs.push({ name: "transpose", configuration: { order: s.order } });
  codecs.push({ name: "bytes", configuration: { endian: s.endian } });
  if (s.compressor) codecs.push(v3Compressor(s.compressor, s.dtype));
  return codecs;
}

/** The metadata documents for `spec`: file name (relative to the array dir) to JSON value. */
export function arrayMetadataFiles(spec: NormalizedArraySpec): Record<string, unknown> {
  if (spec.zarrFormat === 2) {
    const zarray = {
      zarr_format: 2,
      shape: spec.shape,
      chunks: spec.chunks,
      dtype: v2DtypeString(spec.dtype, spec.endian),
      compressor: v2Compressor(spec.compressor),
      fill_value: fillJson(spec.fillValue),
      order: spec.order.every((v, i) => v === i) || spec.shape.length < 2 ? "C" : "F",
      filters: null,
      dimension_separator: spec.dimensionSeparator,
    };
    const attrs = { ...spec.attributes };
    if (spec.dimensionNames) attrs._ARRAY_DIMENSIONS = spec.dimensionNames;
    const files: Record<string, unknown> = { ".zarray": zarray };
    if (Object.keys(attrs).length > 0) files[".zattrs"] = attrs;
    return files;
  }
  const inner = v3Codecs(spec);
  const codecs = spec.shards
    ? [
        {
          name: "sharding_indexed",
          configuration: {
            chunk_shape: spec.chunks,
            codecs: inner,
            index_codecs: [{ name: "bytes", configuration: { endian: "little" } }, { name: "crc32c" }],
            index_location: "end",
          },
        },
      ]
    : inner;
  const meta: Record<string, unknown> = {
    zarr_format: 3,
    node_type: "array",
    shape: spec.shape,
    data_type: spec.dtype,
    chunk_grid: { name: "regular", configuration: { chunk_shape: spec.shards ?? spec.chunks } },
    chunk_key_encoding: { name: "default", configuration: { separator: spec.dimensionSeparator } },
    fill_value: fillJson(spec.fillValue),
    codecs,
    attributes: spec.attributes,
    storage_transformers: [],
  };
  if (spec.dimensionNames) meta.dimension_names = spec.dimensionNames;
  return { "zarr.json": meta };
}

const METADATA_NAMES = [".zarray", ".zgroup", ".zattrs", "zarr.json"];

/**
 * Writes array metadata at `dir` and returns a writer for its chunks. Refuses
 * (`WRITE_CONFLICT`) if zarr metadata already exists there unless `spec.overwrite`.
 */
export async function createZarrArray(dir: string, spec: ZarrArraySpec): Promise<ZarrArrayWriter> {
  const norm = normalizeArraySpec(spec, dir);
  const existing = METADATA_NAMES.filter((f) => fs.existsSync(path.join(dir, f)));
  if (existing.length > 0) {
    if (!spec.overwrite) {
      throw new CellMapError("WRITE_CONFLICT", `zarr metadata already exists (${existing.join(", ")}); pass overwrite: true`, dir);
    }
    // Stale metadata of the other format would make readers see the wrong node.
    for (const f of existing) await fsp.rm(path.join(dir, f), { force: true });
  }
  const files = arrayMetadataFiles(norm);
  for (const [name, doc] of Object.entries(files)) await writeJsonAtomic(path.join(dir, name), doc);
  return makeWriter(dir, norm);
}

/** A writer for an array whose metadata already exists (e.g. in a worker); writes no metadata. */
export function zarrArrayWriter(dir: string, spec: ZarrArraySpec): ZarrArrayWriter {
  return makeWriter(dir, normalizeArraySpec(spec, dir));
}

/** Creates the array and writes all of `data` (C order, full shape) into it. */
export async function writeArray(
  dir: string,
  spec: ZarrArraySpec,
  data: ArrayData,
  opts: WriteOptions = {},
): Promise<ZarrArrayWriter> {
  const w = await createZarrArray(dir, spec);
  await w.writeAll(data, opts);
  return w;
}

type Encoder = (bytes: Uint8Array) => Promise<Uint8Array>;

async function makeEncoder(c: CompressorSpec | null, itemSize: number): Promise<Encoder> {
  if (c === null) return async (b) => b;
  switch (c.id) {
    case "gzip":
      return async (b) => gzipSync(b, { level: c.level });
    case "zlib":
      return async (b) => deflateSync(b, { level: c.level });
    case "blosc": {
      const { default: Blosc } = await import("numcodecs/blosc");
      // numcodecs.js always frames with typesize 4; for 1-byte items a byte shuffle is the identity,
      // so write unshuffled frames instead of needlessly shuffled 4-byte groups (readers follow
      // each frame's own header flags).
      const shuffle = itemSize === 1 && c.shuffle === 1 ? 0 : c.shuffle;
      const codec = Blosc.fromConfig({ id: "blosc", cname: c.cname, clevel: c.clevel, shuffle, blocksize: c.blocksize });
      return async (b) => codec.encode(b);
    }
    case "zstd": {
      const { default: Zstd } = await import("numcodecs/zstd");
      const codec = Zstd.fromConfig({ id: "zstd", level: c.level });
      return async (b) => codec.encode(b);
    }
    case "lz4": {
      const { default: LZ4 } = await import("numcodecs/lz4");
      const codec = LZ4.fromConfig({ id: "lz4", acceleration: c.acceleration });
      return async (b) => codec.encode(b);
    }
  }
}

function fillScalar(s: NormalizedArraySpec): number | bigint {
  const fv = s.fillValue;
  if (typeof fv === "boolean") return fv ? 1 : 0;
  return DTYPES[s.dtype].size === 8 && DTYPES[s.dtype].kind !== "float" ? BigInt(fv) : Number(fv);
}

/** True if every element equals `fill` (NaN matches NaN). */
function allFill(data: ArrayData, fill: number | bigint): boolean {
  const d = buf(data);
  if (typeof fill === "number" && Number.isNaN(fill)) {
    for (let i = 0; i < d.length; i++) if (!Number.isNaN(d[i])) return false;
    return true;
  }
  for (let i = 0; i < d.length; i++) if (d[i] !== fill) return false;
  return true;
}

const MISSING = 0xffffffffffffffffn;

/** Waits for every write in `pending` (emptying it), then throws the first failure if any. */
async function drain(pending: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(pending.splice(0));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Number of chunk files written concurrently by `writeRegion`. */
const WRITE_WINDOW = 16;

function makeWriter(dir: string, spec: NormalizedArraySpec): ZarrArrayWriter {
  const info = DTYPES[spec.dtype];
  const n = spec.shape.length;
  const unitShape = spec.shards ?? spec.chunks;
  const gridShape = spec.shape.map((s, i) => Math.ceil(s / unitShape[i]));
  const chunkLen = prod(spec.chunks);
  const transposed = !spec.order.every((v, i) => v === i);
  const swap = spec.endian === "big" && info.size > 1;
  const fill = fillScalar(spec);
  let encoderP: Promise<Encoder> | undefined;

  const checkData = (data: ArrayData, len: number, what: string): void => {
    if (!(data instanceof info.ctor)) {
      throw invalid(`${what} must be a ${info.ctor.name} for dtype ${spec.dtype}, got ${data?.constructor?.name}`, dir);
    }
    if (data.length !== len) throw invalid(`${what} has ${data.length} elements, expected ${len}`, dir);
  };
  const checkCoords = (coords: number[], what: string): void => {
    if (coords.length !== n || coords.some((c, i) => !Number.isInteger(c) || c < 0 || c >= gridShape[i])) {
      throw new CellMapError("OUT_OF_RANGE", `${what} ${JSON.stringify(coords)} outside grid ${JSON.stringify(gridShape)}`, dir);
    }
  };

  const key = (coords: number[]): string => {
    const sep = spec.dimensionSeparator;
    if (spec.zarrFormat === 2) return n === 0 ? "0" : coords.join(sep);
    return n === 0 ? "c" : ["c", ...coords].join(sep);
  };
  const filePath = (coords: number[]): string => path.join(dir, ...key(coords).split("/"));

  const encodeChunk = async (data: ArrayData): Promise<Uint8Array> => {
    checkData(data, chunkLen, "chunk data");
    const laid = transposed ? transposeC(data, spec.chunks, spec.order) : data;
    let bytes = new Uint8Array(laid.buffer, laid.byteOffset, laid.byteLength);
    if (swap) bytes = swapBytes(bytes, info.size);
    encoderP ??= makeEncoder(spec.compressor, info.size);
    return (await encoderP)(bytes);
  };

  const writeChunk = async (coords: number[], data: ArrayData): Promise<void> => {
    if (spec.shards) throw invalid("writeChunk on a sharded array; use writeShard or writeRegion", dir);
    checkCoords(coords, "chunk");
    await writeFileAtomic(filePath(coords), await encodeChunk(data));
  };

  /** Builds a shard file's bytes; null when every inner chunk is missing and skipping is on. */
  const encodeShard = async (
    coords: number[],
    data: ArrayData,
    opts: WriteOptions & { omitChunks?: number[][] } = {},
  ): Promise<Uint8Array | null> => {
    if (!spec.shards) throw invalid("writeShard on an array without shards", dir);
    const shardShape = spec.shards;
    checkCoords(coords, "shard");
    checkData(data, prod(shardShape), "shard data");
    const inner = shardShape.map((s, i) => s / spec.chunks[i]);
    const nInner = prod(inner);
    const omit = new Set((opts.omitChunks ?? []).map((c) => c.join(",")));
    const index = new DataView(new ArrayBuffer(16 * nInner + 4));
    const parts: Uint8Array[] = [];
    let offset = 0;
    const idx = new Array<number>(n).fill(0);
    const chunkBuf = allocArray(spec.dtype, chunkLen);
    for (let c = 0; c < nInner; c++) {
      const start = idx.map((v, i) => v * spec.chunks[i]);
      const outside = start.some((v, i) => coords[i] * shardShape[i] + v >= spec.shape[i]);
      let stored = false;
      if (!outside && !omit.has(idx.join(","))) {
        copyBox(data, shardShape, start, chunkBuf, spec.chunks, new Array(n).fill(0), spec.chunks);
        if (!(opts.skipEmptyChunks && allFill(chunkBuf, fill))) {
          const enc = await encodeChunk(chunkBuf);
          parts.push(enc.slice()); // the encoder may hand back a view of chunkBuf
          index.setBigUint64(16 * c, BigInt(offset), true);
          index.setBigUint64(16 * c + 8, BigInt(enc.length), true);
          offset += enc.length;
          stored = true;
        }
      }
      if (!stored) {
        index.setBigUint64(16 * c, MISSING, true);
        index.setBigUint64(16 * c + 8, MISSING, true);
      }
      for (let k = n - 1; k >= 0; k--) {
        if (++idx[k] < inner[k]) break;
        idx[k] = 0;
      }
    }
    if (parts.length === 0 && opts.skipEmptyChunks) return null;
    const indexBytes = new Uint8Array(index.buffer, 0, 16 * nInner);
    index.setUint32(16 * nInner, crc32c(indexBytes), true);
    const out = new Uint8Array(offset + index.byteLength);
    let p = 0;
    for (const part of parts) {
      out.set(part, p);
      p += part.length;
    }
    out.set(new Uint8Array(index.buffer), p);
    return out;
  };

  /** Writes `bytes` at the chunk/shard key, or removes the object when `bytes` is null (all fill). */
  const store = async (coords: number[], bytes: Uint8Array | null): Promise<void> => {
    if (bytes === null) await fsp.rm(filePath(coords), { force: true });
    else await writeFileAtomic(filePath(coords), bytes);
  };

  const writeShard = async (
    coords: number[],
    data: ArrayData,
    opts: WriteOptions & { omitChunks?: number[][] } = {},
  ): Promise<void> => store(coords, await encodeShard(coords, data, opts));

  const writeRegion = async (
    start: number[],
    regionShape: number[],
    data: ArrayData,
    opts: WriteOptions = {},
  ): Promise<void> => {
    if (start.length !== n || regionShape.length !== n) throw invalid(`region needs ${n} dims`, dir);
    for (let i = 0; i < n; i++) {
      const end = start[i] + regionShape[i];
      if (start[i] < 0 || regionShape[i] < 0 || end > spec.shape[i]) {
        throw new CellMapError("OUT_OF_RANGE", `region dim ${i} [${start[i]}, ${end}) outside [0, ${spec.shape[i]})`, dir);
      }
      if (start[i] % unitShape[i] !== 0 || (end % unitShape[i] !== 0 && end !== spec.shape[i])) {
        throw invalid(`region dim ${i} [${start[i]}, ${end}) is not aligned to ${spec.shards ? "shards" : "chunks"} of ${unitShape[i]}`, dir);
      }
    }
    checkData(data, prod(regionShape), "region data");
    if (regionShape.some((s) => s === 0)) return;
    const first = start.map((s, i) => s / unitShape[i]);
    const count = regionShape.map((s, i) => Math.ceil(s / unitShape[i]));
    const unit = allocArray(spec.dtype, prod(unitShape));
    const u = new Array<number>(n).fill(0);
    const pending: Promise<void>[] = [];
    try {
      for (let k = 0, total = prod(count); k < total; k++) {
        const coords = u.map((v, i) => first[i] + v);
        const origin = coords.map((c, i) => c * unitShape[i]);
        const size = origin.map((o, i) => Math.min(unitShape[i], spec.shape[i] - o));
        const partial = size.some((s, i) => s < unitShape[i]);
        if (partial) buf(unit).fill(fill);
        copyBox(data, regionShape, origin.map((o, i) => o - start[i]), unit, unitShape, new Array(n).fill(0), size);
        let bytes: Uint8Array | null;
        if (spec.shards) bytes = await encodeShard(coords, unit, opts);
        else if (opts.skipEmptyChunks && allFill(unit, fill)) bytes = null;
        else {
          bytes = await encodeChunk(unit);
          if (bytes.buffer === unit.buffer) bytes = bytes.slice(); // `unit` is reused below
        }
        // Encoding is CPU-bound and sequential; file writes overlap in a small window.
        pending.push(store(coords, bytes));
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
    dir,
    spec,
    unitShape: [...unitShape],
    gridShape,
    key,
    encodeChunk,
    writeChunk,
    writeShard,
    writeRegion,
    writeAll: (data, opts) => writeRegion(new Array(n).fill(0), spec.shape, data, opts),
  };
}
