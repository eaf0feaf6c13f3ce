/**
 * One configuration, one meaning (issue #13): every option object and config file rejects unknown
 * keys with a suggestion, takes the Python library's snake_case names, shares one schema and one
 * set of defaults with `verify`, reports config mistakes once (naming the field) and wrong class
 * names clearly; inference gets the training default raw transform.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { closest, didYouMean, editDistance, loadConfig, parseConfig, splitOptionsFromConfig } from "../src/config/index.js";
import { verifyDataSplit } from "../src/cli/verify.js";
import { CellMapDataset, CellMapDataSplit, CellMapMultiDataset, defaultRawTransform } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import type { Tensor } from "../src/tensor.js";
import { Binarize, Normalize } from "../src/transforms/index.js";
import { CellMapDatasetWriter, ImageWriter } from "../src/writer/index.js";
import { configSchema } from "../src/config/schema.js";
import { datasetOptionsSchema } from "../src/dataset/options.js";
import { splitOptionsSchema } from "../src/dataset/split-options.js";
import { imageOptionsSchema } from "../src/image/options.js";
import { makeRawEM } from "./fixtures/builder.js";
import { makeCropFixture, type CropFixture } from "./fixtures/crops.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-config-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let f: CropFixture;
before(async () => {
  f = await makeCropFixture(path.join(tmp, "crops"));
});

const INPUT = { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } };
const TARGET = { labels: { shape: [4, 4, 4], scale: [8, 8, 8] } };

/** An INVALID_ARGUMENT error whose message has every `parts` entry and whose path is `at` (when given). */
function invalid(parts: (string | RegExp)[], at?: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof CellMapError, `expected a CellMapError, got ${String(e)}`);
    assert.equal(e.code, "INVALID_ARGUMENT", e.message);
    for (const p of parts) assert.ok(typeof p === "string" ? e.message.includes(p) : p.test(e.message), `message should have ${p}: ${e.message}`);
    if (at !== undefined) assert.equal(e.path, at, e.message);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

describe("suggestions", () => {
  it("find the closest name across case, underscores and small typos", () => {
    assert.equal(editDistance("clases", "classes"), 1);
    assert.equal(editDistance("mirorr", "mirror"), 1);
    assert.equal(closest("clases", ["classes", "inputArrays"]), "classes");
    assert.equal(closest("batchsize", ["batchSize", "numWorkers"]), "batchSize");
    assert.equal(closest("mitochondria", ["mito", "er"]), "mito");
    assert.equal(closest("zzz", ["classes", "inputArrays"]), undefined);
    assert.equal(didYouMean("err", ["er", "mito"]), ' (did you mean "er"?)');
  });
});

describe("option objects reject unknown keys, take Python names, keep non-plain values", () => {
  it("CellMapDataSplit.open: a misspelt key is an error with a suggestion, not raw-only mode", async () => {
    await assert.rejects(
      CellMapDataSplit.open({ datasetDict: { train: [{ raw: f.rawPath, gt: f.gt("crop1") }] }, inputArrays: INPUT, targetArrays: TARGET, clases: ["mito"] } as never),
      invalid(['unknown option "clases"', 'did you mean "classes"?', "CellMapDataSplit.open"], "clases"),
    );
  });

  it("CellMapDataLoader: batch_size is batchSize; a typo is an error; Python-only keys say why", async () => {
    const ds = await CellMapDataset.open({ rawPath: f.rawPath, targetPath: f.gt("crop1"), classes: ["mito", "er"], inputArrays: INPUT, targetArrays: TARGET });
    const loader = new CellMapDataLoader(ds, { batch_size: 4, num_workers: 0, is_train: false } as never);
    assert.equal(loader.batchSize, 4);
    assert.equal(loader.isTrain, false);
    await loader.close();
    const tensorstore = new CellMapDataLoader(ds, { tensorstore_cache_bytes: 0 } as never);
    assert.equal(tensorstore.chunkCacheBytes, 0, "the Python name of the chunk cache budget");
    await tensorstore.close();
    assert.throws(() => new CellMapDataLoader(ds, { batchsize: 4 } as never), invalid(['unknown option "batchsize"', 'did you mean "batchSize"?'], "batchsize"));
    assert.throws(() => new CellMapDataLoader(ds, { pin_memory: true } as never), invalid(['"pin_memory"', "Python library", "no counterpart"], "pin_memory"));
    assert.throws(() => new CellMapDataLoader(ds, { batchSize: 2, batch_size: 4 } as never), invalid(["batchSize is given twice", '"batch_size"'], "batchSize"));
    assert.throws(() => new CellMapDataLoader(ds, { batchSize: 0 }), invalid(["batchSize must be an integer >= 1, got 0"], "batchSize"));
  });

  it("CellMapDataset.open: snake_case (nested too) gives the same dataset as camelCase", async () => {
    const camel = await CellMapDataset.open({
      rawPath: f.rawPath,
      targetPath: f.gt("crop1"),
      classes: ["mito", "er"],
      inputArrays: INPUT,
      targetArrays: TARGET,
      forceHasData: true,
      emptyValue: -1,
    });
    const snake = await CellMapDataset.open({
      raw_path: f.rawPath,
      target_path: f.gt("crop1"),
      classes: ["mito", "er"],
      input_arrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4], output_dtype: "float32" } },
      target_arrays: TARGET,
      force_has_data: true,
      empty_value: -1,
    } as never);
    assert.equal(snake.length, camel.length);
    assert.equal(snake.emptyValue, -1);
    assert.deepEqual(snake.inputArrays, { raw: { shape: [4, 4, 4], scale: [4, 4, 4], outputDtype: "float32" } });
    assert.deepEqual(Array.from(((await snake.get(3)).labels as Tensor).data), Array.from(((await camel.get(3)).labels as Tensor).data));
    // Before: "inputArrays must name at least one array".
    await assert.rejects(
      CellMapDataset.open({ rawPath: f.rawPath, inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4], n_channels: 2 } } } as never),
      invalid(['unknown option "n_channels" in inputArrays.raw'], "inputArrays.raw.n_channels"),
    );
    await assert.rejects(CellMapDataset.open({ rawPath: f.rawPath, inputArrays: INPUT, device: "cuda" } as never), invalid(['"device"', "Python library", "CPU"], "device"));
    await assert.rejects(CellMapDataset.open({ rawPath: f.rawPath, inputArrays: INPUT, rawPath2: 1 } as never), invalid(['unknown option "rawPath2"', 'did you mean "rawPath"?']));
  });

  it("nested config objects: spatialTransforms, http, datasetDict entries", async () => {
    const open = (extra: Record<string, unknown>) => CellMapDataset.open({ rawPath: f.rawPath, inputArrays: INPUT, isTrain: true, ...extra } as never);
    await assert.rejects(
      open({ spatialTransforms: { mirorr: { axes: { x: 0.5 } } } }),
      invalid(['unknown option "mirorr" in spatialTransforms', 'did you mean "mirror"?'], "spatialTransforms.mirorr"),
    );
    await assert.rejects(open({ spatialTransforms: { mirror: { axes: { q: 0.5 } } } }), invalid(['unknown axis "q"'], "spatialTransforms.mirror.axes.q"));
    await assert.rejects(
      open({ spatialTransforms: { mirror: { axes: { x: 5 } } } }),
      invalid(["spatialTransforms.mirror.axes.x must be a probability in [0, 1], got 5"], "spatialTransforms.mirror.axes.x"),
    );
    await assert.rejects(
      open({ spatialTransforms: { rotate: { axes: { z: [30, -30] } } } }),
      invalid(["spatialTransforms.rotate.axes.z must be an angle range [min, max]"], "spatialTransforms.rotate.axes.z"),
    );
    await assert.rejects(open({ http: { s3: { regoin: "eu-west-1" } } }), invalid(['unknown option "regoin" in http.s3', 'did you mean "region"?'], "http.s3.regoin"));
    await assert.rejects(
      CellMapDataSplit.open({ datasetDict: { train: [{ raw: f.rawPath, gt_path: f.gt("crop1") }] }, inputArrays: INPUT } as never),
      invalid(['unknown option "gt_path" in datasetDict.train[0]', 'did you mean "gt"?'], "datasetDict.train[0].gt_path"),
    );
  });

  it("non-plain values pass through: AbortSignal, transform objects, fetch functions", async () => {
    const controller = new AbortController();
    let fetched = 0;
    const fetchFn = (async () => {
      fetched++;
      throw new Error("not used for local paths");
    }) as unknown as typeof fetch;
    const raw = new Normalize({ min: 0, max: 100 });
    const ds = await CellMapDataset.open({
      rawPath: f.rawPath,
      targetPath: f.gt("crop1"),
      classes: ["mito", "er"],
      inputArrays: INPUT,
      targetArrays: TARGET,
      rawValueTransforms: raw,
      targetValueTransforms: { mito: new Binarize({ threshold: 0.5 }), er: null },
      signal: controller.signal,
      http: { fetch: fetchFn, retries: 0 },
    });
    assert.equal(fetched, 0);
    const described = ds.describe();
    assert.deepEqual(described.rawValueTransforms, raw.toJSON());
    assert.equal(described.http?.retries, 0);
    controller.abort();
    await assert.rejects(
      CellMapDataset.open({ rawPath: f.rawPath, inputArrays: INPUT, signal: controller.signal }),
      (e: unknown) => e instanceof CellMapError && e.code === "ABORTED",
    );
  });

  it("CellMapMultiDataset, CellMapImage.open, ImageWriter.open and CellMapDatasetWriter.open check their keys too", async () => {
    assert.throws(() => new CellMapMultiDataset([], { clases: ["mito"] } as never), invalid(['unknown option "clases"', 'did you mean "classes"?']));
    assert.equal(new CellMapMultiDataset([], { input_arrays: INPUT } as never).inputArrays.raw.shape[0], 4);
    const image = await CellMapImage.open({ path: f.rawPath, target_scale: [4, 4, 4], target_voxel_shape: [2, 2, 2], pad_value: 0 } as never);
    assert.deepEqual(image.outputShape, [2, 2, 2]);
    await assert.rejects(
      CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2], padvalue: 0 } as never),
      invalid(['unknown option "padvalue"', 'did you mean "padValue"?']),
    );
    const base = { path: path.join(tmp, "iw", "mito"), scale: [8, 8, 8], bounds: { z: [0, 64], y: [0, 64], x: [0, 64] }, writeShape: [8, 8, 8] };
    await assert.rejects(ImageWriter.open({ ...base, fill_valeu: 0 } as never), invalid(['unknown option "fill_valeu"', 'did you mean "fill_value"?']));
    const iw = await ImageWriter.open({ path: base.path, scale: base.scale, bounding_box: base.bounds, write_voxel_shape: base.writeShape } as never);
    assert.deepEqual(iw.tileShape, [8, 8, 8]);
    const wopts = {
      rawPath: f.rawPath,
      targetPath: path.join(tmp, "w1.zarr"),
      classes: ["mito"],
      inputArrays: INPUT,
      targetArrays: { pred: { shape: [4, 4, 4], scale: [8, 8, 8] } },
      targetBounds: { pred: { z: [32, 96], y: [32, 96], x: [32, 96] } },
    };
    await assert.rejects(CellMapDatasetWriter.open({ ...wopts, modelclasses: ["mito"] } as never), invalid(['unknown option "modelclasses"', 'did you mean "modelClasses"?']));
    await assert.rejects(
      CellMapDatasetWriter.open({ ...wopts, targetArrays: { pred: { shape: [4, 4, 4], scale: [8, 8, 8], scale_level: 0 } } } as never),
      invalid(['"scale_level"', "Python library"], "targetArrays.pred.scale_level"),
    );
    const { targetArrays: _t, ...rest } = wopts;
    const w = await CellMapDatasetWriter.open({ ...rest, empty_value: 0.25, target_arrays: { pred: { shape: [4, 4, 4], scale: [8, 8, 8], n_channels: 2 } } } as never);
    assert.equal(w.writers.pred.mito.fillValue, 0.25, "empty_value is the Python name of fillValue");
    assert.equal(w.writers.pred.mito.nChannels, 2);
  });
});

describe("config files: one schema with the library", () => {
  it("takes every option of the split and the loader, in either spelling, including Python names that differ", () => {
    const c = parseConfig({
      datasplit: "split.csv",
      input_arrays: INPUT,
      target_arrays: TARGET,
      classes: ["mito", "er"],
      train_raw_value_transforms: { type: "Normalize" },
      val_raw_value_transforms: null,
      target_value_transforms: { type: "Binarize", params: { threshold: 0.5 } },
      pad: "train",
      empty_value: -1,
      force_has_data: true,
      seed: 3,
      batch_size: 4,
      num_workers: 1,
      prefetch_factor: 3,
      iterations_per_epoch: 5,
      weighted_sampler: "classBalanced",
      tensorstore_cache_bytes: 1024,
      drop_last: true,
      http: { retries: 2, s3: { region: "eu-west-1" } },
    });
    const split = splitOptionsFromConfig(c);
    assert.equal(split.csvPath, "split.csv");
    assert.deepEqual(split.trainRawValueTransforms, { type: "Normalize" });
    assert.equal(split.valRawValueTransforms, null);
    assert.equal(split.pad, "train");
    assert.equal(c.chunkCacheBytes, 1024);
    assert.equal(c.weightedSampler, "classBalanced");
    assert.equal(c.http?.s3?.region, "eu-west-1");
    // rawValueTransforms sets both raw transforms; with one of them it is an error.
    const both = splitOptionsFromConfig(parseConfig({ inputArrays: INPUT, rawValueTransforms: { type: "Normalize" } }));
    assert.deepEqual([both.trainRawValueTransforms, both.valRawValueTransforms], [{ type: "Normalize" }, { type: "Normalize" }]);
    assert.throws(() => parseConfig({ inputArrays: INPUT, rawValueTransforms: null, trainRawValueTransforms: null }), invalid(["rawValueTransforms", "trainRawValueTransforms"]));
  });

  it("config mistakes are one error naming the field, found when the config is read", () => {
    const at = (raw: Record<string, unknown>, parts: (string | RegExp)[], where: string) =>
      assert.throws(() => parseConfig({ inputArrays: INPUT, ...raw }, "c.yaml"), invalid(["c.yaml", ...parts], where));
    at({ inputArrays: { raw: { shape: [8, 8, 8], scale: [8, 8] } } }, ["3-D shape needs a 3-entry"], "inputArrays.raw.scale");
    at({ spatialTransforms: { mirorr: {} } }, ['did you mean "mirror"?'], "spatialTransforms.mirorr");
    at({ spatialTransforms: { mirror: { axes: { q: 0.5 } } } }, ['unknown axis "q"'], "spatialTransforms.mirror.axes.q");
    at({ spatialTransforms: { mirror: { axes: { x: 5 } } } }, ["probability"], "spatialTransforms.mirror.axes.x");
    at({ spatialTransforms: { rotate: { axes: { z: [30, -30] } } } }, ["min <= max"], "spatialTransforms.rotate.axes.z");
    at({ classes: ["mito", "er"], classRelationDict: { er: ["mitochondria"] } }, ['"mitochondria"', 'did you mean "mito"?'], "classRelationDict.er[0]");
    at({ classes: ["mito", "er"], classRelationDict: { err: ["mito"] } }, ['"err"', 'did you mean "er"?'], "classRelationDict.err");
    at({ batchsize: 3 }, ['unknown option "batchsize"', 'did you mean "batchSize"?'], "batchsize");
    at({ batch_size: 0 }, ["batchSize must be an integer >= 1"], "batchSize");
    at({ pad: "both" }, ['pad must be true, false, "train" or "validate"'], "pad");
    at({ device: "cuda" }, ['"device"', "Python library"], "device");
  });

  it("a relative csvPath is relative to the config file", () => {
    const file = path.join(tmp, "cfg", "c.yaml");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "datasplit: ../split.csv\ninput_arrays:\n  raw: {shape: [4, 4, 4], scale: [4, 4, 4]}\n");
    assert.equal(loadConfig(file).csvPath, path.join(tmp, "split.csv"));
  });
});

describe("verify opens what training opens", () => {
  /** A datasplit CSV of the crop fixture: line 1 crop1, line 2 crop3 (2³ at 8 nm: smaller than a patch), line 3 crop4 (validate). */
  function csv(rows: string[]): string {
    const file = path.join(tmp, `split-${Math.random().toString(36).slice(2)}.csv`);
    fs.writeFileSync(file, rows.join("\n") + "\n");
    return file;
  }
  const cropRow = (usage: string, crop: string, bracket?: string) =>
    `${usage},${f.rawPath},,${f.container},"${path.relative(f.container, f.gt(crop)).replace(/\[.*\]$/, bracket ?? f.gt(crop).slice(f.gt(crop).indexOf("[")))}"`;

  it("no pad in the config: the row the split drops is FAIL in verify too, and the split's problem has its line", async () => {
    const file = csv([cropRow("train", "crop1"), cropRow("train", "crop3"), cropRow("validate", "crop4")]);
    const config = parseConfig({ inputArrays: { raw: { shape: [4, 4, 4], scale: [8, 8, 8] } }, targetArrays: TARGET, classes: ["mito"] });
    const report = await verifyDataSplit(file, config);
    const split = await CellMapDataSplit.open({ ...splitOptionsFromConfig(config), csvPath: file });
    const used = report.rows.filter((r) => r.usable).map((r) => r.line);
    assert.deepEqual(used, [1, 3]);
    assert.equal(split.trainDatasets.length + split.validationDatasets.length, used.length);
    const crop3 = report.rows.find((r) => r.line === 2)!;
    assert.equal(crop3.usable, false);
    assert.match(crop3.problems.join(), /too small/);
    assert.equal(split.problems.length, 1);
    assert.equal(split.problems[0].line, 2, "the split's problem names its CSV line");
    assert.match(split.problems[0].reason, /too small/);
    // With pad, both keep it.
    const padded = await verifyDataSplit(file, parseConfig({ ...config, pad: true }));
    assert.ok(padded.rows.every((r) => r.usable));
  });

  it("config mistakes throw before any row is read, once", async () => {
    const file = csv([cropRow("train", "crop1"), cropRow("train", "crop4")]);
    const config = parseConfig({ inputArrays: INPUT, targetArrays: TARGET, classes: ["mito", "er"] });
    await assert.rejects(verifyDataSplit(file, { ...config, spatialTransforms: { mirorr: {} } as never }), invalid(['did you mean "mirror"?']));
  });

  it("wrong class names: a class no row annotates is an error; a target-path class not on disk is a row problem with its line", async () => {
    const file = csv([cropRow("train", "crop1"), cropRow("train", "crop4", "[mito,err]"), cropRow("validate", "crop1", "[mito,nuc]")]);
    const base = { inputArrays: INPUT, targetArrays: TARGET };
    const mitoo = parseConfig({ ...base, classes: ["mito", "mitoo"] });
    await assert.rejects(verifyDataSplit(file, mitoo), invalid(['class "mitoo" is annotated in no row', 'did you mean "mito"?'], "classes"));
    await assert.rejects(CellMapDataSplit.open({ ...splitOptionsFromConfig(mitoo), csvPath: file }), invalid(['class "mitoo" is annotated in no row'], "classes"));
    // A class only inferred through a relation is fine.
    const cyto = parseConfig({ ...base, classes: ["mito", "cyto"], classRelationDict: { cyto: ["mito"] }, pad: true });
    assert.ok((await verifyDataSplit(file, cyto)).usableTrainRows > 0);

    const report = await verifyDataSplit(file, parseConfig({ ...base, classes: ["mito", "er"], pad: true }));
    const err = report.rows.find((r) => r.line === 2)!;
    assert.ok(err.usable, "training uses the row (err is not a class it reads)");
    assert.ok(
      err.problems.some((p) => /class "err" of the target path is not on disk/.test(p) && /did you mean "er"\?/.test(p)),
      err.problems.join("\n"),
    );
    // A missing class training does read: the row is not used, by either.
    const nuc = await verifyDataSplit(file, parseConfig({ ...base, classes: ["mito", "nuc"], pad: true }));
    const row3 = nuc.rows.find((r) => r.line === 3)!;
    assert.equal(row3.usable, false);
    assert.match(row3.problems.join(), /class "nuc" of .* is not on disk/);
  });
});

describe("inference gets the input training gets", () => {
  it("CellMapDatasetWriter serves raw normalised like CellMapDataSplit's default (uint8 0-255 -> 0-1)", async () => {
    const raw = path.join(tmp, "em", "raw");
    await makeRawEM(raw, { shape: [32, 32, 32], levels: 1, chunks: [16, 16, 16] });
    const spec = { shape: [8, 8, 8], scale: [4, 4, 4] };
    const opts = {
      rawPath: raw,
      classes: ["mito"],
      inputArrays: { raw: spec },
      targetArrays: { pred: spec },
      targetBounds: { pred: { z: [0, 128], y: [0, 128], x: [0, 128] } },
    };
    const writer = await CellMapDatasetWriter.open({ ...opts, targetPath: path.join(tmp, "pred1.zarr") });
    const item = await writer.get(5);
    const got = item.raw as Tensor;
    const image = await CellMapImage.open({ path: raw, targetScale: spec.scale, targetVoxelShape: spec.shape, pad: true, padValue: 0, interpolation: "linear" });
    const expected = defaultRawTransform().apply(await image.read(item.metadata.center), undefined as never);
    assert.deepEqual(Array.from(got.data), Array.from(expected.data));
    assert.ok(Math.max(...got.data) <= 1 && Math.max(...got.data) > 0.2, "values in [0, 1]");
    // null keeps the stored values.
    const asRead = await CellMapDatasetWriter.open({ ...opts, targetPath: path.join(tmp, "pred2.zarr"), rawValueTransforms: null });
    assert.ok(Math.max(...((await asRead.get(5)).raw as Tensor).data) > 1);
  });
});

describe("options are parsed once per open()", () => {
  /** Counts the zod parses of each schema while `run` runs. */
  async function countParses(schemas: Record<string, { safeParse: (...a: never[]) => unknown }>, run: () => Promise<unknown>): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const restore: (() => void)[] = [];
    for (const [name, schema] of Object.entries(schemas)) {
      counts[name] = 0;
      const original = schema.safeParse;
      schema.safeParse = ((...a: never[]) => {
        counts[name]++;
        return original.apply(schema, a);
      }) as never;
      restore.push(() => {
        schema.safeParse = original;
      });
    }
    try {
      await run();
    } finally {
      for (const r of restore) r();
    }
    return counts;
  }
  const schemas = () => ({ split: splitOptionsSchema, dataset: datasetOptionsSchema, image: imageOptionsSchema, config: configSchema });

  it("CellMapDataSplit.open parses its options once and hands them down (rows, datasets, images)", async () => {
    const rows = [
      { raw: f.rawPath, gt: f.gt("crop1") },
      { raw: f.rawPath, gt: f.gt("crop2") },
    ];
    let split: CellMapDataSplit | undefined;
    const counts = await countParses(schemas(), async () => {
      split = await CellMapDataSplit.open({ datasetDict: { train: rows, validate: rows }, inputArrays: INPUT, targetArrays: TARGET, classes: ["mito", "er"], forceHasData: true });
    });
    assert.equal(split!.trainDatasets.length + split!.validationDatasets.length, 4, "every row opened");
    assert.deepEqual(counts, { split: 1, dataset: 0, image: 0, config: 0 });
  });

  it("CellMapDataset.open and CellMapImage.open parse theirs once; a config file is parsed once", async () => {
    const dataset = await countParses(schemas(), () =>
      CellMapDataset.open({ rawPath: f.rawPath, targetPath: f.gt("crop1"), classes: ["mito", "er"], inputArrays: INPUT, targetArrays: TARGET }),
    );
    assert.deepEqual(dataset, { split: 0, dataset: 1, image: 0, config: 0 });
    const image = await countParses(schemas(), () => CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] }));
    assert.deepEqual(image, { split: 0, dataset: 0, image: 1, config: 0 });
    const config = await countParses(schemas(), async () => parseConfig({ inputArrays: INPUT, targetArrays: TARGET, classes: ["mito"], batchSize: 2 }));
    assert.deepEqual(config, { split: 0, dataset: 0, image: 0, config: 1 });
  });

  it("a bad option still fails with its message when options are handed down", async () => {
    // Checks that span fields run once, at the top: a 3-D shape with a 2-entry scale.
    await assert.rejects(
      CellMapDataSplit.open({
        datasetDict: { train: [{ raw: f.rawPath, gt: f.gt("crop1") }] },
        inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4] } },
        classes: ["mito"],
        targetArrays: TARGET,
      }),
      invalid(["a 3-D shape needs a 3-entry (or 1-entry) scale"], "inputArrays.raw.scale"),
    );
    await assert.rejects(
      CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4, 4], targetVoxelShape: [1, 1, 1] }),
      invalid(["targetScale must have 1..3 entries (zyx)"], "targetScale"),
    );
    await assert.rejects(
      CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4], targetVoxelShape: [1, 1.5, 1] }),
      invalid(["targetVoxelShape entries must be integers"], "targetVoxelShape"),
    );
    await assert.rejects(
      CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1], translation: [0, 0, 0] }),
      invalid(["translation is only for bare arrays"], "translation"),
    );
    await assert.rejects(
      CellMapImage.open({ path: f.rawPath, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1], outputDtype: "int32", valueTransform: new Normalize() }),
      invalid(["value transforms work on float32 patches"], "outputDtype"),
    );
  });
});
