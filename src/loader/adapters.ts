/**
 * Adapters to deep-learning runtimes, as optional peer dependencies: the packages are imported
 * only when an adapter is first used, so the core never requires them. Both hand the batch's
 * Float32Array to the runtime as is (no copy on our side; TensorFlow.js' CPU backend and
 * onnxruntime's `Tensor` keep the reference).
 */
import { CellMapError } from "../errors.js";
import type { Tensor } from "../tensor.js";

/** The part of TensorFlow.js the adapter uses. */
export interface TfjsLike {
  tensor(values: Float32Array, shape: number[], dtype: "float32"): unknown;
}

/** The part of onnxruntime (node, web or common) the adapter uses. */
export interface OnnxLike {
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => unknown;
}

const TFJS = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "@tensorflow/tfjs", "@tensorflow/tfjs-core"];
const ONNX = ["onnxruntime-node", "onnxruntime-web", "onnxruntime-common"];

function isNotFound(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === "ERR_MODULE_NOT_FOUND" || e?.code === "MODULE_NOT_FOUND") && String(e.message).includes(name);
}

/** Imports the first installed package of `names` whose module passes `ok` (also looking at `default`). */
async function importFirst<T>(names: readonly string[], ok: (m: unknown) => m is T, what: string): Promise<T> {
  for (const name of names) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(name)) as Record<string, unknown>;
    } catch (err) {
      if (isNotFound(err, name)) continue;
      throw new CellMapError("UNSUPPORTED", `${name} is installed but failed to load: ${(err as Error).message}`, name, { cause: err });
    }
    if (ok(mod)) return mod;
    if (ok(mod.default)) return mod.default;
    throw new CellMapError("UNSUPPORTED", `${name} does not look like ${what}`, name);
  }
  throw new CellMapError(
    "UNSUPPORTED",
    `${what} is an optional peer dependency and is not installed: npm install ${names[names.length - 1]} (or ${names.slice(0, -1).join(", ")})`,
    names[names.length - 1],
  );
}

const isTfjs = (m: unknown): m is TfjsLike => typeof (m as TfjsLike | undefined)?.tensor === "function";
const isOnnx = (m: unknown): m is OnnxLike => typeof (m as OnnxLike | undefined)?.Tensor === "function";

let tfjs: Promise<TfjsLike> | null = null;
let onnx: Promise<OnnxLike> | null = null;

/** Imports TensorFlow.js (tfjs-node-gpu, tfjs-node or tfjs, the first installed); cached. */
export function loadTfjs(): Promise<TfjsLike> {
  if (!tfjs) {
    tfjs = importFirst(TFJS, isTfjs, "TensorFlow.js");
    tfjs.catch(() => (tfjs = null));
  }
  return tfjs;
}

/** Imports onnxruntime (node, web or common, the first installed); cached. */
export function loadOnnx(): Promise<OnnxLike> {
  if (!onnx) {
    onnx = importFirst(ONNX, isOnnx, "onnxruntime");
    onnx.catch(() => (onnx = null));
  }
  return onnx;
}

function checkTensor(t: Tensor, where: string): void {
  if (!(t?.data instanceof Float32Array) || !Array.isArray(t.shape)) throw new CellMapError("INVALID_ARGUMENT", "expected a Tensor { data: Float32Array, shape }", where);
}

/**
 * A TensorFlow.js float32 tensor over `t.data` (same shape). With the module passed in the call
 * is synchronous; without, the package is imported on first use (an `UNSUPPORTED` error says
 * how to install it when missing).
 */
export function toTfjs<T = unknown>(t: Tensor): Promise<T>;
export function toTfjs<T = unknown>(t: Tensor, tf: TfjsLike): T;
export function toTfjs<T = unknown>(t: Tensor, tf?: TfjsLike): T | Promise<T> {
  checkTensor(t, "toTfjs");
  if (tf) return tf.tensor(t.data, [...t.shape], "float32") as T;
  return loadTfjs().then((m) => m.tensor(t.data, [...t.shape], "float32") as T);
}

/**
 * An onnxruntime `Tensor("float32", t.data, t.shape)` (zero-copy). Synchronous when the module
 * (`import * as ort from "onnxruntime-node"`) is passed; otherwise imported on first use.
 */
export function toOnnx<T = unknown>(t: Tensor): Promise<T>;
export function toOnnx<T = unknown>(t: Tensor, ort: OnnxLike): T;
export function toOnnx<T = unknown>(t: Tensor, ort?: OnnxLike): T | Promise<T> {
  checkTensor(t, "toOnnx");
  if (ort) return new ort.Tensor("float32", t.data, [...t.shape]) as T;
  return loadOnnx().then((m) => new m.Tensor("float32", t.data, [...t.shape]) as T);
}
