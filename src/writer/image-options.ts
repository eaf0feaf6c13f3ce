/**
 * The options of {@link ImageWriter} (`image-writer.ts`): their schema (their only definition),
 * their validation with defaults filled in ({@link configure}), the output locations (local directory or `s3://`), and
 * how float predictions become the stored dtype ({@link castInto}).
 */
import { z } from "zod";
import { CellMapError, invalid } from "../errors.js";
import { bool, checkedByLayer, finiteNumber, integerAtLeast, nonEmptyString } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import type { HttpStoreOptions } from "../store/options.js";
import { outputLocation, relativeLocation } from "../store/writable.js";
import type { ArrayData, CompressorSpec } from "../zarr/write/index.js";
import { BLEND_MODES, type BlendMode } from "./blend.js";
import type { DownsampleMethod } from "./downsample.js";
import { gridFromBounds } from "./tiling.js";

/** Element types the writers store (the patches a loader reads have `OutputDtype`). */
export type StoredDtype = "float32" | "float64" | "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32";

/** Value range of the integer output dtypes. */
const INT_RANGE: Readonly<Record<string, readonly [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
};
const STORED_DTYPES: readonly StoredDtype[] = ["float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32"];

/** World bounds in nm per spatial axis, `[lo, hi]`: `{ z, y, x }` (3-D) or `{ y, x }` (2-D). */
export type Bounds = Partial<Record<"z" | "y" | "x", readonly [number, number] | number[]>>;

/** The storage options of an image, shared by {@link ImageWriter} and `CellMapDatasetWriter`. */
export const storageShape = {
  /** How overlapping windows are combined (default `crop`). Ignored without overlap. */
  blend: checkedByLayer<BlendMode>().optional(),
  /** Stored dtype (default float32); integers are rounded and clipped. */
  dtype: checkedByLayer<StoredDtype>().optional(),
  /** Zarr fill value (default 0). */
  fillValue: finiteNumber.optional(),
  /** 2: Zarr v2 + NGFF 0.4 (default); 3: Zarr v3 + NGFF 0.5. */
  format: checkedByLayer<2 | 3>().optional(),
  /** Chunk compressor (default blosc/lz4, level 5, byte shuffle); null for raw bytes. */
  compressor: checkedByLayer<CompressorSpec | null>().optional(),
  /** Number of downsampled levels (s1 … s<n>) written by `finalize()`. Default 0. */
  pyramid: checkedByLayer<number>().optional(),
  /** Default `mean` for float dtypes, `mode` for integer ones. */
  pyramidMethod: checkedByLayer<DownsampleMethod>().optional(),
};

const imageWriterShape = {
  /** Where the multiscale group goes: a local directory (created) or an `s3://bucket/prefix` URL. */
  path: nonEmptyString,
  /** Voxel size in nm per spatial axis: `[z, y, x]` or `[y, x]`. */
  scale: checkedByLayer<number[]>(),
  /** Region to predict (nm); its axes must match `scale`. */
  bounds: checkedByLayer<Bounds>(),
  /** Window (model output) shape in voxels per spatial axis. */
  writeShape: checkedByLayer<number[]>(),
  /** Context voxels on each side of a tile's core (number or per axis); neighbours share `2·overlap`. Default 0. */
  overlap: checkedByLayer<number | number[]>().optional(),
  /** Adds a leading channel axis of this size (e.g. affinities). */
  nChannels: integerAtLeast(1).optional(),
  ...storageShape,
  /** Replace existing output at `path` (deletes everything below it first). Default false. */
  overwrite: bool.optional(),
  /** Continue an existing output: skip tiles already written. Default false. */
  resume: bool.optional(),
  /** Write empty zarr groups in every directory from `root` down to `path`'s parent (same kind of location as `path`). */
  root: z.string().optional(),
  /** Multiscale `name` (default: `path` relative to `root` with a leading `/`, else the folder name). */
  name: z.string().optional(),
  /**
   * Open an output created elsewhere without checking or writing metadata (worker threads of
   * `CellMapDatasetWriter`). Default false.
   */
  attach: bool.optional(),
  /** Request options of `s3://` outputs: credentials, region, endpoint (`http.s3`), retries, timeouts. */
  http: httpOptionsSchema.optional(),
};

/**
 * The schema of `ImageWriter.open`'s options (their only definition). The geometry (`scale`,
 * `bounds`, `writeShape`, `overlap`) and the storage fields are checked together, against each
 * other, by {@link configure}.
 */
export const imageWriterOptionsSchema: OptionObject<typeof imageWriterShape> = optionObject(imageWriterShape, {
  aliases: { bounding_box: "bounds", write_voxel_shape: "writeShape" },
  python: {
    device: PYTHON.device,
    context: PYTHON.context,
    target_class: "the class is the image's folder (path) and multiscale name (name)",
    axis_order: "the axes follow the length of scale: [z, y, x] or [y, x]",
    scale_level: "the writer writes s0 at scale, plus `pyramid` downsampled levels",
  },
});

/** Options of {@link ImageWriter.open}. */
export type ImageWriterOptions = z.input<typeof imageWriterOptionsSchema>;

/** The options with every default filled in. */
export interface Config {
  /** Absolute directory, or the `s3://` URL without a trailing slash. */
  path: string;
  axes: string[];
  scale: number[];
  translation: number[];
  shape: number[];
  writeShape: number[];
  overlap: number[];
  blend: BlendMode;
  nChannels: number | null;
  dtype: StoredDtype;
  fillValue: number;
  format: 2 | 3;
  compressor: CompressorSpec | null;
  pyramid: number;
  pyramidMethod: DownsampleMethod;
  root: string | null;
  name: string;
  bounds: Bounds;
  http: HttpStoreOptions | undefined;
}

const SPATIAL = ["z", "y", "x"] as const;

function perAxis(v: number | number[] | undefined, n: number, def: number, name: string, where: string): number[] {
  const out = v === undefined ? new Array<number>(n).fill(def) : typeof v === "number" ? new Array<number>(n).fill(v) : v;
  if (!Array.isArray(out) || out.length !== n || out.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw invalid(where, `${name} must be a non-negative integer or ${n} of them, got ${JSON.stringify(v)}`);
  }
  return [...out];
}

/** Checks the options and fills in the defaults. @throws CellMapError `INVALID_ARGUMENT` / `UNSUPPORTED` naming the option. */
export function configure(opts: ImageWriterOptions): Config {
  const where = typeof opts?.path === "string" ? opts.path : "ImageWriter";
  const p = outputLocation(opts?.path, where);
  const d = Array.isArray(opts.scale) ? opts.scale.length : 0;
  if (d !== 2 && d !== 3) throw invalid(`${where}: scale`, `scale must have 2 (y, x) or 3 (z, y, x) entries, got ${JSON.stringify(opts.scale)}`);
  if (opts.scale.some((s) => !(typeof s === "number" && Number.isFinite(s) && s > 0))) {
    throw invalid(`${where}: scale`, `scale entries must be positive numbers, got ${JSON.stringify(opts.scale)}`);
  }
  const axes = SPATIAL.slice(3 - d) as string[];
  const b = opts.bounds as Record<string, unknown>;
  if (typeof b !== "object" || b === null) throw invalid(`${where}: bounds`, "bounds must be { z?, y, x } with [lo, hi] in nm");
  const keys = Object.keys(b);
  if (keys.length !== d || !axes.every((a) => keys.includes(a))) {
    throw invalid(`${where}: bounds`, `bounds must have exactly the axes ${axes.join(", ")}, got ${keys.join(", ")}`);
  }
  const lo: number[] = [];
  const hi: number[] = [];
  for (const a of axes) {
    const r = b[a];
    if (!Array.isArray(r) || r.length !== 2 || r.some((v) => typeof v !== "number")) throw invalid(`${where}: bounds.${a}`, `bounds.${a} must be [lo, hi] in nm`);
    lo.push(r[0]);
    hi.push(r[1]);
  }
  const grid = gridFromBounds(lo, hi, opts.scale, `${where}: bounds`);
  const ws = opts.writeShape;
  if (!Array.isArray(ws) || ws.length !== d || ws.some((v) => !Number.isSafeInteger(v) || v < 1)) {
    throw invalid(`${where}: writeShape`, `writeShape must be ${d} positive integers (${axes.join(", ")}), got ${JSON.stringify(ws)}`);
  }
  const overlap = perAxis(opts.overlap, d, 0, "overlap", `${where}: overlap`);
  const blend = opts.blend ?? "crop";
  if (!BLEND_MODES.includes(blend)) throw invalid(`${where}: blend`, `blend must be one of ${BLEND_MODES.join(", ")}, got ${JSON.stringify(blend)}`);
  const nChannels = opts.nChannels ?? null;
  if (nChannels !== null && (!Number.isSafeInteger(nChannels) || nChannels < 1)) throw invalid(`${where}: nChannels`, `nChannels must be a positive integer, got ${nChannels}`);
  const dtype = opts.dtype ?? "float32";
  if (!STORED_DTYPES.includes(dtype)) throw new CellMapError("UNSUPPORTED", `dtype must be one of ${STORED_DTYPES.join(", ")}, got ${JSON.stringify(dtype)}`, `${where}: dtype`);
  const fillValue = opts.fillValue ?? 0;
  if (typeof fillValue !== "number" || (INT_RANGE[dtype] && !(Number.isInteger(fillValue) && fillValue >= INT_RANGE[dtype][0] && fillValue <= INT_RANGE[dtype][1]))) {
    throw invalid(`${where}: fillValue`, `fillValue ${fillValue} is not a valid ${dtype}`);
  }
  const format = opts.format ?? 2;
  if (format !== 2 && format !== 3) throw invalid(`${where}: format`, `format must be 2 or 3, got ${JSON.stringify(format)}`);
  const pyramid = opts.pyramid ?? 0;
  if (!Number.isSafeInteger(pyramid) || pyramid < 0 || pyramid > 30) throw invalid(`${where}: pyramid`, `pyramid must be an integer in [0, 30], got ${pyramid}`);
  const pyramidMethod = opts.pyramidMethod ?? (INT_RANGE[dtype] ? "mode" : "mean");
  if (pyramidMethod !== "mean" && pyramidMethod !== "mode")
    throw invalid(`${where}: pyramidMethod`, `pyramidMethod must be "mean" or "mode", got ${JSON.stringify(pyramidMethod)}`);
  const root = opts.root === undefined ? null : outputLocation(opts.root, `${where}: root`);
  if (root !== null && relativeLocation(root, p) === null) throw invalid(`${where}: root`, `'${p}' is not inside root '${root}'`);
  let name = opts.name;
  if (name === undefined) {
    const rel = root ? relativeLocation(root, p) : "";
    name = rel ? `/${rel}` : (p.split(/[\\/]/).pop() ?? p);
  }
  const compressor = opts.compressor === undefined ? { id: "blosc" as const, cname: "lz4" as const, clevel: 5, shuffle: 1 as const } : opts.compressor;
  return {
    path: p,
    axes,
    scale: [...opts.scale],
    translation: grid.translation,
    shape: grid.shape,
    writeShape: [...ws],
    overlap,
    blend,
    nChannels,
    dtype,
    fillValue,
    format,
    compressor,
    pyramid,
    pyramidMethod,
    root,
    name,
    bounds: Object.fromEntries(axes.map((a, i) => [a, [lo[i], hi[i]]])),
    http: opts.http,
  };
}

/** Rounds, clips and casts float values into a typed array of `dtype` (floats are just cast; NaN becomes 0 in integers). */
export function castInto(src: ArrayLike<number>, dst: ArrayData, dtype: StoredDtype): void {
  const range = INT_RANGE[dtype];
  if (!range) {
    (dst as Float32Array | Float64Array).set(src);
    return;
  }
  const d = dst as unknown as { [i: number]: number };
  const [lo, hi] = range;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    d[i] = v !== v ? 0 : v <= lo ? lo : v >= hi ? hi : Math.round(v);
  }
}
