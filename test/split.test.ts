import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CellMapError } from "../src/errors.js";
import type { Tensor } from "../src/tensor.js";
import { CellMapDataset, CellMapDataSplit, CellMapMultiDataset, CellMapSubset, parseCsv, parseDataSplitCsv, type CellMapDataSplitOptions } from "../src/dataset/index.js";
import { makeRawEM } from "./fixtures/builder.js";
import { makeCropFixture, samplePoints, type CropFixture } from "./fixtures/crops.js";

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "cm-"));
let fixture: Promise<CropFixture> | null = null;
const fx = (): Promise<CropFixture> => (fixture ??= makeCropFixture(tmp()));

const BASE = {
  inputArrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } },
  targetArrays: { labels: { shape: [4, 4, 4], scale: [8, 8, 8] } },
  classes: ["mito", "er"],
};

test("parseCsv: RFC 4180 quoting, CRLF, comments, blank lines, per-line errors", () => {
  const text = ["\ufeff# comment line", 'a, b ,"c,d"', "", '  "x ""quoted"" y",  "multi', 'line" ,z', "   # indented comment", 'bad,"unterminated'].join("\r\n");
  const { records, errors } = parseCsv(text);
  assert.deepEqual(records, [
    { line: 2, fields: ["a", "b", "c,d"] },
    { line: 4, fields: ['x "quoted" y', "multi\r\nline", "z"] },
  ]);
  assert.deepEqual(errors, [{ line: 7, reason: "unterminated quoted field" }]);
  const e2 = parseCsv('ok,1\nbad"field,2\n"q" junk,3\nok,4\n');
  assert.deepEqual(
    e2.records.map((r) => r.line),
    [1, 4],
  );
  assert.deepEqual(
    e2.errors.map((e) => e.line),
    [2, 3],
  );
  assert.deepEqual(parseCsv("a,,b\n,\n").records, [
    { line: 1, fields: ["a", "", "b"] },
    { line: 2, fields: ["", ""] },
  ]);
});

test("parseDataSplitCsv: 5-, 3- and 2-column rows, header, quoted brackets, bad rows reported", () => {
  const text = [
    'train,/d/a.zarr,recon-1/em/fibsem-uint8,/d/a.zarr,"recon-1/labels/groundtruth/crop155/[mito,er,nuc]"',
    "validate,/d/a.zarr,recon-1/em/fibsem-uint8,/d/a.zarr,recon-1/labels/groundtruth/crop156/[mito]",
    "TRAIN,rel/raw,rel/gt/[mito]",
    "val,https://host/b.zarr/raw",
    "train,/d/a.zarr,raw,/d/a.zarr,recon-1/labels/crop7/[mito,er]",
    "test,/d/a.zarr,raw,/d/a.zarr,gt",
    "train,/only/four,fields,here",
  ].join("\n");
  const { dict, problems } = parseDataSplitCsv(text, { baseDir: "/base", source: "split.csv" });
  assert.deepEqual(
    dict.train.map((e) => [e.raw, e.gt]),
    [
      ["/d/a.zarr/recon-1/em/fibsem-uint8", "/d/a.zarr/recon-1/labels/groundtruth/crop155/[mito,er,nuc]"],
      ["/base/rel/raw", "/base/rel/gt/[mito]"],
    ],
  );
  assert.deepEqual(
    dict.validate.map((e) => [e.raw, e.gt]),
    [
      ["/d/a.zarr/recon-1/em/fibsem-uint8", "/d/a.zarr/recon-1/labels/groundtruth/crop156/[mito]"],
      ["https://host/b.zarr/raw", null],
    ],
  );
  assert.equal(problems.length, 3);
  assert.equal(problems[0].line, 5);
  assert.match(problems[0].reason, /got 6 .*must be quoted/);
  assert.match(problems[1].reason, /usage must be train or validate, got "test"/);
  assert.match(problems[2].reason, /expected 2, 3 or 5 fields, got 4/);

  const withHeader = parseDataSplitCsv(
    ["usage,raw_container,raw_dataset,gt_container,gt_dataset", 'train,/d/a.zarr,raw,/d/a.zarr,"gt/[mito,er]"', "# trailing comment"].join("\n"),
  );
  assert.deepEqual(withHeader.dict.train, [{ raw: "/d/a.zarr/raw", gt: "/d/a.zarr/gt/[mito,er]", line: 2 }]);
  assert.deepEqual(withHeader.problems, []);
  const named = parseDataSplitCsv("split,gt,raw\ntrain,/g/[a],/r\ntrain,/g/[b]\n");
  assert.deepEqual(
    named.dict.train.map((e) => [e.raw, e.gt]),
    [["/r", "/g/[a]"]],
  );
  assert.match(named.problems[0].reason, /2 fields but the header has 3/);
});

test("CellMapDataSplit from a CSV file: bad rows and empty crops reported, the rest combined", async () => {
  const f = await fx();
  const rel = (p: string) => path.relative(f.root, p);
  const csv = path.join(f.root, "split.csv");
  const rows = [
    "# usage,raw,gt",
    `train,${rel(f.rawPath)},"${rel(f.gt("crop1"))}"`,
    `train,${f.rawPath},"${f.gt("crop2")}"`,
    `train,${f.rawPath},"${f.gt("crop3")}"`, // smaller than the patch, pad off → no sample
    `train,${f.rawPath},"${f.gt("crop1").replace("crop1", "crop99")}"`, // does not exist
    `train,${f.rawPath},"${f.gt("empty")}"`, // no foreground
    `train,${f.rawPath},${f.gt("crop1")}`, // unquoted bracket list
    `validate,${f.rawPath},"${f.gt("crop1")}"`,
    `validate,${f.rawPath},"${f.gt("crop4")}"`,
  ];
  fs.writeFileSync(csv, rows.join("\n") + "\n");
  const split = await CellMapDataSplit.open({
    ...BASE,
    csvPath: csv,
    spatialTransforms: { mirror: { axes: { x: 0.5 } } },
    seed: 100,
  });
  assert.equal(split.trainDatasets.length, 2);
  assert.equal(split.validationDatasets.length, 2);
  const problems = split.problems.map((p) => `${p.usage}|${p.gt ? path.basename(path.dirname(p.gt)) : "-"}|${p.reason}`);
  assert.equal(problems.length, 4, problems.join("\n"));
  assert.ok(
    problems.some((p) => /^\?\|-\|.*line 7: expected 2, 3 or 5 fields/.test(p) || /line 7/.test(p)),
    problems.join("\n"),
  );
  assert.ok(
    problems.some((p) => p.startsWith("train|crop99|") && /not found|no zarr group/i.test(p)),
    problems.join("\n"),
  );
  assert.ok(
    problems.some((p) => p.startsWith("train|crop3|") && /no valid patch centre/.test(p)),
    problems.join("\n"),
  );
  assert.ok(
    problems.some((p) => p.startsWith("train|empty|") && /no annotated class has foreground/.test(p)),
    problems.join("\n"),
  );
  const crop99 = split.problems.find((p) => p.gt?.includes("crop99"))!;
  assert.equal(crop99.raw, f.rawPath);
  assert.equal(crop99.line, 5);

  const [t1, t2] = split.trainDatasets as CellMapDataset[];
  assert.equal(t1.rawPath, path.join(f.root, rel(f.rawPath))); // relative to the CSV's folder
  assert.ok(t1.isTrain && t2.isTrain);
  assert.deepEqual([t1.seed, t2.seed], [100, 101]);
  assert.equal(t1.pad, false);
  const [v1, v2] = split.validationDatasets as CellMapDataset[];
  assert.ok(!v1.isTrain && !v2.isTrain);
  assert.equal((await v1.get(0)).metadata.spatialTransform, null);

  const train = split.trainDatasetsCombined;
  assert.ok(train instanceof CellMapMultiDataset);
  assert.equal(train.length, 250);
  assert.ok(train.verify());
  assert.strictEqual(split.trainDatasetsCombined, train);
  const val = split.validationDatasetsCombined;
  assert.equal(val.length, 126);
  const blocks = split.validationBlocks;
  assert.ok(blocks instanceof CellMapSubset);
  assert.deepEqual(blocks.indices, [...v1.validationIndices(), 125]);
  const counts = await split.classCounts();
  assert.deepEqual(counts.train.mito, { foreground: 64 + 125, background: 448 + 387 });
  assert.deepEqual(counts.validate.er, { foreground: 27, background: 485 });

  // Default transforms: targets binarised (0/1/NaN).
  const item = await train.get(130);
  assert.ok((item.labels as Tensor).data.every((v) => v === 0 || v === 1 || Number.isNaN(v)));
  assert.match(split.toString(), /train=2, validate=2, problems=4/);
});

test("default raw transform normalises uint8 raw to [0, 1]; pad may apply to one split", async () => {
  const f = await fx();
  const emPath = path.join(f.root, "em.zarr", "raw");
  await makeRawEM(emPath, { shape: [32, 32, 32], s0Scale: [4, 4, 4], levels: 2 });
  const dict = {
    train: [
      { raw: emPath, gt: f.gt("crop1") },
      { raw: emPath, gt: f.gt("crop3") },
    ],
    validate: [{ raw: emPath, gt: f.gt("crop3") }],
  };
  const split = await CellMapDataSplit.open({ ...BASE, datasetDict: dict, pad: "train" });
  assert.equal(split.trainDatasets.length, 2);
  assert.equal(split.validationDatasets.length, 0);
  assert.equal(split.problems.length, 1);
  assert.equal(split.problems[0].usage, "validate");
  const raw = (await split.trainDatasetsCombined.get(3)).raw as Tensor;
  assert.ok(raw.data.every((v) => v >= 0 && v <= 1));
  assert.ok(raw.data.some((v) => v > 0.2 && v < 0.8));
  assert.equal(split.validationDatasetsCombined.length, 0);
  assert.equal(split.validationBlocks.length, 0);

  const none = await CellMapDataSplit.open({ ...BASE, datasetDict: dict, pad: "VALIDATE" as "validate", trainRawValueTransforms: null });
  assert.equal(none.trainDatasets.length, 1);
  assert.equal(none.validationDatasets.length, 1);
  const raw255 = (await none.trainDatasetsCombined.get(3)).raw as Tensor;
  assert.ok(raw255.data.some((v) => v > 1));
  await assert.rejects(CellMapDataSplit.open({ ...BASE, datasetDict: dict, pad: "both" as never }), (e: unknown) => e instanceof CellMapError && e.path === "pad");
});

test("no valid training dataset is an error listing the problems", async () => {
  const f = await fx();
  await assert.rejects(
    CellMapDataSplit.open({
      ...BASE,
      classes: ["mito"],
      datasetDict: {
        train: [
          { raw: f.rawPath, gt: f.gt("empty") },
          { raw: "/nope/raw", gt: "/nope/[mito]" },
        ],
      },
    }),
    (e: unknown) =>
      e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && /no valid training dataset/.test(e.message) && /\/nope\/raw/.test(e.message) && /foreground/.test(e.message),
  );
  await assert.rejects(CellMapDataSplit.open({ ...BASE } as CellMapDataSplitOptions), (e: unknown) => e instanceof CellMapError && /csvPath/.test(e.message));
  await assert.rejects(CellMapDataSplit.open({ ...BASE, csvPath: path.join(f.root, "missing.csv") }), (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND");
  // A bad shared option is an error, not one problem per row.
  await assert.rejects(
    CellMapDataSplit.open({ ...BASE, inputArrays: { raw: { shape: [0, 8, 8], scale: [4, 4, 4] } }, datasetDict: { train: [{ raw: f.rawPath, gt: f.gt("crop1") }] } }),
    (e: unknown) => e instanceof CellMapError && e.path === "inputArrays.raw.shape",
  );
});

test("split from ready datasets, raw-only split, forceHasData", async () => {
  const f = await fx();
  const a = await CellMapDataset.open({ ...BASE, rawPath: f.rawPath, targetPath: f.gt("crop1") });
  const b = await CellMapDataset.open({ ...BASE, rawPath: f.rawPath, targetPath: f.gt("empty") });
  const split = await CellMapDataSplit.open({ ...BASE, datasets: { train: [a, b], validate: [a] } });
  assert.deepEqual(split.trainDatasets, [a]);
  assert.equal(split.problems.length, 1);
  assert.equal(split.validationBlocks.length, 8);

  const forced = await CellMapDataSplit.open({ ...BASE, datasets: { train: [b] }, forceHasData: true });
  assert.equal(forced.trainDatasets.length, 1);

  const rawOnly = await CellMapDataSplit.open({
    inputArrays: BASE.inputArrays,
    targetArrays: { target: { shape: [4, 4, 4], scale: [8, 8, 8] } },
    csvText: `train,${f.rawPath}\nvalidate,${f.rawPath}\n`,
  });
  assert.deepEqual(rawOnly.classes, []);
  // Raw-only: the target is the raw itself at its own scale. The fixture's raw holds the level-0
  // C-order index of each world point (float32, so the default Normalize leaves it as is), and
  // patch centres step 8 nm through the sampling box [16, 112]^3 (13 per axis).
  const train = rawOnly.trainDatasetsCombined;
  assert.equal(train.length, 13 ** 3);
  const close = (t: Tensor, c: number[], shape: number[], scale: number[], what: string) =>
    samplePoints(c, shape, scale).forEach((p, k) => assert.ok(Math.abs(t.data[k] - f.raw.value(p)) < 1e-3, `${what} at ${p}: ${t.data[k]} vs ${f.raw.value(p)}`));
  for (const i of [0, 1000, train.length - 1]) {
    const item = await train.get(i);
    const c = [Math.floor(i / 169), Math.floor(i / 13) % 13, i % 13].map((k) => 16 + 8 * k);
    assert.deepEqual(item.metadata.center, c, `centre of sample ${i}`);
    const raw = item.raw as Tensor;
    const target = item.target as Tensor;
    assert.deepEqual(raw.shape, [1, 8, 8, 8]);
    assert.deepEqual(target.shape, [1, 4, 4, 4]);
    close(raw, c, [8, 8, 8], [4, 4, 4], `raw of ${i}`);
    close(target, c, [4, 4, 4], [8, 8, 8], `target of ${i}`);
  }
  assert.deepEqual(Array.from(((await train.get(0)).raw as Tensor).data.slice(0, 4)), [0, 1, 2, 3], "first raw row: level-0 indices 0..3");
  // Validation blocks tile the raw volume with non-overlapping 32 nm fields: centres 16 + 32k, C order.
  const blocks = rawOnly.validationBlocks;
  assert.equal(blocks.length, 64);
  const axis = [16, 48, 80, 112];
  const centres: number[][] = [];
  for (let i = 0; i < blocks.length; i++) centres.push((await blocks.get(i)).metadata.center);
  assert.deepEqual(
    centres,
    axis.flatMap((z) => axis.flatMap((y) => axis.map((x) => [z, y, x]))),
  );
});

test("http(s) locations: a CSV row pointing at a server opens like a local one", async () => {
  const f = await fx();
  const http = await import("node:http");
  const server = http.createServer((req, res) => {
    const file = path.join(f.root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!file.startsWith(f.root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(fs.readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    const base = `http://127.0.0.1:${port}/data.zarr`;
    const split = await CellMapDataSplit.open({
      ...BASE,
      csvText: `train,${base},recon-1/em/raw,${base},"recon-1/labels/groundtruth/crop1/[mito,er]"\n`,
    });
    const ds = split.trainDatasets[0] as CellMapDataset;
    assert.equal(ds.rawPath, `${base}/recon-1/em/raw`);
    const local = await CellMapDataset.open({
      ...BASE,
      rawPath: f.rawPath,
      targetPath: f.gt("crop1"),
      rawValueTransforms: { type: "Compose", params: { transforms: [{ type: "Normalize" }, { type: "NaNtoNum", params: { nan: 0 } }] } },
      targetValueTransforms: { type: "Binarize" },
    });
    assert.equal(ds.length, local.length);
    const [a, b] = await Promise.all([ds.get(42), local.get(42)]);
    assert.deepEqual((a.raw as Tensor).data, (b.raw as Tensor).data);
    assert.ok((a.labels as Tensor).data.every((v, k) => Object.is(v, (b.labels as Tensor).data[k])));
  } finally {
    server.close();
  }
});
