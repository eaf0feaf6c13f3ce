/**
 * Decoding chunks straight into a caller's buffer (a slot of the shared chunk cache), for the
 * common Zarr v2 layout: one blosc, zstd or lz4 compressor (or none), no filters, a 1-byte or
 * little-endian numeric dtype of up to 32 bits, C or F order. Such a chunk's decoded bytes are
 * its values, so going around zarrita's codec pipeline saves an allocation and a copy of every
 * decoded chunk (and the garbage collection of both). Other arrays go through zarrita, and so
 * do all compressed arrays while this thread has zarrita's WASM codecs registered
 * (`registerWasmCodecs`, `CELLMAP_CODECS=wasm`): the direct decode uses the fast codecs'
 * decoders, so it stands in for zarrita only when those are the registered ones.
 */
import type { AbsolutePath, Readable } from "../store/types.js";
import { CellMapError } from "../errors.js";
import { DTYPES, sizeOf, stridesOf } from "../tensor.js";
import { decodeBlosc } from "./codecs/blosc/decode.js";
import { decodeNumcodecsLz4 } from "./codecs/lz4.js";
import { fastCodecActive } from "./codecs/register.js";
import { decodeZstd, nativeZstd, zstdDecodeInto } from "./codecs/zstd.js";

/** How to fetch and decode one array's chunks into a buffer. */
export interface DirectDecode {
  /** Store key of chunk `coords`. */
  key(coords: readonly number[]): AbsolutePath;
  /** Element strides of a decoded chunk (C or F order). */
  stride: number[];
  /** Decodes the stored bytes of a chunk into `dst` (exactly the chunk's bytes), or fills it when the chunk is missing. */
  decodeInto(bytes: Uint8Array | undefined, dst: Uint8Array): Promise<void>;
  store: Readable;
}

type Ctor = new (b: ArrayBufferLike, o: number, n: number) => { fill(v: number): unknown };
/** Typed array of a v2 type code, from the dtype table. */
const typeOfV2 = (code: string): Ctor => Object.values(DTYPES).find((d) => d.v2 === code)!.array as unknown as Ctor;

function fillNumber(v: unknown): number | null {
  if (v === null || v === undefined) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return null;
}

/** The direct decode of a v2 array from its `.zarray` document, or null when zarrita must decode it. */
export function directDecodePlan(meta: Record<string, unknown> | undefined, arrayPath: string, chunks: number[], store: Readable): DirectDecode | null {
  if (meta?.zarr_format !== 2) return null;
  const filters = meta.filters;
  if (filters !== null && filters !== undefined && !(Array.isArray(filters) && filters.length === 0)) return null;
  const dt = typeof meta.dtype === "string" ? meta.dtype : "";
  // 64-bit integers are widened to float64 by zarrita's path; they go that way.
  const m = /^([|<])(b1|[iu][124]|f[48])$/.exec(dt);
  if (!m || (m[1] === "|" && !m[2].endsWith("1"))) return null;
  const Type = typeOfV2(m[2]);
  const fill = fillNumber(meta.fill_value);
  if (fill === null) return null;
  const comp = meta.compressor as { id?: unknown } | null | undefined;
  const id = comp ? comp.id : null;
  if (id !== null && id !== "blosc" && id !== "zstd" && id !== "lz4") return null;
  if (id !== null && !fastCodecActive(id)) return null;
  const order = meta.order === "F" ? "F" : "C";
  const stride = order === "C" ? stridesOf(chunks) : stridesOf([...chunks].reverse()).reverse();
  const sep = typeof meta.dimension_separator === "string" ? meta.dimension_separator : ".";
  const prefix = arrayPath.replace(/^\/+|\/+$/g, "");
  const n = sizeOf(chunks);
  return {
    key: (c) => `/${prefix ? `${prefix}/` : ""}${c.length ? c.join(sep) : "0"}` as AbsolutePath,
    stride,
    store,
    async decodeInto(bytes, dst) {
      if (!bytes) {
        new Type(dst.buffer, dst.byteOffset, n).fill(fill);
        return;
      }
      let out: Uint8Array;
      if (id === "blosc") out = await decodeBlosc(bytes, dst.length, dst);
      else if (id === "lz4") out = decodeNumcodecsLz4(bytes, dst.length, dst);
      else if (id === "zstd") {
        const z = nativeZstd();
        if (z) {
          const got = zstdDecodeInto(z, bytes, dst);
          if (got !== dst.length) throw new CellMapError("CORRUPT_CHUNK", `zstd: decoded ${got} bytes, expected ${dst.length} (chunk shape × item size)`);
          return;
        }
        out = await decodeZstd(bytes, dst.length);
      } else {
        if (bytes.length !== dst.length) throw new CellMapError("CORRUPT_CHUNK", `uncompressed chunk has ${bytes.length} bytes, expected ${dst.length} (chunk shape × item size)`);
        out = bytes;
      }
      if (out !== dst) dst.set(out);
    },
  };
}
