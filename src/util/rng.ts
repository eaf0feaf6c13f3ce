/**
 * Counter-based random numbers: every draw is a pure function of (seed, epoch, index, stream),
 * so results never depend on how many workers run or in which order they finish.
 *
 * Hand-written because the generator must be tiny, serialisable as four integers, and identical
 * in every thread; a 32-bit hash seeds an sfc32 stream (good statistical quality, fast in JS).
 */
import { CellMapError } from "../errors.js";

/** Mixes 32-bit words into one (murmur3 finaliser style avalanche). */
export function mix32(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Splits a non-negative integer (up to 2^53) into two 32-bit words. */
function words(n: number): [number, number] {
  return [n >>> 0, Math.floor(n / 4294967296) >>> 0];
}

/** A deterministic pseudo-random generator (sfc32) with convenience draws. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds from any list of non-negative integers (e.g. seed, epoch, index, stream). */
  constructor(...key: number[]) {
    let h = 0x9e3779b9;
    for (const k of key) {
      const [lo, hi] = words(Math.max(0, Math.floor(k)));
      h = mix32(h, lo);
      h = mix32(h, hi);
    }
    this.a = mix32(h, 0x243f6a88);
    this.b = mix32(h, 0x85a308d3);
    this.c = mix32(h, 0x13198a2e);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextUint32(); // warm-up decorrelates nearby keys
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Uniform integer in [0, n) for n up to 2^53 (no modulo bias). */
  int(n: number): number {
    if (!(n >= 1) || !Number.isFinite(n)) throw new CellMapError("INVALID_ARGUMENT", `Rng.int needs a finite n >= 1, got ${n}`, "Rng.int");
    if (n <= 4294967296) {
      const limit = 4294967296 - (4294967296 % n);
      for (;;) {
        const r = this.nextUint32();
        if (r < limit) return r % n;
      }
    }
    for (;;) {
      const r = Math.floor(this.random() * 9007199254740992);
      const limit = 9007199254740992 - (9007199254740992 % n);
      if (r < limit) return r % n;
    }
  }

  /** Standard normal draw (Box-Muller). */
  normal(mean = 0, std = 1): number {
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Bernoulli draw with probability p. */
  chance(p: number): boolean {
    return this.random() < p;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

/** Named streams so different consumers of one sample never share draws. */
export const RngStream = {
  spatial: 1,
  rawValue: 2,
  targetValue: 3,
  sampler: 4,
  /** Whether a sample seeks the foreground, and its redrawn centres (one generator per try). */
  foreground: 5,
  /** The elastic deformation's control displacements. */
  elastic: 6,
  /** The section misalignment. */
  sectionShift: 7,
} as const;

/** The generator for one sample: a function of (seed, epoch, index, stream) only. */
export function sampleRng(seed: number, epoch: number, index: number, stream: number): Rng {
  return new Rng(seed, epoch, index, stream);
}
