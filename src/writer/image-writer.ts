/**
 * `ImageWriter`: writes tiles of model predictions for one class into one OME-NGFF image, on a
 * local disk or in an S3 bucket (`s3://`, AWS or S3-compatible), through the store layer.
 *
 * Layout: a multiscale group at `path` (NGFF 0.4 on Zarr v2 by default, 0.5 on Zarr v3) with
 * arrays `s0` … `s<pyramid>`. Axes are `[c,] [z,] y, x` (`c` only with `nChannels`, type
 * `channel`); spatial axes are in nanometres, `scale` = voxel size and `translation` = the world
 * centre of voxel 0. The voxel grid covers the bounds as {@link gridFromBounds} says.
 *
 * Tiles (tile-plan.ts, tiling.ts): each tile owns exactly one s0 chunk (its *core*; chunk shape
 * = write shape minus twice the overlap, or the whole axis when it is shorter than one window)
 * and the model predicts the tile's *window* (the write shape) around it.
 * - Without overlap, or with `blend: "crop"` (centre-crop stitching), a tile writes its core,
 *   cut out of its window, as one chunk. Tiles never share a chunk, so tiles may be written in
 *   any order and in parallel (threads or processes).
 * - With overlap and `blend: "linear" | "gaussian"`, windows go through the blend store
 *   (blend-store.ts): partial windows in `<path>/.cm-partial/`, each chunk written once all the
 *   windows overlapping it are there. `finalize()` sweeps up chunks whose tiles were written by
 *   other processes and removes `.cm-partial`.
 *
 * Crash safety: every chunk, partial and metadata document is one atomic write of the store: a
 * temp file renamed over its target locally (a killed writer leaves only complete files plus
 * `.cm-tmp-*` files that no reader treats as chunks and `finalize()` deletes), one PUT per object
 * on S3 (nothing partial is ever visible). Chunks are computed from complete inputs only and are
 * a pure function of them, so redoing any step is harmless.
 *
 * Resume (`resume: true`, resume.ts): existing metadata must equal what this writer would write
 * (else `WRITE_CONFLICT`); then a tile counts as written when its chunk exists (no overlap /
 * crop) or when its partial exists or every chunk its window overlaps exists (blending), read
 * from a listing of the output (a directory, or the bucket prefix).
 *
 * Integer dtypes: values are rounded to the nearest integer (`Math.round`, halves up), clipped to
 * the dtype's range, NaN stored as 0. Pyramid levels are computed by `finalize()` from the level
 * below (pyramid.ts; factor 2 on every spatial axis; `mean` by default for float dtypes, `mode`
 * for integers).
 */
import * as zarr from "zarrita";
import { parseOptions } from "../options/options.js";
import { imageWriterOptionsSchema } from "./image-options.js";
import { CellMapError, invalid } from "../errors.js";
import { openWritableStore, type WritableStore } from "../store/writable.js";
import type { Tensor } from "../tensor.js";
import { openZarrArray } from "../zarr/array.js";
import { allocArray, arrayDocuments, groupDocuments, normalizeArraySpec, zarrArrayWriter, type ArrayData, type ZarrArraySpec, type ZarrArrayWriter } from "../zarr/write/index.js";
import type { BlendMode } from "./blend.js";
import { BlendStore } from "./blend-store.js";
import type { DownsampleMethod } from "./downsample.js";
import { castInto, configure, type Config, type ImageWriterOptions, type StoredDtype } from "./image-options.js";
import { multiscalesAttrs, writeParentGroups, type NgffAxis } from "./ome-metadata.js";
import { pyramidLevels, writeDownsampledLevel } from "./pyramid.js";
import { ensureDocuments, Progress } from "./resume.js";
import { TilePlan, tileValues, type TileInfo } from "./tile-plan.js";
import { tileCoords } from "./tiling.js";

export { sameLayout, tileValues, type TileInfo } from "./tile-plan.js";
export type { Bounds, ImageWriterOptions, StoredDtype } from "./image-options.js";

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

/** Writes prediction tiles of one class into one OME-NGFF image. Open with {@link ImageWriter.open}. */
export class ImageWriter {
  /** Where the image is: an absolute directory or an `s3://` URL. */
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
  readonly dtype: StoredDtype;
  readonly fillValue: number;
  readonly format: 2 | 3;
  readonly pyramid: number;
  readonly pyramidMethod: DownsampleMethod;
  /** s0 chunk shape on disk (`[c,] ...core`). */
  readonly chunks: number[];
  /** Every level (s0 first). */
  readonly levels: WrittenLevel[];
  /** Whether tiles are blended through partial windows (overlap with `linear`/`gaussian`). */
  readonly blending: boolean;

  private readonly cfg: Config;
  private readonly plan: TilePlan;
  private readonly store: WritableStore;
  private readonly specs: ZarrArraySpec[];
  private arrays: ZarrArrayWriter[] = [];
  private readonly progress: Progress;
  private readonly blender: BlendStore | null;

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
    this.plan = new TilePlan(cfg);
    this.blending = this.plan.blending;
    this.chunks = this.plan.chunks;
    this.store = openWritableStore(cfg.path, cfg.http).store;

    const lead = cfg.nChannels === null ? [] : [cfg.nChannels];
    this.levels = pyramidLevels(cfg.shape, cfg.scale, cfg.translation, cfg.pyramid).map((l) => ({ ...l, shape: [...lead, ...l.shape] }));
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
    this.progress = new Progress(this.plan, this.store, (id) => this.arrays[0].key(this.plan.diskChunk(id)));
    this.blender = this.blending
      ? new BlendStore({
          plan: this.plan,
          progress: this.progress,
          store: this.store,
          location: cfg.path,
          fillValue: cfg.fillValue,
          writeChunk: (k, values) => this.writeChunk(k, values),
          chunkStored: async (k) => (await this.store.get(this.arrays[0].storeKey(this.plan.diskChunk(k)))) !== undefined,
        })
      : null;
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
    let http: ImageWriterOptions["http"];
    if (c.http) {
      const { fetch: _f, ...rest } = c.http;
      http = JSON.parse(JSON.stringify(rest)) as ImageWriterOptions["http"];
    }
    return {
      path: c.path,
      scale: [...c.scale],
      bounds: structuredClone(c.bounds),
      writeShape: [...c.writeShape],
      overlap: [...c.overlap],
      blend: c.blend,
      ...(c.nChannels !== null && { nChannels: c.nChannels }),
      dtype: c.dtype,
      fillValue: c.fillValue,
      format: c.format,
      compressor: c.compressor,
      pyramid: c.pyramid,
      pyramidMethod: c.pyramidMethod,
      name: c.name,
      attach: true,
      ...(http && { http }),
    };
  }

  /** Number of tiles. */
  get tileCount(): number {
    return this.plan.count;
  }

  /** Tiles per spatial axis. */
  get tileGrid(): number[] {
    return this.plan.toApi(this.plan.t3.gridShape);
  }

  /** Shape of the values of one tile: `[c,] ...writeShape`. */
  get tileShape(): number[] {
    return [...(this.nChannels === null ? [] : [this.nChannels]), ...this.writeShape];
  }

  /** Window, core and world centre of tile `id` (API axis order). */
  tile(id: number): TileInfo {
    return this.plan.tile(id);
  }

  /** Whether tile `id` is known to be written (by this process, or found in the output at open/finalize). */
  isTileDone(id: number): boolean {
    tileCoords(this.plan.t3, id); // range check
    return this.progress.isTileDone(id);
  }

  /** Ids of the tiles not written yet (ascending). */
  pendingTiles(): number[] {
    return this.progress.pending();
  }

  /**
   * Stores the prediction of tile `id`: values `[c,] ...writeShape` (C order; size-1 axes are
   * ignored, so `[1, z, y, x]` model outputs are fine). Writing a tile again replaces it —
   * with blending only while some chunk its window overlaps is still incomplete (finished chunks
   * are final; re-create the output with `overwrite` to redo them).
   */
  async writeTile(id: number, data: Tensor | Float32Array): Promise<void> {
    tileCoords(this.plan.t3, id);
    const values = tileValues(data, this.tileShape, `${this.path}: tile ${id}`);
    if (this.arrays.length === 0) throw new CellMapError("INVALID_ARGUMENT", "writer is not open", this.path);
    if (this.blender) await this.blender.put(id, values);
    else await this.writeCore(id, values);
  }

  /**
   * Completes the output: finishes blended chunks (including tiles written by other processes),
   * checks that every tile is written, removes `.cm-partial` and stray temp files, and computes
   * the pyramid levels. Idempotent; call it once all writers of this output are done.
   * @throws CellMapError `INVALID_ARGUMENT` naming the unwritten tiles.
   */
  async finalize(): Promise<void> {
    await this.progress.scan();
    await this.blender?.finishReady();
    const missing = this.pendingTiles();
    if (missing.length > 0) {
      throw new CellMapError(
        "INVALID_ARGUMENT",
        `cannot finalize: ${missing.length} of ${this.plan.count} tiles are not written (first: ${missing.slice(0, 8).join(", ")}); write them, or re-open with resume: true to continue`,
        this.path,
      );
    }
    await this.blender?.clear();
    for (let l = 1; l <= this.pyramid; l++) {
      const src = await openZarrArray(zarr.root(this.store), `s${l - 1}`, `${this.path}/s${l - 1}`);
      await writeDownsampledLevel(src, this.arrays[l], { channels: this.nChannels !== null, method: this.pyramidMethod, dtype: this.dtype, fillValue: this.fillValue });
    }
    await this.store.sweep("/");
  }

  toString(): string {
    return `ImageWriter(${this.path} @ [${this.scale}] nm, shape [${this.shape}], ${this.tileCount} tiles)`;
  }

  // ---- setup ----

  private async prepare(overwrite: boolean, resume: boolean, attach: boolean): Promise<void> {
    const p = this.path;
    if (!attach) {
      if (overwrite && resume) throw invalid(p, "overwrite and resume cannot both be set");
      const exists = (await this.store.list("/")).length > 0;
      if (exists && overwrite) await this.store.deletePrefix("/");
      else if (exists && !resume) {
        throw new CellMapError("WRITE_CONFLICT", "output already exists; pass overwrite: true to replace it or resume: true to continue it", p);
      }
      if (this.cfg.root) await writeParentGroups(this.cfg.root, p, this.format, { http: this.cfg.http });
      // Arrays first, so a reader never sees multiscales metadata naming a missing array.
      for (const [l, spec] of this.specs.entries()) {
        const docs = await arrayDocuments(normalizeArraySpec(spec, `${p}/s${l}`));
        await ensureDocuments(this.store, `/s${l}`, docs, resume, p);
      }
      await ensureDocuments(this.store, "/", this.groupDocuments(), resume, p);
    }
    this.arrays = this.specs.map((s, l) => zarrArrayWriter({ store: this.store, path: `/s${l}`, location: `${p}/s${l}` }, s));
    if (resume) await this.progress.scan();
  }

  /** The group's metadata documents. */
  private groupDocuments(): Record<string, unknown> {
    const axes: NgffAxis[] = [...(this.nChannels === null ? [] : [{ name: "c", type: "channel" }]), ...this.axes.map((name) => ({ name, type: "space", unit: "nanometer" }))];
    const lead = this.nChannels === null ? [] : [1];
    const lead0 = this.nChannels === null ? [] : [0];
    const attrs = multiscalesAttrs({
      version: this.format === 2 ? "0.4" : "0.5",
      name: this.cfg.name,
      axes,
      levels: this.levels.map((l) => ({ path: l.path, scale: [...lead, ...l.scale], translation: [...lead0, ...l.translation] })),
    });
    return groupDocuments(this.format, attrs);
  }

  // ---- chunk writes ----

  /** Writes s0 chunk `k` from float values `[C, ...chunk]` (cast to the stored dtype). */
  private async writeChunk(k: number, values: Float32Array | Float64Array): Promise<void> {
    let out: ArrayData;
    if (values instanceof Float32Array && this.dtype === "float32") out = values;
    else {
      out = allocArray(this.dtype, values.length);
      castInto(values, out, this.dtype);
    }
    await this.arrays[0].writeChunk(this.plan.diskChunk(k), out);
  }

  /** Cuts the core out of the window and writes it as the tile's chunk. */
  private async writeCore(id: number, values: Float32Array): Promise<void> {
    const chunk = this.plan.windowIsChunk(id) ? values : this.plan.cutCore(id, values, this.fillValue);
    await this.writeChunk(id, chunk);
    this.progress.chunkDone[id] = 1;
  }
}
