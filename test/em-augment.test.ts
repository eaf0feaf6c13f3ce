/**
 * EM augmentations (issue #23): section defects (`DefectAugment`) and intensity scale/shift
 * (`IntensityScaleShift`) — formulas, determinism, specs for workers — and defects touching
 * input arrays only.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { formatPreviewSummary, runPreview } from "../src/cli/preview.js";
import { CellMapDataset, CellMapDataSplit } from "../src/dataset/index.js";
import { writeSyntheticDataset } from "../src/demo/synthetic.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { CellMapError } from "../src/errors.js";
import { tensor, type Tensor } from "../src/tensor.js";
import { Compose, DefectAugment, IntensityScaleShift, transformFromSpec } from "../src/transforms/index.js";
import { Rng } from "../src/util/rng.js";
import { makeCropFixture, type CropFixture } from "./fixtures/crops.js";

/** A [z, y, x] float32 patch with values `f(z, y, x)`. */
function patch(shape: [number, number, number], f: (z: number, y: number, x: number) => number): Tensor {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let z = 0; z < shape[0]; z++) for (let y = 0; y < shape[1]; y++) for (let x = 0; x < shape[2]; x++) data[i++] = f(z, y, x);
  return tensor(data, [...shape]);
}

function section(t: Tensor, z: number): number[] {
  const n = t.shape[1] * t.shape[2];
  return Array.from(t.data.subarray(z * n, (z + 1) * n));
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2)));

describe("DefectAugment", () => {
  it("missing sections become the fill value; NaN stays NaN", () => {
    const t = patch([4, 3, 3], (z, y, x) => (x === 1 && y === 1 ? Number.NaN : z + y + x));
    new DefectAugment({ missing: 1, fillValue: -1 }).apply(t, new Rng(1));
    for (let z = 0; z < 4; z++) {
      const s = section(t, z);
      assert.ok(Number.isNaN(s[4]));
      assert.deepEqual(
        s.filter((v) => !Number.isNaN(v)),
        new Array(8).fill(-1),
      );
    }
  });

  it("low-contrast sections keep their mean and scale their spread by c", () => {
    const t = patch([3, 8, 8], (z, y, x) => z * 10 + ((y * 7 + x * 3) % 11) / 10);
    const before = [0, 1, 2].map((z) => section(t, z));
    new DefectAugment({ lowContrast: 1, contrast: [0.25, 0.25] }).apply(t, new Rng(2));
    for (let z = 0; z < 3; z++) {
      const s = section(t, z);
      assert.ok(Math.abs(mean(s) - mean(before[z])) < 1e-4, "mean kept");
      assert.ok(Math.abs(std(s) - 0.25 * std(before[z])) < 1e-4, "spread times c");
    }
  });

  it("draws per section from the sample's stream: deterministic, about p of the sections", () => {
    const run = (seed: number) => {
      const t = patch([400, 2, 2], () => 1);
      new DefectAugment({ missing: 0.2, lowContrast: 0.3 }).apply(t, new Rng(seed));
      return t;
    };
    assert.deepEqual(Array.from(run(7).data), Array.from(run(7).data), "same seed, same sections");
    assert.notDeepEqual(Array.from(run(7).data), Array.from(run(8).data));
    const t = run(7);
    const missing = Array.from({ length: 400 }, (_, z) => section(t, z)[0] === 0).filter(Boolean).length;
    assert.ok(missing > 50 && missing < 110, `about 20% of 400 sections missing, got ${missing}`);
  });

  it("a 2-D patch is one section; params are checked; the spec rebuilds the transform", () => {
    const flat = patch([1, 4, 4], (_z, y, x) => y + x);
    new DefectAugment({ missing: 1 }).apply(flat, new Rng(3));
    assert.deepEqual(Array.from(flat.data), new Array(16).fill(0));
    assert.throws(() => new DefectAugment({ missing: 0.6, lowContrast: 0.6 }), /missing \+ lowContrast must be at most 1/);
    assert.throws(
      () => new DefectAugment({ contrast: [0.5, 0.1] }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT",
    );
    const d = new DefectAugment({ missing: 0.1, lowContrast: 0.2, contrast: [0.2, 0.4], fillValue: 0.5 });
    const back = transformFromSpec(JSON.parse(JSON.stringify(d.toJSON())));
    const a = patch([6, 3, 3], (z, y, x) => z + y * x);
    const b = patch([6, 3, 3], (z, y, x) => z + y * x);
    d.apply(a, new Rng(9));
    back.apply(b, new Rng(9));
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
  });
});

describe("IntensityScaleShift", () => {
  it("y = a·x + b, once per patch or per section; NaN stays NaN; the spec rebuilds it", () => {
    const t = patch([2, 2, 2], (z, y, x) => (z === 1 && y === 1 && x === 1 ? Number.NaN : z + y + x));
    new IntensityScaleShift({ scale: [2, 2], shift: [1, 1] }).apply(t, new Rng(1));
    assert.deepEqual(Array.from(t.data).slice(0, 7), [1, 3, 3, 5, 3, 5, 5]);
    assert.ok(Number.isNaN(t.data[7]));
    const per = patch([50, 2, 2], () => 1);
    new IntensityScaleShift({ scale: [0.5, 1.5], shift: [0, 0], perSection: true }).apply(per, new Rng(4));
    const firsts = new Set(Array.from({ length: 50 }, (_, z) => section(per, z)[0]));
    assert.ok(firsts.size > 40, "a factor per section");
    for (let z = 0; z < 50; z++) assert.equal(new Set(section(per, z)).size, 1, "one factor within a section");
    const whole = patch([50, 2, 2], () => 1);
    new IntensityScaleShift({ scale: [0.5, 1.5], shift: [0, 0] }).apply(whole, new Rng(4));
    assert.equal(new Set(Array.from(whole.data)).size, 1, "one factor for the patch");
    const s = new IntensityScaleShift({ scale: [0.8, 1.2], shift: [-0.2, 0.2], perSection: true });
    assert.deepEqual(transformFromSpec(s.toJSON()).toJSON(), s.toJSON());
    assert.throws(() => new IntensityScaleShift({ scale: [2, 1] }), /min <= max/);
  });
});

describe("defects touch inputs only", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-emaug-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let f: CropFixture;
  before(async () => {
    f = await makeCropFixture(path.join(tmp, "crops"));
  });
  const spec = { shape: [4, 4, 4], scale: [8, 8, 8] };

  it("raw sections go missing while the labels stay as read; as a target transform it is refused", async () => {
    const base = { rawPath: f.rawPath, targetPath: f.gt("crop1"), classes: ["mito", "er"], inputArrays: { raw: spec }, targetArrays: { labels: spec } };
    const plain = await CellMapDataset.open(base);
    const defect = await CellMapDataset.open({ ...base, rawValueTransforms: new DefectAugment({ missing: 1, fillValue: -5 }) });
    const a = await plain.get(3);
    const b = await defect.get(3);
    assert.deepEqual(Array.from((b.raw as Tensor).data), new Array(64).fill(-5));
    assert.deepEqual(Array.from((b.labels as Tensor).data), Array.from((a.labels as Tensor).data));
    await assert.rejects(
      CellMapDataset.open({ ...base, targetValueTransforms: new Compose([new DefectAugment({ missing: 0.1 })]) }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && /DefectAugment changes input values only/.test(e.message) && e.path === "targetValueTransforms",
    );
  });
});

describe("foreground-seeking samples", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-fg-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let csvPath: string;
  before(async () => {
    ({ csvPath } = await writeSyntheticDataset(path.join(tmp, "demo"), { size: 96, seed: 3 }));
  });
  const spec = { shape: [8, 8, 8], scale: [8, 8, 8] };
  const open = (foreground?: { minFraction: number; classes?: string[]; maxTries?: number; p?: number }) =>
    CellMapDataSplit.open({
      csvPath,
      classes: ["mito", "er", "nuc"],
      inputArrays: { raw: spec },
      targetArrays: { labels: spec },
      pad: true,
      seed: 4,
      ...(foreground && { foreground }),
    });
  /** Fraction of mito voxels (> 0) in a sample's target patch. */
  const mito = (t: Tensor) => Array.from(t.data.subarray(0, t.data.length / 3)).filter((v) => v > 0).length / (t.data.length / 3);

  it("raises the share of samples with foreground, reports its tries, and is deterministic", async () => {
    const plain = (await open()).trainDatasetsCombined;
    const seeking = (await open({ minFraction: 0.1, classes: ["mito"], maxTries: 30 })).trainDatasetsCombined;
    const n = 60;
    const share = async (ds: typeof plain) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (mito((await ds.get(i, { epoch: 1 })).labels as Tensor) >= 0.1) hits++;
      return hits / n;
    };
    const before = await share(plain);
    const after = await share(seeking);
    assert.ok(after > before + 0.2 && after > 0.9, `share with ≥10% mito: ${before.toFixed(2)} without, ${after.toFixed(2)} with foreground`);
    const a = await seeking.get(7, { epoch: 2 });
    const b = await seeking.get(7, { epoch: 2 });
    assert.deepEqual(Array.from((a.labels as Tensor).data), Array.from((b.labels as Tensor).data));
    assert.deepEqual(a.metadata, b.metadata);
    const report = (a.metadata as { foreground?: { tries: number; index: number; fraction: number } }).foreground!;
    assert.ok(report.tries >= 1 && report.tries <= 30);
    assert.ok(report.fraction >= 0.1 || report.tries === 30);
    assert.equal(a.idx, 7, "the sample keeps its index; the metadata says which centre it used");
  });

  it("p = 0 gives the plain samples; a class it does not know is an error", async () => {
    const plain = (await open()).trainDatasetsCombined;
    const off = (await open({ minFraction: 0.5, p: 0 })).trainDatasetsCombined;
    const x = await plain.get(5, { epoch: 0 });
    const y = await off.get(5, { epoch: 0 });
    assert.deepEqual(Array.from((x.raw as Tensor).data), Array.from((y.raw as Tensor).data));
    await assert.rejects(open({ minFraction: 0.1, classes: ["mitochondria"] }), /foreground\.classes names "mitochondria".*did you mean "mito"/);
    await assert.rejects(open({ minFraction: 1.5 }), /foreground\.minFraction must be a number in \[0, 1\]/);
  });

  it("batches are identical for 0 and 2 worker threads", async () => {
    const ds = (await open({ minFraction: 0.05, maxTries: 10 })).trainDatasetsCombined;
    const read = async (numWorkers: number) => {
      const loader = new CellMapDataLoader(ds, { batchSize: 4, numWorkers, seed: 2, iterationsPerEpoch: 4 });
      const out: string[] = [];
      for await (const b of loader)
        out.push(
          JSON.stringify({ idx: b.idx, fg: b.metadata.map((m) => (m as { foreground?: unknown }).foreground), sum: Array.from((b.raw as Tensor).data).reduce((s, v) => s + v, 0) }),
        );
      await loader.close();
      return out;
    };
    assert.deepEqual(await read(2), await read(0));
  });
});

describe("preview --augment N", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-prevaug-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  it("draws one sample under N augmentation draws, one per row", async () => {
    const out = path.join(tmp, "aug.png");
    const s = await runPreview({ out, dir: path.join(tmp, "demo"), size: 96, patch: 16, augment: true, draws: 3, seed: 2 });
    assert.equal(s.samples, 3);
    assert.equal(s.draws, 3);
    assert.equal(new Set(s.indices).size, 1, "one sample");
    assert.match(formatPreviewSummary(s), /under 3 augmentation draws/);
    assert.ok(fs.statSync(out).size > 1000);
  });
});
