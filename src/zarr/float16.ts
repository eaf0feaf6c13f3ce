/**
 * float16 arrays (zarr v2 `<f2`/`>f2`, v3 `float16`).
 *
 * Node 20 has no `Float16Array`, and zarrita builds chunk views from `globalThis.Float16Array`,
 * so it cannot open such arrays. We do not install a global polyfill (a library must not change
 * what `globalThis` means for its users). Instead zarrita sees the array as `uint16` (the same
 * bytes, endianness handled by its bytes codec), and the chunks it decodes are viewed as
 * {@link Float16Bits} (`kernels/float16.ts`): half-float bit patterns, half the bytes of float32
 * in the chunk cache, widened by the gathers through a table. This module holds the metadata
 * side: the store view that shows zarrita `uint16`.
 */
import type { AbsolutePath, AsyncReadable, RangeQuery, Readable } from "../store/types.js";
import { setFloat16 } from "@petamoriken/float16";

export { asFloat16Bits } from "../kernels/float16.js";

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
