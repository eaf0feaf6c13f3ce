/**
 * `CellMapSubset`: a list of indices into a parent dataset. Position `j` reads parent sample
 * `indices[j]`; `idx` of an item and every sampler of the subset are in *subset positions*
 * (Python's sampler yielded parent indices).
 */
import { CellMapError } from "../errors.js";
import { MutableSubsetRandomSampler } from "../sampling/samplers.js";
import type { ClassCounts } from "./counts.js";
import { checkIndex, type AnyDatasetItem, type ArraySpecs, type DatasetDescription, type DatasetLike, type DescriptionContext, type GetOptions, type SampleBase } from "./types.js";

/** Serialised form (`describe()`). */
export interface CellMapSubsetDescription extends DatasetDescription {
  kind: "CellMapSubset";
  version: 1;
  parent: DatasetDescription;
  indices: number[];
}

/** Selected samples of a parent dataset (`S`: the parent's sample type). */
export class CellMapSubset<S extends SampleBase = AnyDatasetItem> implements DatasetLike<S> {
  readonly kind = "CellMapSubset";
  readonly indices: readonly number[];
  readonly length: number;

  /** `indices` must be integers in `[0, parent.length)` (repeats allowed). */
  constructor(
    readonly parent: DatasetLike<S>,
    indices: readonly number[],
  ) {
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!Number.isInteger(i) || i < 0 || i >= parent.length) {
        throw new CellMapError("OUT_OF_RANGE", `subset index ${j} is ${i}, outside the parent's [0, ${parent.length})`, "indices");
      }
    }
    this.indices = [...indices];
    this.length = this.indices.length;
  }

  get classes(): readonly string[] {
    return this.parent.classes;
  }
  get inputArrays(): ArraySpecs {
    return this.parent.inputArrays;
  }
  get targetArrays(): ArraySpecs {
    return this.parent.targetArrays;
  }

  /** Parent index of position `j`. */
  parentIndex(j: number): number {
    checkIndex(j, this.length, "CellMapSubset");
    return this.indices[j];
  }

  /** Reads position `j` (parent sample `indices[j]`); `idx` is `j`. */
  async get(j: number, opts: GetOptions = {}): Promise<S> {
    const item = await this.parent.get(this.parentIndex(j), opts);
    item.idx = j;
    return item;
  }

  /** The parent's counts (class statistics describe the crops, not the selection). */
  classCounts(signal?: AbortSignal): Promise<ClassCounts> {
    return this.parent.classCounts(signal);
  }
  classWeights(signal?: AbortSignal): Promise<Record<string, number>> {
    return this.parent.classWeights(signal);
  }

  /** Positions whose parent index is one of the parent's validation tiles. */
  validationIndices(): number[] {
    const tiles = new Set(this.parent.validationIndices());
    const out: number[] = [];
    this.indices.forEach((i, j) => tiles.has(i) && out.push(j));
    return out;
  }

  verify(): boolean {
    return this.length > 0;
  }

  /** A uniform random subset of positions `[0, length)` per epoch. */
  async subsetRandomSampler(numSamples: number, opts: { seed?: number; weighted?: boolean } = {}): Promise<MutableSubsetRandomSampler> {
    return MutableSubsetRandomSampler.uniform(this.length, numSamples, opts.seed ?? 0);
  }

  describe(): CellMapSubsetDescription {
    return { kind: "CellMapSubset", version: 1, parent: this.parent.describe(), indices: [...this.indices] };
  }

  static async fromDescription(desc: CellMapSubsetDescription, opts: DescriptionContext): Promise<CellMapSubset> {
    if (desc?.kind !== "CellMapSubset" || desc.version !== 1 || !Array.isArray(desc.indices)) {
      throw new CellMapError("INVALID_ARGUMENT", "not a version-1 CellMapSubset description", "description");
    }
    return new CellMapSubset(await opts.open(desc.parent), desc.indices);
  }

  toString(): string {
    return `CellMapSubset(${this.length} of ${this.parent.length})`;
  }
}
