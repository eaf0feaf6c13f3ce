/**
 * The minimal N-d array the library hands out: C-order data (float32, or the typed array of an
 * array's `outputDtype`) plus its shape.
 * `sourceDtype` records what the values were stored as, so value transforms such as
 * `Normalize` can scale integer sources by their dtype's range.
 */
import { CellMapError } from "./errors.js";

/** Data types a zarr source may have. */
export type DataType =
  | "bool"
  | "int8" | "int16" | "int32" | "int64"
  | "uint8" | "uint16" | "uint32" | "uint64"
  | "float16" | "float32" | "float64";

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

/** Largest representable value of an integer dtype (1 for bool and floats). */
export function dtypeMax(dtype: DataType): number {
  switch (dtype) {
    case "uint8": return 255;
    case "uint16": return 65535;
    case "uint32": return 4294967295;
    case "uint64": return 18446744073709551615;
    case "int8": return 127;
    case "int16": return 32767;
    case "int32": return 2147483647;
    case "int64": return 9223372036854775807;
    default: return 1;
  }
}
