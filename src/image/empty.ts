/** `EmptyImage`: stands in for a class a crop does not annotate. Every read is a fresh NaN patch. */
import type { Box } from "../geometry/level.js";
import { type AnyTensor, type OutputDtype, TENSOR_ARRAYS, type TensorData } from "../tensor.js";

/** Options of {@link EmptyImage}. */
export interface EmptyImageOptions {
  targetClass: string;
  targetScale: number[];
  targetVoxelShape: number[];
  /** Value of every voxel (default NaN = unknown). */
  emptyValue?: number;
  axisOrder?: string;
  /** Element type of the patches (default float32). */
  outputDtype?: OutputDtype;
}

/** An image with no data: same read interface as `CellMapImage`, no bounds, zero counts. */
export class EmptyImage {
  readonly targetClass: string;
  readonly emptyValue: number;
  readonly outputShape: number[];
  readonly outputScale: number[];
  readonly boundingBox: Box | null = null;
  readonly samplingBox: Box | null = null;
  readonly axes: string[];
  readonly outputDtype: OutputDtype;

  constructor(opts: EmptyImageOptions) {
    this.outputDtype = opts.outputDtype ?? "float32";
    this.targetClass = opts.targetClass;
    this.emptyValue = opts.emptyValue ?? NaN;
    this.axes = (opts.axisOrder ?? "zyx").split("");
    const n = this.axes.length;
    this.outputShape = [...Array(Math.max(0, n - opts.targetVoxelShape.length)).fill(1), ...opts.targetVoxelShape];
    this.outputScale = [...Array(Math.max(0, n - opts.targetScale.length)).fill(opts.targetScale[0]), ...opts.targetScale];
  }

  /** Patch shape in API axis order. */
  get patchShape(): number[] {
    return [...this.outputShape];
  }

  /** A patch filled with `emptyValue`: a new one (never shared between calls), or `opts.into` when it has the patch's size. */
  async read(_center?: readonly number[], opts?: { into?: TensorData }): Promise<AnyTensor> {
    const size = this.outputShape.reduce((p, v) => p * v, 1);
    const Type = TENSOR_ARRAYS[this.outputDtype];
    const data = (opts?.into && opts.into.length === size && opts.into instanceof Type ? opts.into : new Type(size)).fill(this.emptyValue);
    return { data, shape: [...this.outputShape], sourceDtype: "float32", ...(this.outputDtype !== "float32" && { dtype: this.outputDtype }) };
  }

  /** Always zero: an unannotated class contributes no counts. */
  async classCounts(): Promise<{ foreground: number; background: number }> {
    return { foreground: 0, background: 0 };
  }
}
