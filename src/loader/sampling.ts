/**
 * Sampling mode of `CellMapDataLoader`: how each epoch's sequence of sample indices is made.
 *
 * One mode is chosen at construction, from the options and what the dataset can do:
 * - `user`: the caller's sampler or index list (a factory is called again at every refresh);
 * - `subset`: a fresh random subset of `iterationsPerEpoch · batchSize · worldSize` samples per
 *   epoch (optionally weighted);
 * - `weighted`: the dataset's own weighted sampler over all its samples;
 * - `classBalanced`: the least-seen class first (the dataset's sampler, or one built from its
 *   crop/class matrix);
 * - `shuffle` / `sequential`: a seeded permutation, or index order.
 *
 * Kept apart from the loader because the sequence is a pure function of (mode, seed, epoch):
 * nothing here knows about threads, buffers or how many batches are in flight. The samples per
 * epoch are known synchronously (so `loader.length` is), the built-in samplers are made lazily
 * and once.
 */
import { CellMapError, invalid } from "../errors.js";
import type { DatasetLike } from "../dataset/types.js";
import { ClassBalancedSampler, type Sampler } from "../sampling/samplers.js";
import type { LoaderSettings, SamplerInput } from "./options.js";
import { arraySequence, identitySequence, shuffledSequence, type IndexSequence } from "./order.js";

/** How each epoch's sequence is made. */
export type Mode = { kind: "user" } | { kind: "subset"; weighted: boolean } | { kind: "weighted" } | { kind: "classBalanced" } | { kind: "shuffle" } | { kind: "sequential" };

/** Above this many samples, weighted sampling of a whole dataset needs `iterationsPerEpoch`. */
const WEIGHTED_LIMIT = 2 ** 24;

/** What some datasets offer beyond `DatasetLike` (looked up at run time). */
interface DatasetExtras {
  weightedSampler?: (o: { numSamples?: number; seed?: number }) => Promise<Sampler>;
  classBalancedSampler?: (o: { samplesPerEpoch?: number; seed?: number }) => Sampler;
  cropClassRow?: () => boolean[];
}

/** The sampling mode of one loader and the state it needs (the user's sampler, the built one). */
export class EpochSampling {
  readonly mode: Mode;
  private readonly dataset: DatasetLike & DatasetExtras;
  private readonly seed: number;
  private readonly samplerInput: SamplerInput | undefined;
  private userSampler: Sampler | readonly number[] | null = null;
  private builtSampler: Promise<Sampler> | null = null;
  private samplesValue: number;

  constructor(
    dataset: DatasetLike,
    sampler: SamplerInput | undefined,
    s: Pick<LoaderSettings, "iterationsPerEpoch" | "batchSize" | "worldSize" | "weightedSampler" | "isTrain" | "seed">,
  ) {
    const ds = dataset as DatasetLike & DatasetExtras;
    this.dataset = ds;
    this.seed = s.seed;
    this.samplerInput = sampler;
    if (sampler !== undefined) {
      this.mode = { kind: "user" };
      this.userSampler = this.makeUserSampler();
      this.samplesValue = this.userSampler.length;
    } else if (s.iterationsPerEpoch !== null) {
      this.samplesValue = s.iterationsPerEpoch * s.batchSize * s.worldSize;
      this.mode = s.weightedSampler === "classBalanced" ? { kind: "classBalanced" } : { kind: "subset", weighted: s.weightedSampler === "weights" };
    } else {
      this.samplesValue = ds.length;
      if (s.weightedSampler && ds.length > WEIGHTED_LIMIT) {
        throw invalid("iterationsPerEpoch", `iterationsPerEpoch must be given for weighted sampling of a large dataset (${ds.length} samples > 2^24)`);
      }
      if (s.weightedSampler === "classBalanced") this.mode = { kind: "classBalanced" };
      else if (s.weightedSampler === "weights" && typeof ds.weightedSampler === "function") this.mode = { kind: "weighted" };
      else this.mode = s.isTrain ? { kind: "shuffle" } : { kind: "sequential" };
    }
    if (this.mode.kind === "classBalanced" && typeof ds.classBalancedSampler !== "function" && typeof ds.cropClassRow !== "function") {
      throw new CellMapError("UNSUPPORTED", `${ds.kind} cannot tell which classes its crops annotate, so it cannot be class-balanced`, "weightedSampler");
    }
  }

  /** Samples per epoch before the rank split (sampler length, subset size or dataset length). */
  get samplesPerEpoch(): number {
    return this.samplesValue;
  }

  /** A new epoch is abandoned for the next: a sampler factory is called again. */
  refresh(): void {
    if (this.mode.kind === "user" && typeof this.samplerInput === "function") {
      this.userSampler = this.makeUserSampler();
      this.samplesValue = this.userSampler.length;
    }
  }

  private makeUserSampler(): Sampler | readonly number[] {
    const input = this.samplerInput!;
    const s = typeof input === "function" ? input() : input;
    const len = (s as { length?: unknown })?.length;
    if (typeof s !== "object" || s === null || typeof (s as Iterable<number>)[Symbol.iterator] !== "function" || typeof len !== "number" || !Number.isSafeInteger(len)) {
      throw invalid("sampler", "sampler must be a Sampler, a list of indices, or a function returning one");
    }
    return s;
  }

  /** The sample indices of `epoch`, in order (before batching and the rank split). */
  async sequence(epoch: number): Promise<IndexSequence> {
    switch (this.mode.kind) {
      case "sequential":
        return identitySequence(this.dataset.length);
      case "shuffle":
        return shuffledSequence(this.dataset.length, this.seed, epoch);
      case "user": {
        const s = this.userSampler!;
        if (Array.isArray(s)) return arraySequence([...s]);
        const smp = s as Sampler;
        if (typeof smp.epochIndices === "function") return arraySequence(smp.epochIndices(epoch));
        if (typeof smp.setEpoch === "function") smp.setEpoch(epoch);
        return arraySequence([...smp]);
      }
      default:
        return arraySequence((await this.sampler()).epochIndices(epoch));
    }
  }

  /** The built-in sampler of the subset / weighted / class-balanced modes (made once). */
  private sampler(): Promise<Sampler> {
    if (!this.builtSampler) {
      const ds = this.dataset;
      const n = this.samplesValue;
      const seed = this.seed;
      const m = this.mode;
      const p = (async (): Promise<Sampler> => {
        if (m.kind === "subset") return ds.subsetRandomSampler(n, { seed, weighted: m.weighted });
        if (m.kind === "weighted") return ds.weightedSampler!({ numSamples: n, seed });
        if (typeof ds.classBalancedSampler === "function") return ds.classBalancedSampler({ samplesPerEpoch: n, seed });
        return new ClassBalancedSampler({ matrix: [ds.cropClassRow!()], sizes: [ds.length], samplesPerEpoch: n, seed, classes: ds.classes });
      })();
      p.catch(() => (this.builtSampler = null));
      this.builtSampler = p;
    }
    return this.builtSampler;
  }
}
