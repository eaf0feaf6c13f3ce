/**
 * `ImageWriter`: writes tiles of model predictions for one class into one OME-NGFF image.
 *
 * Layout: a multiscale group at `path` (NGFF 0.4 on Zarr v2 by default, 0.5 on Zarr v3) with
 * arrays `s0` … `s<pyramid>`. Axes are `[c,] [z,] y, x` (`c` only with `nChannels`, type
 * `channel`); spatial axes are in nanometres, `scale` = voxel size and `translation` = the world
 * centre of voxel 0. The voxel grid covers the bounds as {@link gridFromBounds} says.
 *
 * Tiles (see tiling.ts): each tile owns exactly one s0 chunk (its *core*; chunk shape = write
 * shape minus twice the overlap, or the whole axis when it is shorter than one window) and the
 * model predicts the tile's *window* (the write shape) around it.
 * - Without overlap, or with `blend: "crop"` (centre-crop stitching), a tile writes its core,
 *   cut out of its window, as one chunk. Tiles never share a chunk, so tiles may be written in
 *   any order and in parallel (threads or processes).
 * - With overlap and `blend: "linear" | "gaussian"`, a tile's whole window is first stored as a
 *   *partial* file `<path>/.cm-partial/<tile>.f32` (raw float32, C order, written atomically).
 *   As soon as every tile overlapping a chunk has its partial, the chunk is computed as the
 *   weighted mean of those windows (weights and their separable normaliser in blend.ts, float64
 *   sums in a fixed order, so the result does not depend on write order) and written
 *   atomically. A partial is deleted once every chunk it overlaps is written. `finalize()`
 *   sweeps up chunks whose tiles were written by other processes and removes `.cm-partial`.
 *
 * Crash safety: every chunk, partial and metadata file is written to a `.cm-tmp-*` file and
 * renamed (src/store/atomic.ts), so a killed writer leaves only complete files plus stray temp
 * files that no reader treats as chunks (`finalize()` deletes them). Chunks are computed from
 * complete inputs only and are a pure function of them, so redoing any step is harmless.
 *
 * Resume (`resume: true`): existing metadata must equal what this writer would write (else
 * `WRITE_CONFLICT`); then a tile counts as written when its chunk exists (no overlap / crop) or
 * when its partial exists or every chunk its window overlaps exists (blending). This is a
 * chunk-existence check: no separate journal can disagree with the data.
 *
 * Integer dtypes: values are rounded to the nearest integer (`Math.round`, halves up), clipped to
 * the dtype's range, NaN stored as 0. Pyramid levels are computed by `finalize()` from the level
 * below (factor 2 on every spatial axis; `mean` by default for float dtypes, `mode` for integers).
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import * as zarr from "zarrita";
import { parseOptions } from "../config/options.js";
import { imageWriterOptionsSchema } from "../config/schema.js";
import { CellMapError } from "../errors.js";
import { TEMP_PREFIX, writeFileAtomic, writeJsonAtomic } from "../store/atomic.js";
import { openStore } from "../store/open.js";
import type { Tensor } from "../tensor.js";
import { openZarrArray, type ZarrArray } from "../zarr/array.js";
import { loadChunkUncached } from "../zarr/read.js";
import { accumulateTile, axisNormaliser, BLEND_MODES, normaliseRegion, windowWeights, type BlendMode } from "./blend.js";
import { downsample, type DownsampleMethod } from "./downsample.js";
import { multiscalesAttrs, writeParentGroups, type NgffAxis } from "./ome-metadata.js";
import { axisContributors, axisFootprint, gridFromBounds, makeTiling, tileBox, tileCoords, tileId, type Tiling } from "./tiling.js";
import {
  allocArray,
  arrayDocuments,
  normalizeArraySpec,
  zarrArrayWriter,
  type ArrayData,
  type CompressorSpec,
  type ZarrArraySpec,
  type ZarrArrayWriter,
} from "../zarr/write/index.js";

/** Output element types. */
export type OutputDType = "float32" | "float64" | "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32";

const INT_RANGE: Record<string, [number, number]> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
};
const OUTPUT_DTYPES: readonly OutputDType[] = ["float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32"];

/** World bounds in nm per spatial axis, `[lo, hi]`: `{ z, y, x }` (3-D) or `{ y, x }` (2-D). */
export type Bounds = Partial<Record<"z" | "y" | "x", readonly [number, number] | number[]>>;

/** Options of {@link ImageWriter.open}. */
export interface ImageWriterOptions {
  /** Local directory of the multiscale group (created). */
  path: string;
  /** Voxel size in nm per spatial axis: `[z, y, x]` or `[y, x]`. */
  scale: number[];
  /** Region to predict (nm); its axes must match `scale`. */
  bounds: Bounds;
  /** Window (model output) shape in voxels per spatial axis. */
  writeShape: number[];
  /** Context voxels on each side of a tile's core (number or per axis); neighbours share `2·overlap`. Default 0. */
  overlap?: number | number[];
  /** How overlapping windows are combined (default `crop`). Ignored without overlap. */
  blend?: BlendMode;
  /** Adds a leading channel axis of this size (e.g. affinities). */
  nChannels?: number;
  /** Stored dtype (default float32); integers are rounded and clipped. */
  dtype?: OutputDType;
  /** Zarr fill value (default 0). */
  fillValue?: number;
  /** 2: Zarr v2 + NGFF 0.4 (default); 3: Zarr v3 + NGFF 0.5. */
  format?: 2 | 3;
  /** Chunk compressor (default blosc/lz4, level 5, byte shuffle); null for raw bytes. */
  compressor?: CompressorSpec | null;
  /** Number of downsampled levels (s1 … s<n>) written by `finalize()`. Default 0. */
  pyramid?: number;
  /** Default `mean` for float dtypes, `mode` for integer ones. */
  pyramidMethod?: DownsampleMethod;
  /** Replace existing output at `path` (deletes the directory first). Default false. */
  overwrite?: boolean;
  /** Continue an existing output: skip tiles already written. Default false. */
  resume?: boolean;
  /** Write empty zarr groups in every directory from `root` down to `path`'s parent. */
  root?: string;
  /** Multiscale `name` (default: `path` relative to `root` with a leading `/`, else the folder name). */
  name?: string;
  /**
   * Open an output created elsewhere without checking or writing metadata (worker threads of
   * `CellMapDatasetWriter`). Default false.
   */
  attach?: boolean;
}

/** One level of the written pyramid. */
export interface WrittenLevel {
  path: string;
  /** Array shape on disk (`[c,] [z,] y, x`). */
  shape: number[];
  /** Spatial voxel size (nm), API axis order. */
  scale: number[];
  /** Spatial centre of voxel 0 (nm), API axis order. */
  translation: number[];
}

/** A tile in API axis order (voxel indices of s0). */
export interface TileInfo {
  id: number;
  windowStart: number[];
  coreStart: number[];
  coreEnd: number[];
  /** World centre (nm) of the window: where the model's input patch is centred. */
  center: number[];
}

const SPATIAL = ["z", "y", "x"] as const;
const PARTIAL_DIR = ".cm-partial";
const METADATA = new Set([".zarray", ".zattrs", ".zgroup", "zarr.json"]);
/**
 * Recently written windows kept in memory for blending, so chunks rarely re-read partials; one
 * budget for all writers of the process (least recently stored evicted first).
 */
const recent = {
  budget: 256 * 1024 ** 2,
  bytes: 0,
  map: new Map<string, Float32Array>(),
  set(key: string, v: Float32Array): void {
    this.delete(key);
    this.map.set(key, v);
    this.bytes += v.byteLength;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(k);
      this.bytes -= old.byteLength;
    }
  },
  delete(key: string): void {
    const v = this.map.get(key);
    if (v) {
      this.bytes -= v.byteLength;
      this.map.delete(key);
    }
  },
};

function bad(message: string, where: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", message, where);
}

function localPath(p: unknown, where: string): string {
  if (typeof p !== "string" || p.length === 0) throw bad("path must be a non-empty string", where);
  if (/^(https?|s3):\/\//i.test(p)) throw new CellMapError("UNSUPPORTED", "writers need a local directory, not a URL", p);
  return path.resolve(p.startsWith("file://") ? fileURLToPath(p) : p);
}

function perAxis(v: number | number[] | undefined, n: number, def: number, name: string, where: string): number[] {
  const out = v === undefined ? new Array<number>(n).fill(def) : typeof v === "number" ? new Array<number>(n).fill(v) : v;
  if (!Array.isArray(out) || out.length !== n || out.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw bad(`${name} must be a non-negative integer or ${n} of them, got ${JSON.stringify(v)}`, where);
  }
  return [...out];
}

/** Shape with its size-1 axes removed (they do not change the C-order layout). */
function squeeze(shape: readonly number[]): number[] {
  return shape.filter((s) => s !== 1);
}

/** Whether `shape` describes the same C-order layout as `expected` (up to size-1 axes). */
export function sameLayout(shape: readonly number[], expected: readonly number[]): boolean {
  const a = squeeze(shape);
  const b = squeeze(expected);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The Float32Array of a tile's values, checked against `expected` (`[C,] ...window`). */
export function tileValues(data: Tensor | Float32Array, expected: readonly number[], where: string): Float32Array {
  const n = expected.reduce((p, v) => p * v, 1);
  if (data instanceof Float32Array) {
    if (data.length !== n) throw bad(`expected ${n} values (shape [${expected}]), got a Float32Array of ${data.length}`, where);
    return data;
  }
  if (!data || !(data.data instanceof Float32Array) || !Array.isArray(data.shape)) {
    throw bad("expected a Tensor ({ data: Float32Array, shape }) or a Float32Array", where);
  }
  if (!sameLayout(data.shape, expected) || data.data.length !== n) {
    throw bad(`tensor shape [${data.shape}] does not match the expected [${expected}] (size-1 axes aside)`, where);
  }
  return data.data;
}

/** Rounds, clips and casts float values into a typed array of `dtype` (floats are just cast). */
function castInto(src: ArrayLike<number>, dst: ArrayData, dtype: OutputDType): void {
  const d = dst as unknown as { [i: number]: number; length: number; set?: (a: ArrayLike<number>) => void };
  const range = INT_RANGE[dtype];
  if (!range) {
    (dst as Float32Array | Float64Array).set(src);
    return;
  }
  const [lo, hi] = range;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    d[i] = v !== v ? 0 : v <= lo ? lo : v >= hi ? hi : Math.round(v);
  }
}

/** Deletes `.cm-tmp-*` files below `dir` (left by killed writers). */
async function removeTempFiles(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = (await fsp.readdir(dir, { recursive: true })) as string[];
  } catch {
    return;
  }
  await Promise.all(
    entries.filter((e) => path.basename(e).startsWith(TEMP_PREFIX)).map((e) => fsp.rm(path.join(dir, e), { force: true })),
  );
}

/** Chunk keys ("/"-separated) present under an array directory. */
function listChunkKeys(dir: string): Set<string> {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return new Set();
  }
  const out = new Set<string>();
  for (const e of entries) {
    const base = path.basename(e);
    if (base.startsWith(TEMP_PREFIX) || METADATA.has(base)) continue;
    out.add(e.split(path.sep).join("/"));
  }
  return out;
}

interface Config {
  path: string;
  axes: string[];
  scale: number[];
  translation: number[];
  shape: number[];
  writeShape: number[];
  overlap: number[];
  blend: BlendMode;
  nChannels: number | null;
  dtype: OutputDType;
  fillValue: number;
  format: 2 | 3;
  compressor: CompressorSpec | null;
  pyramid: number;
  pyramidMethod: DownsampleMethod;
  root: string | null;
  name: string;
  bounds: Bounds;
}

function configure(opts: ImageWriterOptions): Config {
  const where = typeof opts?.path === "string" ? opts.path : "ImageWriter";
  const p = localPath(opts?.path, where);
  const d = Array.isArray(opts.scale) ? opts.scale.length : 0;
  if (d !== 2 && d !== 3) throw bad(`scale must have 2 (y, x) or 3 (z, y, x) entries, got ${JSON.stringify(opts.scale)}`, `${where}: scale`);
  if (opts.scale.some((s) => !(typeof s === "number" && Number.isFinite(s) && s > 0))) {
    throw bad(`scale entries must be positive numbers, got ${JSON.stringify(opts.scale)}`, `${where}: scale`);
  }
  const axes = SPATIAL.slice(3 - d) as string[];
  const b = opts.bounds as Record<string, unknown>;
  if (typeof b !== "object" || b === null) throw bad("bounds must be { z?, y, x } with [lo, hi] in nm", `${where}: bounds`);
  const keys = Object.keys(b);
  if (keys.length !== d || !axes.every((a) => keys.includes(a))) {
    throw bad(`bounds must have exactly the axes ${axes.join(", ")}, got ${keys.join(", ")}`, `${where}: bounds`);
  }
  const lo: number[] = [];
  const hi: number[] = [];
  for (const a of axes) {
    const r = b[a];
    if (!Array.isArray(r) || r.length !== 2 || r.some((v) => typeof v !== "number")) throw bad(`bounds.${a} must be [lo, hi] in nm`, `${where}: bounds.${a}`);
    lo.push(r[0]);
    hi.push(r[1]);
  }
  const grid = gridFromBounds(lo, hi, opts.scale, `${where}: bounds`);
  const ws = opts.writeShape;
  if (!Array.isArray(ws) || ws.length !== d || ws.some((v) => !Number.isSafeInteger(v) || v < 1)) {
    throw bad(`writeShape must be ${d} positive integers (${axes.join(", ")}), got ${JSON.stringify(ws)}`, `${where}: writeShape`);
  }
  const overlap = perAxis(opts.overlap, d, 0, "overlap", `${where}: overlap`);
  const blend = opts.blend ?? "crop";
  if (!BLEND_MODES.includes(blend)) throw bad(`blend must be one of ${BLEND_MODES.join(", ")}, got ${JSON.stringify(blend)}`, `${where}: blend`);
  const nChannels = opts.nChannels ?? null;
  if (nChannels !== null && (!Number.isSafeInteger(nChannels) || nChannels < 1)) throw bad(`nChannels must be a positive integer, got ${nChannels}`, `${where}: nChannels`);
  const dtype = opts.dtype ?? "float32";
  if (!OUTPUT_DTYPES.includes(dtype)) throw new CellMapError("UNSUPPORTED", `dtype must be one of ${OUTPUT_DTYPES.join(", ")}, got ${JSON.stringify(dtype)}`, `${where}: dtype`);
  const fillValue = opts.fillValue ?? 0;
  if (typeof fillValue !== "number" || (INT_RANGE[dtype] && !(Number.isInteger(fillValue) && fillValue >= INT_RANGE[dtype][0] && fillValue <= INT_RANGE[dtype][1]))) {
    throw bad(`fillValue ${fillValue} is not a valid ${dtype}`, `${where}: fillValue`);
  }
  const format = opts.format ?? 2;
  if (format !== 2 && format !== 3) throw bad(`format must be 2 or 3, got ${JSON.stringify(format)}`, `${where}: format`);
  const pyramid = opts.pyramid ?? 0;
  if (!Number.isSafeInteger(pyramid) || pyramid < 0 || pyramid > 30) throw bad(`pyramid must be an integer in [0, 30], got ${pyramid}`, `${where}: pyramid`);
  const pyramidMethod = opts.pyramidMethod ?? (INT_RANGE[dtype] ? "mode" : "mean");
  if (pyramidMethod !== "mean" && pyramidMethod !== "mode") throw bad(`pyramidMethod must be "mean" or "mode", got ${JSON.stringify(pyramidMethod)}`, `${where}: pyramidMethod`);
  const root = opts.root === undefined ? null : localPath(opts.root, `${where}: root`);
  let name = opts.name;
  if (name === undefined) {
    const rel = root ? path.relative(root, p) : "";
    name = root && rel && !rel.startsWith("..") ? "/" + rel.split(path.sep).join("/") : path.basename(p);
  }
  const compressor = opts.compressor === undefined ? { id: "blosc" as const, cname: "lz4" as const, clevel: 5, shuffle: 1 as const } : opts.compressor;
  return {
    path: p, axes, scale: [...opts.scale], translation: grid.translation, shape: grid.shape, writeShape: [...ws], overlap, blend,
    nChannels, dtype, fillValue, format, compressor, pyramid, pyramidMethod, root, name,
    bounds: Object.fromEntries(axes.map((a, i) => [a, [lo[i], hi[i]]])),
  };
}

/** Writes prediction tiles of one class into one OME-NGFF image. Open with {@link ImageWriter.open}. */
export class ImageWriter {
  readonly path: string;
  /** Spatial axes (`["z","y","x"]` or `["y","x"]`). */
  readonly axes: string[];
  /** s0 voxel size (nm) per spatial axis. */
  readonly scale: number[];
  /** s0 centre of voxel 0 (nm) per spatial axis. */
  readonly translation: number[];
  /** s0 voxels per spatial axis. */
  readonly shape: number[];
  /** Window (model output) shape per spatial axis. */
  readonly writeShape: number[];
  /** Context voxels per side per spatial axis. */
  readonly overlap: number[];
  readonly blend: BlendMode;
  readonly nChannels: number | null;
  readonly dtype: OutputDType;
  readonly fillValue: number;
  readonly format: 2 | 3;
  readonly pyramid: number;
  readonly pyramidMethod: DownsampleMethod;
  /** s0 chunk shape on disk (`[c,] ...core`). */
  readonly chunks: number[];
  /** Every level (s0 first). */
  readonly levels: WrittenLevel[];
  /** Whether tiles are blended through partial files (overlap with `linear`/`gaussian`). */
  readonly blending: boolean;

  private readonly cfg: Config;
  /** Tiling in internal z, y, x (2-D: a virtual z axis of one voxel). */
  private readonly t3: Tiling;
  private readonly window3: number[];
  private readonly chunk3: number[];
  private readonly C: number;
  private readonly specs: ZarrArraySpec[];
  private arrays: ZarrArrayWriter[] = [];
  private readonly chunkDone: Uint8Array;
  private readonly partialDone: Uint8Array;
  private readonly finalising = new Map<number, Promise<void>>();
  private weights3: Float64Array[] = [];
  private norm3: Float64Array[] = [];
  private contrib3: number[][][] = [];

  private constructor(cfg: Config) {
    this.cfg = cfg;
    this.path = cfg.path;
    this.axes = cfg.axes;
    this.scale = cfg.scale;
    this.translation = cfg.translation;
    this.shape = cfg.shape;
    this.writeShape = cfg.writeShape;
    this.overlap = cfg.overlap;
    this.blend = cfg.blend;
    this.nChannels = cfg.nChannels;
    this.dtype = cfg.dtype;
    this.fillValue = cfg.fillValue;
    this.format = cfg.format;
    this.pyramid = cfg.pyramid;
    this.pyramidMethod = cfg.pyramidMethod;
    const d = cfg.axes.length;
    const pad3 = (v: number[], fill: number) => (d === 3 ? [...v] : [fill, ...v]);
    this.window3 = pad3(cfg.writeShape, 1);
    this.t3 = makeTiling(pad3(cfg.shape, 1), this.window3, pad3(cfg.overlap, 0), cfg.path);
    this.chunk3 = this.t3.axes.map((a) => a.core);
    this.C = cfg.nChannels ?? 1;
    this.blending = cfg.blend !== "crop" && cfg.overlap.some((h) => h > 0);
    const lead = cfg.nChannels === null ? [] : [cfg.nChannels];
    const spatialChunks = d === 3 ? this.chunk3 : this.chunk3.slice(1);
    this.chunks = [...lead, ...spatialChunks];

    this.levels = [];
    let shape = [...cfg.shape];
    for (let l = 0; l <= cfg.pyramid; l++) {
      const f = 2 ** l;
      const scale = cfg.scale.map((s) => s * f);
      this.levels.push({
        path: `s${l}`,
        shape: [...lead, ...shape],
        scale,
        translation: cfg.translation.map((t, a) => t + (scale[a] - cfg.scale[a]) / 2),
      });
      shape = shape.map((n) => Math.ceil(n / 2));
    }
    const names = [...(cfg.nChannels === null ? [] : ["c"]), ...cfg.axes];
    this.specs = this.levels.map((l) => ({
      zarrFormat: cfg.format,
      shape: l.shape,
      chunks: this.chunks,
      dtype: cfg.dtype,
      compressor: cfg.compressor,
      fillValue: cfg.fillValue,
      dimensionNames: cfg.format === 3 ? names : undefined,
    }));
    this.chunkDone = new Uint8Array(this.t3.count);
    this.partialDone = new Uint8Array(this.t3.count);
    if (this.blending) {
      this.weights3 = this.t3.axes.map((ax) => windowWeights(ax.window, ax.halo, cfg.blend));
      this.norm3 = this.t3.axes.map((ax, a) => axisNormaliser(ax, this.weights3[a]));
      this.contrib3 = this.t3.axes.map((ax) => axisContributors(ax));
    }
  }

  /**
   * Creates (or, with `resume`, re-opens) the output and returns the writer.
   * @throws CellMapError `WRITE_CONFLICT` when output exists and neither `overwrite` nor `resume`
   *   is set, or when `resume` finds different metadata; `INVALID_ARGUMENT` for bad options.
   */
  static async open(opts: ImageWriterOptions): Promise<ImageWriter> {
    opts = parseOptions(imageWriterOptionsSchema, opts, "ImageWriter.open");
    const w = new ImageWriter(configure(opts));
    await w.prepare(opts.overwrite ?? false, opts.resume ?? false, opts.attach ?? false);
    return w;
  }

  /** The options that re-open this output with `attach: true` (plain JSON). */
  describe(): ImageWriterOptions {
    const c = this.cfg;
    return {
      path: c.path, scale: [...c.scale], bounds: structuredClone(c.bounds), writeShape: [...c.writeShape], overlap: [...c.overlap], blend: c.blend,
      ...(c.nChannels !== null && { nChannels: c.nChannels }), dtype: c.dtype, fillValue: c.fillValue, format: c.format,
      compressor: c.compressor, pyramid: c.pyramid, pyramidMethod: c.pyramidMethod, name: c.name, attach: true,
    };
  }

  /** Number of tiles. */
  get tileCount(): number {
    return this.t3.count;
  }

  /** Tiles per spatial axis. */
  get tileGrid(): number[] {
    return this.axes.length === 3 ? [...this.t3.gridShape] : this.t3.gridShape.slice(1);
  }

  /** Shape of the values of one tile: `[c,] ...writeShape`. */
  get tileShape(): number[] {
    return [...(this.nChannels === null ? [] : [this.nChannels]), ...this.writeShape];
  }

  /** Window, core and world centre of tile `id` (API axis order). */
  tile(id: number): TileInfo {
    const b = tileBox(this.t3, id);
    const cut = (v: number[]) => (this.axes.length === 3 ? v : v.slice(1));
    const windowStart = cut(b.windowStart);
    const center = windowStart.map((w, a) => this.translation[a] + (w + (this.writeShape[a] - 1) / 2) * this.scale[a]);
    return { id, windowStart, coreStart: cut(b.coreStart), coreEnd: cut(b.coreEnd), center };
  }

  /** Whether tile `id` is known to be written (by this process, or found on disk at open/finalize). */
  isTileDone(id: number): boolean {
    tileCoords(this.t3, id); // range check
    if (!this.blending) return this.chunkDone[id] === 1;
    return this.partialDone[id] === 1 || this.footprintDone(id);
  }

  /** Ids of the tiles not written yet (ascending). */
  pendingTiles(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.t3.count; id++) if (!this.isTileDone(id)) out.push(id);
    return out;
  }

  /**
   * Stores the prediction of tile `id`: values `[c,] ...writeShape` (C order; size-1 axes are
   * ignored, so `[1, z, y, x]` model outputs are fine). Writing a tile again replaces it —
   * with blending only while some chunk its window overlaps is still incomplete (finished chunks
   * are final; re-create the output with `overwrite` to redo them).
   */
  async writeTile(id: number, data: Tensor | Float32Array): Promise<void> {
    tileCoords(this.t3, id);
    const values = tileValues(data, this.tileShape, `${this.path}: tile ${id}`);
    if (this.arrays.length === 0) throw new CellMapError("INVALID_ARGUMENT", "writer is not open", this.path);
    if (this.blending) await this.writePartial(id, values);
    else await this.writeCore(id, values);
  }

  /**
   * Completes the output: finishes blended chunks (including tiles written by other processes),
   * checks that every tile is written, removes `.cm-partial` and stray temp files, and computes
   * the pyramid levels. Idempotent; call it once all writers of this output are done.
   * @throws CellMapError `INVALID_ARGUMENT` naming the unwritten tiles.
   */
  async finalize(): Promise<void> {
    const keys = listChunkKeys(path.join(this.path, "s0"));
    for (let id = 0; id < this.t3.count; id++) if (keys.has(this.arrays[0].key(this.diskChunk(id)))) this.chunkDone[id] = 1;
    if (this.blending) {
      this.scanPartials();
      for (let k = 0; k < this.t3.count; k++) if (!this.chunkDone[k] && this.chunkReady(k)) await this.finaliseChunk(k);
    }
    const missing = this.pendingTiles();
    if (missing.length > 0) {
      throw new CellMapError(
        "INVALID_ARGUMENT",
        `cannot finalize: ${missing.length} of ${this.t3.count} tiles are not written (first: ${missing.slice(0, 8).join(", ")}); write them, or re-open with resume: true to continue`,
        this.path,
      );
    }
    await fsp.rm(path.join(this.path, PARTIAL_DIR), { recursive: true, force: true });
    if (this.blending) for (let id = 0; id < this.t3.count; id++) recent.delete(this.recentKey(id));
    for (let l = 1; l <= this.pyramid; l++) await this.writeLevel(l);
    await removeTempFiles(this.path);
  }

  toString(): string {
    return `ImageWriter(${this.path} @ [${this.scale}] nm, shape [${this.shape}], ${this.tileCount} tiles)`;
  }

  // ---- setup ----

  private async prepare(overwrite: boolean, resume: boolean, attach: boolean): Promise<void> {
    const p = this.path;
    if (!attach) {
      if (overwrite && resume) throw bad("overwrite and resume cannot both be set", p);
      const exists = fs.existsSync(p) && (!fs.statSync(p).isDirectory() || fs.readdirSync(p).length > 0);
      if (exists && overwrite) await fsp.rm(p, { recursive: true, force: true });
      else if (exists && !resume) {
        throw new CellMapError("WRITE_CONFLICT", "output already exists; pass overwrite: true to replace it or resume: true to continue it", p);
      }
      if (this.cfg.root) await writeParentGroups(this.cfg.root, p, this.format);
      // Arrays first, so a reader never sees multiscales metadata naming a missing array.
      for (const [l, spec] of this.specs.entries()) {
        const files = await arrayDocuments(normalizeArraySpec(spec, path.join(p, `s${l}`)));
        await this.ensureFiles(path.join(p, `s${l}`), files, resume);
      }
      await this.ensureFiles(p, this.groupFiles(), resume);
    }
    this.arrays = this.specs.map((s, l) => zarrArrayWriter(path.join(p, `s${l}`), s));
    if (resume) {
      const keys = listChunkKeys(path.join(p, "s0"));
      for (let id = 0; id < this.t3.count; id++) if (keys.has(this.arrays[0].key(this.diskChunk(id)))) this.chunkDone[id] = 1;
      if (this.blending) this.scanPartials();
    }
  }

  /** The group's metadata documents (as `writeGroup` writes them). */
  private groupFiles(): Record<string, unknown> {
    const axes: NgffAxis[] = [
      ...(this.nChannels === null ? [] : [{ name: "c", type: "channel" }]),
      ...this.axes.map((name) => ({ name, type: "space", unit: "nanometer" })),
    ];
    const lead = this.nChannels === null ? [] : [1];
    const lead0 = this.nChannels === null ? [] : [0];
    const attrs = multiscalesAttrs({
      version: this.format === 2 ? "0.4" : "0.5",
      name: this.cfg.name,
      axes,
      levels: this.levels.map((l) => ({ path: l.path, scale: [...lead, ...l.scale], translation: [...lead0, ...l.translation] })),
    });
    return this.format === 2
      ? { ".zgroup": { zarr_format: 2 }, ".zattrs": attrs }
      : { "zarr.json": { zarr_format: 3, node_type: "group", attributes: attrs } };
  }

  /** Writes missing metadata files; with `resume`, existing ones must be equal. */
  private async ensureFiles(dir: string, files: Record<string, unknown>, resume: boolean): Promise<void> {
    for (const [name, doc] of Object.entries(files)) {
      const file = path.join(dir, name);
      if (resume && fs.existsSync(file)) {
        let old: unknown;
        try {
          old = JSON.parse(fs.readFileSync(file, "utf8"));
        } catch {
          old = undefined;
        }
        if (!isDeepStrictEqual(old, doc)) {
          throw new CellMapError("WRITE_CONFLICT", "existing output was written with different settings (shape, chunks, dtype, codec or geometry); use overwrite: true or another path", file);
        }
        continue;
      }
      await writeJsonAtomic(file, doc);
    }
  }

  private scanPartials(): void {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(this.path, PARTIAL_DIR));
    } catch {
      return;
    }
    for (const n of names) {
      const m = /^(\d+)\.f32$/.exec(n);
      if (m && Number(m[1]) < this.t3.count) this.partialDone[Number(m[1])] = 1;
    }
  }

  /** On-disk chunk coordinates of tile/chunk `id`. */
  private diskChunk(id: number): number[] {
    const c = tileCoords(this.t3, id);
    return [...(this.nChannels === null ? [] : [0]), ...(this.axes.length === 3 ? c : c.slice(1))];
  }

  private chunkBuffer(): ArrayData {
    const buf = allocArray(this.dtype, this.C * this.chunk3[0] * this.chunk3[1] * this.chunk3[2]);
    if (this.fillValue !== 0) (buf as Float32Array).fill(this.fillValue);
    return buf;
  }

  // ---- direct (non-blended) writes ----

  /** Cuts the core out of the window and writes it as the tile's chunk. */
  private async writeCore(id: number, values: Float32Array): Promise<void> {
    const b = tileBox(this.t3, id);
    const [P0, P1, P2] = this.window3;
    const [c0, c1, c2] = this.chunk3;
    const whole = [0, 1, 2].every((a) => b.windowStart[a] === b.coreStart[a] && this.window3[a] === this.chunk3[a] && b.coreEnd[a] - b.coreStart[a] === this.chunk3[a]);
    let out: ArrayData;
    if (whole && this.dtype === "float32") out = values;
    else {
      const f = whole ? values : new Float32Array(this.C * c0 * c1 * c2).fill(this.fillValue);
      if (!whole) {
        const n = b.coreEnd[2] - b.coreStart[2];
        for (let c = 0; c < this.C; c++) {
          for (let z = b.coreStart[0]; z < b.coreEnd[0]; z++) {
            for (let y = b.coreStart[1]; y < b.coreEnd[1]; y++) {
              const src = ((c * P0 + (z - b.windowStart[0])) * P1 + (y - b.windowStart[1])) * P2 + (b.coreStart[2] - b.windowStart[2]);
              const dst = ((c * c0 + (z - b.coreStart[0])) * c1 + (y - b.coreStart[1])) * c2;
              (f as Float32Array).set(values.subarray(src, src + n), dst);
            }
          }
        }
      }
      if (this.dtype === "float32") out = f;
      else {
        out = allocArray(this.dtype, f.length);
        castInto(f, out, this.dtype);
      }
    }
    await this.arrays[0].writeChunk(this.diskChunk(id), out);
    this.chunkDone[id] = 1;
  }

  // ---- blended writes ----

  private partialFile(id: number): string {
    return path.join(this.path, PARTIAL_DIR, `${id}.f32`);
  }

  private async writePartial(id: number, values: Float32Array): Promise<void> {
    const copy = values.slice(); // the caller may reuse its buffer once we return
    await writeFileAtomic(this.partialFile(id), new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength));
    this.partialDone[id] = 1;
    recent.set(this.recentKey(id), copy);
    const jobs: Promise<void>[] = [];
    this.forFootprint(id, (k) => {
      if (!this.chunkDone[k] && this.chunkReady(k)) jobs.push(this.finaliseChunk(k));
    });
    await Promise.all(jobs);
  }

  private recentKey(id: number): string {
    return `${this.path}#${id}`;
  }

  /** Calls `fn` for every chunk that tile `id`'s window overlaps. */
  private forFootprint(id: number, fn: (chunk: number) => void): void {
    const c = tileCoords(this.t3, id);
    const r = c.map((k, a) => axisFootprint(this.t3.axes[a], k));
    for (let z = r[0][0]; z <= r[0][1]; z++) {
      for (let y = r[1][0]; y <= r[1][1]; y++) {
        for (let x = r[2][0]; x <= r[2][1]; x++) fn(tileId(this.t3, [z, y, x]));
      }
    }
  }

  private footprintDone(id: number): boolean {
    let all = true;
    this.forFootprint(id, (k) => {
      if (!this.chunkDone[k]) all = false;
    });
    return all;
  }

  /** Tiles whose windows overlap chunk `k`, in C order. */
  private contributors(k: number): number[] {
    const c = tileCoords(this.t3, k);
    const [lz, ly, lx] = c.map((v, a) => this.contrib3[a][v]);
    const out: number[] = [];
    for (const z of lz) for (const y of ly) for (const x of lx) out.push(tileId(this.t3, [z, y, x]));
    return out;
  }

  private chunkReady(k: number): boolean {
    return this.contributors(k).every((j) => this.partialDone[j] === 1);
  }

  /** Computes and writes blended chunk `k` (once per process at a time). */
  private finaliseChunk(k: number): Promise<void> {
    let p = this.finalising.get(k);
    if (!p) {
      p = this.computeChunk(k).finally(() => this.finalising.delete(k));
      this.finalising.set(k, p);
    }
    return p;
  }

  private async loadPartial(j: number): Promise<Float32Array | null> {
    const hit = recent.map.get(this.recentKey(j));
    if (hit) return hit;
    let buf: Buffer;
    try {
      buf = await fsp.readFile(this.partialFile(j));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new CellMapError("IO", `cannot read partial prediction: ${(err as Error).message}`, this.partialFile(j), { cause: err });
    }
    const n = this.C * this.window3[0] * this.window3[1] * this.window3[2];
    if (buf.byteLength !== n * 4) {
      throw new CellMapError("CORRUPT_CHUNK", `partial prediction has ${buf.byteLength} bytes, expected ${n * 4}`, this.partialFile(j));
    }
    const bytes = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }

  private async computeChunk(k: number): Promise<void> {
    const b = tileBox(this.t3, k);
    const region = [0, 1, 2].map((a) => b.coreEnd[a] - b.coreStart[a]);
    const accShape = [this.C, ...this.chunk3];
    const acc = new Float64Array(this.C * this.chunk3[0] * this.chunk3[1] * this.chunk3[2]);
    const predShape = [this.C, ...this.window3];
    const contributors = this.contributors(k);
    for (const j of contributors) {
      const pred = await this.loadPartial(j);
      if (!pred) {
        // Another process finished this chunk and removed the partials it needed.
        if (fs.existsSync(path.join(this.arrays[0].location, ...this.arrays[0].key(this.diskChunk(k)).split("/")))) {
          this.chunkDone[k] = 1;
          return;
        }
        throw new CellMapError("IO", `partial prediction of tile ${j} disappeared before chunk ${k} was written`, this.partialFile(j));
      }
      accumulateTile(acc, accShape, b.coreStart, region, pred, predShape, tileBox(this.t3, j).windowStart, this.weights3);
    }
    normaliseRegion(acc, accShape, b.coreStart, region, this.norm3);
    if (this.fillValue !== 0) this.fillOutside(acc, region);
    const out = allocArray(this.dtype, acc.length);
    castInto(acc, out, this.dtype);
    await this.arrays[0].writeChunk(this.diskChunk(k), out);
    this.chunkDone[k] = 1;
    // Partials whose every chunk is now written are no longer needed.
    await Promise.all(
      contributors.map(async (j) => {
        if (this.footprintDone(j)) {
          recent.delete(this.recentKey(j));
          await fsp.rm(this.partialFile(j), { force: true });
        }
      }),
    );
  }

  /** Sets the part of a chunk buffer outside the array (edge chunks) to the fill value. */
  private fillOutside(acc: Float64Array, region: number[]): void {
    const [c0, c1, c2] = this.chunk3;
    for (let c = 0; c < this.C; c++) {
      for (let z = 0; z < c0; z++) {
        for (let y = 0; y < c1; y++) {
          const row = ((c * c0 + z) * c1 + y) * c2;
          const inside = z < region[0] && y < region[1];
          acc.fill(this.fillValue, row + (inside ? region[2] : 0), row + c2);
        }
      }
    }
  }

  // ---- pyramid ----

  /** Writes level `l` from level `l - 1`, one output chunk at a time. */
  private async writeLevel(l: number): Promise<void> {
    const { store, location } = openStore(this.path);
    const src = await openZarrArray(zarr.root(store), `s${l - 1}`, `${location}/s${l - 1}`);
    const dst = this.arrays[l];
    const lead = this.nChannels === null ? 0 : 1;
    const twoD = this.axes.length === 2;
    const to3 = (v: number[]) => (twoD ? [1, ...v.slice(lead)] : v.slice(lead));
    const srcShape3 = to3(src.shape);
    const dstShape3 = to3(this.levels[l].shape);
    const factors = twoD ? [1, 2, 2] : [2, 2, 2];
    const grid = dstShape3.map((n, a) => Math.ceil(n / this.chunk3[a]));
    for (let z = 0; z < grid[0]; z++) {
      for (let y = 0; y < grid[1]; y++) {
        for (let x = 0; x < grid[2]; x++) {
          const k = [z, y, x];
          const lo = k.map((v, a) => v * this.chunk3[a] * factors[a]);
          const hi = lo.map((v, a) => Math.min(v + this.chunk3[a] * factors[a], srcShape3[a]));
          const region = await this.readBox(src, lo, hi);
          const ds = downsample(region.data, region.shape, factors, this.pyramidMethod);
          const out = new Float64Array(this.C * this.chunk3[0] * this.chunk3[1] * this.chunk3[2]).fill(this.fillValue);
          const [, dz, dy, dx] = ds.shape;
          for (let c = 0; c < this.C; c++) {
            for (let zz = 0; zz < dz; zz++) {
              for (let yy = 0; yy < dy; yy++) {
                const s = ((c * dz + zz) * dy + yy) * dx;
                out.set(ds.data.subarray(s, s + dx), ((c * this.chunk3[0] + zz) * this.chunk3[1] + yy) * this.chunk3[2]);
              }
            }
          }
          const typed = allocArray(this.dtype, out.length);
          castInto(out, typed, this.dtype);
          await dst.writeChunk([...(lead ? [0] : []), ...(twoD ? k.slice(1) : k)], typed);
        }
      }
    }
  }

  /** Reads the box `[lo, hi)` (internal z, y, x, all channels) of an array as float64 `[C, z, y, x]`. */
  private async readBox(src: ZarrArray, lo: number[], hi: number[]): Promise<{ data: Float64Array; shape: number[] }> {
    const size = lo.map((v, a) => hi[a] - v);
    const out = new Float64Array(this.C * size[0] * size[1] * size[2]);
    const lead = this.nChannels === null ? 0 : 1;
    const twoD = this.axes.length === 2;
    const first = lo.map((v, a) => Math.floor(v / this.chunk3[a]));
    const last = hi.map((v, a) => Math.floor((v - 1) / this.chunk3[a]));
    for (let cz = first[0]; cz <= last[0]; cz++) {
      for (let cy = first[1]; cy <= last[1]; cy++) {
        for (let cx = first[2]; cx <= last[2]; cx++) {
          const kc = [cz, cy, cx];
          const coords = [...(lead ? [0] : []), ...(twoD ? kc.slice(1) : kc)];
          const chunk = await loadChunkUncached(src, coords);
          // Our chunks are C-ordered, so their layout is that of the internal [C, z, y, x] chunk.
          let step = 1;
          for (let d = chunk.shape.length - 1; d >= 0; d--) {
            if (chunk.shape[d] > 1 && chunk.stride[d] !== step) throw new CellMapError("UNSUPPORTED", "chunk is not C-ordered", src.id);
            step *= chunk.shape[d];
          }
          const cs = [this.C, ...this.chunk3];
          const o = kc.map((v, a) => v * this.chunk3[a]);
          const a0 = o.map((v, a) => Math.max(v, lo[a]));
          const a1 = o.map((v, a) => Math.min(v + this.chunk3[a], hi[a]));
          for (let c = 0; c < this.C; c++) {
            for (let z = a0[0]; z < a1[0]; z++) {
              for (let y = a0[1]; y < a1[1]; y++) {
                const s = ((c * cs[1] + (z - o[0])) * cs[2] + (y - o[1])) * cs[3] - o[2];
                const d = ((c * size[0] + (z - lo[0])) * size[1] + (y - lo[1])) * size[2] - lo[2];
                for (let x = a0[2]; x < a1[2]; x++) out[d + x] = chunk.data[s + x];
              }
            }
          }
        }
      }
    }
    return { data: out, shape: [this.C, ...size] };
  }
}
