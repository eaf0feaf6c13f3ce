import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PNG } from "pngjs";
import { loadConfig, parseConfig } from "../src/config/load.js";
import { renderBatchGrid, batchGridLayout, NAN_RGB, FOV_RGB, TEXT_RGB, type SliceAxis } from "../src/viz/grid.js";
import { fitText, glyph, textWidth } from "../src/viz/font.js";
import { neuroglancerLink, neuroglancerState } from "../src/viz/neuroglancer.js";
import { CellMapError } from "../src/errors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-cli-lib-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("config files", () => {
  it("accepts camelCase and the Python library's snake_case, keeping user names", () => {
    const snake = parseConfig({
      input_arrays: { raw_4nm: { shape: [64, 64, 64], scale: [4, 4, 4] } },
      target_arrays: { gt: { shape: [32, 32, 32], scale: [8, 8, 8], output_dtype: "float64" } },
      classes: ["mito", "er_lumen"],
      class_relation_dict: { er_lumen: ["mito"] },
      spatial_transforms: { mirror: { axes: { x: 0.5 } } },
      batch_size: 4,
      num_workers: 2,
    });
    assert.deepEqual(Object.keys(snake.inputArrays), ["raw_4nm"]);
    assert.equal(snake.targetArrays!.gt.outputDtype, "float64");
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
    const bad = (raw: unknown, re: RegExp) =>
      assert.throws(
        () => parseConfig(raw),
        (e: unknown) => e instanceof CellMapError && re.test(e.message),
      );
    bad({ inputArrays: { raw: { shape: [8, -8, 8], scale: [4, 4, 4] } } }, /inputArrays\.raw\.shape must be 2 or 3 positive integers.*\[8,-8,8\]/);
    bad({ inputArrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } }, batchsize: 3 }, /batchsize/);
    bad({ input_arrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } }, inputArrays: {} }, /twice/);
    assert.throws(
      () => loadConfig(path.join(tmp, "none.json")),
      (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND",
    );
    const broken = path.join(tmp, "broken.json");
    fs.writeFileSync(broken, "{ not json");
    assert.throws(() => loadConfig(broken), /not valid JSON/);
  });
});

describe("renderBatchGrid", () => {
  const tensor = (shape: number[], f: (i: number) => number) => ({
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
    shape,
    sourceDtype: "float32" as const,
  });
  it("lays out samples x (input + classes + predictions) tiles with NaN and FOV colours", () => {
    const raw = tensor([2, 1, 3, 8, 8], (i) => i % 64);
    // class 0: left half 1, right half 0; class 1: all NaN (unknown)
    const gt = tensor([2, 2, 3, 4, 4], (i) => (Math.floor(i / 48) % 2 === 1 ? NaN : i % 4 < 2 ? 1 : 0));
    const pred = tensor([2, 2, 3, 4, 4], () => 0.5);
    const png = PNG.sync.read(
      Buffer.from(
        renderBatchGrid(
          { raw, gt, idx: [0, 1] },
          {
            classes: ["mito", "er"],
            predictions: pred,
            tileSize: 16,
            legend: false,
            inputArray: { shape: [3, 8, 8], scale: [8, 8, 8] },
            targetArray: { shape: [3, 4, 4], scale: [8, 8, 8] },
          },
        ),
      ),
    );
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
  const px = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
  const read = (bytes: Uint8Array) => PNG.sync.read(Buffer.from(bytes));

  it("draws every sample as a row, enlarges small patches to >= 128 px, titles columns and draws a legend", () => {
    const n = 5;
    const raw = tensor([n, 1, 4, 16, 16], (i) => (i * 7) % 31);
    // class 0 of sample k: 1 when k is even; class 1: unknown everywhere
    const gt = tensor([n, 2, 4, 8, 8], (i) => {
      const k = Math.floor(i / (2 * 256)),
        c = Math.floor(i / 256) % 2;
      return c === 1 ? NaN : k % 2 === 0 ? 1 : 0;
    });
    const opts = { classes: ["mito", "er_mem"], inputArray: { shape: [4, 16, 16], scale: [8, 8, 8] }, targetArray: { shape: [4, 8, 8], scale: [8, 8, 8] } };
    const L = batchGridLayout({ raw, gt, idx: [0, 1, 2, 3, 4] }, opts);
    const png = read(renderBatchGrid({ raw, gt, idx: [0, 1, 2, 3, 4] }, opts));
    assert.equal(png.width, L.width);
    assert.equal(png.height, L.height);
    assert.equal(L.rows, n, "one tile row per sample");
    assert.equal(L.cols, 3);
    assert.equal(L.tileW, 128, "16 px patches drawn 8x (nearest)");
    assert.equal(L.tileH, 128);
    assert.deepEqual(L.columns, ["raw", "mito", "er_mem"]);
    assert.ok(L.gridTop > 0 && L.width >= 3 * 128 + 2 * 2 && L.height > L.gridTop + n * 128 + (n - 1) * 2);
    const tile = (row: number, col: number, dx = 64, dy = 64) => px(png, L.gridLeft + col * (L.tileW + L.gap) + dx, L.gridTop + row * (L.tileH + L.gap) + dy);
    for (let k = 0; k < n; k++) {
      const g = tile(k, 0);
      assert.ok(g[0] === g[1] && g[1] === g[2], `row ${k}: raw is grey`);
      assert.deepEqual(tile(k, 1), k % 2 === 0 ? [255, 220, 0] : [20, 20, 80], `row ${k} shows sample ${k}`);
      assert.deepEqual(tile(k, 2), [...NAN_RGB]);
      assert.deepEqual(tile(k, 0, 32, 64), [...FOV_RGB], `row ${k}: target FOV outlined (half the input's extent)`);
    }
    // column titles: ink above each column
    for (let c = 0; c < L.cols; c++) {
      let ink = 0;
      for (let y = 0; y < L.gridTop; y++) for (let x = 0; x < L.tileW; x++) if (px(png, L.gridLeft + c * (L.tileW + L.gap) + x, y).join() === TEXT_RGB.join()) ink++;
      assert.ok(ink > 20, `column ${c} has a title`);
    }
    // legend: a filled magenta swatch, a red outlined square (white inside), the ramp
    const { unknown, fov, ramp } = L.legend!;
    assert.ok(unknown.y > L.gridTop + n * L.tileH);
    assert.deepEqual(px(png, unknown.x + 2, unknown.y + 2), [...NAN_RGB]);
    assert.deepEqual(px(png, unknown.x + unknown.size - 1, unknown.y + unknown.size - 1), [...NAN_RGB]);
    assert.ok(fov, "FOV legend entry");
    assert.deepEqual(px(png, fov.x, fov.y), [...FOV_RGB]);
    assert.deepEqual(px(png, fov.x + fov.size - 1, fov.y + Math.floor(fov.size / 2)), [...FOV_RGB]);
    assert.deepEqual(px(png, fov.x + Math.floor(fov.size / 2), fov.y + Math.floor(fov.size / 2)), [255, 255, 255]);
    assert.deepEqual(px(png, ramp.x, ramp.y), [20, 20, 80]);
    assert.deepEqual(px(png, ramp.x + ramp.w - 1, ramp.y), [255, 220, 0]);
    // legend text right of the magenta swatch
    let ink = 0;
    for (let y = unknown.y; y < unknown.y + unknown.size; y++)
      for (let x = unknown.x + unknown.size; x < unknown.x + unknown.size + 60; x++) if (px(png, x, y).join() === TEXT_RGB.join()) ink++;
    assert.ok(ink > 20, "legend text drawn");
    // no FOV entry without the array specs; maxSamples still limits the rows
    const plain = batchGridLayout({ raw, gt }, { maxSamples: 2 });
    assert.equal(plain.legend!.fov, undefined);
    assert.equal(plain.rows, 2);
    assert.deepEqual(plain.columns, ["raw", "class 0", "class 1"]);
  });

  it("--axis slices through the middle across z, y or x (compared with a direct slice of the tensor)", () => {
    const [D, H, W] = [6, 8, 10];
    const value = (z: number, y: number, x: number) => z * 97 + y * 13 + x * 3 + ((x * y) % 5);
    const raw = tensor([1, 1, D, H, W], (i) => value(Math.floor(i / (H * W)), Math.floor(i / W) % H, i % W));
    const direct: Record<SliceAxis, { h: number; w: number; at: (r: number, c: number) => number }> = {
      z: { h: H, w: W, at: (r, c) => value(D / 2, r, c) },
      y: { h: D, w: W, at: (r, c) => value(r, H / 2, c) },
      x: { h: D, w: H, at: (r, c) => value(r, c, W / 2) },
    };
    const seen = new Set<string>();
    for (const axis of ["z", "y", "x"] as const) {
      const opts = { axis, tileSize: 2 * Math.max(direct[axis].h, direct[axis].w) };
      const L = batchGridLayout({ raw }, opts);
      const png = read(renderBatchGrid({ raw }, opts));
      const d = direct[axis];
      assert.equal(L.tileH, 2 * d.h, axis);
      assert.equal(L.tileW, 2 * d.w, axis);
      let lo = Infinity,
        hi = -Infinity;
      for (let r = 0; r < d.h; r++)
        for (let c = 0; c < d.w; c++) {
          lo = Math.min(lo, d.at(r, c));
          hi = Math.max(hi, d.at(r, c));
        }
      const got: number[] = [];
      for (let y = 0; y < L.tileH; y++) {
        for (let x = 0; x < L.tileW; x++) {
          const g = px(png, L.gridLeft + x, L.gridTop + y)[0];
          got.push(g);
          assert.equal(g, Math.round((255 * (d.at(y >> 1, x >> 1) - lo)) / (hi - lo)), `${axis} at tile (${y}, ${x})`);
        }
      }
      seen.add(got.join());
    }
    assert.equal(seen.size, 3, "three different slices");
    const flat = tensor([2, 1, 8, 8], () => 0);
    assert.throws(() => renderBatchGrid({ raw: flat }, { axis: "y" }), /only --axis z/);
    assert.throws(() => renderBatchGrid({ raw: tensor([2, 1, 1, 8, 8], () => 0) }, { axis: "x" }), /2-D/);
    assert.doesNotThrow(() => renderBatchGrid({ raw: flat }, { axis: "z" }));
  });

  it("the built-in font covers the class-name characters and cuts long titles", () => {
    const q = glyph("?");
    for (const ch of "abcdefghijklmnopqrstuvwxyz0123456789_-.") assert.notDeepEqual(glyph(ch), q, ch);
    assert.deepEqual(glyph("M"), glyph("m"));
    assert.deepEqual(glyph("~"), q);
    assert.equal(textWidth("ab", 2), 22);
    assert.equal(fitText("mitochondria", 6 * 5 - 1), "mito.");
    assert.equal(fitText("er", 100), "er");
  });

  it("rejects mismatched tensors", () => {
    const raw = tensor([2, 1, 8, 8], () => 0);
    assert.throws(() => renderBatchGrid({ raw, gt: tensor([3, 1, 8, 8], () => 0) }), /2 samples/);
    assert.throws(() => renderBatchGrid({ raw, gt: tensor([2, 2, 8, 8], () => 0) }, { classes: ["a"] }), /1 classes/);
  });
});

describe("neuroglancer", () => {
  it("builds a state centred on the sample with raw and label layers", () => {
    const st = neuroglancerState(
      [
        { name: "raw", path: "https://x/y.zarr/raw", kind: "image" },
        { name: "mito", path: "/data/c/mito", kind: "segmentation" },
      ],
      [100, 200, 300],
    );
    assert.deepEqual(st.position, [100, 200, 300]);
    const layers = st.layers as Array<{ source: string; type: string }>;
    assert.equal(layers[0].source, "zarr2://https://x/y.zarr/raw");
    assert.equal(layers[1].source, "zarr2://file:///data/c/mito");
    const link = neuroglancerLink(st);
    assert.ok(link.includes("#!"));
    assert.deepEqual(JSON.parse(decodeURIComponent(link.split("#!")[1])), st);
  });
});
