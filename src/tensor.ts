/**
 * The minimal N-d array the library hands out: C-order data (float32, or the typed array of an
 * array's `outputDtype`) plus its shape.
 * `sourceDtype` records what the values were stored as, so value transforms such as
 * `Normalize` can scale integer sources by their dtype's range.
 */
import { CellMapError } from "./errors.js";

/** Data types a zarr source may have. */
export type DataType = "bool" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" | "float16" | "float32" | "float64";

/**
 * Element type of a patch tensor: float32 (the default everywhere), or, for an array that asks
 * for it with `outputDtype`, int32 / uint32 (instance ids above 2^24, which float32 would round)
 * or float64.
 */
export type OutputDtype = "float32" | "int32" | "uint32" | "float64";

/** The typed array of each {@link OutputDtype}. */
export interface TensorArrays {
  float32: Float32Array;
  int32: Int32Array;
  uint32: Uint32Array;
  float64: Float64Array;
}

/** Data of a tensor of any {@link OutputDtype}. */
export type TensorData = TensorArrays[OutputDtype];

/** Constructors of the {@link OutputDtype}s. */
export const TENSOR_ARRAYS = { float32: Float32Array, int32: Int32Array, uint32: Uint32Array, float64: Float64Array } as const;

/** All output dtypes, for validation. */
export const OUTPUT_DTYPES: readonly OutputDtype[] = ["float32", "int32", "uint32", "float64"];

/**
 * A dense C-order tensor: float32 unless its array asked for another `outputDtype` (then
 * `data` is that typed array and `dtype` says which).
 */
export interface Tensor<D extends TensorData = Float32Array> {
  /** Values, C order (last axis fastest). */
  data: D;
  /** Extent per axis. `data.length === product(shape)`. */
  shape: number[];
  /** Dtype of the stored source the values came from (`float32` for computed tensors). */
  sourceDtype: DataType;
  /** Element type of `data`; absent means float32. */
  dtype?: OutputDtype;
}

/** A tensor of any output dtype (what datasets and batches hold). */
export type AnyTensor = Tensor<TensorData>;

/** The output dtype of a tensor's data. */
export function dtypeOfData(data: TensorData): OutputDtype {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint32Array) return "uint32";
  return "float64";
}

/** Whether a tensor holds float32 data (what value transforms work on). */
export function isFloat32Tensor(t: AnyTensor): t is Tensor {
  return t.data instanceof Float32Array;
}

/** Product of the entries of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** C-order strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

/** Creates a tensor, checking that data and shape agree. */
export function tensor(data: Float32Array, shape: number[], sourceDtype: DataType = "float32"): Tensor {
  if (data.length !== sizeOf(shape)) {
    throw new CellMapError("INVALID_ARGUMENT", `tensor data has ${data.length} values but shape [${shape}] needs ${sizeOf(shape)}`, "tensor");
  }
  return { data, shape: [...shape], sourceDtype };
}

/**
 * A typed array holding the values of a stored array of some {@link DataType}: 64-bit integers
 * as BigInt arrays, bool as bytes of 0/1, float16 as its bit patterns.
 */
export type DTypeArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

/** What the library knows of a {@link DataType}: see {@link DTYPES}. */
export interface DTypeInfo {
  /** Bytes per element. */
  readonly size: number;
  readonly kind: "bool" | "int" | "uint" | "float";
  /** Zarr v2 (numpy) type code without its byte-order character: `b1`, `u2`, `f4`, ... */
  readonly v2: string;
  /** Largest value of an integer dtype (1 for bool and floats). */
  readonly max: number;
  /** The typed array that holds values of this dtype ({@link DTypeArray}). */
  readonly array: { new (length: number): DTypeArray; readonly BYTES_PER_ELEMENT: number; readonly name: string };
}

/** The one dtype table: sizes, kinds, v2 codes, ranges and array classes, for readers and the writer. */
export const DTYPES: Readonly<Record<DataType, DTypeInfo>> = {
  bool: { size: 1, kind: "bool", v2: "b1", max: 1, array: Uint8Array },
  int8: { size: 1, kind: "int", v2: "i1", max: 127, array: Int8Array },
  int16: { size: 2, kind: "int", v2: "i2", max: 32767, array: Int16Array },
  int32: { size: 4, kind: "int", v2: "i4", max: 2147483647, array: Int32Array },
  int64: { size: 8, kind: "int", v2: "i8", max: 2 ** 63 - 1, array: BigInt64Array },
  uint8: { size: 1, kind: "uint", v2: "u1", max: 255, array: Uint8Array },
  uint16: { size: 2, kind: "uint", v2: "u2", max: 65535, array: Uint16Array },
  uint32: { size: 4, kind: "uint", v2: "u4", max: 4294967295, array: Uint32Array },
  uint64: { size: 8, kind: "uint", v2: "u8", max: 2 ** 64 - 1, array: BigUint64Array },
  float16: { size: 2, kind: "float", v2: "f2", max: 1, array: Uint16Array },
  float32: { size: 4, kind: "float", v2: "f4", max: 1, array: Float32Array },
  float64: { size: 8, kind: "float", v2: "f8", max: 1, array: Float64Array },
};

/** Largest representable value of an integer dtype (1 for bool and floats). */
export function dtypeMax(dtype: DataType): number {
  return Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype].max : 1;
}

/** Typed arrays readable with `[]` as numbers (decoded chunks, regions). */
export type NumericArray = Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array | Float32Array | Float64Array;
