/**
 * `CellMapDatasetWriter`: tiled inference over a region. It serves the input patches of every
 * tile (like a dataset, so `CellMapDataLoader` can read them, also in worker threads) and writes
 * the model's outputs into one OME-NGFF image per class (see {@link ImageWriter}).
 *
 * Layout: with one target array, class `c` goes to `targetPath/<c>`; with several, to
 * `targetPath/<array>/<c>` (Python wrote every array to the same path). Empty zarr
 * groups are written from the `.zarr` directory in `targetPath` (or `targetPath` itself) down.
 * `targetPath` may be an `s3://` URL: the images are then written to the bucket (one PUT per
 * chunk), with the `http` options (also those of `rawPath`) signing the requests.
 *
 * Tiles: the first target array's tiling (tiling.ts) defines the index space; the other target
 * arrays must tile the region identically (same tile grid and centres), else `INVALID_ARGUMENT`.
 * Sample `i` is tile `i` — or, after `resume: true`, the `i`-th tile not written yet, so a resumed
 * job iterates only the missing tiles; its `describe()` carries that list to worker threads.
 * Input patches are centred on the tile's window centre, read with zero padding and linear
 * interpolation; bounds keys are axis names, so their order does not matter.
 *
 * `write(idx, values)` takes the sample index (or the batch's index list) and, per key:
 * - a class name (or `"<array>/<class>"` with several target arrays): `[N,] [c,] ...window`;
 * - a target array name: `[N,] nModelClasses, [c,] ...window`, channel `k` = `modelClasses[k]`
 *   (default `classes`; classes the model predicts but the writer does not keep are skipped).
 * Size-1 axes are ignored, so `[N, 1, z, y, x]` works for one class; `idx` and `metadata` keys are
 * skipped, so a batch-shaped object can be passed. Everything is validated before anything is
 * written.
 */
import * as path from "node:path";
import { defaultRawTransform } from "../dataset/defaults.js";
import { parseOptions } from "../options/options.js";
import { datasetWriterOptionsSchema, type CellMapDatasetWriterOptions } from "./dataset-writer-options.js";

export type { CellMapDatasetWriterOptions, WriterArraySpec } from "./dataset-writer-options.js";
import { CellMapError, invalid } from "../errors.js";
import { CellMapImage } from "../image/image.js";
import { RngStream, sampleRng } from "../util/rng.js";
import { MutableSubsetRandomSampler } from "../sampling/samplers.js";
import type { HttpStoreOptions } from "../store/http.js";
import { outputLocation } from "../store/writable.js";
import type { Tensor } from "../tensor.js";
import { loadTransform } from "../transforms/registry.js";
import type { TransformSpec, ValueTransform } from "../transforms/types.js";
import type { ClassCounts } from "../dataset/counts.js";
import {
  checkIndex,
  registerDescriptionKind,
  type AnyDatasetItem,
  type ArraySpec,
  type ArraySpecs,
  type DatasetDescription,
  type DatasetItem,
  type DatasetLike,
  type GetOptions,
  type LevelInfo,
  type SampleBase,
  type SampleMetadata,
} from "../dataset/types.js";
import { ImageWriter, tileValues } from "./image-writer.js";

/**
 * A sample of a writer: one float32 `Tensor` per input array name (`I`: the input array specs),
 * plus `idx` and `metadata`; {@link AnyDatasetItem} when the names are not known statically.
 */
export type WriterItem<I extends ArraySpecs = ArraySpecs> = string extends keyof I
  ? AnyDatasetItem
  : { [K in "idx" | "metadata" | keyof I]: K extends "idx" ? number : K extends "metadata" ? SampleMetadata : Tensor };

/** Serialised form (`describe()`). */
export interface CellMapDatasetWriterDescription extends DatasetDescription {
  kind: "CellMapDatasetWriter";
  version: 1;
  options: Omit<CellMapDatasetWriterOptions, "signal" | "rawValueTransforms" | "overwrite" | "resume" | "attach" | "http"> & {
    rawValueTransforms: TransformSpec | null;
    http: Omit<HttpStoreOptions, "fetch"> | null;
  };
}

const RESERVED = new Set(["idx", "metadata"]);
/** Tile writes in flight per `write` call. */
const WRITE_CONCURRENCY = 8;

/** `[start, end)` ranges of an ascending id list. */
function toRanges(ids: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const id of ids) {
    const last = out[out.length - 1];
    if (last && last[1] === id) last[1] = id + 1;
    else out.push([id, id + 1]);
  }
  return out;
}

function fromRanges(r: readonly [number, number][], count: number): number[] {
  const out: number[] = [];
  for (const [a, b] of r) {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b > count || a >= b) throw invalid("tiles", `bad tile range [${a}, ${b}) for ${count} tiles`);
    for (let i = a; i < b; i++) out.push(i);
  }
  return out;
}

/** The location from which parent groups are written: the last `*.zarr` component, else `dir` (a path or an `s3://` URL). */
function zarrRoot(dir: string): string {
  const sep = /^s3:\/\//i.test(dir) ? "/" : path.sep;
  const parts = dir.split(sep);
  for (let i = parts.length - 1; i >= 0; i--) if (parts[i].endsWith(".zarr")) return parts.slice(0, i + 1).join(sep) || sep;
  return dir;
}

/** `child` below the output location `base` (a path or an `s3://` URL). */
function below(base: string, ...child: string[]): string {
  return /^s3:\/\//i.test(base) ? [base, ...child].join("/") : path.join(base, ...child);
}

interface Input {
  name: string;
  spec: ArraySpec;
  image: CellMapImage;
}

/**
 * Tiled inference writer. Open with {@link CellMapDatasetWriter.open}. `S` is the type of the
 * samples it serves ({@link WriterItem} of its input arrays).
 */
export class CellMapDatasetWriter<S extends SampleBase = AnyDatasetItem> implements DatasetLike<S> {
  readonly kind = "CellMapDatasetWriter";
  readonly rawPath: string;
  readonly targetPath: string;
  readonly classes: readonly string[];
  readonly modelClasses: readonly string[];
  readonly inputArrays: ArraySpecs;
  readonly targetArrays: ArraySpecs;
  /** Number of tiles served (all tiles, or the unwritten ones after `resume`). */
  readonly length: number;
  /** Total number of tiles of the region. */
  readonly tileCount: number;
  /** Image writers: `writers[array][class]`. */
  readonly writers: Readonly<Record<string, Readonly<Record<string, ImageWriter>>>>;

  private constructor(
    private readonly opts: CellMapDatasetWriterOptions,
    private readonly inputs: Input[],
    writers: Record<string, Record<string, ImageWriter>>,
    private readonly primary: ImageWriter,
    private readonly tiles: number[] | null,
    private readonly transform: ValueTransform | null,
  ) {
    this.rawPath = opts.rawPath;
    this.targetPath = opts.targetPath;
    this.classes = [...opts.classes];
    this.modelClasses = [...(opts.modelClasses ?? opts.classes)];
    this.inputArrays = structuredClone(opts.inputArrays);
    this.targetArrays = structuredClone(opts.targetArrays);
    this.writers = writers;
    this.tileCount = primary.tileCount;
    this.length = tiles ? tiles.length : primary.tileCount;
  }

  /**
   * Opens the raw inputs, creates (or resumes) one image per target array and class, and checks
   * that all target arrays share one tiling.
   */
  static async open<I extends ArraySpecs>(opts: CellMapDatasetWriterOptions<I>): Promise<CellMapDatasetWriter<WriterItem<I>>> {
    opts = parseOptions(datasetWriterOptionsSchema, opts, "CellMapDatasetWriter.open");
    if (typeof opts?.rawPath !== "string" || opts.rawPath.length === 0) throw invalid("rawPath", "rawPath must be a non-empty string");
    if (typeof opts.targetPath !== "string" || opts.targetPath.length === 0) throw invalid("targetPath", "targetPath must be a non-empty string");
    const classes = opts.classes;
    if (!Array.isArray(classes) || classes.length === 0 || classes.some((c) => typeof c !== "string" || c.length === 0 || c.includes("/"))) {
      throw invalid("classes", "classes must be a non-empty list of names (without '/')");
    }
    const dup = classes.find((c, i) => classes.indexOf(c) !== i);
    if (dup !== undefined) throw invalid("classes", `class ${JSON.stringify(dup)} listed twice`);
    const model = opts.modelClasses ?? classes;
    if (!Array.isArray(model) || model.some((c, i) => model.indexOf(c) !== i)) throw invalid("modelClasses", "modelClasses must be a list of distinct names");
    const notModelled = classes.find((c) => !model.includes(c));
    if (notModelled) throw invalid("modelClasses", `class ${JSON.stringify(notModelled)} is not in modelClasses`);

    const inputNames = Object.keys(opts.inputArrays ?? {});
    const targetNames = Object.keys(opts.targetArrays ?? {});
    if (inputNames.length === 0) throw invalid("inputArrays", "inputArrays must name at least one array");
    if (targetNames.length === 0) throw invalid("targetArrays", "targetArrays must name at least one array");
    for (const n of [...inputNames, ...targetNames]) {
      if (RESERVED.has(n) || n.length === 0 || n.includes("/")) throw invalid(n, `array name ${JSON.stringify(n)} is reserved or invalid`);
      if (classes.includes(n)) throw invalid(n, `array name ${JSON.stringify(n)} is also a class name`);
    }
    const clash = targetNames.find((n) => inputNames.includes(n));
    if (clash) throw invalid("targetArrays", `array ${JSON.stringify(clash)} is both an input and a target`);

    const d = (opts.targetArrays[targetNames[0]]?.shape ?? []).length;
    if (d !== 2 && d !== 3) throw invalid(`targetArrays.${targetNames[0]}.shape`, `target shapes must have 2 (y, x) or 3 (z, y, x) entries`);
    const axisOrder = opts.axisOrder ?? (d === 3 ? "zyx" : "yx");
    if (axisOrder !== (d === 3 ? "zyx" : "yx")) throw invalid("axisOrder", `axisOrder ${JSON.stringify(axisOrder)} does not fit ${d}-D array shapes`);
    const spec = (s: ArraySpec, where: string): { shape: number[]; scale: number[] } => {
      if (typeof s !== "object" || s === null) throw invalid(where, "array spec must be { shape, scale }");
      if (!Array.isArray(s.shape) || s.shape.length !== d || s.shape.some((v) => !Number.isSafeInteger(v) || v < 1)) {
        throw invalid(`${where}.shape`, `shape must be ${d} positive integers (${axisOrder}), got ${JSON.stringify(s.shape)}`);
      }
      if (!Array.isArray(s.scale) || (s.scale.length !== d && s.scale.length !== 1) || s.scale.some((v) => !(typeof v === "number" && Number.isFinite(v) && v > 0))) {
        throw invalid(`${where}.scale`, `scale must be ${d} (or 1) positive numbers in nm, got ${JSON.stringify(s.scale)}`);
      }
      if (s.outputDtype !== undefined && s.outputDtype !== "float32") {
        const why = where.startsWith("inputArrays") ? "the writer serves float32 input patches" : "the writer's dtype option sets the type it writes";
        throw invalid(`${where}.outputDtype`, `outputDtype ${JSON.stringify(s.outputDtype)} is not supported here: ${why}`);
      }
      return { shape: [...s.shape], scale: s.scale.length === d ? [...s.scale] : new Array<number>(d).fill(s.scale[0]) };
    };

    const given = opts.rawValueTransforms === undefined ? defaultRawTransform() : opts.rawValueTransforms;
    const transform = given ? (typeof (given as ValueTransform).apply === "function" ? (given as ValueTransform) : await loadTransform(given, "rawValueTransforms")) : null;

    const inputs = await Promise.all(
      inputNames.map(async (name): Promise<Input> => {
        const s = spec(opts.inputArrays[name], `inputArrays.${name}`);
        const image = await CellMapImage.open({
          path: opts.rawPath,
          targetClass: "raw",
          targetScale: s.scale,
          targetVoxelShape: s.shape,
          pad: true,
          padValue: 0,
          interpolation: "linear",
          axisOrder,
          http: opts.http,
          signal: opts.signal,
        });
        return { name, spec: structuredClone(opts.inputArrays[name]), image };
      }),
    );

    const extra = Object.keys(opts.targetBounds ?? {}).find((k) => !targetNames.includes(k));
    if (extra !== undefined) throw invalid(`targetBounds.${extra}`, `targetBounds names ${JSON.stringify(extra)}, which is not a target array (${targetNames.join(", ")})`);
    const target = outputLocation(opts.targetPath, "targetPath");
    const root = zarrRoot(target);
    const writers: Record<string, Record<string, ImageWriter>> = {};
    for (const name of targetNames) {
      const t = opts.targetArrays[name];
      const s = spec(t, `targetArrays.${name}`);
      const bounds = opts.targetBounds?.[name];
      if (!bounds) throw invalid(`targetBounds.${name}`, `no targetBounds for target array ${JSON.stringify(name)}`);
      writers[name] = {};
      for (const c of classes) {
        const dir = targetNames.length === 1 ? below(target, c) : below(target, name, c);
        writers[name][c] = await ImageWriter.open({
          path: dir,
          scale: s.scale,
          bounds,
          writeShape: s.shape,
          overlap: opts.overlap,
          blend: opts.blend,
          nChannels: t.nChannels,
          dtype: opts.dtype,
          fillValue: opts.fillValue,
          format: opts.format,
          compressor: opts.compressor,
          pyramid: opts.pyramid,
          pyramidMethod: opts.pyramidMethod,
          overwrite: opts.overwrite,
          resume: opts.resume,
          attach: opts.attach,
          root,
          http: opts.http,
        });
      }
    }
    const primary = writers[targetNames[0]][classes[0]];
    for (const name of targetNames.slice(1)) checkSameTiling(primary, writers[name][classes[0]], name);

    let tiles: number[] | null = null;
    if (opts.tiles) tiles = fromRanges(opts.tiles, primary.tileCount);
    else if (opts.resume && !opts.attach) {
      const all = Object.values(writers).flatMap((w) => Object.values(w));
      tiles = [];
      for (let id = 0; id < primary.tileCount; id++) if (all.some((w) => !w.isTileDone(id))) tiles.push(id);
    }
    return new CellMapDatasetWriter<WriterItem<I>>({ ...opts, classes: [...classes], modelClasses: [...model], axisOrder }, inputs, writers, primary, tiles, transform);
  }

  /** Re-opens a writer from {@link CellMapDatasetWriter.describe} output without touching its output. */
  static async fromDescription(desc: CellMapDatasetWriterDescription, opts: { signal?: AbortSignal } = {}): Promise<CellMapDatasetWriter> {
    if (desc?.kind !== "CellMapDatasetWriter" || desc.version !== 1 || typeof desc.options !== "object") {
      throw invalid("description", `not a version-1 CellMapDatasetWriter description (kind ${JSON.stringify(desc?.kind)})`);
    }
    const o = desc.options;
    return CellMapDatasetWriter.open({ ...o, rawValueTransforms: o.rawValueTransforms, http: o.http ?? undefined, attach: true, signal: opts.signal });
  }

  /** JSON description (the tile list included) for worker threads. */
  describe(): CellMapDatasetWriterDescription {
    const o = this.opts;
    let rawValueTransforms: TransformSpec | null = null;
    if (this.transform) {
      if (typeof this.transform.toJSON !== "function") {
        throw new CellMapError("UNSUPPORTED", "rawValueTransforms has no toJSON(), so the writer cannot be described for workers", "rawValueTransforms");
      }
      rawValueTransforms = this.transform.toJSON();
    }
    let http: Omit<HttpStoreOptions, "fetch"> | null = null;
    if (o.http) {
      const { fetch: _f, ...rest } = o.http;
      http = JSON.parse(JSON.stringify(rest)) as Omit<HttpStoreOptions, "fetch">;
    }
    const plain = <T>(v: T): T => (v === undefined ? v : structuredClone(v));
    return {
      kind: "CellMapDatasetWriter",
      // A worker thread that does not know this kind imports this module, which registers it.
      module: import.meta.url,
      version: 1,
      options: {
        rawPath: o.rawPath,
        targetPath: o.targetPath,
        classes: [...this.classes],
        modelClasses: [...this.modelClasses],
        inputArrays: structuredClone(this.inputArrays),
        targetArrays: structuredClone(o.targetArrays),
        targetBounds: structuredClone(o.targetBounds),
        axisOrder: o.axisOrder,
        rawValueTransforms,
        overlap: plain(o.overlap),
        blend: o.blend,
        dtype: o.dtype,
        fillValue: o.fillValue,
        format: o.format,
        compressor: plain(o.compressor),
        pyramid: o.pyramid,
        pyramidMethod: o.pyramidMethod,
        http,
        tiles: this.tiles ? toRanges(this.tiles) : null,
      },
    };
  }

  /** Tile id served as sample `i`. */
  tileOf(i: number): number {
    checkIndex(i, this.length, this.targetPath);
    return this.tiles ? this.tiles[i] : i;
  }

  /** World centre (nm, API axis order) of sample `i`'s tile. */
  center(i: number): number[] {
    return this.primary.tile(this.tileOf(i)).center;
  }

  /** Input patches of sample `i`: `{ [input]: [1, ...shape], idx: i, metadata }`. */
  async get(i: number, opts: GetOptions = {}): Promise<S> {
    const epoch = opts.epoch ?? 0;
    const tile = this.tileOf(i);
    const center = this.primary.tile(tile).center;
    const reads = await Promise.all(this.inputs.map((s) => s.image.read(center, { signal: opts.signal })));
    const levels: Record<string, LevelInfo> = {};
    for (const s of this.inputs) levels[s.name] = { path: s.image.scaleLevel.path, index: s.image.scaleLevel.index, scale: [...s.image.scaleLevel.scale] };
    const item: DatasetItem = {
      idx: i,
      metadata: { rawPath: this.rawPath, targetPath: this.targetPath, center: [...center], index: tile, epoch, spatialTransform: null, levels },
    };
    const rng = sampleRng(0, epoch, tile, RngStream.rawValue);
    this.inputs.forEach((s, k) => {
      const t: Tensor = this.transform ? this.transform.apply(reads[k], rng) : reads[k];
      item[s.name] = { data: t.data, shape: [1, ...t.shape], sourceDtype: t.sourceDtype };
    });
    return item as unknown as S;
  }

  /**
   * Stores model outputs for sample `idx` (or for each sample of a batch, `idx` being its index
   * list). See the module comment for the accepted keys and shapes.
   */
  async write(idx: number | ArrayLike<number>, values: Record<string, Tensor | Float32Array | unknown>): Promise<void> {
    const batched = typeof idx !== "number";
    const idxs = batched ? Array.from(idx as ArrayLike<number>) : [idx as number];
    const tiles = idxs.map((i) => this.tileOf(i));
    const N = idxs.length;
    if (typeof values !== "object" || values === null) throw invalid("write", "values must be an object of tensors");
    const jobs: [ImageWriter, number, Float32Array][] = [];
    const targetNames = Object.keys(this.writers);
    for (const [key, value] of Object.entries(values)) {
      if (RESERVED.has(key)) continue;
      const lead = batched ? [N] : [];
      if (Object.hasOwn(this.writers, key)) {
        const ws = this.writers[key];
        const first = ws[this.classes[0]];
        const M = this.modelClasses.length;
        const data = tileValues(value as Tensor | Float32Array, [...lead, M, ...first.tileShape], key);
        const size = sizeOfShape(first.tileShape);
        for (let b = 0; b < N; b++) {
          for (const c of this.classes) {
            const ch = this.modelClasses.indexOf(c);
            jobs.push([ws[c], tiles[b], data.subarray((b * M + ch) * size, (b * M + ch + 1) * size)]);
          }
        }
        continue;
      }
      let array: string;
      let cls: string;
      if (key.includes("/")) [array, cls] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      else if (targetNames.length === 1) [array, cls] = [targetNames[0], key];
      else throw invalid(key, `key ${JSON.stringify(key)} is ambiguous with several target arrays; use "<array>/${key}" or the array name`);
      const w = this.writers[array]?.[cls];
      if (!w) {
        throw invalid(key, `unknown key ${JSON.stringify(key)}: expected a class (${this.classes.join(", ")}), a target array (${targetNames.join(", ")}) or "<array>/<class>"`);
      }
      const data = tileValues(value as Tensor | Float32Array, [...lead, ...w.tileShape], key);
      const size = sizeOfShape(w.tileShape);
      for (let b = 0; b < N; b++) jobs.push([w, tiles[b], data.subarray(b * size, (b + 1) * size)]);
    }
    let next = 0;
    const run = async (): Promise<void> => {
      while (next < jobs.length) {
        const [w, t, v] = jobs[next++];
        await w.writeTile(t, v);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, jobs.length) }, run));
  }

  /** Finalizes every image (see {@link ImageWriter.finalize}). */
  async finalize(): Promise<void> {
    for (const ws of Object.values(this.writers)) for (const w of Object.values(ws)) await w.finalize();
  }

  /** Not meaningful for a writer: rejects with `UNSUPPORTED`. */
  async classCounts(): Promise<ClassCounts> {
    throw new CellMapError("UNSUPPORTED", "a dataset writer has no labels to count", this.targetPath);
  }

  /** Not meaningful for a writer: rejects with `UNSUPPORTED`. */
  async classWeights(): Promise<Record<string, number>> {
    throw new CellMapError("UNSUPPORTED", "a dataset writer has no labels to weigh", this.targetPath);
  }

  /** Every sample: tiles do not overlap in what they write. */
  validationIndices(): number[] {
    return Array.from({ length: this.length }, (_, i) => i);
  }

  /** Whether there is anything to write. */
  verify(): boolean {
    return this.length > 0;
  }

  /** A uniform random subset of the samples (e.g. a quick preview run). */
  async subsetRandomSampler(numSamples: number, opts: { seed?: number } = {}): Promise<MutableSubsetRandomSampler> {
    return MutableSubsetRandomSampler.uniform(this.length, numSamples, opts.seed ?? 0);
  }

  toString(): string {
    return `CellMapDatasetWriter(target=${this.targetPath}, classes=[${this.classes.join(",")}], tiles=${this.tileCount}, length=${this.length})`;
  }
}

function sizeOfShape(shape: readonly number[]): number {
  return shape.reduce((p, v) => p * v, 1);
}

/** Other target arrays must cut the region into the same tiles (centres within 1e-6 nm). */
function checkSameTiling(a: ImageWriter, b: ImageWriter, name: string): void {
  const ga = a.tileGrid;
  const gb = b.tileGrid;
  const mismatch = (why: string) =>
    invalid(
      `targetArrays.${name}`,
      `target array ${JSON.stringify(name)} does not tile the region like the first target array (${why}); give every target array the same world window (shape × scale) and bounds`,
    );
  if (ga.length !== gb.length || ga.some((v, i) => v !== gb[i])) throw mismatch(`tile grid [${gb}] vs [${ga}]`);
  const strides = ga.map((_, i) => ga.slice(i + 1).reduce((p, v) => p * v, 1));
  for (let ax = 0; ax < ga.length; ax++) {
    for (let k = 0; k < ga[ax]; k++) {
      const ca = a.tile(k * strides[ax]).center[ax];
      const cb = b.tile(k * strides[ax]).center[ax];
      if (Math.abs(ca - cb) > 1e-6) throw mismatch(`tile ${k} along ${a.axes[ax]} is centred at ${cb} nm vs ${ca} nm`);
    }
  }
}

registerDescriptionKind("CellMapDatasetWriter", (d, o) => CellMapDatasetWriter.fromDescription(d as CellMapDatasetWriterDescription, o));
