/**
 * float16 arrays (zarr v2 `<f2`/`>f2`, v3 `float16`).
 *
 * Node 20 has no `Float16Array`, and zarrita builds chunk views from `globalThis.Float16Array`,
 * so it cannot open such arrays. We do not install a global polyfill (a library must not change
 * what `globalThis` means for its users). Instead zarrita sees the array as `uint16` (the same
 * bytes, endianness handled by its bytes codec), and the chunks it decodes are viewed as
 * {@link Float16Bits}: half-float bit patterns, half the bytes of float32 in the chunk cache.
 * The gather widens them through a 65536-entry float32 table built once with
 * `@petamoriken/float16` (the maintained IEEE 754 binary16 implementation), so conversion costs
 * one table lookup per voxel instead of a DataView call.
 */
import type { AbsolutePath, AsyncReadable, RangeQuery, Readable } from "../store/types.js";
import { getFloat16, setFloat16 } from "@petamoriken/float16";

/** Half-float bit patterns (a distinct type so kernels know to widen them as floats, not integers). */
export class Float16Bits extends Uint16Array {}

let table: Float32Array | null = null;

/** float32 value of every float16 bit pattern (index = bits). */
export function float16Table(): Float32Array {
  if (!table) {
    const t = new Float32Array(65536);
    const view = new DataView(new ArrayBuffer(2));
    for (let b = 0; b < 65536; b++) {
      view.setUint16(0, b, true);
      t[b] = getFloat16(view, 0, true);
    }
    table = t;
  }
  return table;
}

/** Views a decoded uint16 chunk as float16 bits (no copy). */
export function asFloat16Bits(data: Uint16Array): Float16Bits {
  return new Float16Bits(data.buffer as ArrayBuffer, data.byteOffset, data.length);
}

/** float32 copy of float16 bits (whole-chunk scans such as class counts). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const t = float16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

/** Bits of a float16 fill value as written in metadata (number, "NaN", "±Infinity", v3 hex "0x7e00"). */
function fillBits(v: unknown): unknown {
  if (typeof v === "string" && /^0x[0-9a-f]{1,4}$/i.test(v)) return Number.parseInt(v.slice(2), 16);
  const x = v === "NaN" ? NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v === null || v === undefined ? 0 : v;
  if (typeof x !== "number") return v; // zarrita will report it
  const view = new DataView(new ArrayBuffer(2));
  setFloat16(view, 0, x, true);
  return view.getUint16(0, true);
}

/** Whether array metadata (`.zarray` or `zarr.json`) declares float16. */
export function isFloat16Metadata(meta: Record<string, unknown> | undefined): boolean {
  if (!meta) return false;
  if (meta.zarr_format === 3) return meta.data_type === "float16";
  return typeof meta.dtype === "string" && /^[<>]f2$/.test(meta.dtype);
}

/** The metadata with float16 replaced by uint16 (same bytes), fill value as bits. */
function asUint16Metadata(meta: Record<string, unknown>): Record<string, unknown> {
  if (meta.zarr_format === 3) return { ...meta, data_type: "uint16", fill_value: fillBits(meta.fill_value) };
  return { ...meta, dtype: (meta.dtype as string).replace("f2", "u2"), fill_value: fillBits(meta.fill_value) };
}

/**
 * A store that shows the float16 array whose metadata lives at `metaKey` to zarrita as uint16;
 * every other key passes through unchanged.
 */
export function float16AsUint16Store(inner: Readable, metaKey: string): AsyncReadable {
  const key = (metaKey.startsWith("/") ? metaKey : `/${metaKey}`).replace(/\/{2,}/g, "/");
  return {
    async get(k: AbsolutePath, opts?: { signal?: AbortSignal }) {
      const bytes = await inner.get(k, opts);
      if (k !== key || !bytes) return bytes;
      const meta = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
      return new TextEncoder().encode(JSON.stringify(asUint16Metadata(meta)));
    },
    ...(inner.getRange && {
      getRange: (k: AbsolutePath, range: RangeQuery, opts?: { signal?: AbortSignal }) => inner.getRange!(k, range, opts),
    }),
  } as AsyncReadable;
}
