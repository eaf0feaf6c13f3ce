/**
 * Box gathers: copy a 3-D box of a decoded chunk (any numeric element type, any strides) into a
 * float32 destination, widening on the way. This is the read path's one copy per voxel.
 *
 * Two implementations, identical in output:
 * - WebAssembly SIMD rows (`scripts/build-kernels.ts`), used when source and destination both
 *   live in one shared `WebAssembly.Memory` (the data plane's chunk slab and batch pool), the
 *   source rows are contiguous and the element type is uint8, int8, uint16, int16 or float32.
 *   Measured (2-core dev machine, 64^3 box split over 8 chunks): 2.2 Gvoxel/s for uint8, 2.0
 *   for uint16, 1.8 for float32; 3.5 for uint8 rows of 64.
 * - Compiled JS loops, one per source element type, for everything else (0.4–0.7 Gvoxel/s).
 */
import type { NumericArray } from "../tensor.js";
import { Float16Bits, float16Table } from "./float16.js";
import { GATHER_WASM_BASE64 } from "./gather-wasm.js";
import { wasm, type WasmMemory } from "./wasm.js";

/** Where a box goes: a float32 array, the element offset of the box's first voxel, and its z/y strides (elements). */
export interface GatherTarget {
  /** float32, or float64 for exact wide integers (`outputDtype`; always the JS loops). */
  data: Float32Array | Float64Array;
  offset: number;
  /** Element strides of the destination along z and y (x is contiguous). */
  d0: number;
  d1: number;
}

type WasmGather = (src: number, dst: number, s0: number, s1: number, d0: number, d1: number, zn: number, yn: number, xn: number) => void;

/** The resampling passes (see `scripts/build-kernels.ts`); addresses are bytes of the plane. */
export interface WasmResample {
  lin_x(region: number, sa: number, sb: number, na: number, nb: number, c0: number, c1: number, wc: number, n2: number, tmp: number): void;
  lin_y(tmp: number, na: number, nb: number, n1: number, n2: number, b0: number, b1: number, wb: number, tmp2: number): void;
  lin_z(tmp2: number, n0: number, n1: number, n2: number, a0: number, a1: number, wa: number, av: number, bv: number, cv: number, pad: number, out: number): void;
  nearest(region: number, a0: number, b0: number, c0: number, n0: number, n1: number, n2: number, av: number, bv: number, cv: number, pad: number, out: number): void;
  general(region: number, p: number, q: number, n0: number, n1: number, n2: number, out: number): void;
}

/** The rotated-grid samplers of one source kind (see `scripts/build-kernels.ts`). */
export interface WasmRotated {
  zrot_nearest(region: number, ztab: number, n0: number, map: number, n12: number, pad: number, out: number): void;
  zrot_linear(region: number, ztab: number, n0: number, map: number, n12: number, pad: number, out: number): void;
  /** Linear sections two pixels at a time (integer sources; within 1 ulp of zrot_linear), or undefined. */
  zrot_linear4?: (region: number, ztab: number, n0: number, map: number, n12: number, pad: number, out: number) => void;
  gen_linear(region: number, p: number, q: number, n0: number, n1: number, n2: number, out: number): void;
  /** The byte offset (or -1: padding) of every output voxel's nearest sample (any source kind). */
  gen_nearest_map(p: number, q: number, n0: number, n1: number, n2: number, map: number): void;
  /** `gen_linear` with a displacement per voxel: three f32 arrays (z, y, x; index units) from `d`. */
  gen_linear_deformed(region: number, p: number, q: number, n0: number, n1: number, n2: number, out: number, d: number): void;
  /** `gen_nearest_map` with a displacement per voxel (as `gen_linear_deformed`). */
  gen_nearest_map_deformed(p: number, q: number, n0: number, n1: number, n2: number, map: number, d: number): void;
  /** The z pass of a separable cubic B-spline (any source kind; see `scripts/build-kernels.ts`). */
  bspline_z(out: number, planes: number, tab: number, n0: number, plane: number): void;
}

type WasmCopyBox = (src: number, dst: number, s0: number, s1: number, d0: number, d1: number, zn: number, yn: number, bytes: number) => void;

interface WasmKernels {
  buffer: ArrayBufferLike;
  resample: WasmResample;
  /** Rotated-grid samplers by source element prototype. */
  rotated: Map<unknown, WasmRotated>;
  copyBox: WasmCopyBox;
  byType: Map<unknown, { fn: WasmGather; shift: number }>;
}

let moduleCache: object | null = null;
const instances = new WeakMap<WasmMemory, WasmKernels>();
/** Buffers of memories with kernels in this thread (a typed array knows its buffer, not its memory). */
const byBuffer = new WeakMap<ArrayBufferLike, WasmKernels>();

/**
 * Instantiates the SIMD kernels over `memory` in this thread (once per memory). Afterwards
 * {@link gatherBox} uses them whenever source and destination are views of that memory.
 */
export function enableWasmGather(memory: WasmMemory): void {
  if (instances.has(memory)) return;
  moduleCache ??= new wasm.Module(Buffer.from(GATHER_WASM_BASE64, "base64"));
  const ex = new wasm.Instance(moduleCache, { env: { memory } }).exports as unknown as Record<string, WasmGather>;
  const rot = (t: string): WasmRotated => ({
    // Integer sources: the four-pixel form (bit-identical).
    zrot_nearest: (ex[`zrot_nearest4_${t}`] ?? ex[`zrot_nearest_${t}`]) as unknown as WasmRotated["zrot_nearest"],
    zrot_linear: ex[`zrot_linear_${t}`] as unknown as WasmRotated["zrot_linear"],
    zrot_linear4: ex[`zrot_linear4_${t}`] as unknown as WasmRotated["zrot_linear4"],
    gen_linear: ex[`gen_linear_${t}`] as unknown as WasmRotated["gen_linear"],
    gen_nearest_map: ex.gen_nearest_map as unknown as WasmRotated["gen_nearest_map"],
    gen_linear_deformed: ex[`gen_linear_deformed_${t}`] as unknown as WasmRotated["gen_linear_deformed"],
    gen_nearest_map_deformed: ex.gen_nearest_map_deformed as unknown as WasmRotated["gen_nearest_map_deformed"],
    bspline_z: ex.bspline_z as unknown as WasmRotated["bspline_z"],
  });
  const k: WasmKernels = {
    buffer: memory.buffer,
    resample: ex as unknown as WasmResample,
    rotated: new Map<unknown, WasmRotated>([
      [Uint8Array.prototype, rot("u8")],
      [Int8Array.prototype, rot("i8")],
      [Uint16Array.prototype, rot("u16")],
      [Int16Array.prototype, rot("i16")],
      [Float32Array.prototype, rot("f32")],
    ]),
    copyBox: ex.copy_box as unknown as WasmCopyBox,
    byType: new Map<unknown, { fn: WasmGather; shift: number }>([
      [Uint8Array.prototype, { fn: ex.gather_u8, shift: 0 }],
      [Int8Array.prototype, { fn: ex.gather_i8, shift: 0 }],
      [Uint16Array.prototype, { fn: ex.gather_u16, shift: 1 }],
      [Int16Array.prototype, { fn: ex.gather_i16, shift: 1 }],
      [Float32Array.prototype, { fn: ex.gather_f32, shift: 2 }],
    ]),
  };
  instances.set(memory, k);
  byBuffer.set(memory.buffer, k);
}

/** The resampling kernels over the memory whose buffer is `buffer`, or null (no plane there). */
export function wasmResampleFor(buffer: ArrayBufferLike): WasmResample | null {
  return byBuffer.get(buffer)?.resample ?? null;
}

/**
 * The rotated-grid samplers for regions like `region` (its element type, in the memory of
 * `out`), or null: no plane there, or an element type without kernels.
 */
export function wasmRotatedFor(region: ArrayBufferView, out: ArrayBufferView): WasmRotated | null {
  if (region.buffer !== out.buffer) return null;
  return byBuffer.get(out.buffer)?.rotated.get(Object.getPrototypeOf(region)) ?? null;
}

/**
 * Copies the `zn × yn × xn` box of `src` at element `sBase` (element strides `s0, s1, s2`) into
 * `dst` (same element type) at `dst.offset` with strides `d0, d1`: regions kept in their source
 * type. Rows are bulk copies (WebAssembly `memory.copy`) when both live in one plane.
 */
export function copyBoxSame(
  src: NumericArray,
  sBase: number,
  s0: number,
  s1: number,
  s2: number,
  dst: { data: NumericArray; offset: number; d0: number; d1: number },
  zn: number,
  yn: number,
  xn: number,
): void {
  if (zn <= 0 || yn <= 0 || xn <= 0) return;
  const out = dst.data;
  const e = src.BYTES_PER_ELEMENT;
  if (s2 === 1 && src.buffer === out.buffer) {
    const k = byBuffer.get(src.buffer);
    if (k) {
      k.copyBox(src.byteOffset + sBase * e, out.byteOffset + dst.offset * e, s0 * e, s1 * e, dst.d0 * e, dst.d1 * e, zn, yn, xn * e);
      return;
    }
  }
  for (let z = 0; z < zn; z++) {
    for (let y = 0; y < yn; y++) {
      const s = sBase + z * s0 + y * s1;
      const o = dst.offset + z * dst.d0 + y * dst.d1;
      if (s2 === 1) out.set(src.subarray(s, s + xn), o);
      else for (let x = 0; x < xn; x++) out[o + x] = src[s + x * s2];
    }
  }
}

/** A 3-D box copy with hoisted offsets (see {@link jsKernelFor}). */
type JsKernel = (
  src: NumericArray,
  out: Float32Array | Float64Array,
  sBase: number,
  oBase: number,
  s0: number,
  s1: number,
  s2: number,
  o0: number,
  o1: number,
  zn: number,
  yn: number,
  n2: number,
) => void;

const COPY_BODY = `
  for (let z = 0; z < zn; z++) {
    for (let y = 0; y < yn; y++) {
      const s = sBase + z * s0 + y * s1;
      const o = oBase + z * o0 + y * o1;
      if (s2 === 1) for (let x = 0; x < n2; x++) out[o + x] = src[s + x];
      else for (let x = 0; x < n2; x++) out[o + x] = src[s + x * s2];
    }
  }`;
const jsKernels = new Map<unknown, JsKernel>();
/** Keys of the float64-destination loops, one per source prototype. */
const wide = new Map<unknown, object>();
function wideKey(src: NumericArray): object {
  const k = {};
  wide.set(Object.getPrototypeOf(src), k);
  return k;
}

/** float16 bit patterns widen through a lookup table (see zarr/float16.ts). */
const F16_BODY = COPY_BODY.replace(/= src\[([^\]]+)\]/g, "= f16[src[$1]]");

/**
 * One compiled copy loop per source element type. A single shared loop sees every dtype of the
 * process (and Buffer-backed arrays), turns megamorphic and runs ~4x slower; closures share
 * their inline caches, so each type gets its own function literal.
 */
function jsKernelFor(src: NumericArray, out: Float32Array | Float64Array): JsKernel {
  // float64 destinations get loops of their own (their stores would otherwise turn polymorphic).
  const key = out instanceof Float64Array ? (wide.get(Object.getPrototypeOf(src)) ?? wideKey(src)) : Object.getPrototypeOf(src);
  let k = jsKernels.get(key);
  if (!k) {
    if (src instanceof Float16Bits) {
      const body = new Function("f16", `return function (src, out, sBase, oBase, s0, s1, s2, o0, o1, zn, yn, n2) {${F16_BODY}}`);
      k = body(float16Table()) as JsKernel;
    } else {
      k = new Function("src", "out", "sBase", "oBase", "s0", "s1", "s2", "o0", "o1", "zn", "yn", "n2", COPY_BODY) as JsKernel;
    }
    jsKernels.set(key, k);
  }
  return k;
}

/**
 * Copies the `zn × yn × xn` box whose first voxel is element `sBase` of `src` (element strides
 * `s0, s1, s2`) into `dst`, widening to float32.
 */
export function gatherBox(src: NumericArray, sBase: number, s0: number, s1: number, s2: number, dst: GatherTarget, zn: number, yn: number, xn: number): void {
  if (zn <= 0 || yn <= 0 || xn <= 0) return;
  if (s2 === 1 && src.buffer === dst.data.buffer && dst.data instanceof Float32Array) {
    const k = byBuffer.get(src.buffer);
    const w = k?.byType.get(Object.getPrototypeOf(src));
    if (w) {
      const e = 1 << w.shift;
      w.fn(src.byteOffset + sBase * e, dst.data.byteOffset + dst.offset * 4, s0 * e, s1 * e, dst.d0 * 4, dst.d1 * 4, zn, yn, xn);
      return;
    }
  }
  jsKernelFor(src, dst.data)(src, dst.data, sBase, dst.offset, s0, s1, s2, dst.d0, dst.d1, zn, yn, xn);
}
