/**
 * gzip and zlib codecs (v3 `gzip`/`zlib`, v2 `numcodecs.gzip`/`numcodecs.zlib`) on
 * `node:zlib`, decode and encode. zarrita's own versions decode through
 * `DecompressionStream` (slow) and cannot encode at all.
 */

import { deflateSync, gunzipSync, gzipSync, inflateSync, type ZlibOptions } from "node:zlib";
import { CellMapError } from "../../errors.js";
import { asCorrupt, type BytesToBytesCodec, type ChunkMeta, type CodecEntry, corruptChunk, expectedDecodedSize, ownedBytes } from "./shared.js";

/** Which container: `gzip` (RFC 1952) or `zlib` (RFC 1950). */
export type DeflateFormat = "gzip" | "zlib";

// zlib refuses chunk sizes below this.
const MIN_CHUNK = 64;

function decodeOptions(expectedSize: number | undefined): ZlibOptions {
  if (expectedSize === undefined) return {};
  // One output buffer of the right size, and a hard stop for inputs that inflate past it.
  return { chunkSize: Math.max(MIN_CHUNK, expectedSize), maxOutputLength: Math.max(1, expectedSize) };
}

/**
 * Inflates a gzip or zlib stream. When `expectedSize` is given the result must have exactly
 * that length (and inflation stops as soon as it would exceed it).
 */
export function decodeDeflate(format: DeflateFormat, src: Uint8Array, expectedSize?: number): Uint8Array {
  let out: Uint8Array;
  try {
    const opts = decodeOptions(expectedSize);
    out = format === "gzip" ? gunzipSync(src, opts) : inflateSync(src, opts);
  } catch (err) {
    if (err instanceof RangeError && expectedSize !== undefined) {
      throw corruptChunk(`${format}: data inflates past ${expectedSize} bytes (chunk shape × item size)`, err);
    }
    throw asCorrupt(err, format);
  }
  if (expectedSize !== undefined && out.length !== expectedSize) {
    throw corruptChunk(`${format}: decoded ${out.length} bytes, expected ${expectedSize} (chunk shape × item size)`);
  }
  return ownedBytes(out);
}

/** Deflates `data` into a gzip or zlib stream at `level` (0-9, -1 = zlib's default). */
export function encodeDeflate(format: DeflateFormat, data: Uint8Array, level = 1): Uint8Array {
  const opts = { level };
  return ownedBytes(format === "gzip" ? gzipSync(data, opts) : deflateSync(data, opts));
}

/** zarrita codec for gzip/zlib backed by `node:zlib`. */
export class DeflateCodec implements BytesToBytesCodec {
  readonly kind = "bytes_to_bytes" as const;

  /**
   * @param format gzip or zlib container.
   * @param level compression level used by {@link encode}.
   * @param expectedSize decoded size every chunk must have, when known.
   */
  constructor(
    readonly format: DeflateFormat,
    readonly level = 1,
    readonly expectedSize?: number,
  ) {}

  /** A registry entry for `name` (e.g. `gzip`, `numcodecs.zlib`). */
  static entry(name: string, format: DeflateFormat): CodecEntry {
    return {
      kind: "bytes_to_bytes",
      fromConfig(config: unknown, meta: ChunkMeta): DeflateCodec {
        const level = ((config ?? {}) as { level?: unknown }).level ?? 1;
        if (typeof level !== "number" || !Number.isInteger(level) || level < -1 || level > 9) {
          throw new CellMapError("INVALID_METADATA", `${name}: level must be an integer in -1..9, got ${JSON.stringify(level)}`, `codecs.${name}.level`);
        }
        return new DeflateCodec(format, level, expectedDecodedSize(name, meta));
      },
    };
  }

  /** Decodes one chunk. */
  async decode(data: Uint8Array): Promise<Uint8Array> {
    return decodeDeflate(this.format, data, this.expectedSize);
  }

  /** Encodes one chunk. */
  async encode(data: Uint8Array): Promise<Uint8Array> {
    return encodeDeflate(this.format, data, this.level);
  }
}
