import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { pathToFileURL } from "node:url";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { LocalStore } from "../src/store/local.js";
import type { Tensor } from "../src/tensor.js";
import { Binarize, GaussianNoise, Normalize } from "../src/transforms/index.js";
import {
  CellMapDataset,
  CellMapMultiDataset,
  CellMapSubset,
  BUILTIN_DESCRIPTION_KINDS,
  descriptionKinds,
  openDescription,
  registerDescriptionKind,
  splitTargetPath,
  classPath,
  type CellMapDatasetOptions,
  type DatasetItem,
} from "../src/dataset/index.js";
import { makeCropFixture, samplePoints, type CropFixture } from "./fixtures/crops.js";
import { makeCoordPyramid, makeLabelPyramid } from "./fixtures/builder.js";

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "cm-"));
let fixture: Promise<CropFixture> | null = null;
const fx = (): Promise<CropFixture> => (fixture ??= makeCropFixture(tmp()));

const INPUT = { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } };
const TARGET = { labels: { shape: [4, 4, 4], scale: [8, 8, 8] } };
const CLASSES = ["mito", "er", "cyto"];
const RELATIONS = { cyto: ["mito"] };

async function open(f: CropFixture, crop: string, extra: Partial<CellMapDatasetOptions> = {}): Promise<CellMapDataset> {
  return CellMapDataset.open({
    rawPath: f.rawPath,
    targetPath: f.gt(crop),
    classes: CLASSES,
    inputArrays: INPUT,
    targetArrays: TARGET,
    classRelationDict: RELATIONS,
    ...extra,
  });
}

const T = (item: DatasetItem, name: string): Tensor => item[name] as Tensor;
const same = (a: number, b: number): boolean => (Number.isNaN(a) && Number.isNaN(b)) || a === b;

/** Checks every voxel of a sample against the fixture's world functions. */
function checkSample(f: CropFixture, crop: string, ds: CellMapDataset, item: DatasetItem, matrix?: number[][]): void {
  const c = item.metadata.center;
  const apply = (p: number[]): number[] => {
    if (!matrix) return p;
    const o = p.map((v, a) => v - c[a]);
    return [0, 1, 2].map((w) => c[w] + matrix[w][0] * o[0] + matrix[w][1] * o[1] + matrix[w][2] * o[2]);
  };
  const raw = T(item, "raw");
  assert.deepEqual(raw.shape, [1, 8, 8, 8]);
  samplePoints(c, [8, 8, 8], [4, 4, 4]).forEach((p, k) => {
    const w = apply(p);
    assert.ok(Math.abs(raw.data[k] - f.raw.value(w)) < 1e-3, `raw voxel ${k} at [${w}]: ${raw.data[k]} vs ${f.raw.value(w)}`);
  });
  const labels = T(item, "labels");
  assert.deepEqual(labels.shape, [3, 4, 4, 4]);
  const pts = samplePoints(c, [4, 4, 4], [8, 8, 8]).map(apply);
  const src = ds.classSources();
  CLASSES.forEach((cls, ch) => {
    pts.forEach((p, k) => {
      const got = labels.data[ch * 64 + k];
      let want: number;
      if (src[cls] === "annotated") want = f.label(crop, cls, p);
      else if (src[cls] === "inferred") want = f.label(crop, "mito", p) === 1 ? 0 : NaN;
      else want = NaN;
      assert.ok(same(got, want), `${crop} ${cls} voxel ${k} at [${p}]: got ${got}, want ${want}`);
    });
  });
}

test("target path bracket syntax", () => {
  const t = splitTargetPath("/d/x.zarr/recon-1/labels/groundtruth/crop155/[mito, er,nuc]");
  assert.deepEqual(t.classes, ["mito", "er", "nuc"]);
  assert.equal(classPath(t, "er"), "/d/x.zarr/recon-1/labels/groundtruth/crop155/er");
  const u = splitTargetPath("s3://bucket/a.zarr/[mito,er]/labels");
  assert.equal(classPath(u, "mito"), "s3://bucket/a.zarr/mito/labels");
  const plain = splitTargetPath("/d/crop1/mito/");
  assert.deepEqual(plain.classes, ["mito"]);
  assert.equal(classPath(plain, "mito"), "/d/crop1/mito/");
  for (const bad of ["/d/[mito", "/d/mito]", "/d/[a]/[b]", "/d/[a,,b]", "/d/[a,a]", ""]) {
    assert.throws(
      () => splitTargetPath(bad),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT",
      bad,
    );
  }
});

test("crop1: grid, centres, out-of-range indices", async () => {
  const f = await fx();
  const ds = await open(f, "crop1");
  assert.deepEqual(ds.samplingBox, { lo: [48, 48, 48], hi: [80, 80, 80] });
  assert.deepEqual(ds.step, [8, 8, 8]);
  assert.deepEqual(ds.gridShape, [5, 5, 5]);
  assert.equal(ds.length, 125);
  assert.ok(ds.verify());
  assert.deepEqual(ds.center(0), [48, 48, 48]);
  assert.deepEqual(ds.center(7), [48, 56, 64]);
  assert.deepEqual(ds.center(124), [80, 80, 80]);
  for (const i of [125, -1, 1.5, NaN]) {
    assert.throws(
      () => ds.center(i),
      (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE",
    );
    await assert.rejects(ds.get(i), (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE");
  }
  assert.deepEqual(ds.classSources(), { mito: "annotated", er: "annotated", cyto: "inferred" });
  assert.deepEqual(ds.cropClassRow(), [true, true, false]);
});

test("crop1: raw and labels aligned at every sample, true negatives from classRelationDict", async () => {
  const f = await fx();
  const ds = await open(f, "crop1");
  let sawZero = 0;
  let sawNaN = 0;
  for (let i = 0; i < ds.length; i++) {
    const item = await ds.get(i);
    assert.equal(item.idx, i);
    assert.equal(item.metadata.index, i);
    assert.equal(item.metadata.spatialTransform, null);
    checkSample(f, "crop1", ds, item);
    const cyto = T(item, "labels").data.subarray(128, 192);
    for (const v of cyto) v === 0 ? sawZero++ : Number.isNaN(v) ? sawNaN++ : assert.fail(`cyto value ${v}`);
  }
  assert.ok(sawZero > 0 && sawNaN > 0);
});

test("crop2: partially annotated, 4 nm labels read at 8 nm from level s1", async () => {
  const f = await fx();
  const ds = await open(f, "crop2");
  assert.deepEqual(ds.classSources(), { mito: "annotated", er: "empty", cyto: "inferred" });
  assert.deepEqual(ds.samplingBox, { lo: [56, 56, 56], hi: [88, 88, 88] });
  assert.equal(ds.length, 125);
  const item = await ds.get(62);
  assert.deepEqual(item.metadata.levels, { raw: { path: "s0", index: 0, scale: [4, 4, 4] }, "labels/mito": { path: "s1", index: 1, scale: [8, 8, 8] } });
  assert.equal(item.metadata.rawPath, f.rawPath);
  assert.equal(item.metadata.targetPath, f.gt("crop2"));
  for (const i of [0, 31, 62, 124]) checkSample(f, "crop2", ds, await ds.get(i));
  const er = T(item, "labels").data.subarray(64, 128);
  assert.ok(er.every((v) => Number.isNaN(v)));
});

test("crop smaller than the patch: one centre with padding, none without", async () => {
  const f = await fx();
  const ds = await open(f, "crop3");
  assert.equal(ds.length, 1);
  assert.deepEqual(ds.center(0), [64, 64, 64]);
  const item = await ds.get(0);
  checkSample(f, "crop3", ds, item);
  const mito = T(item, "labels").data.subarray(0, 64);
  assert.equal(mito.filter((v) => v === 1).length, 8); // 2x2x2 annotated voxels
  assert.equal(mito.filter((v) => Number.isNaN(v)).length, 56);
  const noPad = await open(f, "crop3", { pad: false });
  assert.equal(noPad.samplingBox, null);
  assert.equal(noPad.length, 0);
  assert.equal(noPad.verify(), false);
  const forced = await open(f, "crop3", { pad: false, forceHasData: true });
  assert.equal(forced.length, 0);
  assert.equal(forced.verify(), true);
});

test("pad reaches the raw edge: a raw patch larger than the raw volume still samples an off-centre crop", async () => {
  const f = await fx();
  // Raw is 128 nm wide; a 40³ patch at 4 nm (160 nm) fits nowhere. crop4's single centre is 48, not raw's middle 64.
  const wide = { inputArrays: { raw: { shape: [40, 40, 40], scale: [4, 4, 4] } } };
  const ds = await open(f, "crop4", wide);
  assert.equal(ds.length, 1);
  assert.deepEqual(ds.center(0), [48, 48, 48]);
  const raw = T(await ds.get(0), "raw");
  assert.equal(raw.data[0], 0, "the raw patch is padded past the volume");
  assert.equal(Math.abs(raw.data[20 * 1600 + 20 * 40 + 20] - f.raw.value([50, 50, 50])) < 1e-3, true, "and reads the data inside it");
  assert.equal((await open(f, "crop4", { ...wide, pad: false })).length, 0, "without pad no centre fits");
});

test("crop exactly the patch size gives exactly one sample", async () => {
  const f = await fx();
  const ds = await open(f, "crop4", { pad: false });
  assert.deepEqual(ds.samplingBox, { lo: [48, 48, 48], hi: [48, 48, 48] });
  assert.equal(ds.length, 1);
  checkSample(f, "crop4", ds, await ds.get(0));
});

test("crop without foreground has no data unless forced", async () => {
  const f = await fx();
  const ds = await open(f, "empty");
  assert.equal(ds.hasData, false);
  assert.equal(ds.length, 0);
  assert.equal(ds.verify(), false);
  assert.deepEqual(ds.validationIndices(), []);
  const forced = await open(f, "empty", { forceHasData: true });
  assert.equal(forced.length, 125);
  assert.ok(forced.verify());
});

test("class counts and weights at the training resolution (hand-computed)", async () => {
  const f = await fx();
  const c1 = await open(f, "crop1");
  const c2 = await open(f, "crop2");
  assert.equal(f.s0Foreground("crop1", "mito"), 64);
  assert.equal(f.s0Foreground("crop2", "mito"), 1000);
  assert.deepEqual(await c1.classCounts(), {
    mito: { foreground: 64, background: 448 },
    er: { foreground: 27, background: 485 },
    cyto: { foreground: 0, background: 0 },
  });
  // crop2 is stored at 4 nm: 1000 of 4096 voxels, counted in 8 nm voxels (÷ 8).
  assert.deepEqual(await c2.classCounts(), {
    mito: { foreground: 125, background: 387 },
    er: { foreground: 0, background: 0 },
    cyto: { foreground: 0, background: 0 },
  });
  assert.deepEqual(await c1.classWeights(), { mito: 7, er: 485 / 27, cyto: 1 });
  const multi = new CellMapMultiDataset([c1, c2]);
  assert.deepEqual(await multi.classCounts(), {
    mito: { foreground: 189, background: 835 },
    er: { foreground: 27, background: 485 },
    cyto: { foreground: 0, background: 0 },
  });
  const w = await multi.classWeights();
  assert.deepEqual(w, { mito: 835 / 189, er: 485 / 27, cyto: 1 });
  const dw = await multi.datasetWeights();
  assert.ok(Math.abs(dw[0] - (64 * w.mito + 27 * w.er)) < 1e-9);
  assert.ok(Math.abs(dw[1] - 125 * w.mito) < 1e-9);
});

test("class counts fall back to counting voxels when s0 has no counts", async () => {
  const f = await makeCropFixture(tmp(), { noCounts: ["crop1", "crop2"] });
  const c1 = await open(f, "crop1");
  const c2 = await open(f, "crop2");
  assert.deepEqual((await c1.classCounts()).er, { foreground: 27, background: 485 });
  assert.deepEqual((await c2.classCounts()).mito, { foreground: 125, background: 387 });
});

test("raw-only mode: targets are raw patches", async () => {
  const f = await fx();
  const ds = await CellMapDataset.open({ rawPath: f.rawPath, inputArrays: INPUT, targetArrays: { target: { shape: [4, 4, 4], scale: [8, 8, 8] } } });
  assert.ok(ds.rawOnly);
  assert.deepEqual(ds.classes, []);
  assert.deepEqual(ds.samplingBox, { lo: [16, 16, 16], hi: [112, 112, 112] });
  assert.equal(ds.length, 13 ** 3);
  const item = await ds.get(100);
  const tgt = T(item, "target");
  assert.deepEqual(tgt.shape, [1, 4, 4, 4]);
  samplePoints(item.metadata.center, [4, 4, 4], [8, 8, 8]).forEach((p, k) => assert.ok(Math.abs(tgt.data[k] - f.raw.value(p)) < 1e-3));
  assert.deepEqual(await ds.classCounts(), {});
});

test("2-D sections on anisotropic data: the level is chosen by y/x alone and z steps by the data's own section spacing", async () => {
  // z is 16 nm at every level; y/x go 4 -> 8 -> 16 nm.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-aniso-"));
  try {
    const geometry = { shape: [6, 96, 96], s0Scale: [16, 4, 4], factor: [1, 2, 2], levels: 3, chunks: [2, 32, 32] };
    const raw = await makeCoordPyramid(path.join(dir, "raw"), geometry);
    await makeLabelPyramid(path.join(dir, "gt", "mito"), { ...geometry, shapes: [{ kind: "sphere", center: [48, 192, 192], radius: 100 }] });
    const ds = await CellMapDataset.open({
      rawPath: path.join(dir, "raw"),
      targetPath: path.join(dir, "gt", "[mito]"),
      classes: ["mito"],
      inputArrays: { raw: { shape: [48, 48], scale: [8, 8] } },
      targetArrays: { gt: { shape: [24, 24], scale: [16, 16] } },
      pad: false,
    });
    assert.deepEqual(ds.sourceLevels().raw, { path: "s1", index: 1, scale: [16, 8, 8] });
    assert.deepEqual(ds.sourceLevels()["gt/mito"], { path: "s2", index: 2, scale: [16, 16, 16] });
    assert.equal(ds.step[0], 16, "z steps by the 16 nm sections");
    assert.equal(ds.gridShape[0], 6, "one sample row per stored section");
    const s1 = raw.levels[1];
    const exact = await CellMapImage.open({ path: path.join(dir, "raw"), targetScale: [16, 8, 8], targetVoxelShape: [1, 48, 48] });
    for (const i of [0, ds.length - 1, Math.floor(ds.length / 2) + 1]) {
      const item = await ds.get(i);
      const z = item.metadata.center[0];
      assert.ok(Number.isInteger((z - s1.translation[0]) / 16), `sample ${i}: centre z ${z} is a stored section`);
      assert.deepEqual(Array.from(T(item, "raw").data), Array.from((await exact.read(item.metadata.center)).data), `sample ${i} is one stored section, not an interpolation`);
    }
    // An explicit 3-entry scale keeps its own z step.
    const explicit = await CellMapDataset.open({ rawPath: path.join(dir, "raw"), inputArrays: { raw: { shape: [48, 48], scale: [8, 8, 8] } }, pad: false });
    assert.equal(explicit.step[0], 8);
    assert.equal(explicit.sourceLevels().raw.path, "s0");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("2-D: a 2-entry shape trains on z-slices, tensors [1,y,x] / [nClasses,y,x]", async () => {
  const f = await fx();
  const ds = await open(f, "crop1", {
    inputArrays: { raw: { shape: [8, 8], scale: [4, 4] } },
    targetArrays: { labels: { shape: [4, 4], scale: [8, 8] } },
  });
  assert.ok(ds.twoD);
  assert.deepEqual(ds.step, [8, 8, 8]);
  assert.deepEqual(ds.samplingBox, { lo: [36, 48, 48], hi: [92, 80, 80] });
  assert.deepEqual(ds.gridShape, [8, 5, 5]);
  const item = await ds.get(3 * 25 + 7);
  const c = item.metadata.center;
  assert.deepEqual(c, [60, 56, 64]);
  const raw = T(item, "raw");
  assert.deepEqual(raw.shape, [1, 8, 8]);
  samplePoints(c, [1, 8, 8], [4, 4, 4]).forEach((p, k) => assert.ok(Math.abs(raw.data[k] - f.raw.value(p)) < 1e-3));
  const labels = T(item, "labels");
  assert.deepEqual(labels.shape, [3, 4, 4]);
  samplePoints(c, [1, 4, 4], [8, 8, 8]).forEach((p, k) => {
    assert.ok(same(labels.data[k], f.label("crop1", "mito", p)));
    assert.ok(same(labels.data[16 + k], f.label("crop1", "er", p)));
  });
  // In-plane augmentation only.
  const aug = await open(f, "crop1", {
    inputArrays: { raw: { shape: [8, 8], scale: [4, 4] } },
    targetArrays: { labels: { shape: [4, 4], scale: [8, 8] } },
    isTrain: true,
    spatialTransforms: { mirror: { axes: { x: 1 } }, rotate: { axes: { z: [90, 90] } } },
  });
  const a = await aug.get(0);
  assert.deepEqual(a.metadata.spatialTransform?.mirror, ["x"]);
  assert.deepEqual(T(a, "raw").shape, [1, 8, 8]);
  await assert.rejects(
    open(f, "crop1", { inputArrays: { raw: { shape: [8, 8], scale: [4, 4] } }, targetArrays: TARGET }),
    (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT",
  );
  await assert.rejects(
    open(f, "crop1", {
      inputArrays: { raw: { shape: [8, 8], scale: [4, 4] } },
      targetArrays: { labels: { shape: [4, 4], scale: [8, 8] } },
      spatialTransforms: { rotate: { axes: { x: [0, 10] } } },
    }),
    (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT",
  );
});

test("spatial augmentation: one draw per sample for every source, deterministic in (seed, epoch, idx)", async () => {
  const f = await fx();
  const spatialTransforms = {
    mirror: { axes: { z: 0.5, y: 0.5, x: 0.5 } },
    transpose: { axes: ["z", "y", "x"] as ("z" | "y" | "x")[] },
    rotate: { axes: { z: [-180, 180] as [number, number] } },
  };
  const ds = await open(f, "crop1", { isTrain: true, spatialTransforms, seed: 5 });
  const draws = new Set<string>();
  for (const i of [0, 31, 62, 93, 124]) {
    for (const epoch of [0, 1, 2]) {
      const item = await ds.get(i, { epoch });
      const d = item.metadata.spatialTransform!;
      assert.ok(d);
      draws.add(JSON.stringify(d));
      assert.deepEqual(d, ds.spatialDraw(i, epoch));
      const again = await ds.get(i, { epoch });
      assert.deepEqual(T(again, "raw").data, T(item, "raw").data);
      assert.ok(T(again, "labels").data.every((v, k) => same(v, T(item, "labels").data[k])));
    }
  }
  assert.ok(draws.size > 10);
  // Multiples of 90 degrees keep every sample on voxel centres: check alignment exactly.
  const right = await open(f, "crop1", { isTrain: true, seed: 3, spatialTransforms: { ...spatialTransforms, rotate: { axes: { z: [90, 90], x: [180, 180] } } } });
  for (const i of [0, 12, 62, 111]) {
    const item = await right.get(i, { epoch: i });
    checkSample(f, "crop1", right, item, item.metadata.spatialTransform!.matrix);
  }
  const val = await open(f, "crop1", { isTrain: false, spatialTransforms });
  assert.equal((await val.get(3)).metadata.spatialTransform, null);
});

test("value transforms: seeded per sample, per-class forms, specs", async () => {
  const f = await fx();
  const ds = await open(f, "crop1", {
    rawValueTransforms: {
      type: "Compose",
      params: {
        transforms: [
          { type: "Normalize", params: {} },
          { type: "GaussianNoise", params: { std: 0.5 } },
        ],
      },
    },
    targetValueTransforms: { mito: new Binarize({ threshold: 0.5 }), er: null },
    seed: 11,
  });
  const a = await ds.get(10, { epoch: 1 });
  const b = await ds.get(10, { epoch: 1 });
  const c = await ds.get(10, { epoch: 2 });
  assert.deepEqual(T(a, "raw").data, T(b, "raw").data);
  assert.notDeepEqual(T(a, "raw").data, T(c, "raw").data);
  const copy = (await openDescription(JSON.parse(JSON.stringify(ds.describe())))) as CellMapDataset;
  const d = await copy.get(10, { epoch: 1 });
  assert.deepEqual(T(d, "raw").data, T(a, "raw").data);
  assert.ok(T(d, "labels").data.every((v, k) => same(v, T(a, "labels").data[k])));
  assert.equal(copy.describe().targetValueTransforms?.type, "PerClass");
  const list = await open(f, "crop1", { targetValueTransforms: [new Binarize(), null, null] });
  assert.equal(T(await list.get(0), "labels").shape[0], 3);
  await assert.rejects(open(f, "crop1", { targetValueTransforms: { nuc: new Binarize() } }), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
  await assert.rejects(open(f, "crop1", { targetValueTransforms: [new Binarize()] }), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
});

test("describe() re-opens an identical dataset (as a worker would)", async () => {
  const f = await fx();
  const ds = await open(f, "crop2", {
    isTrain: true,
    seed: 9,
    spatialTransforms: { mirror: { axes: { x: 0.5 } }, rotate: { axes: { z: [-20, 20] } } },
    rawValueTransforms: new GaussianNoise({ std: 0.2 }),
    targetValueTransforms: new Binarize(),
  });
  const desc = JSON.parse(JSON.stringify(ds.describe()));
  assert.equal(desc.emptyValue, "NaN");
  const copy = (await openDescription(desc)) as CellMapDataset;
  assert.ok(copy instanceof CellMapDataset);
  assert.equal(copy.length, ds.length);
  assert.deepEqual(copy.classSources(), ds.classSources());
  for (const i of [0, 77]) {
    const x = await ds.get(i, { epoch: 4 });
    const y = await copy.get(i, { epoch: 4 });
    assert.deepEqual(T(y, "raw").data, T(x, "raw").data);
    assert.ok(T(y, "labels").data.every((v, k) => same(v, T(x, "labels").data[k])));
    assert.deepEqual(y.metadata, x.metadata);
  }
  const multi = new CellMapMultiDataset([ds, await open(f, "crop1")]);
  const sub = new CellMapSubset(multi, [130, 3, 3]);
  const sub2 = (await openDescription(JSON.parse(JSON.stringify(sub.describe())))) as CellMapSubset;
  assert.equal(sub2.length, 3);
  assert.equal(sub2.parent.length, 250);
  assert.deepEqual((await sub2.get(0)).metadata.center, (await sub.get(0)).metadata.center);
  class Opaque {
    apply(t: Tensor): Tensor {
      return t;
    }
  }
  const opaque = await open(f, "crop1", { rawValueTransforms: new Opaque() as never });
  assert.throws(
    () => opaque.describe(),
    (e: unknown) => e instanceof CellMapError && e.code === "UNSUPPORTED",
  );
});

test("description kinds: built-ins listed explicitly, custom kinds registered or named by their module", async () => {
  const f = await fx();
  assert.deepEqual([...BUILTIN_DESCRIPTION_KINDS.keys()], ["CellMapDataset", "CellMapMultiDataset", "CellMapSubset"]);
  const ds = await open(f, "crop1");
  // A user kind: registered in this thread, re-opened on its own and as the parent of a subset.
  registerDescriptionKind("TestAlias", (d, o) => openDescription((d as unknown as { inner: ReturnType<typeof ds.describe> }).inner, o));
  assert.ok(descriptionKinds().includes("TestAlias"));
  const alias = { kind: "TestAlias", inner: ds.describe() };
  const a = (await openDescription(JSON.parse(JSON.stringify(alias)))) as CellMapDataset;
  assert.ok(a instanceof CellMapDataset);
  assert.equal(a.length, ds.length);
  const sub = (await openDescription({ kind: "CellMapSubset", version: 1, parent: alias, indices: [4, 2] })) as CellMapSubset;
  assert.deepEqual((await sub.get(0)).metadata.center, (await ds.get(4)).metadata.center);
  // A kind a thread does not know yet: the description names the module that registers it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-kinds-"));
  const kindsUrl = new URL("../src/dataset/kinds.ts", import.meta.url).href;
  const mod = path.join(dir, "kind.mjs");
  fs.writeFileSync(
    mod,
    `import { openDescription, registerDescriptionKind } from ${JSON.stringify(kindsUrl)};\nregisterDescriptionKind("TestModuleKind", (d, o) => openDescription(d.inner, o));\n`,
  );
  const viaModule = (await openDescription({ kind: "TestModuleKind", module: pathToFileURL(mod).href, inner: ds.describe() })) as CellMapDataset;
  assert.equal(viaModule.length, ds.length);
  const silent = path.join(dir, "silent.mjs");
  fs.writeFileSync(silent, "export {};\n");
  const invalid = (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT";
  await assert.rejects(openDescription({ kind: "TestSilentKind", module: silent }), (e: unknown) => invalid(e) && /did not register/.test((e as Error).message));
  await assert.rejects(openDescription({ kind: "TestRelKind", module: "./kind.mjs" }), (e: unknown) => invalid(e) && (e as CellMapError).path === "description.module");
  await assert.rejects(openDescription({ kind: "TestMissingKind", module: path.join(dir, "missing.mjs") }), (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND");
  await assert.rejects(openDescription({ kind: "Nope" }), (e: unknown) => invalid(e) && /known: CellMapDataset, CellMapMultiDataset, CellMapSubset/.test((e as Error).message));
  fs.rmSync(dir, { recursive: true, force: true });
});

test("validation tiles cover the sampling box without overlap", async () => {
  const f = await fx();
  const ds = await open(f, "crop1");
  const tiles = ds.validationIndices();
  assert.deepEqual(
    tiles.map((i) => ds.center(i)),
    [
      [48, 48, 48],
      [48, 48, 80],
      [48, 80, 48],
      [48, 80, 80],
      [80, 48, 48],
      [80, 48, 80],
      [80, 80, 48],
      [80, 80, 80],
    ],
  );
  // Tiles of 32 nm around these centres cover [32, 96] = the labels' bounding box exactly.
  const wide = await CellMapDataset.open({ rawPath: f.rawPath, inputArrays: { raw: { shape: [6, 6, 6], scale: [4, 4, 4] } } });
  // raw-only, step 4: sampling box [12, 116] → 27 centres per axis, tiles every 6 steps + last.
  assert.equal(wide.gridShape[0], 27);
  const zs = [...new Set(wide.validationIndices().map((i) => wide.center(i)[0]))].sort((a, b) => a - b);
  assert.deepEqual(zs, [12, 36, 60, 84, 108, 116]);
  for (let k = 1; k < zs.length; k++) assert.ok(zs[k] - zs[k - 1] <= 24, "no gap between tiles");
});

test("validation tiles: every label voxel lies in some tile's target patch (pad), or every one a target patch can reach (no pad), with an input larger than the target", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-tiles-"));
  try {
    await makeCoordPyramid(path.join(dir, "raw"), { shape: [64, 64, 64], levels: 2, chunks: [32, 32, 32] });
    // An 11 x 13 x 9 crop at 8 nm in the raw data's low corner: a 10³ raw patch cannot fit around its edge voxels.
    const crop = { shape: [11, 13, 9], s0Scale: [8, 8, 8], translation: [4, 4, 4], chunks: [16, 16, 16] };
    await makeLabelPyramid(path.join(dir, "gt", "mito"), { ...crop, shapes: [{ kind: "box", min: [0, 0, 0], max: [40, 40, 40] }] });
    const opts = {
      rawPath: path.join(dir, "raw"),
      targetPath: path.join(dir, "gt", "[mito]"),
      classes: ["mito"],
      inputArrays: { raw: { shape: [10, 10, 10], scale: [8, 8, 8] } },
      targetArrays: { gt: { shape: [6, 6, 6], scale: [8, 8, 8] } },
    };
    /** Label voxels (flat crop indices) inside the target patches centred at `centres`. */
    const covered = (centres: number[][]): Set<number> => {
      const out = new Set<number>();
      for (const c of centres) {
        const range = [0, 1, 2].map((a) => {
          const ks: number[] = [];
          for (let k = 0; k < crop.shape[a]; k++) if (Math.abs(crop.translation[a] + k * 8 - c[a]) <= 20 + 1e-6) ks.push(k);
          return ks;
        });
        for (const z of range[0]) for (const y of range[1]) for (const x of range[2]) out.add((z * 13 + y) * 9 + x);
      }
      return out;
    };
    const padded = await CellMapDataset.open({ ...opts, pad: true });
    const tiles = padded.validationIndices();
    assert.equal(covered(tiles.map((i) => padded.center(i))).size, 11 * 13 * 9, "with pad every label voxel is in a tile's target patch");
    const raw = await padded.get(tiles[0]);
    assert.ok(Array.from(T(raw, "raw").data).includes(0), "the raw patch at the crop's corner is padded");

    const unpadded = await CellMapDataset.open({ ...opts, pad: false });
    const all = Array.from({ length: unpadded.length }, (_, i) => unpadded.center(i));
    const reachable = covered(all);
    assert.ok(reachable.size < 11 * 13 * 9 && reachable.size > 0);
    assert.deepEqual(
      [...covered(unpadded.validationIndices().map((i) => unpadded.center(i)))].sort((a, b) => a - b),
      [...reachable].sort((a, b) => a - b),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("all source reads of one sample run concurrently", async () => {
  const f = await fx();
  const ds = await open(f, "crop1", { inputArrays: { raw: INPUT.raw, raw8: { shape: [4, 4, 4], scale: [8, 8, 8] } } });
  const events: string[] = [];
  const orig = CellMapImage.prototype.read;
  CellMapImage.prototype.read = async function (this: CellMapImage, ...args: Parameters<typeof orig>) {
    events.push("start");
    await new Promise((r) => setTimeout(r, 5));
    const t = await orig.apply(this, args);
    events.push("end");
    return t;
  };
  try {
    const item = await ds.get(5);
    assert.deepEqual(T(item, "raw8").shape, [1, 4, 4, 4]);
  } finally {
    CellMapImage.prototype.read = orig;
  }
  assert.equal(events.length, 8); // 2 inputs + 2 annotated classes, start and end
  assert.deepEqual(events.slice(0, 4), ["start", "start", "start", "start"]);
});

test("bad options are INVALID_ARGUMENT naming the field; missing class groups NOT_FOUND", async () => {
  const f = await fx();
  const cases: [Partial<CellMapDatasetOptions>, string][] = [
    [{ inputArrays: {} }, "inputArrays"],
    [{ inputArrays: { raw: { shape: [8, 8, 8, 8], scale: [4] } } }, "inputArrays.raw.shape"],
    [{ inputArrays: { raw: { shape: [8, 8, 8], scale: [0, 4, 4] } } }, "inputArrays.raw.scale"],
    [{ inputArrays: { idx: INPUT.raw } }, "inputArrays.idx"],
    [{ targetArrays: { raw: TARGET.labels } }, "targetArrays"],
    [{ classes: [] }, "classes"],
    [{ classes: ["mito", "mito"] }, "classes"],
    [{ targetPath: null }, "targetPath"],
    [{ axisOrder: "xyz" as "zyx" }, "axisOrder"],
    [{ spatialTransforms: { shear: {} } as never, isTrain: true }, "spatialTransforms"],
  ];
  for (const [extra, where] of cases) {
    await assert.rejects(open(f, "crop1", extra), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && (e.path ?? "").startsWith(where), where);
  }
  await assert.rejects(
    CellMapDataset.open({ rawPath: f.rawPath, targetPath: f.gt("crop1").replace("[mito,er]", "[mito,nuc]"), classes: ["mito", "nuc"], inputArrays: INPUT, targetArrays: TARGET }),
    (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND" && /nuc/.test(e.message),
  );
});

test("multi-dataset: global indices, verify, validation tiles, empty", async () => {
  const f = await fx();
  const [c1, c3, c2] = await Promise.all([open(f, "crop1"), open(f, "crop3"), open(f, "crop2")]);
  const m = new CellMapMultiDataset([c1, c3, c2]);
  assert.equal(m.length, 251);
  assert.deepEqual(m.offsets, [0, 125, 126, 251]);
  assert.deepEqual(m.locate(0), { dataset: 0, index: 0 });
  assert.deepEqual(m.locate(125), { dataset: 1, index: 0 });
  assert.deepEqual(m.locate(250), { dataset: 2, index: 124 });
  assert.throws(
    () => m.locate(251),
    (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE",
  );
  const item = await m.get(126);
  assert.equal(item.idx, 126);
  assert.equal(item.metadata.index, 0);
  assert.equal(item.metadata.targetPath, f.gt("crop2"));
  assert.deepEqual(m.center(125), [64, 64, 64]);
  assert.ok(m.verify());
  assert.deepEqual(m.validationIndices(), [...c1.validationIndices(), 125, ...c2.validationIndices().map((i) => i + 126)]);
  assert.deepEqual(m.cropClassMatrix(), [
    [true, true, false],
    [true, false, false],
    [true, false, false],
  ]);
  const other = await open(f, "crop1", { classes: ["mito", "er"], classRelationDict: null });
  const bad = new CellMapMultiDataset([c1, other]);
  assert.equal(bad.verify(), false);
  assert.match(bad.inconsistencies()[0], /classes/);
  const badShape = new CellMapMultiDataset([c1, await open(f, "crop1", { targetArrays: { labels: { shape: [2, 2, 2], scale: [8, 8, 8] } } })]);
  assert.equal(badShape.verify(), false);
  const empty = CellMapMultiDataset.empty();
  assert.equal(empty.length, 0);
  assert.equal(empty.verify(), false);
  assert.deepEqual(empty.validationIndices(), []);
  assert.deepEqual(await empty.classCounts(), {});
});

test("subset: positions map to parent indices; its sampler yields positions", async () => {
  const f = await fx();
  const c1 = await open(f, "crop1");
  const tiles = c1.validationIndices();
  const sub = new CellMapSubset(c1, tiles);
  assert.equal(sub.length, 8);
  assert.deepEqual(sub.validationIndices(), [0, 1, 2, 3, 4, 5, 6, 7]);
  const item = await sub.get(7);
  assert.equal(item.idx, 7);
  assert.equal(item.metadata.index, tiles[7]);
  await assert.rejects(sub.get(8), (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE");
  assert.throws(
    () => new CellMapSubset(c1, [0, 125]),
    (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE",
  );
  const sampler = await sub.subsetRandomSampler(20, { seed: 1 });
  const idx = [...sampler];
  assert.equal(idx.length, 20);
  assert.ok(idx.every((i) => i >= 0 && i < 8));
  assert.deepEqual(await sub.classCounts(), await c1.classCounts());
});

test("opening 10 crops reads metadata only (class counts from s0 attributes)", async () => {
  const root = tmp();
  const crops = Array.from({ length: 10 }, (_, k) => ({
    name: `crop${k}`,
    classes: { mito: [{ kind: "box" as const, min: [40, 40, 40], max: [60 + k, 60, 60] }], er: [] },
    shape: 8,
    scale: 8,
    translation: 36 + (k % 3) * 8,
  }));
  const f = await makeCropFixture(root, { crops });
  const keys: string[] = [];
  const origGet = LocalStore.prototype.get;
  const origRange = LocalStore.prototype.getRange;
  LocalStore.prototype.get = function (this: LocalStore, key, o) {
    keys.push(key);
    return origGet.call(this, key, o);
  };
  LocalStore.prototype.getRange = function (this: LocalStore, key, r, o) {
    keys.push(key);
    return origRange.call(this, key, r, o);
  };
  try {
    // Counted, not timed: the store keys read below show that only metadata was touched.
    const all = await Promise.all(
      crops.map((c) => CellMapDataset.open({ rawPath: f.rawPath, targetPath: f.gt(c.name), classes: ["mito", "er"], inputArrays: INPUT, targetArrays: TARGET })),
    );
    assert.ok(all.every((d) => d.length > 0));
    const multi = new CellMapMultiDataset(all);
    await multi.classWeights();
    const isMeta = (k: string) => /(\.zarray|\.zattrs|\.zgroup|zarr\.json)$/.test(k);
    assert.deepEqual(
      keys.filter((k) => !isMeta(k)),
      [],
      "no chunk reads while opening",
    );
    assert.ok(keys.length > 0);
    await multi.get(0);
    assert.ok(
      keys.some((k) => !isMeta(k)),
      "a sample reads chunks",
    );
  } finally {
    LocalStore.prototype.get = origGet;
    LocalStore.prototype.getRange = origRange;
  }
});

test("memory stays flat when opening many crops", async () => {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const f = await fx();
  const openMany = async (n: number) => {
    const out: CellMapDataset[] = [];
    for (let k = 0; k < n; k += 25) out.push(...(await Promise.all(Array.from({ length: 25 }, () => open(f, "crop1")))));
    return out;
  };
  const warm = await openMany(25);
  gc();
  const before = process.memoryUsage().heapUsed;
  const many = await openMany(300);
  gc();
  const perCrop = (process.memoryUsage().heapUsed - before) / many.length;
  assert.ok(perCrop < 64 * 1024, `${Math.round(perCrop / 1024)} KiB per crop`);
  assert.equal(warm.length + many.length, 325);
});

test("Normalize default-style raw transform scales integer sources", async () => {
  const f = await fx();
  const ds = await open(f, "crop1", { rawValueTransforms: new Normalize() });
  // The coordinate pyramid is float32, so Normalize leaves it unchanged.
  const item = await ds.get(0);
  checkSample(f, "crop1", ds, item);
});
