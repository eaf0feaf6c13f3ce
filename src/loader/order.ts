/**
 * The order of one epoch: which sample goes into which batch on which rank. Everything here is a
 * pure function of (seed, epoch) and the loader's shape options, so any process (or a resumed
 * run) computes the same plan without talking to the others.
 *
 * Order of operations: epoch sequence (sampler output, or a seeded permutation of the dataset)
 * → rank share (positions `rank, rank + worldSize, …`) → consecutive batches.
 */
import { CellMapError } from "../errors.js";
import { mix32, Rng, RngStream } from "../util/rng.js";

/** `index` slot of the loader's own shuffle stream (0 and 1 are taken by the samplers). */
const SHUFFLE_STREAM_INDEX = 2;

/**
 * Lengths up to this are shuffled with an explicit Fisher–Yates table (4 bytes per sample);
 * longer ones with the O(1) Feistel permutation, so planning an epoch costs nothing before the
 * first batch (a 2.1 M-sample Fisher–Yates table took 250–390 ms on the dev machine).
 */
const DENSE_SHUFFLE_LIMIT = 1 << 16;

/** A read-only sequence of sample indices, possibly computed on demand (never materialised). */
export interface IndexSequence {
  readonly length: number;
  /** Index at position `p` in `[0, length)`. */
  at(p: number): number;
}

/** `0, 1, …, n-1`. */
export function identitySequence(n: number): IndexSequence {
  return { length: n, at: (p) => p };
}

/** A sequence backed by an array. */
export function arraySequence(a: ArrayLike<number>): IndexSequence {
  return { length: a.length, at: (p) => a[p] };
}

/**
 * A pseudo-random bijection of `[0, n)` for any `n` up to 2^53, O(1) memory: a 6-round balanced
 * Feistel network over `[0, 4^h)` (the smallest even-bit domain covering `n`) with cycle walking
 * (re-encrypt until the value falls below `n`; under 4 rounds trips on average). Halves stay
 * below 2^27, so all arithmetic is exact in 32-bit integer ops.
 */
export class FeistelPermutation implements IndexSequence {
  readonly length: number;
  private readonly half: number;
  private readonly mask: number;
  private readonly keys: number[];

  constructor(n: number, rng: Rng) {
    if (!Number.isSafeInteger(n) || n < 0) throw new CellMapError("INVALID_ARGUMENT", `permutation size must be an integer in [0, 2^53], got ${n}`, "length");
    this.length = n;
    let b = 0;
    while (2 ** b < n) b++;
    this.half = Math.max(1, Math.ceil(b / 2));
    this.mask = 2 ** this.half - 1;
    this.keys = Array.from({ length: 6 }, () => rng.nextUint32());
  }

  at(p: number): number {
    if (this.length <= 1) return 0;
    const scale = 2 ** this.half;
    let l = Math.floor(p / scale);
    let r = p - l * scale;
    for (;;) {
      for (const k of this.keys) {
        const f = mix32(k, r) & this.mask;
        const nl = r;
        r = (l ^ f) >>> 0;
        l = nl;
      }
      // Values >= 2^53 are inexact here but certainly >= length, which is all that matters.
      const x = l * scale + r;
      if (x < this.length) return x;
    }
  }
}

/** The generator of the loader's shuffle of epoch `epoch`. */
function shuffleRng(seed: number, epoch: number): Rng {
  return new Rng(seed, epoch, SHUFFLE_STREAM_INDEX, RngStream.sampler);
}

/**
 * A uniformly shuffled `0..n-1` for (seed, epoch): an explicit Fisher–Yates table up to
 * `denseLimit` samples, a {@link FeistelPermutation} above (no `Array(n)` for huge datasets).
 */
export function shuffledSequence(n: number, seed: number, epoch: number, denseLimit = DENSE_SHUFFLE_LIMIT): IndexSequence {
  const rng = shuffleRng(seed, epoch);
  if (n > denseLimit) return new FeistelPermutation(n, rng);
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return arraySequence(a);
}

/** Shape options of an epoch plan. */
export interface PlanShape {
  batchSize: number;
  dropLast: boolean;
  rank: number;
  worldSize: number;
}

/** Samples per rank for an epoch of `n` samples (see {@link EpochPlan}). */
function samplesPerRank(n: number, s: PlanShape): number {
  if (n === 0) return 0;
  return s.dropLast ? Math.floor(n / s.worldSize) : Math.ceil(n / s.worldSize);
}

/** Batches per rank for an epoch of `n` samples. */
export function batchesPerEpoch(n: number, s: PlanShape): number {
  const per = samplesPerRank(n, s);
  return s.dropLast ? Math.floor(per / s.batchSize) : Math.ceil(per / s.batchSize);
}

/**
 * One rank's batches of one epoch. Rank `r` takes epoch positions `r, r + W, r + 2W, …`
 * (W = worldSize), so ranks are disjoint and each gets `ceil(n / W)` samples: positions past the
 * end wrap to the start of the epoch (at most `W - 1` repeated samples, like PyTorch's
 * `DistributedSampler`). With `dropLast` each rank gets `floor(n / W)` (the `n mod W` tail is
 * skipped, no repeats) and a final short batch is dropped; otherwise the last batch may be short.
 * All ranks thus see the same number of batches.
 */
export class EpochPlan {
  readonly samplesPerRank: number;
  readonly batches: number;

  constructor(
    readonly epoch: number,
    readonly sequence: IndexSequence,
    readonly shape: PlanShape,
  ) {
    this.samplesPerRank = samplesPerRank(sequence.length, shape);
    this.batches = batchesPerEpoch(sequence.length, shape);
  }

  /** Dataset indices of batch `b` (in `[0, batches)`). */
  batch(b: number): number[] {
    if (!Number.isInteger(b) || b < 0 || b >= this.batches) {
      throw new CellMapError("OUT_OF_RANGE", `batch ${b} is outside [0, ${this.batches})`, "batch");
    }
    const { batchSize, rank, worldSize } = this.shape;
    const n = this.sequence.length;
    const end = Math.min((b + 1) * batchSize, this.samplesPerRank);
    const out: number[] = [];
    for (let q = b * batchSize; q < end; q++) {
      const p = q * worldSize + rank;
      out.push(this.sequence.at(p < n ? p : p % n));
    }
    return out;
  }
}
