/**
 * `CellMapDataset`: one raw volume plus the label crops of one ground-truth path, served as
 * training samples on a regular grid of patch centres.
 *
 * Decisions (where the Python library was silent or buggy):
 * - Index grid: starts at the sampling box's low corner, steps by the largest requested voxel
 *   size per axis, includes both ends (`floor((hi-lo)/step + 1e-9) + 1` centres per axis); a
 *   crop exactly the patch size gives one sample. C order over z, y, x. Out-of-range indices
 *   throw `OUT_OF_RANGE` (the Python library wrapped or clamped them).
 * - 2-D: a 2-entry patch shape `[y, x]` trains on z-slices only (one dataset, one slicing
 *   direction; Python built three datasets, one per axis). The slice is read from 3-D data as a
 *   `[1, y, x]` patch (2-D data works too). With a 2-entry scale the level is chosen by y/x alone
 *   and z steps by the data's own section spacing, so a patch is one stored section, never an
 *   interpolation between sections (anisotropic EM: 16 nm sections, 4 nm pixels; Python picks the
 *   same level). Samples are `[1, y, x]` / `[nClasses, y, x]` and the
 *   spatial augmentation acts in the y-x plane (rotation about z only). Explicit 3-entry shapes
 *   such as `[1, 128, 128]` keep their singleton axis (`[1, 1, 128, 128]`), unlike Python.
 * - Unannotated classes: `EmptyImage` filled with `emptyValue` (the Python library crashed on them); classes with
 *   a `classRelationDict` entry become 0 wherever an annotated related class is > 0 (after its
 *   value transform), `emptyValue` elsewhere, whatever the class order.
 * - Randomness: spatial draw from `sampleRng(seed, epoch, idx, RngStream.spatial)`; raw value
 *   transforms share `RngStream.rawValue` (input arrays in order), target value transforms share
 *   `RngStream.targetValue` (target arrays, then classes, in order). All reads of a sample run
 *   concurrently; transforms run afterwards in that fixed order.
 */
import { DATASET_DEFAULTS } from "./defaults.js";
import { checked, parseOptions } from "../options/options.js";
import { datasetOptionsSchema } from "./options.js";
import { CellMapError, invalid } from "../errors.js";
import { intersectBoxes, type Box } from "../geometry/level.js";
import { EmptyImage } from "../image/empty.js";
import { CellMapImage, keepIn } from "../image/image.js";
import { Rng, RngStream, sampleRng } from "../util/rng.js";
import { MutableSubsetRandomSampler } from "../sampling/samplers.js";
import { type AnyTensor, isFloat32Tensor, type OutputDtype, TENSOR_ARRAYS, type TensorData } from "../tensor.js";
import { PerClass } from "../transforms/augment/compose.js";
import { Deformation } from "../transforms/elastic.js";
import { SectionShift, SumDisplacement } from "../transforms/section-shift.js";
import { drawSpatialTransform, type ParsedSpatialConfig, type SpatialDraw } from "../transforms/spatial.js";
import type { ValueTransform } from "../transforms/types.js";
import { weightsFromCounts, zeroCounts, type ClassCount, type ClassCounts } from "./counts.js";
import { describeDataset, optionsFromDescription, type CellMapDatasetDescription } from "./description.js";
import { checkOptions, resolveTargetTransforms, resolveTransform, type CellMapDatasetOptions, type Resolved } from "./options.js";
import { classPath, splitTargetPath, type TargetPath } from "./target-path.js";
import {
  checkIndex,
  type AnyDatasetItem,
  type ArraySpecs,
  type DatasetItem,
  type DatasetLike,
  type GetOptions,
  type LevelInfo,
  type SampleBase,
  type SampleMetadata,
  type ForegroundReport,
} from "./types.js";

// Options and descriptions live in their own modules; these names stay importable from here.
export type { CellMapDatasetDescription } from "./description.js";
export type { CellMapDatasetOptions } from "./options.js";

/** An image a dataset reads (any output dtype). */
type SourceImage = CellMapImage<OutputDtype>;

/** Where one class of one target array comes from. */
type ClassSource = { kind: "image"; image: SourceImage } | { kind: "empty"; image: EmptyImage } | { kind: "inferred"; related: number[] };

interface TargetArray {
  array: Resolved;
  /** Raw-only mode: the raw image. */
  raw: SourceImage | null;
  classes: ClassSource[];
}

function sizeOf3(shape: readonly number[]): number {
  return shape[0] * shape[1] * shape[2];
}

/** Class counts of an image, read once (failed reads are retried next time). */
function memoCount(memo: Map<SourceImage, Promise<ClassCount>>, image: SourceImage, signal?: AbortSignal): Promise<ClassCount> {
  let p = memo.get(image);
  if (!p) {
    p = image.classCounts(signal);
    memo.set(image, p);
    p.catch(() => memo.delete(image));
  }
  return p;
}

/**
 * One raw volume plus its label crops. Open with {@link CellMapDataset.open}. `S` is the type of
 * its samples: `open` infers it from the array specs (a {@link DatasetItem} with one tensor per
 * input and target name); {@link AnyDatasetItem} when the names are not known statically.
 */
export class CellMapDataset<S extends SampleBase = AnyDatasetItem> implements DatasetLike<S> {
  readonly kind = "CellMapDataset";
  readonly rawPath: string;
  readonly targetPath: string | null;
  /** Output class order (empty in raw-only mode). */
  readonly classes: readonly string[];
  /** Whether targets are raw patches (no classes). */
  readonly rawOnly: boolean;
  readonly inputArrays: ArraySpecs;
  readonly targetArrays: ArraySpecs;
  readonly isTrain: boolean;
  readonly pad: boolean;
  readonly emptyValue: number;
  readonly seed: number;
  readonly forceHasData: boolean;
  /** Whether the specs are 2-D (z-slices). */
  readonly twoD: boolean;
  /** Whether an annotated class has foreground (or the check was skipped). */
  readonly hasData: boolean;
  /** Intersection of all sources' bounding boxes (nm, z y x); null if empty. */
  readonly boundingBox: Box | null;
  /**
   * Where patch centres may lie (nm, z y x); null if no valid centre. With `pad`: the
   * intersection of the target images' sampling boxes (every target patch inside its labels)
   * and the inputs' bounding boxes (raw is padded where it runs out). Without: the
   * intersection of every source's sampling box.
   */
  readonly samplingBox: Box | null;
  /** Grid step per axis: the largest requested voxel size (nm, z y x). */
  readonly step: number[];
  /** Number of centres per axis (z y x). */
  readonly gridShape: number[];
  readonly length: number;

  private countsPromise: Promise<ClassCounts> | null = null;

  private constructor(
    private readonly opts: CellMapDatasetOptions,
    private readonly inputs: { array: Resolved; image: SourceImage }[],
    private readonly targets: TargetArray[],
    private readonly spatial: ParsedSpatialConfig | null,
    private readonly rawTransform: ValueTransform | null,
    private readonly targetTransform: ValueTransform | null,
    private readonly levels: Record<string, LevelInfo>,
    /** Memoised class counts per annotated image. */
    private readonly counts: Map<SourceImage, Promise<ClassCount>>,
    hasData: boolean,
  ) {
    this.rawPath = opts.rawPath;
    this.targetPath = opts.targetPath ?? null;
    this.rawOnly = !opts.classes;
    this.classes = opts.classes ? [...opts.classes] : [];
    this.inputArrays = Object.fromEntries(inputs.map((i) => [i.array.name, i.array.spec]));
    this.targetArrays = Object.fromEntries(targets.map((t) => [t.array.name, t.array.spec]));
    this.isTrain = opts.isTrain ?? false;
    this.pad = opts.pad ?? DATASET_DEFAULTS.pad;
    this.emptyValue = opts.emptyValue ?? DATASET_DEFAULTS.emptyValue;
    this.seed = opts.seed ?? DATASET_DEFAULTS.seed;
    this.forceHasData = opts.forceHasData ?? DATASET_DEFAULTS.forceHasData;
    this.twoD = inputs[0].array.spec.shape.length === 2;
    this.hasData = hasData;
    const images = this.images();
    this.boundingBox = intersectBoxes(images.map((i) => i.boundingBox));
    const targetImages = images.slice(inputs.length);
    // With padding, the targets decide where centres may lie: every target patch inside its
    // labels (a crop smaller than the patch gives its middle), the centre inside the raw data,
    // whose patch is padded where it runs out. Without padding, every patch must fit its source.
    this.samplingBox =
      this.pad && targetImages.length > 0
        ? intersectBoxes([...targetImages.map((i) => i.samplingBox), ...inputs.map((i) => i.image.boundingBox)])
        : intersectBoxes(images.map((i) => i.samplingBox));
    const all = [...inputs.map((i) => i.array), ...targets.map((t) => t.array)];
    this.step = [0, 1, 2].map((a) => Math.max(...all.map((r) => r.scale[a])));
    const sb = this.samplingBox;
    this.gridShape = sb ? [0, 1, 2].map((a) => (sb.hi[a] >= sb.lo[a] ? Math.floor((sb.hi[a] - sb.lo[a]) / this.step[a] + 1e-9) + 1 : 0)) : [0, 0, 0];
    const n = this.gridShape[0] * this.gridShape[1] * this.gridShape[2];
    if (!Number.isSafeInteger(n)) throw new CellMapError("UNSUPPORTED", `dataset has ${n} samples, more than 2^53`, this.rawPath);
    this.length = hasData ? n : 0;
  }

  /**
   * Opens every source concurrently (metadata reads only) and, unless `forceHasData`, reads the
   * annotated classes' counts (from s0 attributes when present) until one has foreground.
   */
  static async open<I extends ArraySpecs, T extends ArraySpecs = {}>(opts: CellMapDatasetOptions<I, T>): Promise<CellMapDataset<DatasetItem<I, T>>> {
    opts = parseOptions(datasetOptionsSchema, opts, "CellMapDataset.open");
    const { inputSpecs, targetSpecs, classes, relations, spatial } = checkOptions(opts);
    let target: TargetPath | null = null;
    if (classes && targetSpecs.length > 0) {
      if (typeof opts.targetPath !== "string") throw invalid("targetPath", "targetPath is required when classes and targetArrays are given");
      target = splitTargetPath(opts.targetPath);
    }
    const rawTransform = await resolveTransform(opts.rawValueTransforms, "rawValueTransforms");
    const targetTransform = await resolveTargetTransforms(opts.targetValueTransforms, classes);

    const pad = opts.pad ?? DATASET_DEFAULTS.pad;
    const emptyValue = opts.emptyValue ?? DATASET_DEFAULTS.emptyValue;
    const common = { axisOrder: "zyx", pad, http: opts.http, signal: opts.signal } as const;
    const openRaw = (r: Resolved) =>
      CellMapImage.open<OutputDtype>(
        checked({
          ...common,
          path: opts.rawPath,
          targetClass: "raw",
          targetScale: r.scale,
          targetVoxelShape: r.shape,
          sections: r.sections,
          padValue: 0,
          interpolation: r.dtype === "float32" || r.dtype === "float64" ? "linear" : "nearest",
          outputDtype: r.dtype,
        }),
      );

    const inputsP = Promise.all(inputSpecs.map(async ({ r }) => ({ array: r, image: await openRaw(r) })));
    const targetsP = Promise.all(
      targetSpecs.map(async ({ r }): Promise<TargetArray> => {
        if (!classes) return { array: r, raw: await openRaw(r), classes: [] };
        const annotated = new Set(target!.classes);
        const sources = await Promise.all(
          classes.map(async (c): Promise<ClassSource> => {
            if (annotated.has(c)) {
              const image = await CellMapImage.open<OutputDtype>(
                checked({
                  ...common,
                  path: classPath(target!, c),
                  targetClass: c,
                  targetScale: r.scale,
                  targetVoxelShape: r.shape,
                  sections: r.sections,
                  padValue: emptyValue,
                  interpolation: "nearest",
                  outputDtype: r.dtype,
                }),
              ).catch((err: unknown) => {
                if (!(err instanceof CellMapError) || err.code !== "NOT_FOUND") throw err;
                throw new CellMapError("NOT_FOUND", `class ${JSON.stringify(c)} of ${opts.targetPath} is not on disk (${err.message})`, classPath(target!, c), { cause: err });
              });
              return { kind: "image", image };
            }
            const related = (Object.hasOwn(relations, c) ? relations[c] : []).filter((x) => annotated.has(x) && classes.includes(x));
            if (related.length > 0) return { kind: "inferred", related: [...new Set(related)].map((x) => classes.indexOf(x)) };
            return {
              kind: "empty",
              image: new EmptyImage({ targetClass: c, targetScale: r.scale, targetVoxelShape: r.shape, emptyValue, axisOrder: "zyx", outputDtype: r.dtype }),
            };
          }),
        );
        return { array: r, raw: null, classes: sources };
      }),
    );
    const [inputs, targets] = await Promise.all([inputsP, targetsP]);
    // Sections: an array's z step is the section spacing of the data it reads (the largest, if
    // its class images differ); arrays without data of their own (all classes empty) follow raw.
    const zOf = (images: SourceImage[]) => (images.length ? Math.max(...images.map((i) => i.outputScale[0])) : undefined);
    const rawZ = zOf(inputs.map((i) => i.image))!;
    for (const i of inputs) if (i.array.sections) i.array.scale[0] = i.image.outputScale[0];
    for (const t of targets) {
      if (!t.array.sections) continue;
      const own = t.raw ? [t.raw] : t.classes.flatMap((s) => (s.kind === "image" ? [s.image] : []));
      t.array.scale[0] = zOf(own) ?? rawZ;
    }

    const levels: Record<string, LevelInfo> = {};
    const lv = (img: SourceImage): LevelInfo => ({ path: img.scaleLevel.path, index: img.scaleLevel.index, scale: [...img.scaleLevel.scale] });
    for (const i of inputs) levels[i.array.name] = lv(i.image);
    for (const t of targets) {
      if (t.raw) levels[t.array.name] = lv(t.raw);
      t.classes.forEach((s, k) => {
        if (s.kind === "image") levels[`${t.array.name}/${classes![k]}`] = lv(s.image);
      });
    }

    // Python's has_data: a crop whose annotated classes are all empty has nothing to learn from.
    const counts = new Map<SourceImage, Promise<ClassCount>>();
    let hasData = true;
    if (opts.knownHasData !== undefined) hasData = opts.knownHasData;
    else if (!(opts.forceHasData ?? false) && classes && targets.length > 0) {
      hasData = false;
      for (const s of targets[0].classes) {
        if (s.kind !== "image") continue;
        if ((await memoCount(counts, s.image, opts.signal)).foreground > 0) {
          hasData = true;
          break;
        }
      }
    }
    return new CellMapDataset<DatasetItem<I, T>>(opts, inputs, targets, spatial, rawTransform, targetTransform, levels, counts, hasData);
  }

  /** Re-opens a dataset from {@link CellMapDataset.describe} output (e.g. in a worker thread). */
  static async fromDescription(desc: CellMapDatasetDescription, opts: { signal?: AbortSignal } = {}): Promise<CellMapDataset> {
    return CellMapDataset.open(optionsFromDescription(desc, opts.signal));
  }

  /** JSON description; transforms are stored as their `toJSON()` specs. */
  describe(): CellMapDatasetDescription {
    return describeDataset({
      opts: this.opts,
      rawPath: this.rawPath,
      targetPath: this.targetPath,
      classes: this.rawOnly ? null : [...this.classes],
      inputArrays: this.inputArrays,
      targetArrays: this.targetArrays,
      rawTransform: this.rawTransform,
      targetTransform: this.targetTransform,
      isTrain: this.isTrain,
      forceHasData: this.forceHasData,
      emptyValue: this.emptyValue,
      pad: this.pad,
      seed: this.seed,
      hasData: this.hasData,
    });
  }

  private images(): SourceImage[] {
    const out = this.inputs.map((i) => i.image);
    for (const t of this.targets) {
      if (t.raw) out.push(t.raw);
      for (const s of t.classes) if (s.kind === "image") out.push(s.image);
    }
    return out;
  }

  private countOf(image: SourceImage, signal?: AbortSignal): Promise<ClassCount> {
    return memoCount(this.counts, image, signal);
  }

  /** `length > 0`, or true with `forceHasData`. */
  verify(): boolean {
    return this.forceHasData || this.length > 0;
  }

  /** Pyramid level read per source (keys as in sample metadata `levels`). */
  sourceLevels(): Record<string, LevelInfo> {
    return Object.fromEntries(Object.entries(this.levels).map(([k, v]) => [k, { ...v, scale: [...v.scale] }]));
  }

  /** Source of each class in the first target array: annotated image, inferred, or empty. */
  classSources(): Record<string, "annotated" | "inferred" | "empty"> {
    const out: Record<string, "annotated" | "inferred" | "empty"> = {};
    const t = this.targets[0];
    if (!t || this.rawOnly) return out;
    t.classes.forEach((s, k) => (out[this.classes[k]] = s.kind === "image" ? "annotated" : s.kind));
    return out;
  }

  /** Whether each class (in `classes` order) is annotated in this crop (ClassBalancedSampler rows). */
  cropClassRow(): boolean[] {
    const s = this.classSources();
    return this.classes.map((c) => s[c] === "annotated");
  }

  /** Centre (nm, z y x) of sample `i`. */
  center(i: number): number[] {
    checkIndex(i, this.length, this.rawPath);
    const sb = this.samplingBox!;
    const [, ny, nx] = this.gridShape;
    const ix = i % nx;
    const rest = Math.floor(i / nx);
    const iy = rest % ny;
    const iz = Math.floor(rest / ny);
    return [iz, iy, ix].map((k, a) => sb.lo[a] + k * this.step[a]);
  }

  /** The spatial draw of sample `i` in `epoch` (null when not training or no config). */
  spatialDraw(i: number, epoch = 0): SpatialDraw | null {
    if (!this.isTrain || !this.spatial) return null;
    return drawSpatialTransform(this.spatial, sampleRng(this.seed, epoch, i, RngStream.spatial), this.twoD ? ["y", "x"] : ["z", "y", "x"]);
  }

  /**
   * Whether sample `i` of `epoch` seeks the foreground, and the generator of its redraws (null:
   * it does not). A function of (seed, epoch, index) only.
   */
  private foregroundSeek(i: number, epoch: number): { minFraction: number; classes: number[]; maxTries: number } | null {
    const fg = this.opts.foreground;
    if (!fg || !this.isTrain || this.targets.length === 0 || this.rawOnly) return null;
    if (sampleRng(this.seed, epoch, i, RngStream.foreground).random() >= (fg.p ?? 1)) return null;
    const classes = (fg.classes ?? this.classes).map((c) => this.classes.indexOf(c));
    return { minFraction: fg.minFraction, classes, maxTries: fg.maxTries ?? 20 };
  }

  /** The centre index of try `k` (> 0) of sample `i`: from the stream of (seed, epoch, index, try). */
  private redraw(i: number, epoch: number, k: number): number {
    return Math.floor(new Rng(this.seed, epoch, i, RngStream.foreground, k).random() * this.length);
  }

  /**
   * Fraction of the voxels of the first target array's patch that are foreground: > 0 in one of
   * `classes` (read values, before target transforms; NaN is unknown, not foreground).
   */
  private foregroundFraction(reads: (AnyTensor | null)[], classes: number[]): number {
    const parts = classes.map((k) => reads[k]?.data).filter((d): d is TensorData => d !== undefined);
    if (parts.length === 0) return 0;
    const n = parts[0].length;
    let fg = 0;
    for (let v = 0; v < n; v++) {
      for (const d of parts) {
        if (d[v] > 0) {
          fg++;
          break;
        }
      }
    }
    return n > 0 ? fg / n : 0;
  }

  /**
   * The elastic deformation of sample `i` in `epoch` (null: none), from the stream of (seed,
   * epoch, index, elastic): one uniform for `p`, then the control displacements. Its control
   * grid spans the largest patch of the sample, so every array reads through the same field.
   */
  elasticDraw(i: number, epoch = 0): Deformation | null {
    const cfg = this.isTrain ? this.spatial?.elastic : null;
    if (!cfg) return null;
    const rng = sampleRng(this.seed, epoch, i, RngStream.elastic);
    if (rng.random() >= (cfg.p ?? 1)) return null;
    return Deformation.draw(cfg, rng, this.halfExtent());
  }

  /**
   * The section misalignment of sample `i` in `epoch` (null: none), from the stream of (seed,
   * epoch, index, sectionShift); a slip moves one section of the first input array.
   */
  sectionShiftDraw(i: number, epoch = 0): SectionShift | null {
    const cfg = this.isTrain ? this.spatial?.sectionShift : null;
    if (!cfg) return null;
    return SectionShift.draw(cfg, sampleRng(this.seed, epoch, i, RngStream.sectionShift), this.halfExtent()[0], this.inputs[0].array.scale[0]);
  }

  /** Half the extent (nm, z y x) of the sample's largest patch. */
  private halfExtent(): number[] {
    const arrays = [...this.inputs.map((x) => x.array), ...this.targets.map((t) => t.array)];
    return [0, 1, 2].map((a) => Math.max(...arrays.map((r) => ((r.shape[a] - 1) / 2) * r.scale[a])));
  }

  /** Reads sample `i` (all sources concurrently), into `opts.into` where given. */
  async get(i: number, opts: GetOptions = {}): Promise<S> {
    const epoch = opts.epoch ?? 0;
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw invalid("epoch", `epoch must be a non-negative integer, got ${epoch}`);
    let center = this.center(i);
    const deformation = this.elasticDraw(i, epoch);
    const misalignment = this.sectionShiftDraw(i, epoch);
    const affine = this.spatialDraw(i, epoch);
    const draw =
      affine && (deformation || misalignment)
        ? { ...affine, ...(deformation && { elastic: deformation.report() }), ...(misalignment && { sectionShift: { ...misalignment.draw } }) }
        : affine;
    const displacement = deformation && misalignment ? new SumDisplacement([deformation, misalignment]) : (deformation ?? misalignment);
    const base = { spatialTransform: draw ? draw.matrix : null, displacement, signal: opts.signal, store: opts.store };
    // Destination of each read: its slot of the batch (classes stacked in place), or new.
    const slot = (r: Resolved, channels: number): TensorData | null => {
      const v = opts.into?.[r.name];
      return v && v.length === channels * sizeOf3(r.shape) && v instanceof TENSOR_ARRAYS[r.dtype] ? v : null;
    };
    const inputViews = this.inputs.map((s) => slot(s.array, 1));
    const targetViews = this.targets.map((t) => slot(t.array, t.raw ? 1 : t.classes.length));
    const classView = (a: number, k: number): TensorData | undefined => {
      const v = targetViews[a];
      if (!v) return undefined;
      const size = v.length / this.targets[a].classes.length;
      return v.subarray(k * size, (k + 1) * size);
    };
    const readInputs = (c: number[]) => Promise.all(this.inputs.map((s, k) => s.image.read(c, { ...base, into: inputViews[k] ?? undefined })));
    const readTargets = (c: number[]) =>
      Promise.all(
        this.targets.map((t, a) =>
          t.raw
            ? Promise.all([t.raw.read(c, { ...base, into: targetViews[a] ?? undefined })])
            : Promise.all(
                t.classes.map((s, k) =>
                  s.kind === "image" ? s.image.read(c, { ...base, into: classView(a, k) }) : s.kind === "empty" ? s.image.read(undefined, { into: classView(a, k) }) : null,
                ),
              ),
        ),
      );
    let rawTensors: AnyTensor[];
    let targetTensors: Awaited<ReturnType<typeof readTargets>>;
    let found: ForegroundReport | undefined;
    const seek = this.foregroundSeek(i, epoch);
    if (seek) {
      // Targets first, one centre after another: a centre is kept once its target patch has
      // enough foreground (or at the last try), and only then are the inputs read.
      for (let k = 0; ; k++) {
        const j = k === 0 ? i : this.redraw(i, epoch, k);
        center = this.center(j);
        targetTensors = await readTargets(center);
        const fraction = this.foregroundFraction(targetTensors[0], seek.classes);
        found = { tries: k + 1, index: j, fraction };
        if (fraction >= seek.minFraction || k + 1 >= seek.maxTries) break;
      }
      rawTensors = await readInputs(center);
    } else {
      [rawTensors, targetTensors] = await Promise.all([readInputs(center), readTargets(center)]);
    }

    const item: DatasetItem = { idx: i, metadata: this.metadata(center, i, epoch, draw) };
    if (found) (item.metadata as SampleMetadata).foreground = found;
    const rawRng = sampleRng(this.seed, epoch, i, RngStream.rawValue);
    // Value transforms work on float32; arrays with another outputDtype are served as read.
    const transformed = (tr: ValueTransform | null, t: AnyTensor, rng: Rng, into: TensorData | null | undefined, where: string): AnyTensor =>
      tr && isFloat32Tensor(t) ? keepIn(tr.apply(t, rng), into instanceof Float32Array ? into : null, where) : t;
    this.inputs.forEach((s, k) => {
      item[s.array.name] = this.withChannel(transformed(this.rawTransform, rawTensors[k], rawRng, inputViews[k], s.array.name));
    });
    const tgtRng = sampleRng(this.seed, epoch, i, RngStream.targetValue);
    this.targets.forEach((ta, a) => {
      const reads = targetTensors[a];
      if (ta.raw) {
        item[ta.array.name] = this.withChannel(transformed(this.targetTransform, reads[0]!, tgtRng, targetViews[a], ta.array.name));
        return;
      }
      const per: (AnyTensor | null)[] = ta.classes.map((s, k) => {
        const t = reads[k];
        if (s.kind !== "image" || !t) return t;
        return transformed(this.transformFor(this.classes[k]), t, tgtRng, classView(a, k), `${ta.array.name}/${this.classes[k]}`);
      });
      item[ta.array.name] = this.stackClasses(ta, per, targetViews[a]);
    });
    return item as unknown as S;
  }

  private transformFor(cls: string): ValueTransform | null {
    const t = this.targetTransform;
    if (!t) return null;
    return t instanceof PerClass ? (t.forClass(cls) ?? null) : t;
  }

  /** Spatial shape of a patch tensor as served (2-D: the z singleton dropped). */
  private spatialShape(t: AnyTensor): number[] {
    return this.twoD && t.shape.length === 3 && t.shape[0] === 1 ? t.shape.slice(1) : t.shape;
  }

  private withChannel(t: AnyTensor): AnyTensor {
    return { data: t.data, shape: [1, ...this.spatialShape(t)], sourceDtype: t.sourceDtype, ...(t.dtype && t.dtype !== "float32" && { dtype: t.dtype }) };
  }

  /**
   * Fills inferred classes and stacks the classes into `[nClasses, ...spatial]`. With `into`
   * (the reads already sit in their channels of it) only inferred classes are written.
   */
  private stackClasses(ta: TargetArray, per: (AnyTensor | null)[], into: TensorData | null): AnyTensor {
    // Annotated and empty classes always give a patch (an inferred class needs an annotated one).
    const first = per.find((t): t is AnyTensor => t !== null)!;
    const size = first.data.length;
    const shape = this.spatialShape(first);
    per.forEach((t, k) => {
      if (t && t.data.length !== size) {
        throw new CellMapError(
          "INVALID_ARGUMENT",
          `class ${JSON.stringify(this.classes[k])} patch has ${t.data.length} values, expected ${size} (a target transform changed the size?)`,
          `${ta.array.name}/${this.classes[k]}`,
        );
      }
    });
    const dtype = ta.array.dtype;
    const out: TensorData = into ?? new TENSOR_ARRAYS[dtype](size * per.length);
    ta.classes.forEach((s, k) => {
      const dst = out.subarray(k * size, (k + 1) * size);
      if (s.kind !== "inferred") {
        const src = per[k]!.data;
        if (src.buffer !== dst.buffer || src.byteOffset !== dst.byteOffset) dst.set(src as never); // read in place: nothing to move
        return;
      }
      dst.fill(this.emptyValue);
      for (const r of s.related) {
        const rel = out.subarray(r * size, (r + 1) * size);
        for (let j = 0; j < size; j++) if (rel[j] > 0) dst[j] = 0;
      }
    });
    return { data: out, shape: [per.length, ...shape], sourceDtype: "float32", ...(dtype !== "float32" && { dtype }) };
  }

  private metadata(center: number[], i: number, epoch: number, draw: SpatialDraw | null): SampleMetadata {
    const levels: Record<string, LevelInfo> = {};
    for (const [k, v] of Object.entries(this.levels)) levels[k] = { ...v, scale: [...v.scale] };
    return { rawPath: this.rawPath, targetPath: this.targetPath, center: [...center], index: i, epoch, spatialTransform: draw, levels };
  }

  /**
   * Foreground/background voxels per class, at the first target array's voxel size (the other
   * target arrays view the same crops; adding them up would double count, as the Python library did). Unannotated
   * and inferred classes count 0. Metadata reads only when s0 carries counts.
   */
  classCounts(signal?: AbortSignal): Promise<ClassCounts> {
    if (!this.countsPromise) {
      const p = (async () => {
        const out = zeroCounts(this.classes);
        const t = this.targets[0];
        if (!t || this.rawOnly) return out;
        const got = await Promise.all(t.classes.map((s) => (s.kind === "image" ? this.countOf(s.image, signal) : null)));
        got.forEach((c, k) => {
          if (c) out[this.classes[k]] = { ...c };
        });
        return out;
      })();
      this.countsPromise = p;
      p.catch(() => (this.countsPromise = null));
    }
    return this.countsPromise.then((c) => structuredClone(c));
  }

  /** `background / foreground` per class (1 without foreground). */
  async classWeights(signal?: AbortSignal): Promise<Record<string, number>> {
    return weightsFromCounts(await this.classCounts(signal));
  }

  /**
   * Flat indices of tiles whose target patches cover the sampling box without gaps: per axis
   * every `floor(E / step)` grid points, where `E` is the smallest target patch extent (shape ×
   * scale; the inputs' when there are no targets), plus the last grid point (a final tile
   * shifted inward to end at the far edge). With `pad`, every label voxel of the crop then lies
   * in some tile's target patch; without, every label voxel a target patch can reach. Inputs
   * larger than the targets overlap between tiles.
   */
  validationIndices(): number[] {
    if (this.length === 0) return [];
    const arrays = this.targets.length > 0 ? this.targets.map((t) => t.array) : this.inputs.map((i) => i.array);
    const per = [0, 1, 2].map((a) => {
      const extent = Math.min(...arrays.map((r) => r.shape[a] * r.scale[a]));
      const tile = Math.max(1, Math.floor(extent / this.step[a] + 1e-9));
      const n = this.gridShape[a];
      const pos: number[] = [];
      for (let p = 0; p < n - 1; p += tile) pos.push(p);
      pos.push(n - 1);
      return pos;
    });
    const [, ny, nx] = this.gridShape;
    const out: number[] = [];
    for (const z of per[0]) for (const y of per[1]) for (const x of per[2]) out.push((z * ny + y) * nx + x);
    return out;
  }

  /** A uniform random subset of `numSamples` indices per epoch (`weighted` makes no difference for one dataset). */
  async subsetRandomSampler(numSamples: number, opts: { seed?: number; weighted?: boolean } = {}): Promise<MutableSubsetRandomSampler> {
    return MutableSubsetRandomSampler.uniform(this.length, numSamples, opts.seed ?? this.seed);
  }

  toString(): string {
    return `CellMapDataset(raw=${this.rawPath}, target=${this.targetPath ?? "-"}, classes=[${this.classes.join(",")}], length=${this.length})`;
  }
}
