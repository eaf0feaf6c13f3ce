import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PNG } from "pngjs";
import { loadConfig, parseConfig } from "../src/cli/config.js";
import { renderBatchGrid, NAN_RGB, FOV_RGB } from "../src/viz/grid.js";
import { neuroglancerLink, neuroglancerState } from "../src/viz/neuroglancer.js";
import { CellMapError } from "../src/errors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-cli-lib-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("config files", () => {
  it("accepts camelCase and the Python library's snake_case, keeping user names", () => {
    const snake = parseConfig({
      input_arrays: { raw_4nm: { shape: [64, 64, 64], scale: [4, 4, 4] } },
      target_arrays: { gt: { shape: [32, 32, 32], scale: [8, 8, 8], n_channels: 2 } },
      classes: ["mito", "er_lumen"],
      class_relation_dict: { er_lumen: ["mito"] },
      spatial_transforms: { mirror: { axes: { x: 0.5 } } },
      batch_size: 4,
      num_workers: 2,
    });
    assert.deepEqual(Object.keys(snake.inputArrays), ["raw_4nm"]);
    assert.equal(snake.targetArrays!.gt.nChannels, 2);
    assert.deepEqual(snake.classRelationDict, { er_lumen: ["mito"] });
    assert.equal(snake.batchSize, 4);
    const camel = parseConfig({ inputArrays: { raw: { shape: [1, 64, 64], scale: [8, 8, 8] } }, batchSize: 2 });
    assert.equal(camel.batchSize, 2);
  });
  it("reads JSON and YAML files", () => {
    const y = path.join(tmp, "c.yaml");
    fs.writeFileSync(y, "input_arrays:\n  raw:\n    shape: [8, 8, 8]\n    scale: [4, 4, 4]\nclasses: [mito]\n");
    assert.deepEqual(loadConfig(y).classes, ["mito"]);
    const j = path.join(tmp, "c.json");
    fs.writeFileSync(j, JSON.stringify({ inputArrays: { raw: { shape: [8, 8], scale: [4, 4] } } }));
    assert.deepEqual(loadConfig(j).inputArrays.raw.shape, [8, 8]);
  });
  it("names the offending field", () => {
    const bad = (raw: unknown, re: RegExp) => assert.throws(() => parseConfig(raw), (e: unknown) => e instanceof CellMapError && re.test(e.message));
    bad({ inputArrays: { raw: { shape: [8, -8, 8], scale: [4, 4, 4] } } }, /inputArrays\.raw\.shape\.1/);
    bad({ inputArrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } }, batchsize: 3 }, /batchsize/);
    bad({ input_arrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } }, inputArrays: {} }, /twice/);
    assert.throws(() => loadConfig(path.join(tmp, "none.json")), (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND");
    const broken = path.join(tmp, "broken.json");
    fs.writeFileSync(broken, "{ not json");
    assert.throws(() => loadConfig(broken), /not valid JSON/);
  });
});

describe("renderBatchGrid", () => {
  const tensor = (shape: number[], f: (i: number) => number) => ({ data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)), shape, sourceDtype: "float32" as const });
  it("lays out samples x (input + classes + predictions) tiles with NaN and FOV colours", () => {
    const raw = tensor([2, 1, 3, 8, 8], (i) => i % 64);
    // class 0: left half 1, right half 0; class 1: all NaN (unknown)
    const gt = tensor([2, 2, 3, 4, 4], (i) => (Math.floor(i / 48) % 2 === 1 ? NaN : i % 4 < 2 ? 1 : 0));
    const pred = tensor([2, 2, 3, 4, 4], () => 0.5);
    const png = PNG.sync.read(Buffer.from(renderBatchGrid({ raw, gt, idx: [0, 1] }, {
      classes: ["mito", "er"], predictions: pred, tileSize: 16,
      inputArray: { shape: [3, 8, 8], scale: [8, 8, 8] }, targetArray: { shape: [3, 4, 4], scale: [8, 8, 8] },
    })));
    assert.equal(png.width, 5 * 16 + 4 * 2);
    assert.equal(png.height, 2 * 16 + 2);
    const px = (x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
    assert.deepEqual(px(2 * 18 + 8, 8), [...NAN_RGB], "unknown class drawn in the NaN colour");
    assert.deepEqual(px(18 + 2, 8), [255, 220, 0], "foreground in yellow");
    assert.deepEqual(px(18 + 14, 8), [20, 20, 80], "background in dark blue");
    assert.deepEqual(px(4, 4), [...FOV_RGB], "target FOV outlined at a quarter of the input tile");
    assert.notDeepEqual(px(8, 8), [...FOV_RGB]);
    const g = px(1, 1);
    assert.ok(g[0] === g[1] && g[1] === g[2], "raw is grey");
  });
  it("rejects mismatched tensors", () => {
    const raw = tensor([2, 1, 8, 8], () => 0);
    assert.throws(() => renderBatchGrid({ raw, gt: tensor([3, 1, 8, 8], () => 0) }), /2 samples/);
    assert.throws(() => renderBatchGrid({ raw, gt: tensor([2, 2, 8, 8], () => 0) }, { classes: ["a"] }), /1 classes/);
  });
});

describe("neuroglancer", () => {
  it("builds a state centred on the sample with raw and label layers", () => {
    const st = neuroglancerState([{ name: "raw", path: "https://x/y.zarr/raw", kind: "image" }, { name: "mito", path: "/data/c/mito", kind: "segmentation" }], [100, 200, 300]);
    assert.deepEqual(st.position, [100, 200, 300]);
    const layers = st.layers as Array<{ source: string; type: string }>;
    assert.equal(layers[0].source, "zarr2://https://x/y.zarr/raw");
    assert.equal(layers[1].source, "zarr2://file:///data/c/mito");
    const link = neuroglancerLink(st);
    assert.ok(link.includes("#!"));
    assert.deepEqual(JSON.parse(decodeURIComponent(link.split("#!")[1])), st);
  });
});
