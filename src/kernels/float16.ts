/**
 * Half-float bit patterns and their widening to float32: Node 20 has no `Float16Array`, so
 * float16 chunks are kept as {@link Float16Bits} (half the bytes of float32 in the chunk cache)
 * and the gathers widen them through a 65536-entry float32 table built once with
 * `@petamoriken/float16` (the maintained IEEE 754 binary16 implementation): one table lookup per
 * voxel instead of a DataView call.
 */
import { getFloat16 } from "@petamoriken/float16";

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
