/**
 * `CellMapMultiDataset`: several datasets concatenated. Global index `i` belongs to the dataset
 * whose `[offset, offset + length)` range contains it (binary search over cumulative lengths).
 * Unlike Python an empty list is allowed (length 0, `verify()` false).
 */
import type { z } from "zod";
import { valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject, parseOptions } from "../options/options.js";
import { arraySpecsSchema, seedSchema } from "./fields.js";
import { CellMapError } from "../errors.js";
import { ClassBalancedSampler, MutableSubsetRandomSampler, offsetsOf, weightedRandomIndices, weightedSubsetIndices } from "../sampling/samplers.js";
import { sumCounts, weightedForeground, weightsFromCounts, type ClassCounts } from "./counts.js";
import { checkIndex, type AnyDatasetItem, type ArraySpecs, type DatasetDescription, type DatasetLike, type DescriptionContext, type GetOptions, type SampleBase } from "./types.js";

const multiShape = {
  /** Output classes (default: the first dataset's). */
  classes: valueWhere<readonly string[]>((v) => Array.isArray(v) && v.every((c) => typeof c === "string" && c.length > 0), "a list of names").optional(),
  /** Input arrays by name (default: the first dataset's). */
  inputArrays: arraySpecsSchema.optional(),
  /** Target arrays by name (default: the first dataset's). */
  targetArrays: arraySpecsSchema.optional(),
  /** Seed of the samplers built by this object (default 0). */
  seed: seedSchema.optional(),
};

/** The schema of `CellMapMultiDataset`'s options (their only definition). */
export const multiDatasetOptionsSchema: OptionObject<typeof multiShape> = optionObject(multiShape);

/** Options of {@link CellMapMultiDataset}; each defaults to the first dataset's value. */
export type MultiDatasetOptions = z.input<typeof multiDatasetOptionsSchema>;

/** Serialised form (`describe()`). */
export interface CellMapMultiDatasetDescription extends DatasetDescription {
  kind: "CellMapMultiDataset";
  version: 1;
  classes: string[];
  inputArrays: ArraySpecs;
  targetArrays: ArraySpecs;
  seed: number;
  datasets: DatasetDescription[];
}

/** One crop for class-balanced sampling: the classes it annotates and its sample count. */
export interface CropRow {
  annotated: string[];
  size: number;
}

/** Crop rows of a dataset-like object, if it can provide them. */
function cropRowsOf(ds: DatasetLike<SampleBase>): CropRow[] | null {
  const d = ds as DatasetLike<SampleBase> & { cropRows?: () => CropRow[]; cropClassRow?: () => boolean[] };
  if (typeof d.cropRows === "function") return d.cropRows();
  if (typeof d.cropClassRow === "function") {
    const row = d.cropClassRow();
    return [{ annotated: ds.classes.filter((_, k) => row[k]), size: ds.length }];
  }
  return null;
}

function sameSpecs(a: ArraySpecs, b: ArraySpecs): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return JSON.stringify(ka) === JSON.stringify(kb) && ka.every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
}

/**
 * Concatenation of datasets with one global index space. `S` is the sample type of the datasets
 * (inferred from them: datasets opened with literal array specs give typed samples).
 */
export class CellMapMultiDataset<S extends SampleBase = AnyDatasetItem> implements DatasetLike<S> {
  readonly kind = "CellMapMultiDataset";
  readonly datasets: readonly DatasetLike<S>[];
  readonly classes: readonly string[];
  readonly inputArrays: ArraySpecs;
  readonly targetArrays: ArraySpecs;
  readonly seed: number;
  /** `offsets[k]` = first global index of dataset `k`; the last entry is `length`. */
  readonly offsets: readonly number[];
  readonly length: number;
  private countsPromise: Promise<ClassCounts> | null = null;

  constructor(datasets: readonly DatasetLike<S>[], opts: MultiDatasetOptions = {}) {
    if (!Array.isArray(datasets)) throw new CellMapError("INVALID_ARGUMENT", "datasets must be a list", "datasets");
    opts = parseOptions(multiDatasetOptionsSchema, opts, "CellMapMultiDataset");
    this.datasets = [...datasets];
    const first = datasets[0];
    this.classes = [...(opts.classes ?? first?.classes ?? [])];
    this.inputArrays = structuredClone(opts.inputArrays ?? first?.inputArrays ?? {});
    this.targetArrays = structuredClone(opts.targetArrays ?? first?.targetArrays ?? {});
    this.seed = opts.seed ?? 0;
    this.offsets = offsetsOf(datasets.map((d) => d.length));
    this.length = this.offsets[this.offsets.length - 1];
  }

  /** A multi-dataset of no datasets (length 0). */
  static empty(opts: MultiDatasetOptions = {}): CellMapMultiDataset {
    return new CellMapMultiDataset([], opts);
  }

  /** Which dataset holds global index `i`, and the index inside it. */
  locate(i: number): { dataset: number; index: number } {
    checkIndex(i, this.length, "CellMapMultiDataset");
    let lo = 0;
    let hi = this.datasets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return { dataset: lo, index: i - this.offsets[lo] };
  }

  /** Centre of sample `i` (nm, z y x), when the dataset holding it has centres. */
  center(i: number): number[] {
    const { dataset, index } = this.locate(i);
    const d = this.datasets[dataset] as DatasetLike<S> & { center?: (i: number) => number[] };
    if (typeof d.center !== "function") throw new CellMapError("UNSUPPORTED", `dataset ${dataset} has no centres`, "center");
    return d.center(index);
  }

  /** Reads global sample `i` from its dataset; `idx` is the global index. */
  async get(i: number, opts: GetOptions = {}): Promise<S> {
    const { dataset, index } = this.locate(i);
    const item = await this.datasets[dataset].get(index, opts);
    item.idx = i;
    return item;
  }

  /** Reasons the datasets cannot be combined into batches (different classes or array specs). */
  inconsistencies(): string[] {
    const out: string[] = [];
    this.datasets.forEach((d, k) => {
      if (JSON.stringify(d.classes) !== JSON.stringify(this.classes)) out.push(`dataset ${k} has classes [${d.classes.join(", ")}], expected [${this.classes.join(", ")}]`);
      if (!sameSpecs(d.inputArrays, this.inputArrays)) out.push(`dataset ${k} has different input arrays`);
      if (!sameSpecs(d.targetArrays, this.targetArrays)) out.push(`dataset ${k} has different target arrays`);
    });
    return out;
  }

  /** False without datasets or with inconsistent ones; otherwise true if any dataset verifies. */
  verify(): boolean {
    if (this.datasets.length === 0 || this.inconsistencies().length > 0) return false;
    return this.datasets.some((d) => d.verify());
  }

  /** Per-class counts summed over datasets. */
  classCounts(signal?: AbortSignal): Promise<ClassCounts> {
    if (!this.countsPromise) {
      const p = Promise.all(this.datasets.map((d) => d.classCounts(signal))).then((all) => sumCounts(this.classes, all));
      this.countsPromise = p;
      p.catch(() => (this.countsPromise = null));
    }
    return this.countsPromise.then((c) => structuredClone(c));
  }

  /** `background / foreground` of the summed counts (1 without foreground). */
  async classWeights(signal?: AbortSignal): Promise<Record<string, number>> {
    return weightsFromCounts(await this.classCounts(signal));
  }

  /**
   * Sampling mass of each dataset: `Σ_c fg_c(ds) · w_c` with the combined class weights (so a
   * dataset rich in rare classes is drawn more often). Without classes: each dataset's length
   * (uniform over samples). Empty datasets get 0.
   */
  async datasetWeights(signal?: AbortSignal): Promise<number[]> {
    if (this.classes.length === 0) return this.datasets.map((d) => d.length);
    const [weights, counts] = await Promise.all([this.classWeights(signal), Promise.all(this.datasets.map((d) => d.classCounts(signal)))]);
    return counts.map((c, k) => (this.datasets[k].length > 0 ? weightedForeground(c, weights) : 0));
  }

  /** Each dataset's validation tiles, shifted into the global index space. */
  validationIndices(): number[] {
    const out: number[] = [];
    this.datasets.forEach((d, k) => {
      for (const i of d.validationIndices()) out.push(this.offsets[k] + i);
    });
    return out;
  }

  /**
   * `numSamples` indices per epoch (Python `get_subset_random_sampler`). `weighted` (default
   * true): datasets ∝ {@link datasetWeights} with capacity overflow redistributed
   * (`weightedSubsetIndices`); otherwise uniform over all samples with minimal repeats.
   */
  async subsetRandomSampler(numSamples: number, opts: { seed?: number; weighted?: boolean } = {}): Promise<MutableSubsetRandomSampler> {
    const seed = opts.seed ?? this.seed;
    if (!(opts.weighted ?? true)) return MutableSubsetRandomSampler.uniform(this.length, numSamples, seed);
    const sizes = this.datasets.map((d) => d.length);
    const weights = await this.datasetWeights();
    return new MutableSubsetRandomSampler((rng) => weightedSubsetIndices(sizes, weights, numSamples, rng), { seed, numSamples });
  }

  /**
   * Weighted sampling with replacement (Python `get_weighted_sampler`, which drew only one
   * batch per epoch): `numSamples` (default `length`) draws per epoch, dataset ∝
   * {@link datasetWeights}, index uniform inside it. Lengths above 2^24 need `numSamples`.
   */
  async weightedSampler(opts: { numSamples?: number; seed?: number } = {}): Promise<MutableSubsetRandomSampler> {
    const numSamples = opts.numSamples ?? this.length;
    if (opts.numSamples === undefined && this.length > 2 ** 24) {
      throw new CellMapError("INVALID_ARGUMENT", `dataset has ${this.length} samples; pass numSamples (samples per epoch)`, "numSamples");
    }
    const sizes = this.datasets.map((d) => d.length);
    const weights = await this.datasetWeights();
    return new MutableSubsetRandomSampler((rng) => weightedRandomIndices(sizes, weights, numSamples, rng), { seed: opts.seed ?? this.seed, numSamples });
  }

  /** One row per crop (dataset): the classes it annotates and its length. */
  cropRows(): CropRow[] {
    return this.datasets.flatMap((d, k) => {
      const rows = cropRowsOf(d);
      if (!rows) throw new CellMapError("UNSUPPORTED", `dataset ${k} (${d.kind}) cannot report which classes it annotates`, "cropRows");
      return rows;
    });
  }

  /** `matrix[crop][class]` over {@link cropRows} in `classes` order. */
  cropClassMatrix(): boolean[][] {
    return this.cropRows().map((r) => this.classes.map((c) => r.annotated.includes(c)));
  }

  /**
   * {@link ClassBalancedSampler} over the crops: least-seen class first, then a crop that
   * annotates it. `samplesPerEpoch` defaults to `length` (required above 2^24).
   */
  classBalancedSampler(opts: { samplesPerEpoch?: number; seed?: number } = {}): ClassBalancedSampler {
    if (opts.samplesPerEpoch === undefined && this.length > 2 ** 24) {
      throw new CellMapError("INVALID_ARGUMENT", `dataset has ${this.length} samples; pass samplesPerEpoch`, "samplesPerEpoch");
    }
    const rows = this.cropRows();
    return new ClassBalancedSampler({
      matrix: rows.map((r) => this.classes.map((c) => r.annotated.includes(c))),
      sizes: rows.map((r) => r.size),
      samplesPerEpoch: opts.samplesPerEpoch ?? this.length,
      seed: opts.seed ?? this.seed,
      classes: this.classes,
    });
  }

  describe(): CellMapMultiDatasetDescription {
    return {
      kind: "CellMapMultiDataset",
      version: 1,
      classes: [...this.classes],
      inputArrays: structuredClone(this.inputArrays),
      targetArrays: structuredClone(this.targetArrays),
      seed: this.seed,
      datasets: this.datasets.map((d) => d.describe()),
    };
  }

  /** Re-opens from {@link describe} output (children concurrently). */
  static async fromDescription(desc: CellMapMultiDatasetDescription, opts: DescriptionContext): Promise<CellMapMultiDataset> {
    if (desc?.kind !== "CellMapMultiDataset" || desc.version !== 1 || !Array.isArray(desc.datasets)) {
      throw new CellMapError("INVALID_ARGUMENT", "not a version-1 CellMapMultiDataset description", "description");
    }
    const children = await Promise.all(desc.datasets.map((d) => opts.open(d)));
    return new CellMapMultiDataset(children, { classes: desc.classes, inputArrays: desc.inputArrays, targetArrays: desc.targetArrays, seed: desc.seed });
  }

  toString(): string {
    return `CellMapMultiDataset(${this.datasets.length} datasets, classes=[${this.classes.join(",")}], length=${this.length})`;
  }
}
