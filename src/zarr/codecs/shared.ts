/**
 * Small pieces shared by the fast codecs: the zarrita codec-entry shapes, error helpers,
 * the expected decoded size of a chunk, and lazy loaders for numcodecs' WASM codecs
 * (the fallbacks). Module state here is per thread, so it is safe in worker_threads.
 */

import { CellMapError } from "../../errors.js";
import { DTYPES } from "../../tensor.js";

/** The part of zarrita's chunk metadata a bytes-to-bytes codec looks at. */
export interface ChunkMeta {
  readonly dataType: string;
  readonly shape: readonly number[];
  readonly codecs: readonly { readonly name: string }[];
}

/** A zarrita bytes-to-bytes codec instance. */
export interface BytesToBytesCodec {
  readonly kind: "bytes_to_bytes";
  encode(data: Uint8Array): Promise<Uint8Array>;
  decode(data: Uint8Array): Promise<Uint8Array>;
}

/** What a zarrita registry loader resolves to. */
export interface CodecEntry {
  fromConfig(config: unknown, meta: ChunkMeta): BytesToBytesCodec;
  readonly kind: "bytes_to_bytes";
}

/** A numcodecs.js codec instance (the WASM/fflate implementations). */
export interface NumcodecsCodec {
  encode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A numcodecs.js codec class. */
export interface NumcodecsClass {
  fromConfig(config: Record<string, unknown>): NumcodecsCodec;
}

/** A `CORRUPT_CHUNK` error; the caller (chunk reader) adds the chunk key as path. */
export function corruptChunk(message: string, cause?: unknown): CellMapError {
  return new CellMapError("CORRUPT_CHUNK", message, undefined, cause === undefined ? undefined : { cause });
}

/**
 * An output buffer of `n` bytes *without* zero-filling (zeroing large buffers costs as much as
 * a fast decode). Callers must write every byte before returning it, or throw.
 */
export function allocUninit(n: number): Uint8Array {
  try {
    return new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
  } catch (err) {
    // Only a corrupt size field asks for more than the process can allocate.
    throw corruptChunk(`cannot allocate ${n} bytes for the decoded chunk`, err);
  }
}

/** Re-throws `err` as `CORRUPT_CHUNK` unless it already is a CellMapError. */
export function asCorrupt(err: unknown, what: string): CellMapError {
  if (err instanceof CellMapError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return corruptChunk(`${what}: ${msg}`, err);
}

/**
 * Returns `buf` as a Uint8Array that owns its whole ArrayBuffer (copies if `buf` is a view
 * into a larger buffer, e.g. a pooled Node Buffer), so callers may keep or mutate it.
 */
export function ownedBytes(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && !(buf.buffer instanceof SharedArrayBuffer)) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

// Codecs that may precede ours without changing the byte count of `shape × itemsize`
// (the dtype in `meta` is already the encoded one, see zarrita's getEncodedMeta).
const SIZE_PRESERVING = new Set(["transpose", "bytes", "bitround", "cast_value", "scale_offset", "numcodecs.delta", "numcodecs.bitround", "numcodecs.shuffle"]);

/** Bytes per element of a zarrita data type name, or undefined (strings, unknown names). */
export function itemSize(dataType: string): number | undefined {
  return Object.hasOwn(DTYPES, dataType) ? DTYPES[dataType as keyof typeof DTYPES].size : undefined;
}

/**
 * The decoded size in bytes that the codec registered as `name` must produce, when it can
 * be derived from the chunk metadata: the codec occurs once in the chain and only
 * size-preserving codecs come before it. `undefined` means "unknown, don't check".
 */
export function expectedDecodedSize(name: string, meta: ChunkMeta | undefined): number | undefined {
  if (!meta || !Array.isArray(meta.shape) || !Array.isArray(meta.codecs)) return undefined;
  const idx = meta.codecs.findIndex((c) => c?.name === name);
  if (idx < 0 || meta.codecs.findIndex((c, i) => i > idx && c?.name === name) >= 0) return undefined;
  for (let i = 0; i < idx; i++) if (!SIZE_PRESERVING.has(meta.codecs[i]?.name)) return undefined;
  let item = itemSize(meta.dataType);
  if (item === undefined) {
    const m = /^v2:([US])(\d+)$/.exec(meta.dataType);
    if (!m) return undefined;
    item = (m[1] === "U" ? 4 : 1) * Number(m[2]);
  }
  let n = item;
  for (const d of meta.shape) {
    if (!Number.isInteger(d) || d < 0) return undefined;
    n *= d;
  }
  return n;
}

/** Throws `CORRUPT_CHUNK` when a decoded size differs from the expected one. */
export function checkDecodedSize(codec: string, actual: number, expected: number | undefined): void {
  if (expected !== undefined && actual !== expected) {
    throw corruptChunk(`${codec}: decoded ${actual} bytes, expected ${expected} (chunk shape × item size)`);
  }
}

let wasmBlosc: Promise<NumcodecsClass> | undefined;
let wasmZstd: Promise<NumcodecsClass> | undefined;
let wasmLz4: Promise<NumcodecsClass> | undefined;

/** numcodecs' WASM blosc class (loaded once per thread). */
export function loadWasmBlosc(): Promise<NumcodecsClass> {
  return (wasmBlosc ??= import("numcodecs/blosc").then((m) => m.default as unknown as NumcodecsClass));
}

/** numcodecs' WASM zstd class (loaded once per thread). */
export function loadWasmZstd(): Promise<NumcodecsClass> {
  return (wasmZstd ??= import("numcodecs/zstd").then((m) => m.default as unknown as NumcodecsClass));
}

/** numcodecs' WASM lz4 class (loaded once per thread). */
export function loadWasmLz4(): Promise<NumcodecsClass> {
  return (wasmLz4 ??= import("numcodecs/lz4").then((m) => m.default as unknown as NumcodecsClass));
}
