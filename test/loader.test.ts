import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { getEventListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { CellMapDataset, CellMapMultiDataset, CellMapSubset } from "../src/dataset/index.js";
import type { DatasetDescription, DatasetItem, DatasetLike } from "../src/dataset/types.js";
import { CellMapError } from "../src/errors.js";
import { batchSlots } from "../src/loader/memory.js";
import { startLatencyServer } from "../bench/latency.js";
import {
  batchMemoryBytes,
  batchTensor,
  CellMapDataLoader,
  EpochPlan,
  FeistelPermutation,
  fitPrefetch,
  loadOnnx,
  SampleError,
  shuffledSequence,
  toOnnx,
  toTfjs,
  type Batch,
} from "../src/loader/index.js";
import { Rng } from "../src/util/rng.js";
import { MutableSubsetRandomSampler, SequentialSampler } from "../src/sampling/samplers.js";
import type { Tensor } from "../src/tensor.js";
import { chunkCache } from "../src/zarr/cache.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";
import { makeLabelPyramid, makeRawEM } from "./fixtures/builder.js";

registerFastCodecs();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-loader-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SPEC = { shape: [8, 8, 8], scale: [8, 8, 8] };
const CLASSES = ["a", "b"];

/** Writes a 32^3 raw pyramid (4 nm, 2 levels) and two label classes under `dir`. */
async function writeCrop(dir: string): Promise<void> {
  await makeRawEM(path.join(dir, "raw"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8], codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } });
  await makeLabelPyramid(path.join(dir, "gt", "a"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8], shapes: [{ kind: "sphere", center: [40, 40, 40], radius: 30 }] });
  await makeLabelPyramid(path.join(dir, "gt", "b"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8], shapes: [{ kind: "box", min: [60, 0, 0], max: [128, 64, 128] }] });
}

function openCrop(dir: string, extra: Partial<Parameters<typeof CellMapDataset.open>[0]> = {}): Promise<CellMapDataset> {
  return CellMapDataset.open({
    rawPath: path.join(dir, "raw"),
    targetPath: path.join(dir, "gt", "[a,b]"),
    classes: CLASSES,
    inputArrays: { raw: SPEC },
    targetArrays: { gt: SPEC },
    ...extra,
  });
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

async function collect(loader: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

/** Digest of every tensor byte, index and shape of a list of batches. */
function digest(batches: Batch[]): string {
  const h = createHash("sha256");
  for (const b of batches) {
    h.update(JSON.stringify(b.idx));
    for (const k of Object.keys(b).sort()) {
      const t = b[k] as Tensor;
      if (!(t?.data instanceof Float32Array)) continue;
      h.update(`${k}:${t.shape}`);
      h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  }
  return h.digest("hex");
}

/** A tiny in-memory dataset: sample i is filled with the value i (and i + 0.5 in its target). */
function fakeDataset(length: number, opts: { onGet?: (i: number) => Promise<void> | void; extras?: Record<string, unknown> } = {}): DatasetLike {
  return {
    kind: "Fake",
    length,
    classes: ["c"],
    inputArrays: { x: { shape: [2, 2], scale: [1, 1] } },
    targetArrays: { y: { shape: [2, 2], scale: [1, 1] } },
    async get(i: number): Promise<DatasetItem> {
      if (!Number.isInteger(i) || i < 0 || i >= length) throw new CellMapError("OUT_OF_RANGE", `index ${i}`, "fake");
      await opts.onGet?.(i);
      return {
        idx: i,
        metadata: { rawPath: "fake", targetPath: null, center: [0, 0], index: i, epoch: 0, spatialTransform: null, levels: {} },
        x: { data: new Float32Array(4).fill(i), shape: [1, 2, 2], sourceDtype: "float32" },
        y: { data: new Float32Array(4).fill(i + 0.5), shape: [1, 2, 2], sourceDtype: "float32" },
      };
    },
    classCounts: async () => ({ c: { foreground: 1, background: 1 } }),
    classWeights: async () => ({ c: 1 }),
    validationIndices: () => [],
    verify: () => length > 0,
    subsetRandomSampler: async (k: number, o: { seed?: number } = {}) => MutableSubsetRandomSampler.uniform(length, k, o.seed ?? 0),
    describe: (): DatasetDescription => ({ kind: "Fake" }),
    ...opts.extras,
  } as DatasetLike;
}

const idxOf = (batches: Batch[]) => batches.map((b) => b.idx);

let crop: string;
let ds: CellMapDataset;

before(async () => {
  crop = path.join(tmp, "crop");
  await writeCrop(crop);
  ds = await openCrop(crop);
});

describe("CellMapDataLoader: batches", () => {
  it("stacks samples into [N, C, z, y, x] in index order, last batch short", async () => {
    const sub = new CellMapSubset(ds, range(13, 100));
    const loader = new CellMapDataLoader(sub, { batchSize: 4, isTrain: false });
    assert.equal(loader.length, 4);
    const batches = await collect(loader);
    assert.deepEqual(idxOf(batches), [range(4), range(4, 4), range(4, 8), [12]]);
    const raw = batches[0].raw as Tensor;
    const gt = batches[0].gt as Tensor;
    assert.deepEqual(raw.shape, [4, 1, 8, 8, 8]);
    assert.deepEqual(gt.shape, [4, 2, 8, 8, 8]);
    assert.equal(raw.sourceDtype, "uint8");
    assert.deepEqual((batches[3].raw as Tensor).shape, [1, 1, 8, 8, 8]);
    assert.equal(batches[1].metadata.length, 4);
    assert.equal(batches[1].metadata[2].index, 106);
    // One contiguous block per key, in the loader's shared batch buffers, each slot equal to
    // the sample read directly.
    for (const [k, i] of [
      [1, 2],
      [3, 0],
    ]) {
      const item = await sub.get(4 * k + i);
      const b = batches[k];
      for (const key of ["raw", "gt"]) {
        const t = b[key] as Tensor;
        const size = (item[key] as Tensor).data.length;
        assert.ok(t.data.buffer instanceof SharedArrayBuffer);
        assert.equal(t.data.length, b.idx.length * size);
        assert.deepEqual(t.data.subarray(i * size, (i + 1) * size), (item[key] as Tensor).data);
      }
    }
  });

  it("dropLast drops the short batch", async () => {
    const loader = new CellMapDataLoader(fakeDataset(13), { batchSize: 4, isTrain: false, dropLast: true });
    assert.equal(loader.length, 3);
    const batches = await collect(loader);
    assert.deepEqual(idxOf(batches), [range(4), range(4, 4), range(4, 8)]);
    assert.deepEqual(new CellMapDataLoader(fakeDataset(10), { batchSize: 3 }).length, 4);
    assert.deepEqual(new CellMapDataLoader(fakeDataset(10), { batchSize: 3, dropLast: true }).length, 3);
  });

  it("get(indices) collates the samples of the current epoch", async () => {
    const loader = new CellMapDataLoader(fakeDataset(10), { batchSize: 3 });
    const b = await loader.get([7, 2]);
    assert.deepEqual(b.idx, [7, 2]);
    assert.deepEqual([...(b.x as Tensor).data], [7, 7, 7, 7, 2, 2, 2, 2]);
    assert.deepEqual(batchTensor(b, "y").shape, [2, 1, 2, 2]);
    assert.throws(() => batchTensor(b, "z"), { code: "INVALID_ARGUMENT", message: /tensors: x, y/ });
  });

  it("shuffles with a fresh order every epoch, a pure function of (seed, epoch)", async () => {
    const a = new CellMapDataLoader(fakeDataset(50), { batchSize: 5, seed: 9 });
    const e0 = idxOf(await collect(a)).flat();
    assert.equal(a.epoch, 1);
    const e1 = idxOf(await collect(a)).flat();
    assert.deepEqual(
      [...e0].sort((x, y) => x - y),
      range(50),
    );
    assert.deepEqual(
      [...e1].sort((x, y) => x - y),
      range(50),
    );
    assert.notDeepEqual(e0, e1);
    const b = new CellMapDataLoader(fakeDataset(50), { batchSize: 5, seed: 9 });
    assert.deepEqual(idxOf(await collect(b)).flat(), e0);
    const c = new CellMapDataLoader(fakeDataset(50), { batchSize: 5, seed: 10 });
    assert.notDeepEqual(idxOf(await collect(c)).flat(), e0);
  });
});

describe("CellMapDataLoader: sampler modes", () => {
  it("lengths and epochs for every mode", async () => {
    const d = fakeDataset(10);
    const check = async (l: CellMapDataLoader, batches: number, samples: number) => {
      assert.equal(l.length, batches);
      assert.equal(l.samplesPerEpoch, samples);
      const got = await collect(l);
      assert.equal(got.length, batches);
      assert.equal(got.flatMap((b) => b.idx).length, Math.min(samples, batches * l.batchSize));
      return got.flatMap((b) => b.idx);
    };
    assert.deepEqual(await check(new CellMapDataLoader(d, { batchSize: 4, isTrain: false }), 3, 10), range(10));
    await check(new CellMapDataLoader(d, { batchSize: 4 }), 3, 10);
    // iterationsPerEpoch counts batches (per rank): a random subset of ipe * batchSize * worldSize.
    const sub = await check(new CellMapDataLoader(d, { batchSize: 4, iterationsPerEpoch: 5 }), 5, 20);
    assert.ok(sub.every((i) => i >= 0 && i < 10));
    await check(new CellMapDataLoader(d, { batchSize: 4, iterationsPerEpoch: 5, worldSize: 2, rank: 1 }), 5, 40);
    // Explicit samplers: a list, a Sampler, a factory (re-made by refresh()).
    assert.deepEqual(await check(new CellMapDataLoader(d, { batchSize: 2, sampler: [9, 3, 3] }), 2, 3), [9, 3, 3]);
    assert.deepEqual(await check(new CellMapDataLoader(d, { batchSize: 2, sampler: new SequentialSampler([5, 4, 1, 0]) }), 2, 4), [5, 4, 1, 0]);
    let made = 0;
    const fl = new CellMapDataLoader(d, { batchSize: 2, sampler: () => range(++made + 2) });
    assert.equal(fl.length, 2);
    fl.refresh();
    assert.equal(fl.length, 2);
    assert.equal(fl.samplesPerEpoch, 4);
    assert.equal(fl.epoch, 1);
  });

  it("weighted and class-balanced sampling on a multi-dataset", async () => {
    const a = fakeDataset(6, { extras: { cropClassRow: () => [true] } });
    const b = fakeDataset(4, { extras: { cropClassRow: () => [true] } });
    const multi = new CellMapMultiDataset([a, b], { classes: ["c"] });
    const w = new CellMapDataLoader(multi, { batchSize: 3, weightedSampler: true, seed: 2 });
    assert.equal(w.length, 4);
    const wi = idxOf(await collect(w)).flat();
    assert.equal(wi.length, 10);
    assert.ok(wi.every((i) => i >= 0 && i < 10));
    const cb = new CellMapDataLoader(multi, { batchSize: 3, weightedSampler: "classBalanced", seed: 2 });
    assert.equal(cb.length, 4);
    assert.equal(idxOf(await collect(cb)).flat().length, 10);
    const cbi = new CellMapDataLoader(multi, { batchSize: 3, weightedSampler: "classBalanced", iterationsPerEpoch: 2 });
    assert.equal(cbi.length, 2);
    assert.equal(idxOf(await collect(cbi)).flat().length, 6);
    const wsub = new CellMapDataLoader(multi, { batchSize: 3, weightedSampler: true, iterationsPerEpoch: 7 });
    assert.equal(wsub.length, 7);
    assert.equal(idxOf(await collect(wsub)).flat().length, 21);
    // A single dataset has no weights to use: plain shuffle; class balance needs crop rows.
    assert.equal(new CellMapDataLoader(fakeDataset(10), { batchSize: 3, weightedSampler: true }).length, 4);
    assert.throws(() => new CellMapDataLoader(fakeDataset(10), { weightedSampler: "classBalanced" }), { code: "UNSUPPORTED" });
    assert.throws(() => new CellMapDataLoader(fakeDataset(2 ** 25), { weightedSampler: true }), { code: "INVALID_ARGUMENT", message: /iterationsPerEpoch/ });
  });

  it("huge datasets are shuffled without materialising the index list", async () => {
    const n = 1e12;
    const loader = new CellMapDataLoader(fakeDataset(n), { batchSize: 4, seed: 5 });
    assert.equal(loader.length, n / 4);
    const plan = await loader.plan(0);
    const b = plan.batch(123456789);
    assert.equal(b.length, 4);
    assert.ok(b.every((i) => Number.isInteger(i) && i >= 0 && i < n));
    assert.deepEqual((await loader.plan(0)).batch(123456789), b);
    // The Feistel permutation is a bijection for any size.
    for (const size of [1, 2, 3, 5, 17, 1000, 4097]) {
      const seen = new Uint8Array(size);
      const p = new FeistelPermutation(size, new Rng(1, size));
      for (let i = 0; i < size; i++) seen[p.at(i)]++;
      assert.ok(
        seen.every((v) => v === 1),
        `size ${size}`,
      );
    }
    const s = shuffledSequence(1000, 3, 0, 10);
    assert.ok(s instanceof FeistelPermutation);
  });

  it("rejects bad options with the field name", () => {
    const d = fakeDataset(10);
    assert.throws(() => new CellMapDataLoader(d, { batchSize: 0 }), { code: "INVALID_ARGUMENT", path: "batchSize" });
    assert.throws(() => new CellMapDataLoader(d, { rank: 2, worldSize: 2 }), { code: "INVALID_ARGUMENT", path: "rank" });
    assert.throws(() => new CellMapDataLoader(d, { prefetchFactor: 0 }), { path: "prefetchFactor" });
    assert.throws(() => new CellMapDataLoader(d, { weightedSampler: "x" as never }), { path: "weightedSampler" });
    assert.throws(() => new CellMapDataLoader(d, { sampler: 5 as never }), { path: "sampler" });
  });
});

describe("CellMapDataLoader: determinism, resume, ranks", () => {
  it("gives byte-identical batches for 0, 1 and 2 workers (augmented)", async () => {
    const train = await openCrop(crop, {
      isTrain: true,
      seed: 4,
      spatialTransforms: { mirror: { axes: { x: 0.5, z: 0.5 } }, rotate: { axes: { z: [-30, 30] } } },
      rawValueTransforms: { type: "GaussianNoise", params: { std: 0.1 } },
    });
    const sub = new CellMapSubset(train, range(22, 200));
    const digests: string[] = [];
    const reference: Batch[] = [];
    for (const numWorkers of [0, 1, 2]) {
      const loader = new CellMapDataLoader(sub, { batchSize: 4, numWorkers, seed: 8 });
      const batches = await collect(loader);
      // Second epoch: digest each batch, then recycle its buffers into later batches.
      const second: string[] = [];
      for await (const b of loader) {
        second.push(digest([b]));
        // A deep copy: structuredClone keeps a SharedArrayBuffer shared (views of the same slot).
        if (numWorkers === 0)
          reference.push(
            Object.fromEntries(
              Object.entries(b).map(([k, v]) => [k, (v as Tensor)?.data instanceof Float32Array ? { ...(v as Tensor), data: (v as Tensor).data.slice() } : structuredClone(v)]),
            ) as Batch,
          );
        loader.recycle(b);
        assert.equal((b.raw as Tensor).data.length, 0); // detached: stale use cannot see other values
      }
      assert.equal(batches.length + second.length, 12);
      assert.equal(loader.threads, numWorkers);
      await loader.close();
      assert.equal(loader.threads, 0);
      digests.push(digest(batches) + second.join(""));
      if (numWorkers === 0) reference.unshift(...batches);
    }
    assert.equal(digests[1], digests[0]);
    assert.equal(digests[2], digests[0]);
    assert.equal(
      digests[0].slice(64),
      reference
        .slice(6)
        .map((b) => digest([b]))
        .join(""),
    );
    assert.notDeepEqual(reference[0].idx, reference[6].idx);
    assert.deepEqual(
      reference[0].metadata.map((m) => m.epoch),
      [0, 0, 0, 0],
    );
    assert.deepEqual(
      reference[6].metadata.map((m) => m.epoch),
      [1, 1, 1, 1],
    );
  });

  it("aug and aug3d batches (rotations about z, and about every axis) are identical for 0, 1 and 2 workers", async () => {
    const augs = {
      aug: { mirror: { axes: { x: 0.5, y: 0.5 } }, rotate: { axes: { z: [-30, 30] as [number, number] } } },
      aug3d: {
        mirror: { axes: { x: 0.5, y: 0.5, z: 0.5 } },
        rotate: { axes: { z: [-180, 180] as [number, number], y: [-20, 20] as [number, number], x: [-20, 20] as [number, number] } },
      },
    };
    for (const [name, spatialTransforms] of Object.entries(augs)) {
      const train = await openCrop(crop, { isTrain: true, seed: 11, spatialTransforms });
      const digests: string[] = [];
      for (const numWorkers of [0, 1, 2]) {
        const loader = new CellMapDataLoader(train, { batchSize: 3, numWorkers, seed: 5, iterationsPerEpoch: 8 });
        const per: string[] = [];
        for await (const b of loader) per.push(digest([b])); // dropped: buffers reused by later batches
        digests.push(per.join(""));
        await loader.close();
      }
      assert.equal(digests[1], digests[0], `${name}: 1 worker`);
      assert.equal(digests[2], digests[0], `${name}: 2 workers`);
    }
  });

  it("resuming from state() continues with exactly the remaining batches", async () => {
    const d = fakeDataset(23);
    const full = new CellMapDataLoader(d, { batchSize: 3, seed: 1 });
    const whole = [...idxOf(await collect(full)), ...idxOf(await collect(full))];
    assert.equal(whole.length, 16);

    const first = new CellMapDataLoader(d, { batchSize: 3, seed: 1 });
    const got: number[][] = [];
    for await (const b of first) {
      got.push(b.idx);
      if (got.length === 3) break;
    }
    const state = JSON.parse(JSON.stringify(first.state()));
    assert.deepEqual({ epoch: state.epoch, position: state.position, seed: state.seed }, { epoch: 0, position: 3, seed: 1 });
    const resumed = new CellMapDataLoader(d, { batchSize: 3, state });
    got.push(...idxOf(await collect(resumed)));
    assert.deepEqual(got, whole.slice(0, 8));
    assert.deepEqual(resumed.state(), { ...state, epoch: 1, position: 0 });
    got.push(...idxOf(await collect(resumed)));
    assert.deepEqual(got, whole);
    // The same loader also continues where a break left it.
    const again = new CellMapDataLoader(d, { batchSize: 3, seed: 1 });
    for await (const b of again) if (b) break;
    assert.deepEqual(idxOf(await collect(again)), whole.slice(1, 8));

    assert.throws(() => new CellMapDataLoader(d, { batchSize: 4, state }), { path: "state.batchSize" });
    assert.throws(() => new CellMapDataLoader(d, { batchSize: 3, seed: 2, state }), { path: "state.seed" });
  });

  it("ranks get disjoint, complete shares with equal batch counts", async () => {
    const d = fakeDataset(13);
    const share = async (worldSize: number, dropLast: boolean) => {
      const out: number[][] = [];
      for (let rank = 0; rank < worldSize; rank++) {
        const l = new CellMapDataLoader(d, { batchSize: 2, seed: 6, rank, worldSize, dropLast });
        const b = await collect(l);
        assert.equal(b.length, l.length);
        out.push(b.flatMap((x) => x.idx));
      }
      return out;
    };
    const exact = await share(1, false);
    const parts = await share(3, false);
    assert.deepEqual(
      parts.map((p) => p.length),
      [5, 5, 5],
    );
    const all = parts.flat();
    assert.deepEqual(
      [...new Set(all)].sort((a, b) => a - b),
      range(13),
    );
    assert.equal(all.length - new Set(all).size, 2); // wrap-around padding only
    // Interleaved positions of the one shared epoch order.
    assert.deepEqual(parts[1].slice(0, 4), [exact[0][1], exact[0][4], exact[0][7], exact[0][10]]);
    const dropped = await share(3, true);
    assert.deepEqual(
      dropped.map((p) => p.length),
      [4, 4, 4],
    );
    assert.equal(new Set(dropped.flat()).size, 12);
    const four = await share(4, false);
    assert.deepEqual(
      four.map((p) => p.length),
      [4, 4, 4, 4],
    );
    assert.equal(new Set(four.flat()).size, 13);
  });

  it("EpochPlan splits positions by rank, then batches", () => {
    const seq = { length: 10, at: (p: number) => 100 + p };
    const p = new EpochPlan(0, seq, { batchSize: 2, dropLast: false, rank: 1, worldSize: 3 });
    assert.equal(p.batches, 2);
    assert.deepEqual(
      [p.batch(0), p.batch(1)],
      [
        [101, 104],
        [107, 100],
      ],
    );
    assert.throws(() => p.batch(2), { code: "OUT_OF_RANGE" });
  });
});

describe("CellMapDataLoader: shared data plane", () => {
  it("batches kept without recycling are never overwritten, past the pool's size", async () => {
    // Patches large enough that the pool holds fewer batches than the loop keeps.
    const big = { shape: [48, 48, 48], scale: [4, 4, 4] };
    const large = await openCrop(crop, {
      isTrain: true,
      seed: 1,
      inputArrays: { raw: big },
      targetArrays: { gt: big },
      pad: true,
      spatialTransforms: { rotate: { axes: { z: [-30, 30] } } },
    });
    for (const numWorkers of [0, 2]) {
      // A memory budget that leaves room for a few spare buffers only.
      const budget = 16 * 2 ** 20 + 12 * batchMemoryBytes(large.inputArrays, large.targetArrays, 2, 2);
      const loader = new CellMapDataLoader(large, {
        batchSize: 2,
        numWorkers,
        seed: 3,
        prefetchFactor: 1,
        iterationsPerEpoch: 40,
        chunkCacheBytes: 16 * 2 ** 20,
        memoryBudgetBytes: budget,
      });
      assert.equal(loader.memoryWarning, null);
      const kept = await collect(loader); // 40 batches held at once: more than the pool's slots
      assert.equal(kept.length, 40);
      const inPlane = kept.filter((b) => (b.raw as Tensor).data.buffer instanceof SharedArrayBuffer).length;
      assert.ok(inPlane >= 2 && inPlane < 40, `${inPlane} batches in shared buffers`);
      loader.setEpoch(0); // get() draws the rotations of epoch 0 again
      for (const b of [kept[0], kept[1], kept[20], kept[39]]) {
        const again = await loader.get(b.idx);
        assert.equal(digest([b]), digest([again]), `batch ${b.idx} (numWorkers ${numWorkers})`);
      }
      await loader.close();
    }
  });

  it("dropped batches come back without recycle(): 200 batches take a bounded number of fresh buffers, and values stay right", async () => {
    // Patches large enough that the pool has few spare buffers: 200 batches cycle through it
    // many times, so every buffer comes back through collections (see reclaim.ts).
    const big = { shape: [40, 40, 40], scale: [4, 4, 4] };
    const train = await openCrop(crop, {
      isTrain: true,
      seed: 2,
      inputArrays: { raw: big },
      targetArrays: { gt: big },
      pad: true,
      spatialTransforms: { mirror: { axes: { x: 0.5 } }, rotate: { axes: { z: [-30, 30] } } },
    });
    for (const numWorkers of [0, 2]) {
      // A memory budget that leaves room for about 12 spare buffers (cut from 256 MiB of them).
      const budget = 16 * 2 ** 20 + 20 * batchMemoryBytes(train.inputArrays, train.targetArrays, 2, 2);
      const loader = new CellMapDataLoader(train, { batchSize: 2, numWorkers, seed: 6, iterationsPerEpoch: 200, chunkCacheBytes: 16 * 2 ** 20, memoryBudgetBytes: budget });
      assert.equal(loader.memoryWarning, null);
      const slots = loader.prefetchDepth + 2 + Math.floor((budget - 16 * 2 ** 20) / loader.batchMemoryBytes());
      assert.ok(slots < 30, `${slots} batch buffers: too many for 200 batches to cycle through`);
      let fresh = 0;
      let n = 0;
      const offsets = new Set<number>();
      const checks: { idx: number[]; digest: string }[] = [];
      for await (const b of loader) {
        const t = b.raw as Tensor;
        if (t.data.buffer instanceof SharedArrayBuffer) offsets.add(t.data.byteOffset);
        else fresh++;
        if (n % 50 === 47) checks.push({ idx: b.idx, digest: digest([b]) });
        n++; // the batch is dropped here: nothing keeps it
      }
      assert.equal(n, 200);
      // Steady state takes no fresh memory: the pool's buffers come back after each collection.
      assert.ok(fresh <= 2, `${fresh} of 200 batches (numWorkers ${numWorkers}) were built in fresh memory`);
      assert.ok(offsets.size <= slots, `${offsets.size} distinct batch buffers, the pool has ${slots}`);
      // Batches read into reused buffers hold the right values (epoch 0's draws again).
      loader.setEpoch(0);
      for (const c of checks) assert.equal(digest([await loader.get(c.idx)]), c.digest, `batch ${c.idx}`);
      await loader.close();
    }
  });

  it("a batch kept whole or as one typed array is never overwritten while the others are dropped", async () => {
    const sub = new CellMapSubset(ds, range(120, 30));
    const loader = new CellMapDataLoader(sub, { batchSize: 2, numWorkers: 2, seed: 3, iterationsPerEpoch: 150 });
    const keptBatches: { b: Batch; digest: string }[] = [];
    const keptArrays: { idx: number[]; data: Float32Array; copy: Float32Array }[] = [];
    let n = 0;
    for await (const b of loader) {
      if (n % 11 === 3) keptBatches.push({ b, digest: digest([b]) });
      else if (n % 11 === 8) {
        const data = (b.gt as Tensor).data as Float32Array; // only this typed array is kept
        keptArrays.push({ idx: b.idx, data, copy: data.slice() });
      }
      n++;
    }
    assert.equal(n, 150);
    assert.ok(keptBatches.length > 10 && keptArrays.length > 10);
    for (const k of keptBatches) assert.equal(digest([k.b]), k.digest, `kept batch ${k.b.idx}`);
    for (const k of keptArrays) assert.deepEqual(k.data, k.copy, `kept gt array of batch ${k.idx}`);
    await loader.close();
  });

  it("a failing sample rejects its batch only after the batch's other reads have settled (nothing writes into a released buffer)", async () => {
    let started = 0;
    let finished = 0;
    const slow = fakeDataset(8, {
      onGet: async (i) => {
        started++;
        try {
          if (i === 0) throw new Error("boom");
          await new Promise((r) => setTimeout(r, 30));
        } finally {
          finished++;
        }
      },
    });
    const loader = new CellMapDataLoader(slow, { batchSize: 4, isTrain: false, prefetchFactor: 1 });
    await assert.rejects(loader.get([0, 1, 2, 3]), /boom/);
    assert.equal(finished, started);
    await assert.rejects(collect(loader), (e: unknown) => e instanceof SampleError && e.index === 0);
    // The prefetched batch still reading settles by itself (into its own buffer).
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(finished, started);
  });

  it("breaking out mid-epoch and iterating again gives exactly the remaining batches (a fresh plane after the workers end)", async () => {
    const sub = new CellMapSubset(ds, range(96, 10));
    const reference = (await collect(new CellMapDataLoader(sub, { batchSize: 4, seed: 9 }))).map((b) => digest([b]));
    for (const chunkCacheBytes of [0, 32 * 2 ** 20]) {
      const loader = new CellMapDataLoader(sub, { batchSize: 4, numWorkers: 2, seed: 9, chunkCacheBytes });
      const got: string[] = [];
      let n = 0;
      for await (const b of loader) {
        got.push(digest([b]));
        if (++n === 5) break; // the workers are terminated with reads in flight
      }
      for await (const b of loader) got.push(digest([b]));
      assert.deepEqual(got, reference, `chunkCacheBytes ${chunkCacheBytes}`);
      await loader.close();
    }
  });

  it("recycled batches are emptied and their buffers reused; one shared cache decodes each chunk once", async () => {
    const sub = new CellMapSubset(ds, range(64, 100));
    const referenceBatches = await collect(new CellMapDataLoader(sub, { batchSize: 4, seed: 5 }));
    const reference = digest(referenceBatches);
    const loader = new CellMapDataLoader(sub, { batchSize: 4, numWorkers: 2, seed: 5, chunkCacheBytes: 64 * 2 ** 20 });
    const digests: string[] = [];
    const buffers = new Set<number>();
    for await (const b of loader) {
      const t = b.raw as Tensor;
      digests.push(digest([b]));
      if (t.data.buffer instanceof SharedArrayBuffer) buffers.add(t.data.byteOffset);
      loader.recycle(b);
      assert.equal(t.data.length, 0);
    }
    assert.ok(buffers.size <= 2 * loader.prefetchDepth + 2, `${buffers.size} distinct batch buffers`);
    const s = loader.cacheStats();
    assert.equal(s.misses, s.entries, "every chunk decoded once across the two workers");
    assert.ok(s.hits > 0);
    assert.equal(loader.chunkCacheBytes, 64 * 2 ** 20);
    await loader.close();
    // Same values as the main-thread loader.
    const again = new CellMapDataLoader(sub, { batchSize: 4, numWorkers: 2, seed: 5 });
    assert.equal(digest(await collect(again)), reference);
    // Reused buffers held exactly the values of a fresh main-thread loader, batch by batch.
    assert.deepEqual(
      digests,
      referenceBatches.map((b) => digest([b])),
    );
  });
});

describe("CellMapDataLoader: over HTTP with object-store latency", () => {
  it("the latency server (bench/latency.ts) gives the same batches as the local files, with the cache off and on", async () => {
    const server = await startLatencyServer(crop, 5);
    try {
      const spatialTransforms = { mirror: { axes: { x: 0.5 } }, rotate: { axes: { z: [-30, 30] as [number, number] } } };
      const local = await openCrop(crop, { isTrain: true, seed: 3, spatialTransforms });
      const remote = await CellMapDataset.open({
        rawPath: `${server.url}/raw`,
        targetPath: `${server.url}/gt/[a,b]`,
        classes: CLASSES,
        inputArrays: { raw: SPEC },
        targetArrays: { gt: SPEC },
        isTrain: true,
        seed: 3,
        spatialTransforms,
      });
      assert.equal(remote.length, local.length);
      const reference = (await collect(new CellMapDataLoader(local, { batchSize: 4, seed: 2, iterationsPerEpoch: 6 }))).map((b) => digest([b]));
      for (const chunkCacheBytes of [0, 16 * 2 ** 20]) {
        const loader = new CellMapDataLoader(remote, { batchSize: 4, numWorkers: 2, seed: 2, iterationsPerEpoch: 6, chunkCacheBytes });
        const got: string[] = [];
        for await (const b of loader) got.push(digest([b]));
        await loader.close();
        assert.deepEqual(got, reference, `chunkCacheBytes ${chunkCacheBytes}`);
      }
      assert.ok(server.requests() > 0);
    } finally {
      await server.close();
    }
  });
});

describe("CellMapDataLoader: outputDtype", () => {
  it("instance ids above 2^24 reach the batch exactly as uint32 (0 and 2 workers, in place in the shared pool)", async () => {
    const dir = path.join(tmp, "ids");
    await makeRawEM(path.join(dir, "raw"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8] });
    const big = 2 ** 24 + 1;
    await makeLabelPyramid(path.join(dir, "gt", "a"), {
      shape: [32, 32, 32],
      levels: 2,
      chunks: [8, 8, 8],
      dtype: "uint32",
      shapes: [
        { kind: "sphere", center: [40, 40, 40], radius: 30, value: big },
        { kind: "box", min: [80, 0, 0], max: [128, 128, 128], value: big + 2 },
      ],
    });
    const opts = { rawPath: path.join(dir, "raw"), targetPath: path.join(dir, "gt", "[a]"), classes: ["a"], inputArrays: { raw: SPEC } };
    await assert.rejects(
      CellMapDataset.open({ ...opts, targetArrays: { ids: { ...SPEC, outputDtype: "uint32" } } }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && e.message.includes("targetArrays.ids.outputDtype") && e.message.includes("emptyValue"),
    );
    const f32 = await CellMapDataset.open({ ...opts, targetArrays: { ids: SPEC }, emptyValue: 0 });
    await assert.rejects(f32.get(f32.length - 1), (e: unknown) => e instanceof CellMapError && e.code === "UNSUPPORTED" && e.message.includes("largest 16777219"));
    const ids = await CellMapDataset.open({
      ...opts,
      targetArrays: { ids: { ...SPEC, outputDtype: "uint32" } },
      emptyValue: 0,
      targetValueTransforms: { type: "Binarize", params: { threshold: 0 } },
    });
    const values = new Set<number>();
    const digests: string[] = [];
    for (const numWorkers of [0, 2]) {
      const loader = new CellMapDataLoader(ids, { batchSize: 4, numWorkers, seed: 3 });
      const h = createHash("sha256");
      for await (const b of loader) {
        const t = b.ids as Tensor<Uint32Array>;
        assert.ok(t.data instanceof Uint32Array, `${numWorkers} workers: ${t.data.constructor.name}`);
        assert.equal(t.dtype, "uint32");
        assert.ok((b.raw as Tensor).data instanceof Float32Array);
        for (const v of t.data) values.add(v);
        h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      }
      digests.push(h.digest("hex"));
      await loader.close();
    }
    assert.deepEqual(
      [...values].sort((a, b) => a - b),
      [0, big, big + 2],
      "ids exact; the value transform does not touch uint32 arrays",
    );
    assert.equal(new Set(digests).size, 1, "same bytes for 0 and 2 workers");
  });
});

describe("CellMapDataLoader: backpressure, memory, failures, threads", () => {
  it("keeps at most prefetchFactor * max(1, numWorkers) batches in flight", async () => {
    let started = 0;
    const d = fakeDataset(40, { onGet: () => void started++ });
    const loader = new CellMapDataLoader(d, { batchSize: 2, prefetchFactor: 3 });
    assert.equal(loader.prefetchDepth, 3);
    let k = 0;
    for await (const b of loader) {
      assert.ok(b);
      await new Promise((r) => setTimeout(r, 2));
      assert.ok(started <= (k + 1 + 3) * 2, `batch ${k}: ${started} samples started`);
      k++;
    }
    assert.equal(k, 20);
  });

  it("estimates batch memory and cuts the prefetch queue to the budget", () => {
    const py = fakeDataset(1, {
      extras: {
        classes: ["a", "b", "c"],
        inputArrays: { r1: { shape: [32, 32, 32], scale: [1, 1, 1] }, r2: { shape: [16, 16, 16], scale: [1, 1, 1] } },
        targetArrays: { t: { shape: [32, 32, 32], scale: [1, 1, 1] } },
      },
    });
    assert.equal(batchMemoryBytes(py.inputArrays, py.targetArrays, 3, 4), 2_162_688); // Python's 2.0625 MB example
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => w.code === "CELLMAP_LOADER_MEMORY" && warnings.push(w.message);
    process.on("warning", onWarning);
    const l = new CellMapDataLoader(py, { batchSize: 4, prefetchFactor: 4, chunkCacheBytes: 0, memoryBudgetBytes: 4 * 2_162_688 });
    assert.equal(l.batchMemoryBytes(), 2_162_688);
    // The pool holds depth + 2 batch buffers plus spares for dropped batches (cut first, down to
    // 2): a budget of 4 batches fits no depth.
    assert.equal(l.prefetchDepth, 1);
    assert.match(l.memoryWarning ?? "", /cannot fit the memory budget/);
    // Depth 3: its batch buffers plus the samples being read (4 readers of a quarter batch).
    const roomy = new CellMapDataLoader(py, { batchSize: 4, prefetchFactor: 4, chunkCacheBytes: 0, memoryBudgetBytes: (batchSlots(3, 2) + 1) * 2_162_688 });
    assert.equal(roomy.prefetchDepth, 3);
    // Room for depth 4 and a few spares: the depth is kept, the spares are cut.
    const fit4 = fitPrefetch({ requested: 4, batchBytes: 1000, sampleBytes: 0, readers: 1, cacheBytes: 0, budgetBytes: 10_000 });
    assert.deepEqual([fit4.depth, fit4.spares, fit4.warning], [4, 4, null]);
    assert.match(roomy.memoryWarning ?? "", /prefetch queue cut from 4 to 3/);
    const fit = fitPrefetch({ requested: 2, batchBytes: 100, sampleBytes: 10, readers: 1, cacheBytes: 1000, budgetBytes: 500 });
    assert.equal(fit.depth, 1);
    assert.match(fit.warning ?? "", /cannot fit/);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        process.off("warning", onWarning);
        assert.equal(warnings.length, 2);
        resolve();
      }),
    );
  });

  it("a failing sample rejects the iteration with its index and cause (main thread)", async () => {
    const d = fakeDataset(10, {
      onGet: (i) => {
        if (i === 6) throw new CellMapError("CORRUPT_CHUNK", "bad bytes", "raw/s0/0.0.0");
      },
    });
    const loader = new CellMapDataLoader(d, { batchSize: 4, isTrain: false });
    const seen: number[][] = [];
    await assert.rejects(
      (async () => {
        for await (const b of loader) seen.push(b.idx);
      })(),
      (e: unknown) => e instanceof SampleError && e.index === 6 && e.code === "CORRUPT_CHUNK" && e.path === "raw/s0/0.0.0" && /sample 6 \(epoch 0\)/.test(e.message),
    );
    assert.deepEqual(seen, [range(4)]);
  });

  it("a module transform that throws in a worker rejects with the sample index; no threads remain", async () => {
    const mod = path.join(tmp, "throws.mjs");
    fs.writeFileSync(mod, "export class Boom { apply() { throw new RangeError('boom from user transform'); } }\n");
    const bad = await openCrop(crop, { rawValueTransforms: { type: "module", module: mod, export: "Boom" } });
    const sub = new CellMapSubset(bad, range(12));
    const loader = new CellMapDataLoader(sub, { batchSize: 4, numWorkers: 1, isTrain: false }); // 2 batches in flight, both fail
    await assert.rejects(collect(loader), (e: unknown) => {
      assert.ok(e instanceof SampleError, String(e));
      assert.ok(e.index >= 0 && e.index < 4, `index ${e.index}`);
      assert.match(e.message, /boom from user transform/);
      assert.equal((e.cause as Error).name, "RangeError");
      return true;
    });
    assert.equal(loader.threads, 0);
  });

  it("the signal option stops an iteration with ABORTED and ends the workers", async () => {
    for (const numWorkers of [0, 2]) {
      const ds = await openCrop(crop);
      const ac = new AbortController();
      const aborting = new CellMapDataLoader(ds, { batchSize: 2, numWorkers, seed: 3, signal: ac.signal });
      let seen = 0;
      await assert.rejects(
        (async () => {
          for await (const _ of aborting) {
            void _;
            if (++seen === 2) ac.abort();
          }
        })(),
        (e: unknown) => e instanceof CellMapError && e.code === "ABORTED",
      );
      assert.equal(seen, 2);
      assert.equal(aborting.threads, 0, `numWorkers ${numWorkers}: threads ended`);
      await assert.rejects(aborting.get([0]), (e: unknown) => e instanceof CellMapError && e.code === "ABORTED");
    }
  });

  it("the signal's abort listener goes with close() (and with a failed constructor); the process-wide chunk cache is left alone", async () => {
    const ac = new AbortController();
    const listeners = () => getEventListeners(ac.signal, "abort").length;
    const processCache = chunkCache.capacityBytes;
    assert.throws(
      () => new CellMapDataLoader(fakeDataset(8), { batchSize: 2, signal: ac.signal, rank: 3, worldSize: 2 }),
      (e: unknown) => e instanceof CellMapError && e.path === "rank",
    );
    assert.equal(listeners(), 0, "a loader that failed to construct leaves no listener");
    const loaders = [1, 2, 3].map((k) => new CellMapDataLoader(fakeDataset(8), { batchSize: 2, signal: ac.signal, chunkCacheBytes: k * 1024 ** 2 }));
    assert.equal(listeners(), 3);
    assert.equal(chunkCache.capacityBytes, processCache, "each loader has its own cache: the process-wide one keeps its size");
    assert.deepEqual(
      loaders.map((l) => l.chunkCacheBytes > 0),
      [true, true, true],
    );
    for (const l of loaders) await l.close();
    assert.equal(listeners(), 0, "close() removes the listener");
    await loaders[0].close();
    assert.equal(listeners(), 0);
    // Iterating again listens again, and an abort then stops the loader (which drops the listener).
    const l = loaders[0];
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const b of l) {
          seen.push(...b.idx);
          assert.equal(listeners(), 1);
          if (seen.length === 4) ac.abort();
        }
      })(),
      (e: unknown) => e instanceof CellMapError && e.code === "ABORTED",
    );
    assert.equal(seen.length, 4);
    assert.equal(listeners(), 0);
  });

  it("a dataset path removed before the workers open it rejects with the index; no threads remain", async () => {
    const copy = path.join(tmp, "gone");
    fs.cpSync(crop, copy, { recursive: true });
    const gone = await openCrop(copy);
    fs.rmSync(copy, { recursive: true, force: true });
    const loader = new CellMapDataLoader(new CellMapSubset(gone, range(8)), { batchSize: 4, numWorkers: 1, isTrain: false });
    await assert.rejects(collect(loader), (e: unknown) => {
      assert.ok(e instanceof SampleError, String(e));
      // The first batch may be built on this thread while the pool starts; the worker's first fails.
      assert.ok(e.index === 0 || e.index === 4, `index ${e.index}`);
      assert.match(e.message, /opening the dataset in a worker thread/);
      assert.match(e.message, /gone/);
      return true;
    });
    assert.equal(loader.threads, 0);
  });

  it("break closes the pool; a custom value transform runs in workers", async () => {
    const mod = path.join(tmp, "scale.mjs");
    fs.writeFileSync(
      mod,
      "export class Scale { constructor(p) { this.f = p.factor; } apply(t, rng) { const o = rng.random(); for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i] * this.f + o; return t; } }\n",
    );
    const scaled = await openCrop(crop, { rawValueTransforms: { type: "module", module: pathToFileURL(mod).href, export: "Scale", params: { factor: -2 } } });
    const sub = new CellMapSubset(scaled, range(12, 300));
    const plain = new CellMapSubset(ds, range(12, 300));
    const ref = await collect(new CellMapDataLoader(sub, { batchSize: 4, seed: 2 }));
    const loader = new CellMapDataLoader(sub, { batchSize: 4, numWorkers: 2, seed: 2 });
    const got: Batch[] = [];
    for await (const b of loader) {
      got.push(b);
      if (got.length === 2) break;
    }
    assert.equal(loader.threads, 0);
    assert.equal(digest(got), digest(ref.slice(0, 2)));
    const rest = await collect(loader); // a new pool for the rest of the epoch
    await loader.close();
    assert.equal(digest([...got, ...rest]), digest(ref));
    // Values really went through the user's transform: raw * -2 + offset, offset in [0, 1).
    const i = got[0].idx[1];
    const v = (got[0].raw as Tensor).data[512 + 10];
    const p = ((await plain.get(i)).raw as Tensor).data[10];
    assert.ok(v <= -2 * p + 1 && v >= -2 * p, `${v} vs ${p}`);
  });

  it("the process exits by itself after break, errors and completed epochs without close()", async () => {
    const script = path.join(tmp, "child.mts");
    const src = (f: string) => JSON.stringify(pathToFileURL(path.resolve(f)).href);
    fs.writeFileSync(
      script,
      `import { CellMapDataset, CellMapSubset } from ${src("src/dataset/index.ts")};
import { CellMapDataLoader } from ${src("src/loader/index.ts")};
const ds = await CellMapDataset.open({ rawPath: ${JSON.stringify(path.join(crop, "raw"))}, inputArrays: { raw: { shape: [8, 8, 8], scale: [8, 8, 8] } } });
const sub = new CellMapSubset(ds, [0, 1, 2, 3, 4, 5, 6, 7]);
const a = new CellMapDataLoader(sub, { batchSize: 2, numWorkers: 1 });
let n = 0;
for await (const b of a) n += b.idx.length;
for await (const b of a) { n += b.idx.length; break; }
const c = new CellMapDataLoader(sub, { batchSize: 2, numWorkers: 1 });
for await (const b of c) n += b.idx.length;
console.log("samples", n, "threads", a.threads, c.threads);
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("timeout");
      }, 20_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c ?? -1);
      });
    });
    assert.equal(code, 0, out);
    assert.match(out, /samples 18 threads 0 1/);
  });
});

describe("adapters", () => {
  const t: Tensor = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [1, 2, 3], sourceDtype: "float32" };

  it("toTfjs / toOnnx hand the same Float32Array to the runtime", () => {
    const tf = { tensor: (values: Float32Array, shape: number[], dtype: string) => ({ values, shape, dtype }) };
    const a = toTfjs<{ values: Float32Array; shape: number[]; dtype: string }>(t, tf);
    assert.equal(a.values, t.data);
    assert.deepEqual(a.shape, [1, 2, 3]);
    assert.equal(a.dtype, "float32");
    class FakeOrtTensor {
      constructor(
        readonly type: string,
        readonly data: Float32Array,
        readonly dims: readonly number[],
      ) {}
    }
    const o = toOnnx<FakeOrtTensor>(t, { Tensor: FakeOrtTensor });
    assert.equal(o.data, t.data);
    assert.deepEqual(o.dims, [1, 2, 3]);
    assert.equal(o.type, "float32");
  });

  it("toTfjs hands the batch buffer to TensorFlow.js without a copy (tfjs-core + cpu backend)", async () => {
    const tf = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-cpu");
    await tf.setBackend("cpu");
    const x = await toTfjs<import("@tensorflow/tfjs-core").Tensor>(t);
    assert.deepEqual(x.shape, [1, 2, 3]);
    assert.equal(x.dataSync(), t.data, "same Float32Array, no copy");
    x.dispose();
  });

  it("toOnnx without a module: onnxruntime's own Tensor over the same Float32Array, or UNSUPPORTED saying what to install", async () => {
    const installed = async (name: string) =>
      import(name).then(
        () => true,
        () => false,
      );
    let found = false;
    for (const name of ["onnxruntime-node", "onnxruntime-web", "onnxruntime-common"]) found ||= await installed(name);
    if (!found) {
      // The documented error: code UNSUPPORTED, the package to install, and its name as the path.
      const missing = (e: unknown) =>
        e instanceof CellMapError &&
        e.code === "UNSUPPORTED" &&
        e.path === "onnxruntime-common" &&
        /onnxruntime is an optional peer dependency and is not installed: npm install onnxruntime-common \(or onnxruntime-node, onnxruntime-web\)/.test(e.message);
      await assert.rejects(toOnnx(t), missing);
      await assert.rejects(loadOnnx(), missing, "not cached: a later install is picked up");
      return;
    }
    const ort = await loadOnnx();
    const x = await toOnnx<{ type: string; dims: readonly number[]; data: unknown; size: number }>(t);
    assert.ok(x instanceof ort.Tensor, "an instance of the runtime's Tensor class");
    assert.equal(x.type, "float32");
    assert.deepEqual([...x.dims], [1, 2, 3]);
    assert.equal(x.size, 6);
    assert.equal(x.data, t.data, "the same Float32Array, no copy");
  });
});
