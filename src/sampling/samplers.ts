/**
 * Index samplers. Every sequence is a pure function of (seed, epoch): an epoch's indices are the
 * same whichever worker or process asks. Indices are drawn by arithmetic, so populations of
 * 10^12 samples cost memory only for the indices actually drawn (never `Array(length)`).
 *
 * The samplers know nothing about datasets: they take lengths, weights and crop/class matrices,
 * which `CellMapDataset`, `CellMapMultiDataset` and `CellMapSubset` provide.
 */
import { CellMapError } from "../errors.js";
import { type Rng, RngStream, sampleRng } from "../util/rng.js";

/** Sub-streams of `RngStream.sampler` (the `index` slot of `sampleRng`). */
const DRAW = 0;
const ORDER = 1;

/** A sequence of indices per epoch. Iterating yields the current epoch's sequence. */
export interface Sampler extends Iterable<number> {
  /** Indices per epoch. */
  readonly length: number;
  /** Current epoch (0 at construction). */
  readonly epoch: number;
  /** The sequence of epoch `epoch` (pure: same seed and epoch, same result). */
  epochIndices(epoch: number): number[];
  /** Moves to epoch `epoch`. */
  setEpoch(epoch: number): void;
  /** Moves to the next epoch (a new random subset / order). */
  refresh(): void;
}

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CellMapError("INVALID_ARGUMENT", `${what} must be a non-negative integer, got ${n}`, what);
  }
}

function checkSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new CellMapError("INVALID_ARGUMENT", `seed must be a non-negative integer, got ${seed}`, "seed");
  return seed;
}

/** `k` distinct uniform indices of `[0, n)`, in random order (Floyd's algorithm: O(k) memory). */
export function sampleWithoutReplacement(n: number, k: number, rng: Rng): number[] {
  checkCount(n, "size");
  checkCount(k, "numSamples");
  if (k > n) throw new CellMapError("INVALID_ARGUMENT", `cannot draw ${k} distinct indices from ${n}`, "numSamples");
  if (k === 0) return [];
  if (n <= 4 * k && n <= 1 << 24) {
    // Dense case: a partial Fisher–Yates over the population is cheaper than a hash set.
    const all = new Array<number>(n);
    for (let i = 0; i < n; i++) all[i] = i;
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(n - i);
      const t = all[i];
      all[i] = all[j];
      all[j] = t;
    }
    return all.slice(0, k);
  }
  const set = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = rng.int(j + 1);
    set.add(set.has(t) ? j : t);
  }
  return rng.shuffle([...set]);
}

/**
 * `numSamples` indices of `[0, size)` with as few repeats as possible: `floor(k/n)` full random
 * permutations, then `k mod n` distinct indices of one more (exactly `k` values; each index
 * appears ⌊k/n⌋ or ⌈k/n⌉ times). Fixes Python's variant that dropped the remainder.
 */
export function minRedundantIndices(size: number, numSamples: number, rng: Rng): number[] {
  checkCount(size, "size");
  checkCount(numSamples, "numSamples");
  if (numSamples === 0) return [];
  if (size === 0) throw new CellMapError("INVALID_ARGUMENT", `cannot draw ${numSamples} indices from an empty population`, "size");
  const out: number[] = [];
  for (let r = Math.floor(numSamples / size); r > 0; r--) out.push(...sampleWithoutReplacement(size, size, rng));
  out.push(...sampleWithoutReplacement(size, numSamples % size, rng));
  return out;
}

/** Cumulative sums: `offsets[i]` = first global index of part `i`; last entry = total. */
export function offsetsOf(sizes: readonly number[]): number[] {
  const off = [0];
  for (const s of sizes) {
    checkCount(s, "size");
    off.push(off[off.length - 1] + s);
  }
  if (!Number.isSafeInteger(off[off.length - 1])) throw new CellMapError("UNSUPPORTED", "total length exceeds 2^53", "sizes");
  return off;
}

/** Categorical draws over non-negative weights (binary search on the cumulative sum). */
class Categorical {
  private readonly cum: number[] = [];
  readonly total: number;
  constructor(weights: readonly number[]) {
    let acc = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new CellMapError("INVALID_ARGUMENT", `weights must be finite and >= 0, got ${w}`, "weights");
      acc += w;
      this.cum.push(acc);
    }
    this.total = acc;
  }
  draw(rng: Rng): number {
    const u = rng.random() * this.total;
    let lo = 0;
    let hi = this.cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cum[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** Weights with zeros for empty parts; all-zero weights fall back to part sizes (uniform over samples). */
function effectiveWeights(sizes: readonly number[], weights: readonly number[]): number[] {
  if (weights.length !== sizes.length) {
    throw new CellMapError("INVALID_ARGUMENT", `got ${weights.length} weights for ${sizes.length} datasets`, "weights");
  }
  const w = weights.map((v, i) => {
    if (!(v >= 0) || !Number.isFinite(v)) throw new CellMapError("INVALID_ARGUMENT", `weight ${i} must be finite and >= 0, got ${v}`, "weights");
    return sizes[i] > 0 ? v : 0;
  });
  return w.some((v) => v > 0) ? w : sizes.map((s) => s);
}

/**
 * Dataset-weighted subset (Python `get_random_subset_indices(weighted=True)`, fixed):
 * `numSamples` dataset picks, each dataset with probability ∝ `weights[i]` (with replacement,
 * unlike Python's `replacement = k > n_datasets`); a dataset asked for more than it
 * holds keeps `sizes[i]` and the overflow is redistributed ∝ weight over datasets that still
 * have room, until none is left (then the rest repeat indices, as evenly as possible). Within a
 * dataset indices are {@link minRedundantIndices}; the result is shuffled. Returns global
 * indices (dataset `i` starts at `sum(sizes[0..i))`).
 */
export function weightedSubsetIndices(sizes: readonly number[], weights: readonly number[], numSamples: number, rng: Rng): number[] {
  checkCount(numSamples, "numSamples");
  const offsets = offsetsOf(sizes);
  if (numSamples === 0) return [];
  if (offsets[offsets.length - 1] === 0) throw new CellMapError("INVALID_ARGUMENT", "cannot sample from datasets that are all empty", "sizes");
  const w = effectiveWeights(sizes, weights);
  const counts = new Array<number>(sizes.length).fill(0);
  let pending = numSamples;
  let active = w.slice();
  while (pending > 0) {
    const cat = new Categorical(active);
    if (cat.total === 0) break;
    for (let k = 0; k < pending; k++) counts[cat.draw(rng)]++;
    pending = 0;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] > sizes[i]) {
        pending += counts[i] - sizes[i];
        counts[i] = sizes[i];
      }
    }
    active = active.map((v, i) => (counts[i] < sizes[i] ? v : 0));
  }
  if (pending > 0) {
    // Every weighted dataset is exhausted: repeat indices, still ∝ weight.
    const cat = new Categorical(w);
    for (let k = 0; k < pending; k++) counts[cat.draw(rng)]++;
  }
  const out: number[] = [];
  counts.forEach((c, i) => {
    if (c > 0) for (const j of minRedundantIndices(sizes[i], c, rng)) out.push(offsets[i] + j);
  });
  return rng.shuffle(out);
}

/**
 * `numSamples` independent draws (with replacement): a dataset ∝ `weights[i]`, then a uniform
 * index inside it. Equivalent to per-sample weights `weights[i] / sizes[i]` without
 * materialising one weight per sample.
 */
export function weightedRandomIndices(sizes: readonly number[], weights: readonly number[], numSamples: number, rng: Rng): number[] {
  checkCount(numSamples, "numSamples");
  const offsets = offsetsOf(sizes);
  if (numSamples === 0) return [];
  if (offsets[offsets.length - 1] === 0) throw new CellMapError("INVALID_ARGUMENT", "cannot sample from datasets that are all empty", "sizes");
  const cat = new Categorical(effectiveWeights(sizes, weights));
  const out = new Array<number>(numSamples);
  for (let k = 0; k < numSamples; k++) {
    const i = cat.draw(rng);
    out[k] = offsets[i] + rng.int(sizes[i]);
  }
  return out;
}

/** Common epoch bookkeeping. */
abstract class EpochSampler implements Sampler {
  protected current = 0;
  abstract readonly length: number;
  abstract epochIndices(epoch: number): number[];
  get epoch(): number {
    return this.current;
  }
  setEpoch(epoch: number): void {
    checkCount(epoch, "epoch");
    this.current = epoch;
  }
  refresh(): void {
    this.current++;
  }
  [Symbol.iterator](): Iterator<number> {
    return this.epochIndices(this.current)[Symbol.iterator]();
  }
}

/** Draws one epoch's subset from the epoch's generator. */
export type SubsetGenerator = (rng: Rng, epoch: number) => number[];

/**
 * A fixed-size random subset of a large index space, redrawn by `refresh()` (next epoch). The
 * subset of epoch `e` is `generate(sampleRng(seed, e, 0, RngStream.sampler), e)`; iteration
 * yields it in a random order (a second stream of the same epoch). Use
 * {@link MutableSubsetRandomSampler.uniform} for a plain uniform subset.
 */
export class MutableSubsetRandomSampler extends EpochSampler {
  readonly seed: number;
  readonly length: number;
  private cache: { epoch: number; subset: number[] } | null = null;

  constructor(
    private readonly generate: SubsetGenerator,
    opts: { seed?: number; numSamples: number },
  ) {
    super();
    this.seed = checkSeed(opts.seed ?? 0);
    checkCount(opts.numSamples, "numSamples");
    this.length = opts.numSamples;
  }

  /** `numSamples` indices of `[0, size)` with as few repeats as possible ({@link minRedundantIndices}). */
  static uniform(size: number, numSamples: number, seed = 0): MutableSubsetRandomSampler {
    checkCount(size, "size");
    return new MutableSubsetRandomSampler((rng) => minRedundantIndices(size, numSamples, rng), { seed, numSamples });
  }

  /** The subset of epoch `epoch`, in generation order. */
  subset(epoch = this.current): number[] {
    if (this.cache?.epoch !== epoch) {
      const s = this.generate(sampleRng(this.seed, epoch, DRAW, RngStream.sampler), epoch);
      if (s.length !== this.length) {
        throw new CellMapError("INVALID_ARGUMENT", `subset generator returned ${s.length} indices, expected ${this.length}`, "generate");
      }
      this.cache = { epoch, subset: s };
    }
    return this.cache.subset;
  }

  /** The current subset (Python's `indices`). */
  get indices(): number[] {
    return this.subset();
  }

  epochIndices(epoch: number): number[] {
    return sampleRng(this.seed, epoch, ORDER, RngStream.sampler).shuffle([...this.subset(epoch)]);
  }
}

/** Options of {@link ClassBalancedSampler}. */
export interface ClassBalancedOptions {
  /** `matrix[crop][class]`: whether crop `crop` annotates class `class`. */
  matrix: readonly (readonly boolean[])[];
  /** Samples per crop (crop `i` owns global indices `[offset_i, offset_i + sizes[i])`). */
  sizes: readonly number[];
  /** Indices per epoch. */
  samplesPerEpoch: number;
  seed?: number;
  /** Class names for messages. */
  classes?: readonly string[];
}

/**
 * Balances classes in sparse, partially annotated data (Python HEAD `ClassBalancedSampler`):
 * each draw takes the class seen least so far this epoch (ties broken at random), a random crop
 * that annotates it, and a uniform sample index inside that crop; every class the crop
 * annotates counts as seen once more. Counters restart each epoch; draws come from
 * `(seed, epoch)`. Crops with no samples are never chosen (Python raised), and crop
 * rows always map to their own index range (no row-index/sample-index confusion).
 */
export class ClassBalancedSampler extends EpochSampler {
  readonly seed: number;
  readonly length: number;
  private readonly offsets: number[];
  private readonly sizes: number[];
  /** Crops (rows) annotating each class, only crops with samples. */
  private readonly cropsOf: number[][];
  private readonly rows: number[][];
  private readonly active: number[];

  constructor(opts: ClassBalancedOptions) {
    super();
    this.seed = checkSeed(opts.seed ?? 0);
    checkCount(opts.samplesPerEpoch, "samplesPerEpoch");
    this.length = opts.samplesPerEpoch;
    this.sizes = [...opts.sizes];
    this.offsets = offsetsOf(this.sizes);
    if (opts.matrix.length !== this.sizes.length) {
      throw new CellMapError("INVALID_ARGUMENT", `crop/class matrix has ${opts.matrix.length} rows for ${this.sizes.length} crops`, "matrix");
    }
    const nClasses = opts.matrix[0]?.length ?? 0;
    if (opts.matrix.some((r) => r.length !== nClasses)) throw new CellMapError("INVALID_ARGUMENT", "crop/class matrix rows differ in length", "matrix");
    this.cropsOf = Array.from({ length: nClasses }, () => []);
    this.rows = opts.matrix.map((row, i) => {
      const cls: number[] = [];
      if (this.sizes[i] > 0) row.forEach((v, c) => v && cls.push(c));
      return cls;
    });
    this.rows.forEach((cls, i) => cls.forEach((c) => this.cropsOf[c].push(i)));
    this.active = this.cropsOf.flatMap((crops, c) => (crops.length > 0 ? [c] : []));
    if (this.active.length === 0 && this.length > 0) {
      throw new CellMapError("INVALID_ARGUMENT", `no class is annotated in any non-empty crop (classes: ${(opts.classes ?? []).join(", ") || nClasses})`, "matrix");
    }
  }

  epochIndices(epoch: number): number[] {
    const rng = sampleRng(this.seed, epoch, DRAW, RngStream.sampler);
    const seen = new Float64Array(this.cropsOf.length);
    const out = new Array<number>(this.length);
    const ties: number[] = [];
    for (let k = 0; k < this.length; k++) {
      let min = Infinity;
      ties.length = 0;
      for (const c of this.active) {
        if (seen[c] < min) {
          min = seen[c];
          ties.length = 0;
        }
        if (seen[c] === min) ties.push(c);
      }
      const cls = ties[rng.int(ties.length)];
      const crops = this.cropsOf[cls];
      const crop = crops[rng.int(crops.length)];
      for (const c of this.rows[crop]) seen[c]++;
      out[k] = this.offsets[crop] + rng.int(this.sizes[crop]);
    }
    return out;
  }
}

/** A sampler that yields a fixed list every epoch (e.g. validation tiles, in order). */
export class SequentialSampler extends EpochSampler {
  readonly length: number;
  constructor(private readonly list: readonly number[]) {
    super();
    this.length = list.length;
  }
  epochIndices(): number[] {
    return [...this.list];
  }
}
