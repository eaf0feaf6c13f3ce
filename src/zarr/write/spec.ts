/**
 * What the Zarr writer creates: the array spec (v2 or v3, shape, chunks, dtype, compressor,
 * memory order, byte order, fill value, shards), its validation, and the v3 codec list a spec
 * stands for. Element sizes and v2 type codes come from the one dtype table (`DTYPES`,
 * `src/tensor.ts`).
 */
import { CellMapError } from "../../errors.js";
import { DTYPES, type DataType, type DTypeArray } from "../../tensor.js";

/** Element types the writer supports (every readable one but float16). `bool` data is a `Uint8Array` of 0/1. */
export type WritableDataType = Exclude<DataType, "float16">;

/** Typed arrays the writer accepts (64-bit integers as BigInt arrays). */
export type ArrayData = DTypeArray;

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
  /** `checksum` (default true): frames carry zstd's content checksum, so damage is detected on read. */
  | { id: "zstd"; level?: number; checksum?: boolean }
  | { id: "lz4"; acceleration?: number }
  | { id: "gzip"; level?: number }
  | { id: "zlib"; level?: number };

/** What {@link createZarrArray} creates. */
export interface ZarrArraySpec {
  zarrFormat: 2 | 3;
  shape: number[];
  /** Chunk shape; for sharded arrays the *inner* chunk shape. */
  chunks: number[];
  dtype: WritableDataType;
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
  /** Replace existing metadata at the location (existing chunks are not removed). Default false. */
  overwrite?: boolean;
}

/** A spec with every default filled in and the order as a permutation. */
export interface NormalizedArraySpec {
  zarrFormat: 2 | 3;
  shape: number[];
  chunks: number[];
  dtype: WritableDataType;
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

/** All data types the writer supports. */
export const DATA_TYPES = Object.keys(DTYPES).filter((d) => d !== "float16") as WritableDataType[];

/** Allocates a zeroed typed array of the right class for `dtype`. */
export function allocArray(dtype: WritableDataType, length: number): ArrayData {
  return new DTYPES[dtype].array(length);
}

/** The v2 dtype string (`|u1`, `<u2`, `>f4`, `|b1`, ...). */
export function v2DtypeString(dtype: WritableDataType, endian: "little" | "big" = "little"): string {
  const info = DTYPES[dtype];
  const bo = info.size === 1 ? "|" : endian === "big" ? ">" : "<";
  return bo + info.v2;
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
      if (c.checksum !== undefined && typeof c.checksum !== "boolean") throw invalid(`zstd checksum must be true or false, got ${String(c.checksum)}`, where);
      return { id: "zstd", level: c.level ?? 1, checksum: c.checksum ?? true };
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

function normalizeFill(dtype: WritableDataType, fv: FillValue | undefined, where: string): FillValue {
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
  if (!DATA_TYPES.includes(spec.dtype)) throw new CellMapError("UNSUPPORTED", `unsupported dtype '${String(spec.dtype)}'`, where);
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

/** A fill value as JSON (`"NaN"`, `"Infinity"`, `"-Infinity"` for the non-finite floats). */
export function fillJson(fv: FillValue): number | boolean | string {
  if (typeof fv === "boolean") return fv;
  const x = Number(fv);
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  return x;
}

/** The fill value as an element of the array's typed array (bigint for 64-bit integers, 0/1 for bool). */
export function fillScalar(s: NormalizedArraySpec): number | bigint {
  const fv = s.fillValue;
  if (typeof fv === "boolean") return fv ? 1 : 0;
  return DTYPES[s.dtype].array === BigInt64Array || DTYPES[s.dtype].array === BigUint64Array ? BigInt(fv) : Number(fv);
}

function v3Compressor(c: CompressorSpec, dtype: WritableDataType): Record<string, unknown> {
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
      return { name: "zstd", configuration: { level: c.level, checksum: c.checksum ?? true } };
    case "gzip":
      return { name: "gzip", configuration: { level: c.level } };
    // Not in the core v3 spec; zarr-python 3 writes these numcodecs names.
    case "zlib":
      return { name: "numcodecs.zlib", configuration: { level: c.level } };
    case "lz4":
      return { name: "numcodecs.lz4", configuration: { acceleration: c.acceleration } };
  }
}

/** The v3 codecs of one (inner) chunk: `[transpose,] bytes [, compressor]`. */
export function v3ChunkCodecs(s: NormalizedArraySpec): { name: string; configuration?: Record<string, unknown> }[] {
  const codecs: { name: string; configuration?: Record<string, unknown> }[] = [];
  if (!s.order.every((v, i) => v === i)) codecs.push({ name: "transpose", configuration: { order: s.order } });
  codecs.push({ name: "bytes", configuration: { endian: s.endian } });
  if (s.compressor) codecs.push(v3Compressor(s.compressor, s.dtype) as { name: string; configuration: Record<string, unknown> });
  return codecs;
}

/** The v2 `compressor` object of a spec (numcodecs config), or null. */
export function v2Compressor(c: CompressorSpec | null): Record<string, unknown> | null {
  return c ? { ...c } : null;
}

/** Encodes whole (inner) chunks of one array. */
export interface ChunkEncoder {
  /**
   * The stored bytes of one chunk given in C order with the (inner) chunk shape, edge chunks
   * padded: memory order, byte order and compressor applied. Without any of them the result may
   * be a view of `data`'s own bytes (copy it before reusing `data`).
   */
  encode(data: ArrayData): Promise<Uint8Array>;
}
