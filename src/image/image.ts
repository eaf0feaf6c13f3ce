/**
 * `CellMapImage`: one multiscale image read at a requested voxel size and patch shape.
 * Geometry (the convention of OME-NGFF and of the Python library's data): voxel `i` of a level sits at
 * `translation + i * scale` (its centre, nm); a patch of `n` voxels at scale `s` centred on `c`
 * samples `c + (k - (n-1)/2) * s`. Internally every image is 3-D in z, y, x order; a 2-D image
 * gets a virtual z axis of one voxel.
 */
import * as zarr from "zarrita";
import type { Readable } from "@zarrita/storage";
import { parseOptions } from "../options/options.js";
import { type CellMapImageOptions, EXACT_RANGE, imageOptionsSchema, isLabelClass, type ValueTransformLike } from "./options.js";

export type { CellMapImageOptions, ValueTransformLike } from "./options.js";
import { CellMapError, throwIfAborted } from "../errors.js";
import { type Box, chooseLevel, levelBoundingBox, samplingBox } from "../geometry/level.js";
import type { Multiscale } from "../ome/model.js";
import { bareArrayMultiscale } from "../ome/bare.js";
import { readMultiscale } from "../ome/read.js";
import { Rng } from "../util/rng.js";
import { warnOnce } from "../warnings.js";
import { openStore } from "../store/open.js";
import { type DataType, type OutputDtype, TENSOR_ARRAYS, type Tensor, type TensorArrays, type TensorData, sizeOf, stridesOf } from "../tensor.js";
import { openZarrArray, type ZarrArray } from "../zarr/array.js";
import type { ChunkStore } from "../zarr/chunk-store.js";
import { defaultChunkStore, readRegionInto } from "../zarr/read.js";
import { countForeground } from "./counts.js";
import { axisAligned, isDirectCopy, type LevelGeometry, type PatchGrid, type Samples, samplePatch, sampleWindow, type Window } from "./resample.js";
import type { SourceRegion } from "./rotated.js";
import type { Displacement } from "./displacement.js";
import { sectionsMatrix } from "./grid.js";

/** Stored element types whose regions the rotated-grid kernels read as they are. */
const SOURCE_REGIONS: Partial<Record<DataType, { new (b: ArrayBufferLike, o: number, n: number): SourceRegion; BYTES_PER_ELEMENT: number }>> = {
  uint8: Uint8Array,
  bool: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  float32: Float32Array,
};

/** Per-read options. */
export interface ReadOptions {
  /** 3x3 matrix A (zyx): sample point = centre + A · offset. From `transforms` spatial draws. */
  spatialTransform?: { matrix: number[][] } | number[][] | null;
  /**
   * Elastic displacement `d` of the offsets (a drawn `Deformation` of `transforms/elastic.ts`):
   * sample point = centre + A · (offset + d(offset)). The read window grows by its bound.
   */
  displacement?: Displacement | null;
  /** Generator for random value transforms (one per sample). */
  rng?: Rng;
  signal?: AbortSignal;
  /**
   * Write the patch here instead of a new array (C order, exactly the patch's size; other sizes
   * or types are ignored). The returned tensor's `data` is then this array.
   */
  into?: TensorData;
  /** Decoded-chunk cache to read through (default: this thread's, see `defaultChunkStore`). */
  store?: ChunkStore;
}

/** The pyramid level an image reads from. */
export interface ScaleLevel {
  index: number;
  path: string;
  /** Voxel size (nm), z y x. */
  scale: number[];
  /** Centre of voxel 0 (nm), z y x. */
  translation: number[];
  /** Voxel count, z y x (1 on a virtual axis). */
  shape: number[];
}

const AXES = ["z", "y", "x"];

/**
 * A transform's result, moved into `into` when the transform returned a new array (so the
 * caller's buffer holds the final values).
 */
export function keepIn(t: Tensor, into: Float32Array | null | undefined, where: string): Tensor {
  if (!into || t.data === into) return t;
  if (t.data.length !== into.length) {
    throw new CellMapError("INVALID_ARGUMENT", `a value transform changed the patch size from ${into.length} to ${t.data.length} values`, where);
  }
  into.set(t.data);
  return { ...t, data: into };
}

/** Pads `v` at the front to length `n` with `fill(v)`. */
function padFront(v: number[], n: number, fill: number): number[] {
  return [...Array(Math.max(0, n - v.length)).fill(fill), ...v];
}

/** Integer dtypes whose values float32 may not hold exactly (beyond 2^24). */
const WIDE_INTEGERS: ReadonlySet<DataType> = new Set(["int32", "uint32", "int64", "uint64"]);
const FLOAT32_EXACT = 2 ** 24;

/** The value of largest magnitude in `data` (NaN skipped), or 0. */
function largest(data: Samples): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) if (Math.abs(data[i]) > Math.abs(m)) m = data[i];
  return m;
}

/** One multiscale image at one requested resolution. */
export class CellMapImage<D extends OutputDtype = "float32"> {
  /** Axes of the public API (`zyx` or `yx`). */
  readonly axes: string[];
  /** Output patch shape in z y x (internal, always 3). */
  readonly outputShape: number[];
  /** Output voxel size in z y x (nm). */
  readonly outputScale: number[];
  readonly pad: boolean;
  readonly padValue: number;
  readonly interpolation: "nearest" | "linear";
  readonly targetClass: string;
  readonly valueTransform?: ValueTransformLike;
  /** Element type of the patches. */
  readonly outputDtype: D;

  private constructor(
    readonly path: string,
    readonly multiscale: Multiscale,
    readonly level: ScaleLevel,
    readonly array: ZarrArray,
    private readonly geom: LevelGeometry,
    private readonly dimOf: number[],
    private readonly fixedIndex: number[],
    private readonly root: zarr.Location<Readable>,
    opts: CellMapImageOptions<D>,
    axes: string[],
    shape: number[],
    scale: number[],
  ) {
    this.axes = axes;
    this.outputShape = shape;
    this.outputScale = scale;
    this.targetClass = opts.targetClass ?? "raw";
    const label = isLabelClass(opts.targetClass);
    this.pad = opts.pad ?? false;
    this.padValue = opts.padValue ?? (label ? NaN : 0);
    this.interpolation = opts.interpolation ?? (label ? "nearest" : "linear");
    this.valueTransform = opts.valueTransform;
    this.outputDtype = opts.outputDtype ?? ("float32" as D);
  }

  /** Opens the multiscale group at `opts.path` and picks the level for `opts.targetScale`. */
  static async open<D extends OutputDtype = "float32">(opts: CellMapImageOptions<D>): Promise<CellMapImage<D>> {
    opts = parseOptions(imageOptionsSchema, opts, "CellMapImage.open");
    const axisOrder = opts.axisOrder ?? "zyx";
    const axes = axisOrder.split("");
    const scale = padFront(padFront([...opts.targetScale], axes.length, opts.targetScale[0]), 3, opts.targetScale[0]);
    const shape = padFront(padFront([...opts.targetVoxelShape], axes.length, 1), 3, 1);

    const { store, location } = openStore(opts.path, opts.http);
    const root = zarr.root(store);
    throwIfAborted(opts.signal, location);
    let bare: ZarrArray | undefined;
    let ms: Multiscale;
    if (opts.voxelSize !== undefined) {
      bare = await openBareArray(root, location, opts.signal);
      ms = bareArrayMultiscale(bare.shape.length, { voxelSize: opts.voxelSize, translation: opts.translation }, bare.zarrFormat, location);
    } else {
      ms = await readMultiscale(root, "", { id: location, signal: opts.signal, index: opts.multiscaleIndex, series: opts.series });
    }
    for (const note of ms.notes) {
      if (/has no unit/.test(note)) warnOnce(`${location}: ${note}`, "CELLMAP_NO_UNIT");
    }
    // Map internal z,y,x to the image's spatial axes by name.
    const spatialIndex = AXES.map((a) => ms.spatialAxes.indexOf(a));
    for (const name of ms.spatialAxes) {
      if (!AXES.includes(name)) {
        throw new CellMapError("UNSUPPORTED", `spatial axis "${name}" is not one of z, y, x`, location);
      }
    }
    if (axisOrder === "yx" && spatialIndex[0] >= 0) {
      throw new CellMapError("INVALID_ARGUMENT", `axisOrder "yx" cannot read a 3-D image (it has a z axis)`, location);
    }
    AXES.forEach((a, w) => {
      if (spatialIndex[w] < 0 && shape[w] !== 1) {
        throw new CellMapError("INVALID_ARGUMENT", `image has no ${a} axis, so the patch must have 1 voxel along ${a}, got ${shape[w]}`, location);
      }
    });
    const pick = (v: number[], w: number, fallback: number) => (spatialIndex[w] >= 0 ? v[spatialIndex[w]] : fallback);
    const levelScales = ms.levels.map((l) => AXES.map((_, w) => pick(l.scale, w, scale[w])));
    // A 2-entry scale means sections, as in a dataset's array spec (unless `sections: false`).
    const sections = (opts.sections ?? (opts.targetScale.length === 2 && axisOrder === "zyx")) && spatialIndex[0] >= 0;
    const li = sections
      ? chooseLevel(
          levelScales.map((l) => l.slice(1)),
          scale.slice(1),
        )
      : chooseLevel(levelScales, scale);
    if (sections) scale[0] = levelScales[li][0];
    const lvl = ms.levels[li];
    const array = bare ?? (await openZarrArray(root, lvl.path, `${location}/${lvl.path}`, opts.signal));
    if (array.shape.length !== ms.axes.length) {
      throw new CellMapError("INVALID_METADATA", `array has ${array.shape.length} dimensions but the multiscales metadata declares ${ms.axes.length} axes`, array.id);
    }
    const dimOf = AXES.map((_, w) => (spatialIndex[w] >= 0 ? ms.spatialDims[spatialIndex[w]] : -1));
    const size = AXES.map((_, w) => (dimOf[w] >= 0 ? array.shape[dimOf[w]] : 1));
    const fixedIndex = nonSpatialIndex(ms, array.shape, dimOf, opts, array.id);
    const level: ScaleLevel = {
      index: li,
      path: lvl.path,
      scale: levelScales[li],
      translation: AXES.map((_, w) => pick(lvl.translation, w, 0)),
      shape: size,
    };
    const geom: LevelGeometry = { size, scale: level.scale, translation: level.translation, real: dimOf.map((d) => d >= 0) };
    return new CellMapImage(location, ms, level, array, geom, dimOf, fixedIndex, root, opts, axes, shape, scale);
  }

  /** Whether the stored spatial dims run z, y, x (so a region in C order is a zyx patch). */
  private get storageIsZyx(): boolean {
    const real = this.dimOf.filter((d) => d >= 0);
    return real.every((d, i) => i === 0 || d > real[i - 1]);
  }

  /** The chosen pyramid level (index, path, geometry). */
  get scaleLevel(): ScaleLevel {
    return this.level;
  }

  /** Source dtype of the stored voxels. */
  get dtype(): DataType {
    return this.array.dtype;
  }

  /** Bounding box (nm, z y x) of the chosen level: voxel centres +- half a voxel. */
  get boundingBox(): Box {
    return levelBoundingBox(this.level.shape, this.level.scale, this.level.translation);
  }

  /**
   * Centres (nm, z y x) whose samples all lie within the span of voxel centres; a single centre
   * when the image is smaller than the patch and `pad` is on; `null` when it is off.
   */
  get samplingBox(): Box | null {
    return samplingBox(this.level.shape, this.level.scale, this.level.translation, this.outputShape, this.outputScale, this.pad);
  }

  /** Converts an API-order vector (zyx or yx) into internal z y x. */
  private toInternal(v: readonly number[], what: string): number[] {
    if (v.length === 3) return [...v];
    if (v.length === this.axes.length) return [0, ...v];
    throw new CellMapError("INVALID_ARGUMENT", `${what} must have ${this.axes.length} entries (${this.axes.join("")}), got ${v.length}`, this.path);
  }

  /** Output tensor shape in API axis order. */
  get patchShape(): number[] {
    return this.axes.length === 3 ? [...this.outputShape] : this.outputShape.slice(1);
  }

  /**
   * Reads the patch centred on `center` (nm, API axis order), as float32 unless the image has
   * another `outputDtype`. Spatial transforms act on the sample grid; the value transform runs
   * last.
   *
   * @throws CellMapError `UNSUPPORTED` when an integer the output dtype cannot hold exactly is
   *   read (naming the array and the value), besides the errors of the chunk reads
   */
  async read(center: readonly number[], opts: ReadOptions = {}): Promise<Tensor<TensorArrays[D]>> {
    const c = this.toInternal(center, "center");
    if (c.some((v) => !Number.isFinite(v))) {
      throw new CellMapError("INVALID_ARGUMENT", `center must be finite numbers, got [${center}]`, this.path);
    }
    const st = opts.spatialTransform;
    const matrix = st ? (Array.isArray(st) ? st : st.matrix) : null;
    const grid: PatchGrid = { center: c, shape: this.outputShape, scale: this.outputScale, matrix, displacement: opts.displacement ?? null };
    const win = sampleWindow(this.geom, grid);
    const nd = this.array.shape.length;
    const lo = new Array<number>(nd);
    const hi = new Array<number>(nd);
    for (let d = 0; d < nd; d++) {
      lo[d] = this.fixedIndex[d];
      hi[d] = this.fixedIndex[d] + 1;
    }
    for (let w = 0; w < 3; w++) {
      const d = this.dimOf[w];
      if (d >= 0) {
        lo[d] = win.lo[w];
        hi[d] = win.hi[w] + 1;
      }
    }
    const size = sizeOf(this.outputShape);
    const Out = TENSOR_ARRAYS[this.outputDtype];
    const into = opts.into && opts.into.length === size && opts.into instanceof Out ? (opts.into as TensorArrays[D]) : null;
    const store = opts.store ?? defaultChunkStore();
    const window = { grid, win, lo, hi, store, signal: opts.signal };
    if (this.outputDtype !== "float32") {
      // Exact through float64 (every int32/uint32 and every integer up to 2^53), then checked.
      const exact = new Float64Array(size);
      await this.sample(exact, window, false);
      const out = into ?? (new Out(size) as TensorArrays[D]);
      if (out !== exact) this.checkExact(exact, this.outputDtype);
      out.set(exact);
      return { data: out, shape: this.patchShape, sourceDtype: this.array.dtype, dtype: this.outputDtype };
    }
    const out = (into as Float32Array | null) ?? new Float32Array(size);
    await this.sample(out, window, true);
    if (WIDE_INTEGERS.has(this.array.dtype) && Math.abs(largest(out)) >= FLOAT32_EXACT) {
      // Rounded values at or past 2^24 may stand for integers float32 cannot hold: look exactly.
      const exact = new Float64Array(size);
      await this.sample(exact, window, false);
      this.checkExact(exact, "float32");
    }
    let t: Tensor = { data: out, shape: this.patchShape, sourceDtype: this.array.dtype };
    if (this.valueTransform) t = keepIn(this.valueTransform.apply(t, opts.rng ?? new Rng(0)), into as Float32Array | null, this.array.id);
    return t as Tensor<TensorArrays[D]>;
  }

  /** Raises when `exact` holds a value the output dtype cannot represent exactly (NaN included for integers). */
  private checkExact(exact: Float64Array, dtype: OutputDtype): void {
    const [min, max] = EXACT_RANGE[dtype];
    const integer = dtype === "int32" || dtype === "uint32";
    let bad: number | null = null;
    for (let i = 0; i < exact.length; i++) {
      const v = exact[i];
      if (v < min || v > max || (integer && !Number.isInteger(v))) {
        if (bad === null || Math.abs(v) > Math.abs(bad) || Number.isNaN(bad)) bad = v;
      }
    }
    if (bad === null) return;
    if (dtype === "float32") {
      throw new CellMapError(
        "UNSUPPORTED",
        `array holds integers float32 cannot represent exactly (largest ${largest(exact)}, float32 is exact up to 2^24 = ${FLOAT32_EXACT}); read it with outputDtype "int32", "uint32" or "float64"`,
        this.array.id,
      );
    }
    throw new CellMapError(
      "UNSUPPORTED",
      `value ${bad} does not fit outputDtype ${dtype} (exact range ${integer ? `[${min}, ${max}]` : `±2^53`}${integer ? ", integers only" : ""})`,
      this.array.id,
    );
  }

  /** Reads the window and samples the patch into `out` (float32 may use the plane's scratch and SIMD kernels). */
  private async sample(out: Samples, w: { grid: PatchGrid; win: Window; lo: number[]; hi: number[]; store: ChunkStore; signal?: AbortSignal }, scratchOk: boolean): Promise<void> {
    const { grid, win, lo, hi, store } = w;
    if (this.storageIsZyx && isDirectCopy(this.geom, grid, win)) {
      // The window is the patch, stored z y x (other dims have size 1): gather it in place.
      await readRegionInto(this.array, lo, hi, out, store, w.signal);
      return;
    }
    // The region goes to the thread's scratch arena in the data plane when there is one (the
    // SIMD gather and the WebAssembly resampling passes read it there). Rotated grids, and
    // resampled section grids (measured 5.5 against 8.8 ns per voxel for linear 4 -> 6 nm),
    // sample it in its stored element type (no float32 copy of the whole window first).
    const rshape = hi.map((v, d) => v - lo[d]);
    const rsize = sizeOf(rshape);
    const arena = scratchOk ? (store.scratch ?? null) : null;
    const kernels = !!grid.displacement || !axisAligned(grid.matrix) || sectionsMatrix(grid.matrix);
    const Source = arena && out.buffer === arena.buffer && kernels ? SOURCE_REGIONS[this.array.dtype] : undefined;
    const Region = Source ?? Float32Array;
    const at = arena ? arena.alloc(rsize * Region.BYTES_PER_ELEMENT) : -1;
    try {
      const region = at >= 0 ? new Region(arena!.buffer, at, rsize) : out instanceof Float64Array ? new Float64Array(rsize) : new Float32Array(rsize);
      await readRegionInto(this.array, lo, hi, region, store, w.signal);
      const rstride = stridesOf(rshape);
      const stride = this.dimOf.map((d) => (d >= 0 ? rstride[d] : 0));
      samplePatch(this.geom, grid, { interpolation: this.interpolation, pad: this.pad, padValue: this.padValue }, region, win, stride, out, arena);
    } finally {
      if (at >= 0) arena!.release(at);
    }
  }

  /**
   * Foreground and background voxel counts at the requested voxel size. Read from the s0 array's
   * attributes (`cellmap.annotation.complement_counts.absent`, or `class_counts[<class>]`) when
   * present, otherwise counted once over s0 (chunk by chunk) and remembered for the process.
   * Counts at s0 are scaled by the voxel-volume ratio s0 / requested.
   */
  async classCounts(signal?: AbortSignal): Promise<{ foreground: number; background: number }> {
    const s0 = this.multiscale.levels[0];
    const s0arr = this.level.index === 0 ? this.array : await openZarrArray(this.root, s0.path, `${this.path}/${s0.path}`, signal);
    const spatialDims = this.dimOf.filter((d) => d >= 0);
    const total = spatialDims.reduce((p, d) => p * s0arr.shape[d], 1);
    const s0vol = s0.scale.reduce((p, v) => p * v, 1);
    const reqVol = this.dimOf.reduce((p, d, w) => (d >= 0 ? p * this.outputScale[w] : p), 1);
    const ratio = s0vol / reqVol;
    // Attributes other tools write: { cellmap: { annotation: { complement_counts: { absent } } } }, or { class_counts: { <class>: n } }.
    const attrs = s0arr.array.attrs as { cellmap?: { annotation?: { complement_counts?: { absent?: unknown } } }; class_counts?: Record<string, unknown> } | undefined;
    let fg: number | undefined;
    const absent = attrs?.cellmap?.annotation?.complement_counts?.absent;
    const listed = attrs?.class_counts?.[this.targetClass];
    if (typeof absent === "number" && absent >= 0 && absent <= total) fg = total - absent;
    else if (typeof listed === "number") fg = listed;
    if (fg === undefined) fg = await countForeground(s0arr, this.fixedIndex, signal);
    return { foreground: fg * ratio, background: (total - fg) * ratio };
  }

  toString(): string {
    return `CellMapImage(${this.array.id}, class=${this.targetClass}, scale=[${this.outputScale}], shape=[${this.outputShape}])`;
  }
}

/** What a non-spatial axis is read by: `channel`, `time`, or neither. */
function axisRole(a: { name: string; type?: string } | undefined): "channel" | "time" | null {
  const type = a?.type?.toLowerCase();
  if (type === "channel" || type === "time") return type;
  if (type !== undefined) return null;
  const name = a?.name.toLowerCase();
  return name === "c" || name === "channel" ? "channel" : name === "t" || name === "time" ? "time" : null;
}

/**
 * The index read along each dim of the array (-1 on spatial dims): `channel` on the channel
 * axis, `time` on the time axis, 0 on other axes of one entry.
 *
 * @throws CellMapError `INVALID_ARGUMENT` naming the axis when an index is outside it, when a
 *   non-spatial axis of several entries is neither, or when `channel`/`time` (other than 0) is
 *   given for an image without such an axis
 */
function nonSpatialIndex(ms: Multiscale, shape: readonly number[], dimOf: number[], opts: { channel?: number; time?: number }, where: string): number[] {
  const used = { channel: false, time: false };
  const out = shape.map((n, d) => {
    if (dimOf.includes(d)) return -1;
    const axis = ms.axes[d];
    const role = axisRole(axis);
    const name = `"${axis?.name ?? d}"${axis?.type ? ` (type ${axis.type})` : ""}`;
    if (role === null) {
      if (n === 1) return 0;
      throw new CellMapError(
        "INVALID_ARGUMENT",
        `non-spatial axis ${name} has ${n} entries and no option selects one (channel reads the axis of type "channel", time the axis of type "time")`,
        where,
      );
    }
    used[role] = true;
    const index = opts[role] ?? 0;
    if (!(index >= 0 && index < n)) {
      throw new CellMapError("INVALID_ARGUMENT", `${role} index ${index} outside axis ${name} of size ${n}`, where);
    }
    return index;
  });
  for (const role of ["channel", "time"] as const) {
    const v = opts[role];
    if (!used[role] && v !== undefined && v !== 0) {
      throw new CellMapError("INVALID_ARGUMENT", `${role} ${v} given, but the image has no ${role} axis (axes: ${ms.axes.map((a) => a.name).join(", ")})`, where);
    }
  }
  return out;
}

/** Opens the array at the store root for `voxelSize` images, with a hint when it is not an array. */
async function openBareArray(root: zarr.Location<Readable>, location: string, signal?: AbortSignal): Promise<ZarrArray> {
  try {
    return await openZarrArray(root, "", location, signal);
  } catch (err) {
    if (err instanceof CellMapError && err.code === "NOT_FOUND") {
      throw new CellMapError("NOT_FOUND", "no zarr array here (voxelSize opens a bare array; leave it out to open a multiscale group)", location, { cause: err });
    }
    throw err;
  }
}
