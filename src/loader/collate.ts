/**
 * Building one batch: read its samples (a few concurrently) and write each straight into one
 * contiguous Float32Array per key, `[N, C, ...spatial]`. The same code runs in worker threads
 * and, with `numWorkers = 0`, on the main thread, so batches are identical either way. Errors
 * become {@link SampleError}s naming the sample; across threads they travel as plain data.
 */
import { CellMapError, type CellMapErrorCode } from "../errors.js";
import type { AnyDatasetItem, DatasetItem, DatasetLike, SampleBase, SampleMetadata } from "../dataset/types.js";
import { type AnyTensor, type DataType, dtypeOfData, type OutputDtype, TENSOR_ARRAYS, type TensorData } from "../tensor.js";
import type { Limiter } from "../util/limit.js";
import type { ChunkStore } from "../zarr/chunk-store.js";

/**
 * One batch: every tensor key of the samples stacked along a new first axis (inputs
 * `[N, 1, z, y, x]`, class targets `[N, nClasses, z, y, x]`; 2-D drops `z`), plus the samples'
 * `idx` and `metadata` in batch order.
 *
 * Typed by the sample type `S` of the dataset: a loader over a dataset opened with
 * `inputArrays: { raw: … }` gives batches whose `raw` is a `Tensor` (float32 unless the spec has
 * a literal `outputDtype`). Without known names (the default) it is {@link AnyBatch}.
 */
export type Batch<S extends SampleBase = AnyDatasetItem> = {
  [K in keyof S]: K extends "idx" ? number[] : K extends "metadata" ? SampleMetadata[] : Stacked<S[K]>;
};

/**
 * A batch whose array names are not known statically: `idx`, `metadata`, and tensors by name
 * (narrow them with `as Tensor`).
 */
export type AnyBatch = Batch<AnyDatasetItem>;

/** A sample value in a batch (the index-signature values of untyped samples: numbers and metadata become lists). */
type Stacked<V> = V extends number ? number[] : V extends SampleMetadata ? SampleMetadata[] : V;

/** The tensor keys of a batch (or sample), in the order the dataset produced them. */
export function tensorKeys(item: Batch | DatasetItem): string[] {
  return Object.keys(item).filter((k) => k !== "idx" && k !== "metadata" && isTensor(item[k]));
}

function isTensor(v: unknown): v is AnyTensor {
  if (typeof v !== "object" || v === null || !Array.isArray((v as AnyTensor).shape)) return false;
  const d = (v as AnyTensor).data;
  return d instanceof Float32Array || d instanceof Int32Array || d instanceof Uint32Array || d instanceof Float64Array;
}

/** Tensor `name` of a batch; throws `INVALID_ARGUMENT` naming the keys present when it is missing. */
export function batchTensor(batch: Batch, name: string): AnyTensor {
  const t = batch[name];
  if (name === "idx" || name === "metadata" || !isTensor(t)) {
    throw new CellMapError("INVALID_ARGUMENT", `batch has no tensor ${JSON.stringify(name)} (tensors: ${tensorKeys(batch).join(", ")})`, name);
  }
  return t;
}

/** The ArrayBuffers of a batch's tensors (what a worker transfers instead of copying). */
export function batchBuffers(batch: Batch): ArrayBuffer[] {
  return tensorKeys(batch).map((k) => (batch[k] as AnyTensor).data.buffer as ArrayBuffer);
}

/** Stable codes, so a plain error from a worker can become a CellMapError again. */
const CODES = new Set<CellMapErrorCode>([
  "NOT_FOUND",
  "INVALID_METADATA",
  "UNSUPPORTED",
  "CORRUPT_CHUNK",
  "INVALID_ARGUMENT",
  "OUT_OF_RANGE",
  "IO",
  "FORBIDDEN",
  "ABORTED",
  "WRITE_CONFLICT",
]);

/** An error as plain data (structured clone drops custom fields and classes). */
export interface SerializedError {
  name: string;
  message: string;
  /** A `CellMapError`'s message without its path. */
  detail?: string;
  code?: string;
  path?: string;
  stack?: string;
  /** Set on {@link SampleError}s: the sample, and what was being done (`reading`, …). */
  index?: number;
  what?: string;
  epoch?: number;
  cause?: SerializedError;
}

/** Plain-data form of any thrown value (causes followed up to 4 levels). */
export function serializeError(e: unknown, depth = 0): SerializedError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const out: SerializedError = { name: e.name, message: e.message, stack: e.stack };
  const x = e as Error & { code?: unknown; path?: unknown; detail?: unknown; index?: unknown; epoch?: unknown; what?: unknown };
  if (typeof x.code === "string") out.code = x.code;
  if (typeof x.detail === "string") out.detail = x.detail;
  if (typeof x.path === "string") out.path = x.path;
  if (typeof x.index === "number") out.index = x.index;
  if (typeof x.epoch === "number") out.epoch = x.epoch;
  if (typeof x.what === "string") out.what = x.what;
  if (e.cause !== undefined && depth < 4) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

/** Rebuilds an error from {@link serializeError} output (a `CellMapError` when it had a known code). */
export function deserializeError(s: SerializedError): Error {
  const cause = s.cause ? deserializeError(s.cause) : undefined;
  let e: Error;
  if (s.index !== undefined && s.epoch !== undefined && cause) {
    e = new SampleError(s.index, s.epoch, cause, s.what); // the worker's wording (e.g. "opening the dataset …")
  } else if (s.code && CODES.has(s.code as CellMapErrorCode)) {
    e = new CellMapError(s.code as CellMapErrorCode, s.detail ?? s.message, s.path, { cause });
  } else {
    e = new Error(s.message, { cause });
    if (s.name) e.name = s.name;
    if (s.code) (e as Error & { code?: string }).code = s.code;
  }
  if (s.stack) e.stack = s.stack;
  return e;
}

/**
 * Reading sample `index` of epoch `epoch` failed. `code` and `path` come from the cause when it
 * is a `CellMapError` (otherwise `IO`); `cause` is the original error (rebuilt when it crossed
 * from a worker thread).
 */
export class SampleError extends CellMapError {
  constructor(
    readonly index: number,
    readonly epoch: number,
    cause: unknown,
    readonly what = "reading",
  ) {
    const c = cause instanceof CellMapError ? cause : null;
    const msg = c ? c.detail : cause instanceof Error ? cause.message : String(cause);
    super(c?.code ?? "IO", `${what} sample ${index} (epoch ${epoch}) failed: ${msg}`, c?.path, { cause });
  }
}

/** One tensor key of a batch as the dataset declares it. */
interface BatchKey {
  name: string;
  /** Shape of one sample's tensor (`[C, ...spatial]`). */
  sampleShape: number[];
  /** Values of one sample's tensor. */
  sampleSize: number;
  /** Element type (the array spec's `outputDtype`, default float32). */
  dtype: OutputDtype;
  /** Byte offset of the key's `[N, ...sampleShape]` block in a batch buffer. */
  offset: number;
}

/** Where each key of a full batch sits in one batch buffer. */
export interface BatchLayout {
  batchSize: number;
  keys: BatchKey[];
  /** Bytes of one batch buffer. */
  bytes: number;
}

/**
 * The layout a dataset's batches have: inputs `[1, ...spatial]`, then targets `[C, ...spatial]`
 * (`C` = number of classes, 1 in raw-only mode), 2-D specs without their z. Keys start on
 * 64-byte boundaries.
 */
export function batchLayout(dataset: Pick<DatasetLike, "inputArrays" | "targetArrays" | "classes">, batchSize: number): BatchLayout {
  const keys: BatchKey[] = [];
  let offset = 0;
  const add = (name: string, channels: number, shape: number[], dtype: OutputDtype) => {
    const sampleShape = [channels, ...shape];
    const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
    keys.push({ name, sampleShape, sampleSize, dtype, offset });
    offset += Math.ceil((sampleSize * batchSize * TENSOR_ARRAYS[dtype].BYTES_PER_ELEMENT) / 64) * 64;
  };
  for (const [name, spec] of Object.entries(dataset.inputArrays)) add(name, 1, [...spec.shape], spec.outputDtype ?? "float32");
  for (const [name, spec] of Object.entries(dataset.targetArrays)) add(name, Math.max(1, dataset.classes.length), [...spec.shape], spec.outputDtype ?? "float32");
  return { batchSize, keys, bytes: offset };
}

/** A batch buffer to fill: one full-batch view per key of `layout`. */
export interface BatchTarget {
  layout: BatchLayout;
  views: Record<string, TensorData>;
}

/** Options of {@link buildBatch}. */
export interface BuildBatchOptions {
  /** Samples read at once (default 4): overlaps I/O without holding many patches. */
  concurrency?: number;
  /** Shared bound across batches (then `concurrency` only limits this batch's own runners). */
  slots?: Limiter;
  /**
   * Buffers to fill instead of allocating, by key (from recycled batches); used when their size
   * is exactly the batch's (every value is overwritten), otherwise ignored.
   */
  reuse?: Record<string, ArrayBuffer>;
  /**
   * The batch buffer to read into: each sample is read straight into its slots (no copy).
   * Ignored when the samples' keys or shapes differ from its layout.
   */
  target?: BatchTarget;
  /** Decoded-chunk cache the reads go through (default: the thread's). */
  store?: ChunkStore;
  signal?: AbortSignal;
}

interface Slot {
  name: string;
  shape: number[];
  size: number;
  data: TensorData;
  sourceDtype: DataType;
  dtype?: OutputDtype;
}

/** Whether `view` is `data` (the sample was read in place). */
function sameView(a: TensorData, b: TensorData): boolean {
  return a === b || (a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length);
}

/**
 * Reads `indices` with `dataset.get(i, { epoch })` and stacks them. With a `target`, each
 * sample is read straight into its slots of the target buffer; otherwise (or when the samples
 * do not match the target's layout) each sample is copied once into its slot as it arrives (so
 * at most `concurrency` sample patches are alive besides the batch). Samples must agree on keys
 * and shapes.
 */
export async function buildBatch(dataset: DatasetLike, indices: readonly number[], epoch: number, opts: BuildBatchOptions = {}): Promise<Batch> {
  const n = indices.length;
  const idx = new Array<number>(n);
  const metadata = new Array<SampleMetadata>(n);
  let slots: Slot[] | null = null;
  let next = 0;
  let failed = false;
  let target = opts.target && n <= opts.target.layout.batchSize ? opts.target : undefined;

  const intoFor = (k: number): Record<string, TensorData> | undefined => {
    if (!target) return undefined;
    const out: Record<string, TensorData> = {};
    for (const key of target.layout.keys) out[key.name] = target.views[key.name].subarray(k * key.sampleSize, (k + 1) * key.sampleSize);
    return out;
  };

  const place = (k: number, item: DatasetItem): void => {
    const keys = tensorKeys(item);
    if (!slots) {
      const t0 = target;
      const fits =
        t0 &&
        keys.length === t0.layout.keys.length &&
        t0.layout.keys.every((key, j) => {
          const t = item[keys[j]] as AnyTensor;
          return (
            key.name === keys[j] &&
            t.data.length === key.sampleSize &&
            dtypeOfData(t.data) === key.dtype &&
            t.shape.length === key.sampleShape.length &&
            t.shape.every((v, a) => v === key.sampleShape[a])
          );
        });
      if (!fits) target = undefined;
      slots = keys.map((name) => {
        const t = item[name] as AnyTensor;
        const values = n * t.data.length;
        const spare = opts.reuse?.[name];
        const Type = TENSOR_ARRAYS[dtypeOfData(t.data)];
        const data = fits ? t0!.views[name].subarray(0, values) : spare && spare.byteLength === values * Type.BYTES_PER_ELEMENT ? new Type(spare) : new Type(values);
        return { name, shape: [...t.shape], size: t.data.length, data, sourceDtype: t.sourceDtype, ...(t.dtype && t.dtype !== "float32" && { dtype: t.dtype }) };
      });
    }
    if (keys.length !== slots.length || slots.some((s, j) => s.name !== keys[j])) {
      throw new CellMapError("INVALID_ARGUMENT", `sample has keys [${keys.join(", ")}], the batch has [${slots.map((s) => s.name).join(", ")}]`, "batch");
    }
    for (const s of slots) {
      const t = item[s.name] as AnyTensor;
      if (dtypeOfData(t.data) !== dtypeOfData(s.data)) {
        throw new CellMapError("INVALID_ARGUMENT", `sample ${JSON.stringify(s.name)} is ${dtypeOfData(t.data)}, the batch is ${dtypeOfData(s.data)}`, s.name);
      }
      if (t.data.length !== s.size || t.shape.length !== s.shape.length || t.shape.some((v, a) => v !== s.shape[a])) {
        throw new CellMapError("INVALID_ARGUMENT", `sample ${JSON.stringify(s.name)} has shape [${t.shape}], the batch has [${s.shape}]`, s.name);
      }
      const dst = s.data.subarray(k * s.size, (k + 1) * s.size);
      if (!sameView(t.data, dst)) dst.set(t.data as never);
    }
    idx[k] = item.idx;
    metadata[k] = item.metadata;
  };

  const runner = async (): Promise<void> => {
    while (next < n && !failed) {
      const k = next++;
      const i = indices[k];
      try {
        const read = () => {
          if (opts.signal?.aborted) throw new CellMapError("ABORTED", "batch aborted", undefined, { cause: opts.signal.reason });
          return dataset.get(i, { epoch, signal: opts.signal, into: intoFor(k), store: opts.store });
        };
        const item = await (opts.slots ? opts.slots.run(read) : read());
        if (!failed) place(k, item);
      } catch (err) {
        failed = true;
        throw new SampleError(i, epoch, err);
      }
    }
  };
  const width = Math.max(1, Math.min(opts.concurrency ?? 4, n));
  // Every runner settles before the batch does: reads still in flight write into the target,
  // which must not be reused (or handed out) before they are done.
  const settled = await Promise.allSettled(Array.from({ length: width }, runner));
  const firstError = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (firstError) throw firstError.reason;

  const batch: Batch = { idx, metadata };
  for (const s of (slots ?? []) as Slot[]) batch[s.name] = { data: s.data, shape: [n, ...s.shape], sourceDtype: s.sourceDtype, ...(s.dtype && { dtype: s.dtype }) };
  return batch;
}

/** Whether a built batch's tensors are the target's views (it was read in place). */
export function filledTarget(batch: Batch, target: BatchTarget): boolean {
  const keys = tensorKeys(batch);
  return (
    keys.length === target.layout.keys.length &&
    keys.every((k) => {
      const t = batch[k] as AnyTensor;
      const v = target.views[k];
      return v !== undefined && t.data.buffer === v.buffer && t.data.byteOffset === v.byteOffset;
    })
  );
}
