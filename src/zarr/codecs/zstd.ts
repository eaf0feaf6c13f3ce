/**
 * zstd codec (v3 `zstd`, v2 `numcodecs.zstd`) on native `zstd-napi` when it loads, else on
 * numcodecs' WASM zstd. Decode and encode.
 *
 * Encoding writes the frame's content checksum when the codec configuration says
 * `checksum: true` (the project's writer does by default), on the native and the fallback
 * path alike.
 *
 * zstd-napi is CommonJS and an optional dependency, so it is loaded with a guarded
 * `require` on first use: that keeps the choice synchronous (for {@link zstdBackend}) and
 * per thread (each worker_thread loads its own copy of the addon).
 */

import { createRequire } from "node:module";
import { CellMapError } from "../../errors.js";
import {
  allocUninit,
  asCorrupt,
  type BytesToBytesCodec,
  type ChunkMeta,
  type CodecEntry,
  corruptChunk,
  expectedDecodedSize,
  loadWasmZstd,
  type NumcodecsCodec,
  ownedBytes,
} from "./shared.js";

interface ZstdBinding {
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  getFrameContentSize(frame: Uint8Array): number | null;
  findFrameCompressedSize(frame: Uint8Array): number;
}

interface ZstdApi {
  compress(data: Uint8Array, params?: { compressionLevel?: number; checksumFlag?: boolean }): Uint8Array;
  Decompressor: new () => { decompress(data: Uint8Array): Uint8Array };
}

/** The loaded native zstd, with one reusable decompression context per thread. */
interface NativeZstd {
  api: ZstdApi;
  binding: ZstdBinding;
  dctx: InstanceType<ZstdBinding["DCtx"]>;
  decompressor: InstanceType<ZstdApi["Decompressor"]>;
}

let native: NativeZstd | null | undefined;
let nativeDisabled = false;

function loadNative(): NativeZstd | null {
  if (native === undefined) {
    try {
      const req = createRequire(import.meta.url);
      const api = req("zstd-napi") as ZstdApi;
      const binding = req("zstd-napi/binding.js") as ZstdBinding;
      native = { api, binding, dctx: new binding.DCtx(), decompressor: new api.Decompressor() };
    } catch {
      native = null; // optional dependency missing or failed to build
    }
  }
  return native;
}

/** The native zstd if it loaded and is not disabled, else `null`. */
export function nativeZstd(): NativeZstd | null {
  return nativeDisabled ? null : loadNative();
}

/**
 * Turns the native zstd off (`false`) or back on (`true`) in this thread, e.g. to benchmark
 * or test the WASM fallback. Has no effect when zstd-napi is not installed.
 */
export function useNativeZstd(enabled: boolean): void {
  nativeDisabled = !enabled;
}

/** Which zstd implementation decodes in this thread: `"zstd-napi"` or `"wasm"`. */
export function zstdBackend(): "zstd-napi" | "wasm" {
  return nativeZstd() ? "zstd-napi" : "wasm";
}

/**
 * Decodes zstd `src` into exactly `dst` (used for blosc's inner streams, whose decoded size is
 * known). Synchronous; requires the native backend.
 *
 * @returns the number of bytes written.
 */
export function zstdDecodeInto(n: NativeZstd, src: Uint8Array, dst: Uint8Array): number {
  try {
    return n.dctx.decompress(dst, src);
  } catch (err) {
    throw asCorrupt(err, "zstd");
  }
}

/**
 * Decodes a zstd chunk (one or more frames). When `expectedSize` is given the result must
 * have exactly that length.
 */
export async function decodeZstd(src: Uint8Array, expectedSize?: number): Promise<Uint8Array> {
  const n = nativeZstd();
  let out: Uint8Array;
  if (n) {
    try {
      // Single frame with a recorded size: decode straight into an exact buffer.
      let size: number | null = null;
      if (n.binding.findFrameCompressedSize(src) === src.length) size = n.binding.getFrameContentSize(src);
      if (size !== null) {
        if (expectedSize !== undefined && size !== expectedSize) {
          throw corruptChunk(`zstd: frame header says ${size} bytes, expected ${expectedSize} (chunk shape × item size)`);
        }
        out = allocUninit(size); // fully written, or the size check below throws
        const got = n.dctx.decompress(out, src);
        if (got !== size) throw corruptChunk(`zstd: decoded ${got} bytes, frame header says ${size}`);
        return out;
      }
      out = ownedBytes(n.decompressor.decompress(src));
    } catch (err) {
      throw asCorrupt(err, "zstd");
    }
  } else {
    const codec = await wasmCodec(0);
    try {
      out = await codec.decode(src);
    } catch (err) {
      throw asCorrupt(err, "zstd (wasm)");
    }
  }
  if (expectedSize !== undefined && out.length !== expectedSize) {
    throw corruptChunk(`zstd: decoded ${out.length} bytes, expected ${expectedSize} (chunk shape × item size)`);
  }
  return out;
}

/**
 * Encodes `data` as one zstd frame with its content size and, with `checksum`, the frame's
 * content checksum (so a damaged chunk fails to decode instead of decoding to wrong values).
 */
export async function encodeZstd(data: Uint8Array, level = 0, checksum = false): Promise<Uint8Array> {
  const n = nativeZstd();
  if (n) return ownedBytes(n.api.compress(data, { compressionLevel: level, checksumFlag: checksum }));
  const frame = await (await wasmCodec(level)).encode(data);
  return checksum ? addContentChecksum(frame, data) : frame;
}

let xxh64: Promise<(b: Uint8Array) => bigint> | undefined;

/**
 * The fallback's equivalent of libzstd's `checksumFlag` (numcodecs' WASM zstd has no option for
 * it): sets the frame header's Content_Checksum_flag and appends the low 32 bits of XXH64 (seed
 * 0) of the content, little-endian, as the zstd format (RFC 8878 §3.1.1) defines the checksum.
 */
async function addContentChecksum(frame: Uint8Array, content: Uint8Array): Promise<Uint8Array> {
  if (frame.length < 5 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) {
    throw new CellMapError("IO", "zstd (wasm): the encoder did not return a zstd frame", "zstd");
  }
  if (frame[4] & 0x04) return frame; // already checksummed
  xxh64 ??= import("xxhash-wasm").then(async (m) => {
    const api = await m.default();
    return (b: Uint8Array) => api.h64Raw(b, 0n);
  });
  const digest = (await xxh64)(content);
  const out = new Uint8Array(frame.length + 4);
  out.set(frame);
  out[4] |= 0x04;
  new DataView(out.buffer).setUint32(frame.length, Number(digest & 0xffffffffn), true);
  return out;
}

const wasmCodecs = new Map<number, Promise<NumcodecsCodec>>();
function wasmCodec(level: number): Promise<NumcodecsCodec> {
  let c = wasmCodecs.get(level);
  if (!c) {
    c = loadWasmZstd().then((Z) => Z.fromConfig({ id: "zstd", level }));
    wasmCodecs.set(level, c);
  }
  return c;
}

/** zarrita codec for v3 `zstd` and v2 `numcodecs.zstd` (`{ level, checksum }`; numcodecs ≥ 0.13 writes `checksum` too). */
export class ZstdCodec implements BytesToBytesCodec {
  readonly kind = "bytes_to_bytes" as const;

  /**
   * @param level compression level used by {@link encode} (0 = zstd's default).
   * @param checksum write a content checksum when encoding.
   * @param expectedSize decoded size every chunk must have, when known.
   */
  constructor(
    readonly level = 0,
    readonly checksum = false,
    readonly expectedSize?: number,
  ) {}

  /** A registry entry whose codecs check decoded sizes against the chunk metadata. */
  static entry(name: string): CodecEntry {
    return {
      kind: "bytes_to_bytes",
      fromConfig(config: unknown, meta: ChunkMeta): ZstdCodec {
        const c = (config ?? {}) as { level?: unknown; checksum?: unknown };
        const level = c.level ?? 0;
        if (typeof level !== "number" || !Number.isInteger(level)) {
          throw new CellMapError("INVALID_METADATA", `${name}: level must be an integer, got ${JSON.stringify(level)}`, `codecs.${name}.level`);
        }
        return new ZstdCodec(level, c.checksum === true, expectedDecodedSize(name, meta));
      },
    };
  }

  /** Decodes one chunk. */
  decode(data: Uint8Array): Promise<Uint8Array> {
    return decodeZstd(data, this.expectedSize);
  }

  /** Encodes one chunk. */
  encode(data: Uint8Array): Promise<Uint8Array> {
    return encodeZstd(data, this.level, this.checksum);
  }
}
