import { test } from "node:test";
import assert from "node:assert/strict";
import { CellMapError } from "../src/errors.js";
import { Rng } from "../src/util/rng.js";
import {
  ClassBalancedSampler,
  MutableSubsetRandomSampler,
  SequentialSampler,
  minRedundantIndices,
  offsetsOf,
  sampleWithoutReplacement,
  weightedRandomIndices,
  weightedSubsetIndices,
} from "../src/sampling/index.js";
import { CellMapMultiDataset, CellMapSubset, type ClassCounts, type DatasetItem, type DatasetLike } from "../src/dataset/index.js";

function histogram(values: number[], bins: (v: number) => number, n: number): number[] {
  const h = new Array<number>(n).fill(0);
  for (const v of values) h[bins(v)]++;
  return h;
}

/** A dataset stand-in with given length, counts and annotated classes (no I/O). */
function fake(length: number, counts: ClassCounts, annotated: string[] = Object.keys(counts)): DatasetLike & { cropClassRow(): boolean[] } {
  const classes = ["a", "b"];
  return {
    kind: "Fake",
    length,
    classes,
    inputArrays: { raw: { shape: [4, 4, 4], scale: [8, 8, 8] } },
    targetArrays: {},
    async get(i: number): Promise<DatasetItem> {
      return { idx: i, metadata: { rawPath: "", targetPath: null, center: [0, 0, 0], index: i, epoch: 0, spatialTransform: null, levels: {} } };
    },
    async classCounts() {
      return { a: { foreground: 0, background: 0 }, b: { foreground: 0, background: 0 }, ...structuredClone(counts) };
    },
    async classWeights() {
      return {};
    },
    validationIndices: () => [],
    verify: () => length > 0,
    subsetRandomSampler: async (n: number) => MutableSubsetRandomSampler.uniform(length, n),
    describe: () => ({ kind: "Fake" }),
    cropClassRow: () => classes.map((c) => annotated.includes(c)),
  };
}

test("sampleWithoutReplacement: distinct, in range, O(k) memory for huge populations", () => {
  const rng = new Rng(1);
  const small = sampleWithoutReplacement(10, 10, rng);
  assert.deepEqual(
    [...small].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  // A population of 1e12 cannot be materialised (8 TB): finishing at all shows O(k) memory.
  const n = 1e12;
  const heap0 = process.memoryUsage().heapUsed;
  const big = sampleWithoutReplacement(n, 20000, new Rng(2));
  assert.ok(process.memoryUsage().heapUsed - heap0 < 64 * 2 ** 20, "memory grows with k, not n");
  assert.equal(new Set(big).size, 20000);
  assert.ok(big.every((v) => Number.isInteger(v) && v >= 0 && v < n));
  const mean = big.reduce((a, b) => a + b, 0) / big.length;
  assert.ok(Math.abs(mean / n - 0.5) < 0.01, `mean ${mean / n}`);
  // Both branches of the algorithm are uniform: each of 20 indices drawn ~ k/n of the time.
  for (const [pop, k] of [
    [20, 10],
    [20, 2],
  ] as const) {
    const counts = new Array<number>(pop).fill(0);
    const r = new Rng(3, pop, k);
    for (let t = 0; t < 4000; t++) for (const v of sampleWithoutReplacement(pop, k, r)) counts[v]++;
    const expected = (4000 * k) / pop;
    assert.ok(
      counts.every((c) => Math.abs(c - expected) < 0.15 * expected),
      `${pop}/${k}: ${counts}`,
    );
  }
  assert.throws(() => sampleWithoutReplacement(3, 4, rng), CellMapError);
});

test("minRedundantIndices: exactly k, each index floor(k/n) or ceil(k/n) times", () => {
  const rng = new Rng(4);
  for (const [n, k] of [
    [7, 3],
    [7, 7],
    [7, 23],
    [1, 5],
    [5, 0],
  ]) {
    const idx = minRedundantIndices(n, k, rng);
    assert.equal(idx.length, k);
    const h = histogram(idx, (v) => v, n);
    assert.ok(
      h.every((c) => c === Math.floor(k / n) || c === Math.ceil(k / n)),
      `${n},${k}: ${h}`,
    );
  }
  assert.deepEqual(minRedundantIndices(1000, 50, new Rng(9)), minRedundantIndices(1000, 50, new Rng(9)));
  assert.throws(() => minRedundantIndices(0, 3, rng), CellMapError);
  assert.throws(() => minRedundantIndices(5, -1, rng), CellMapError);
});

test("MutableSubsetRandomSampler: fixed-size subset per epoch, refresh draws a new one, pure in (seed, epoch)", () => {
  const s = MutableSubsetRandomSampler.uniform(1e12, 64, 7);
  assert.equal(s.length, 64);
  assert.equal(s.epoch, 0);
  const first = s.indices;
  assert.equal(new Set(first).size, 64);
  const iter = [...s];
  assert.deepEqual(
    [...iter].sort((a, b) => a - b),
    [...first].sort((a, b) => a - b),
  );
  assert.notDeepEqual(iter, first); // random order
  s.refresh();
  assert.equal(s.epoch, 1);
  assert.notDeepEqual(s.indices, first);
  const other = MutableSubsetRandomSampler.uniform(1e12, 64, 7);
  assert.deepEqual(other.epochIndices(1), [...s]);
  assert.deepEqual(other.epochIndices(0), iter);
  const seeded = MutableSubsetRandomSampler.uniform(1e12, 64, 8);
  assert.notDeepEqual(seeded.indices, first);
  s.setEpoch(0);
  assert.deepEqual(s.indices, first);
  assert.throws(() => s.setEpoch(-1), CellMapError);
  // k > n: every index once or twice.
  const rep = MutableSubsetRandomSampler.uniform(5, 8, 1);
  assert.ok(histogram([...rep], (v) => v, 5).every((c) => c === 1 || c === 2));
  // Custom generator with the wrong size is an error, not a silent short epoch.
  const broken = new MutableSubsetRandomSampler(() => [1, 2], { numSamples: 3 });
  assert.throws(() => [...broken], CellMapError);
});

test("weightedSubsetIndices: proportional to weights, overflow redistributed, capacity respected", () => {
  const sizes = [100000, 100000, 100000];
  const idx = weightedSubsetIndices(sizes, [1, 2, 7], 10000, new Rng(1));
  assert.equal(idx.length, 10000);
  const off = offsetsOf(sizes);
  const which = (v: number) => (v < off[1] ? 0 : v < off[2] ? 1 : 2);
  const h = histogram(idx, which, 3).map((c) => c / 10000);
  [0.1, 0.2, 0.7].forEach((p, k) => assert.ok(Math.abs(h[k] - p) < 0.02, `dataset ${k}: ${h[k]}`));
  assert.equal(new Set(idx).size, 10000); // capacity never exceeded: no repeats

  // A heavy but small dataset gives everything it has; the rest goes to the others by weight.
  const capped = weightedSubsetIndices([10, 1000, 1000], [1000, 1, 3], 400, new Rng(2));
  const c = histogram(capped, (v) => (v < 10 ? 0 : v < 1010 ? 1 : 2), 3);
  assert.equal(c[0], 10);
  assert.equal(new Set(capped.filter((v) => v < 10)).size, 10);
  assert.ok(Math.abs(c[2] / (c[1] + c[2]) - 0.75) < 0.07, `${c}`);

  // Not enough samples anywhere: every sample is used, then repeats stay even.
  const tight = weightedSubsetIndices([3, 5], [1, 1], 16, new Rng(3));
  assert.equal(tight.length, 16);
  const ht = histogram(tight, (v) => v, 8);
  assert.ok(
    ht.every((n) => n >= 1),
    `${ht}`,
  );

  // All-zero weights fall back to uniform over samples; empty datasets never drawn.
  const zero = weightedSubsetIndices([0, 50, 150], [0, 0, 0], 100, new Rng(4));
  assert.ok(zero.every((v) => v >= 0 && v < 200));
  const hz = histogram(zero, (v) => (v < 50 ? 0 : 1), 2);
  assert.ok(hz[0] > 10 && hz[0] < 40, `${hz}`);
  assert.throws(() => weightedSubsetIndices([0, 0], [1, 1], 3, new Rng(5)), CellMapError);
  assert.throws(() => weightedSubsetIndices([5, 5], [1, -1], 3, new Rng(5)), CellMapError);
  assert.throws(() => weightedSubsetIndices([5], [1, 1], 3, new Rng(5)), CellMapError);
});

test("weightedRandomIndices: dataset ∝ weight, uniform inside, with replacement", () => {
  const idx = weightedRandomIndices([10, 90], [1, 1], 20000, new Rng(6));
  const h = histogram(idx, (v) => (v < 10 ? 0 : 1), 2);
  assert.ok(Math.abs(h[0] / 20000 - 0.5) < 0.02, `${h}`);
  const inner = histogram(
    idx.filter((v) => v < 10),
    (v) => v,
    10,
  );
  assert.ok(
    inner.every((n) => Math.abs(n - h[0] / 10) < 0.15 * (h[0] / 10)),
    `${inner}`,
  );
  const huge = weightedRandomIndices([5e11, 5e11], [1, 3], 1000, new Rng(7));
  assert.ok(huge.every((v) => Number.isInteger(v) && v >= 0 && v < 1e12));
});

test("ClassBalancedSampler: least-seen class first, then a crop annotating it", () => {
  // Class b is annotated in one small crop only; crop 3 annotates c but has no samples.
  const s = new ClassBalancedSampler({
    matrix: [
      [true, false, false],
      [true, false, false],
      [false, true, false],
      [false, false, true],
    ],
    sizes: [100, 100, 5, 0],
    samplesPerEpoch: 600,
    seed: 3,
    classes: ["a", "b", "c"],
  });
  const idx = s.epochIndices(0);
  assert.equal(idx.length, 600);
  const crop = (v: number) => (v < 100 ? 0 : v < 200 ? 1 : 2);
  const h = histogram(idx, crop, 3);
  assert.equal(h[2], 300); // the classes alternate exactly
  assert.ok(Math.abs(h[0] - h[1]) < 60, `${h}`);
  assert.ok(idx.every((v) => v >= 0 && v < 205));
  assert.deepEqual([...s], idx);
  assert.deepEqual(
    new ClassBalancedSampler({
      matrix: [
        [true, false, false],
        [true, false, false],
        [false, true, false],
        [false, false, true],
      ],
      sizes: [100, 100, 5, 0],
      samplesPerEpoch: 600,
      seed: 3,
    }).epochIndices(0),
    idx,
  );
  s.refresh();
  assert.notDeepEqual([...s], idx);

  // A crop annotating both classes counts for both.
  const both = new ClassBalancedSampler({
    matrix: [
      [true, true],
      [true, false],
    ],
    sizes: [10, 10],
    samplesPerEpoch: 100,
    seed: 1,
  });
  const hb = histogram(both.epochIndices(0), (v) => (v < 10 ? 0 : 1), 2);
  assert.ok(hb[0] >= 50, `${hb}`);

  assert.throws(() => new ClassBalancedSampler({ matrix: [[false]], sizes: [3], samplesPerEpoch: 5 }), CellMapError);
  assert.throws(() => new ClassBalancedSampler({ matrix: [[true]], sizes: [3, 4], samplesPerEpoch: 5 }), CellMapError);
});

test("SequentialSampler yields its list every epoch", () => {
  const s = new SequentialSampler([4, 2, 9]);
  assert.deepEqual([...s], [4, 2, 9]);
  s.refresh();
  assert.deepEqual([...s], [4, 2, 9]);
});

test("multi-dataset samplers: weights from class counts, 10^12 samples by arithmetic", async () => {
  // Combined weight of a: bg/fg = 160/40 = 4 → masses 10*4 = 40 and 30*4 = 120 → p = 0.25, 0.75.
  const d0 = fake(5e11, { a: { foreground: 10, background: 90 } });
  const d1 = fake(5e11, { a: { foreground: 30, background: 70 } }, ["a", "b"]);
  const m = new CellMapMultiDataset([d0, d1], { seed: 2 });
  assert.equal(m.length, 1e12);
  assert.deepEqual(await m.classWeights(), { a: 4, b: 1 });
  assert.deepEqual(await m.datasetWeights(), [40, 120]);
  const heap0 = process.memoryUsage().heapUsed;
  const sub = await m.subsetRandomSampler(4000);
  const idx = [...sub];
  assert.ok(process.memoryUsage().heapUsed - heap0 < 64 * 2 ** 20, "memory grows with the subset, not the 1e12 samples");
  assert.equal(new Set(idx).size, 4000);
  const share = idx.filter((v) => v >= 5e11).length / 4000;
  assert.ok(Math.abs(share - 0.75) < 0.03, `share ${share}`);
  const uniform = [...(await m.subsetRandomSampler(4000, { weighted: false }))];
  assert.ok(Math.abs(uniform.filter((v) => v >= 5e11).length / 4000 - 0.5) < 0.04);
  await assert.rejects(m.weightedSampler(), CellMapError); // 10^12 samples need numSamples
  const w = await m.weightedSampler({ numSamples: 2000 });
  assert.equal([...w].length, 2000);
  assert.throws(() => m.classBalancedSampler(), CellMapError);
  const cb = m.classBalancedSampler({ samplesPerEpoch: 100 });
  // b is annotated by d1 only, so every other draw comes from d1.
  assert.ok([...cb].filter((v) => v >= 5e11).length >= 50);
  assert.deepEqual(m.cropClassMatrix(), [
    [true, false],
    [true, true],
  ]);

  // Small multi: default weighted sampler draws `length` samples per epoch (not one batch, P4).
  const small = new CellMapMultiDataset([fake(30, { a: { foreground: 1, background: 1 } }), fake(20, { a: { foreground: 1, background: 1 } })]);
  const ws = await small.weightedSampler();
  assert.equal([...ws].length, 50);
  // Subset samplers yield positions in the subset.
  const subset = new CellMapSubset(small, [49, 48, 0]);
  assert.ok([...(await subset.subsetRandomSampler(10))].every((v) => v >= 0 && v < 3));
});
