import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CellMapImage } from "../src/image/image.js";
import { EmptyImage } from "../src/image/empty.js";
import { CellMapError } from "../src/errors.js";
import { chunkCache } from "../src/zarr/cache.js";
import { makeCoordPyramid, makeLabelPyramid, type CoordPyramid } from "./fixtures/builder.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-image-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Expected value at every output voxel: the coordinate function at the sample point c + A·o. */
function expectedPatch(p: CoordPyramid, center: number[], shape: number[], scale: number[], A?: number[][]): Float64Array {
  const m = A ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  const out = new Float64Array(shape[0] * shape[1] * shape[2]);
  let o = 0;
  for (let i = 0; i < shape[0]; i++)
    for (let j = 0; j < shape[1]; j++)
      for (let k = 0; k < shape[2]; k++) {
        const off = [(i - (shape[0] - 1) / 2) * scale[0], (j - (shape[1] - 1) / 2) * scale[1], (k - (shape[2] - 1) / 2) * scale[2]];
        const w = [0, 1, 2].map((a) => center[a] + m[a][0] * off[0] + m[a][1] * off[1] + m[a][2] * off[2]);
        out[o++] = p.value(w);
      }
  return out;
}

function assertClose(actual: Float32Array, expected: Float64Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i] - (tol === 0 ? Math.fround(expected[i]) : expected[i])) <= tol)) {
      assert.fail(`${what}: voxel ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

const cases = [
  {
    name: "isotropic v2 blosc",
    s0Scale: [4, 4, 4],
    translation: [2, 2, 2],
    format: 2 as const,
    codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } as const,
    order: "C" as const,
  },
  {
    name: "anisotropic translated v3 sharded F-order",
    s0Scale: [40, 4, 6],
    translation: [100, -20, 7],
    format: 3 as const,
    codec: { id: "zstd", level: 3 } as const,
    order: "F" as const,
    chunksPerShard: [2, 2, 2],
  },
  {
    name: "v2 gzip big-endian",
    s0Scale: [8, 8, 8],
    translation: [-1000, 0, 333],
    format: 2 as const,
    codec: { id: "gzip", level: 1 } as const,
    order: "C" as const,
    endian: "big" as const,
  },
];

for (const c of cases) {
  describe(`CellMapImage native-scale copies: ${c.name}`, async () => {
    const dir = path.join(tmp, c.name.replace(/\W+/g, "_"));
    const pyr = await makeCoordPyramid(dir, {
      shape: [24, 28, 20],
      levels: 3,
      s0Scale: c.s0Scale,
      translation: c.translation,
      format: c.format,
      codec: c.codec as never,
      chunks: [8, 8, 8],
      order: c.order,
      chunksPerShard: (c as { chunksPerShard?: number[] }).chunksPerShard,
      endian: (c as { endian?: "big" }).endian,
    });
    for (let l = 0; l < 3; l++) {
      it(`level ${l}: every output voxel equals the stored voxel at its sample point`, async () => {
        const lv = pyr.levels[l];
        const shape = [3, 5, 4];
        const img = await CellMapImage.open({ path: dir, targetScale: lv.scale, targetVoxelShape: shape, interpolation: "linear" });
        assert.equal(img.scaleLevel.index, l);
        assert.equal(img.scaleLevel.path, lv.path);
        const sb = img.samplingBox!;
        assert.ok(sb, "sampling box exists");
        // corners and an interior point on the voxel grid
        const centers = [sb.lo, sb.hi, sb.lo.map((v, a) => v + lv.scale[a] * Math.floor((sb.hi[a] - v) / lv.scale[a] / 2))];
        for (const ctr of centers) {
          const t = await img.read(ctr);
          assert.deepEqual(t.shape, shape);
          assertClose(t.data, expectedPatch(pyr, ctr, shape, lv.scale), 0, `centre ${ctr}`);
        }
      });
    }
    it("every voxel of s0 is reachable: sampling-box corners read the first and last voxels", async () => {
      const lv = pyr.levels[0];
      const img = await CellMapImage.open({ path: dir, targetScale: lv.scale, targetVoxelShape: [2, 2, 2] });
      const first = await img.read(img.samplingBox!.lo);
      const last = await img.read(img.samplingBox!.hi);
      assert.equal(first.data[0], pyr.value(lv.translation));
      assert.equal(last.data[7], pyr.value(lv.translation.map((t, a) => t + (lv.shape[a] - 1) * lv.scale[a])));
    });
  });
}

describe("CellMapImage resampling and transforms", async () => {
  const dir = path.join(tmp, "resample");
  const pyr = await makeCoordPyramid(dir, { shape: [32, 32, 32], levels: 2, s0Scale: [4, 4, 4], translation: [2, 2, 2], format: 2, chunks: [8, 8, 8] });
  const shape = [6, 6, 6];

  it("linear resampling between voxel centres is exact for a linear field", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [6, 5, 7], targetVoxelShape: shape, interpolation: "linear" });
    assert.equal(img.scaleLevel.index, 0, "6/5/7 nm requests read 4 nm s0");
    const ctr = [61.3, 60, 58.9];
    const t = await img.read(ctr);
    assertClose(t.data, expectedPatch(pyr, ctr, shape, [6, 5, 7]), 1e-3, "linear");
  });

  it("nearest resampling picks the closest voxel", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [6, 6, 6], targetVoxelShape: shape, interpolation: "nearest" });
    const ctr = [61, 60, 59];
    const t = await img.read(ctr);
    const expected = new Float64Array(t.data.length);
    let o = 0;
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++)
        for (let k = 0; k < 6; k++) {
          const w = [i, j, k].map((v, a) => ctr[a] + (v - 2.5) * 6);
          const snapped = w.map((x) => 2 + Math.round((x - 2) / 4) * 4);
          expected[o++] = pyr.value(snapped);
        }
    assertClose(t.data, expected, 0, "nearest");
  });

  it("mirror, transpose and 90-degree rotation equal exact flips/transposes", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [4, 5, 5] });
    const ctr = [64, 62, 66];
    const base = await img.read(ctr);
    const at = (t: Float32Array, i: number, j: number, k: number) => t[(i * 5 + j) * 5 + k];
    const mirY = await img.read(ctr, {
      spatialTransform: [
        [1, 0, 0],
        [0, -1, 0],
        [0, 0, 1],
      ],
    });
    const trYX = await img.read(ctr, {
      spatialTransform: [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
      ],
    });
    // 90 degrees about z: world y = offset x, world x = -offset y (world = A · offset)
    const rot = await img.read(ctr, {
      spatialTransform: [
        [1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
      ],
    });
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++)
        for (let k = 0; k < 5; k++) {
          assert.equal(at(mirY.data, i, j, k), at(base.data, i, 4 - j, k));
          assert.equal(at(trYX.data, i, j, k), at(base.data, i, k, j));
          assert.equal(at(rot.data, i, j, k), at(base.data, i, k, 4 - j));
        }
  });

  it("arbitrary rotation samples the rotated grid (exact up to float32 for a linear field)", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: shape });
    const a = 0.4,
      b = -0.25;
    const Rz = [
      [1, 0, 0],
      [0, Math.cos(a), Math.sin(a)],
      [0, -Math.sin(a), Math.cos(a)],
    ];
    const Rx = [
      [Math.cos(b), -Math.sin(b), 0],
      [Math.sin(b), Math.cos(b), 0],
      [0, 0, 1],
    ];
    const A = Rz.map((row) => [0, 1, 2].map((k) => row.reduce((s, v, j) => s + v * Rx[j][k], 0)));
    const ctr = [64, 64, 64];
    const t = await img.read(ctr, { spatialTransform: { matrix: A } });
    assertClose(t.data, expectedPatch(pyr, ctr, shape, [4, 4, 4], A), 1e-2, "rotated");
  });

  it("padding: outside points get padValue with pad, edge values without", async () => {
    const padded = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 4], pad: true, padValue: -7 });
    const t = await padded.read([2, 2, 2]); // x samples at -4, -2.. -> 2-4*1.5 = -4, 0, 4(?), see below
    // x points: 2 + (k - 1.5) * 4 = -4, 0, 4, 8 -> voxel centres at 2, 6: -4 is outside (bbox starts at 0)
    assert.equal(t.data[0], -7);
    assert.ok(Number.isFinite(t.data[1]) && t.data[1] !== -7);
    const clamped = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 4], pad: false });
    const u = await clamped.read([2, 2, 2]);
    assert.equal(u.data[0], pyr.value([2, 2, 2]), "edge-clamped");
    const label = await CellMapImage.open({ path: dir, targetClass: "mito", targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 4], pad: true });
    assert.ok(Number.isNaN((await label.read([2, 2, 2])).data[0]), "labels pad with NaN by default");
    assert.equal(label.interpolation, "nearest");
  });

  it("image smaller than the patch: single centre with pad, null without", async () => {
    const big = await CellMapImage.open({ path: dir, targetScale: [8, 8, 8], targetVoxelShape: [40, 40, 40], pad: true });
    assert.deepEqual(big.samplingBox!.lo, big.samplingBox!.hi);
    const nopad = await CellMapImage.open({ path: dir, targetScale: [8, 8, 8], targetVoxelShape: [40, 40, 40], pad: false });
    assert.equal(nopad.samplingBox, null);
  });
});

describe("2-D images and channels", async () => {
  it("reads y/x-only images with a [1, y, x] patch and with axisOrder yx", async () => {
    const dir = path.join(tmp, "twod");
    const pyr = await makeCoordPyramid(dir, { shape: [20, 24], s0Scale: [4, 4], translation: [2, 2], format: 3, chunks: [8, 8] });
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 4, 4] });
    const t = await img.read([0, 30, 30]);
    assert.deepEqual(t.shape, [1, 4, 4]);
    assert.equal(t.data[0], pyr.value([30 - 6, 30 - 6]));
    const yx = await CellMapImage.open({ path: dir, targetScale: [4, 4], targetVoxelShape: [4, 4], axisOrder: "yx" });
    const u = await yx.read([30, 30]);
    assert.deepEqual(u.shape, [4, 4]);
    assert.deepEqual(Array.from(u.data), Array.from(t.data));
    await assert.rejects(CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [2, 4, 4] }), /no z axis/);
  });

  it("keeps channel axes out of the geometry and reads the requested channel", async () => {
    const dir = path.join(tmp, "czyx");
    await writeOmePyramid(dir, {
      format: 2,
      dtype: "uint16",
      axes: [
        { name: "c", type: "channel" },
        { name: "z", type: "space", unit: "nanometer" },
        { name: "y", type: "space", unit: "nanometer" },
        { name: "x", type: "space", unit: "micrometer" },
      ],
      levels: [
        { shape: [2, 4, 4, 4], scale: [1, 8, 8, 0.008], translation: [0, 4, 4, 0.004], chunks: [1, 4, 4, 4], data: (idx) => idx[0] * 1000 + idx[1] * 100 + idx[2] * 10 + idx[3] },
      ],
    });
    const img = await CellMapImage.open({ path: dir, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 2], channel: 1 });
    assert.deepEqual(img.scaleLevel.scale, [8, 8, 8], "micrometre x converted to nm");
    const t = await img.read([4 + 8, 4 + 16, 4 + 4]);
    assert.deepEqual(Array.from(t.data), [1120, 1121]);
    assert.equal(t.sourceDtype, "uint16");
  });
});

describe("non-spatial axes: channel and time", async () => {
  const space = (name: string) => ({ name, type: "space", unit: "nanometer" });
  // value = t·10000 + c·1000 + z·100 + y·10 + x
  const value = (idx: number[]) => idx[0] * 10000 + idx[1] * 1000 + idx[2] * 100 + idx[3] * 10 + idx[4];
  const tczyx = async (name: string, t: number, c: number, axes = [{ name: "t", type: "time" }, { name: "c", type: "channel" }, space("z"), space("y"), space("x")]) => {
    const dir = path.join(tmp, name);
    await writeOmePyramid(dir, {
      format: 2,
      dtype: "uint32",
      axes,
      levels: [{ shape: [t, c, 4, 4, 4], scale: [1, 1, 8, 8, 8], translation: [0, 0, 4, 4, 4], chunks: [1, 1, 4, 4, 4], data: value }],
    });
    return dir;
  };
  const centre = [4 + 8, 4 + 16, 4 + 8]; // voxel (1, 2, 1) for a one-voxel patch
  const pair = [4 + 8, 4 + 16, 4 + 12]; // voxels (1, 2, 1) and (1, 2, 2) for a [1, 1, 2] patch

  it("channel indexes the axis of type channel of a TCZYX image, time the axis of type time", async () => {
    const one = await tczyx("tczyx-t1", 1, 6);
    const img = await CellMapImage.open({ path: one, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 2], channel: 5 });
    assert.deepEqual(Array.from((await img.read(pair)).data), [5121, 5122]);
    const three = await tczyx("tczyx-t3", 3, 2);
    const both = await CellMapImage.open({ path: three, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 2], channel: 1, time: 2 });
    assert.deepEqual(Array.from((await both.read(pair)).data), [21121, 21122]);
    const first = await CellMapImage.open({ path: three, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1] });
    assert.deepEqual(Array.from((await first.read(centre)).data), [121], "time 0 and channel 0 by default");
    await assert.rejects(CellMapImage.open({ path: three, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1], time: 3 }), /time index 3 outside axis "t" \(type time\) of size 3/);
    await assert.rejects(
      CellMapImage.open({ path: one, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1], channel: 6 }),
      /channel index 6 outside axis "c" \(type channel\) of size 6/,
    );
  });

  it("an axis without a type named c counts as the channel axis; other non-spatial axes must have one entry", async () => {
    const untyped = await tczyx("tczyx-untyped", 2, 3, [{ name: "t", type: "time" }, { name: "c" }, space("z"), space("y"), space("x")] as never);
    const img = await CellMapImage.open({ path: untyped, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1], channel: 2, time: 1 });
    assert.deepEqual(Array.from((await img.read(centre)).data), [12121]);
    const custom = await tczyx("custom-1", 1, 3, [{ name: "t", type: "time" }, { name: "q", type: "custom" }, space("z"), space("y"), space("x")]);
    await assert.rejects(CellMapImage.open({ path: custom, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1] }), (e: unknown) => {
      assert.ok(e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
      assert.match(e.message, /non-spatial axis "q" \(type custom\) has 3 entries and no option selects one/);
      return true;
    });
    const single = await tczyx("custom-single", 1, 1, [{ name: "t", type: "time" }, { name: "q", type: "custom" }, space("z"), space("y"), space("x")]);
    const ok = await CellMapImage.open({ path: single, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1] });
    assert.deepEqual(Array.from((await ok.read(centre)).data), [121]);
    // channel given for an image without a channel axis
    await assert.rejects(
      CellMapImage.open({ path: single, targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1], channel: 1 }),
      /channel 1 given, but the image has no channel axis/,
    );
  });

  it("bare arrays with leading dims: one is a channel axis; of two, time then channel", async () => {
    const dir = path.join(tmp, "bare-tczyx");
    await writeOmePyramid(path.join(dir, "img"), {
      format: 2,
      dtype: "uint32",
      axes: [{ name: "t", type: "time" }, { name: "c", type: "channel" }, space("z"), space("y"), space("x")],
      levels: [{ shape: [2, 3, 4, 4, 4], scale: [1, 1, 8, 8, 8], translation: [0, 0, 4, 4, 4], chunks: [1, 1, 4, 4, 4], data: value }],
    });
    const bare = await CellMapImage.open({
      path: path.join(dir, "img", "s0"),
      voxelSize: [8, 8, 8],
      translation: [4, 4, 4],
      targetScale: [8, 8, 8],
      targetVoxelShape: [1, 1, 1],
      channel: 2,
      time: 1,
    });
    assert.deepEqual(Array.from((await bare.read(centre)).data), [12121]);
    await assert.rejects(
      CellMapImage.open({ path: path.join(dir, "img", "s0"), voxelSize: [8, 8, 8], targetScale: [8, 8, 8], targetVoxelShape: [1, 1, 1], channel: 3 }),
      /channel index 3 outside axis "c"/,
    );
  });
});

describe("a 2-entry targetScale", async () => {
  it("means sections, as in a dataset: the level is chosen by y/x alone (sections: false keeps an isotropic scale)", async () => {
    // z is 16 nm at every level; y/x go 4 -> 8 -> 16 nm.
    const dir = path.join(tmp, "aniso-sections");
    await makeCoordPyramid(dir, { shape: [6, 96, 96], s0Scale: [16, 4, 4], factor: [1, 2, 2], levels: 3, chunks: [2, 32, 32] });
    const img = await CellMapImage.open({ path: dir, targetScale: [8, 8], targetVoxelShape: [16, 16] });
    assert.equal(img.scaleLevel.path, "s1");
    assert.deepEqual(img.outputScale, [16, 8, 8], "z steps by the data's own sections");
    const iso = await CellMapImage.open({ path: dir, targetScale: [8, 8], targetVoxelShape: [16, 16], sections: false });
    assert.equal(iso.scaleLevel.path, "s0", "an isotropic 8 nm request needs the finer z of no level: s0");
  });
});

describe("class counts", async () => {
  const shapes = [{ kind: "box" as const, min: [0, 0, 0], max: [16, 16, 32] }];
  it("counts foreground once at s0 and scales by the voxel-volume ratio", async () => {
    const dir = path.join(tmp, "labels");
    await makeLabelPyramid(dir, { shape: [8, 8, 8], s0Scale: [4, 4, 4], translation: [2, 2, 2], levels: 2, shapes, format: 2, chunks: [3, 3, 3] });
    const img = await CellMapImage.open({ path: dir, targetClass: "mito", targetScale: [8, 8, 8], targetVoxelShape: [2, 2, 2] });
    const c = await img.classCounts();
    // s0: 4 x 4 x 8 = 128 foreground voxels of 512; ratio (4/8)^3
    assert.deepEqual(c, { foreground: 128 / 8, background: 384 / 8 });
  });
  it("uses complement_counts from the s0 attributes when present", async () => {
    const dir = path.join(tmp, "labels-attrs");
    await makeLabelPyramid(dir, {
      shape: [8, 8, 8],
      s0Scale: [4, 4, 4],
      shapes,
      format: 2,
      chunks: [4, 4, 4],
      attrs: { cellmap: { annotation: { complement_counts: { absent: 500 } } } },
    });
    const img = await CellMapImage.open({ path: dir, targetClass: "mito", targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] });
    assert.deepEqual(await img.classCounts(), { foreground: 12, background: 500 });
  });
});

describe("EmptyImage", () => {
  it("returns a fresh NaN patch each time", async () => {
    const e = new EmptyImage({ targetClass: "er", targetScale: [8, 8, 8], targetVoxelShape: [2, 3, 4] });
    const a = await e.read([0, 0, 0]);
    const b = await e.read([0, 0, 0]);
    assert.deepEqual(a.shape, [2, 3, 4]);
    assert.ok(Array.from(a.data).every(Number.isNaN));
    assert.notEqual(a.data, b.data);
    assert.equal(e.samplingBox, null);
  });
});

describe("bad input", async () => {
  const dir = path.join(tmp, "bad");
  await makeCoordPyramid(dir, { shape: [8, 8, 8], s0Scale: [4, 4, 4], format: 2, chunks: [4, 4, 4], codec: null });

  const code = (c: string, re?: RegExp) => (err: unknown) => {
    assert.ok(err instanceof CellMapError, `expected CellMapError, got ${err}`);
    assert.equal(err.code, c, err.message);
    if (re) assert.match(err.message, re);
    return true;
  };
  it("missing group", async () => {
    await assert.rejects(CellMapImage.open({ path: path.join(tmp, "nope"), targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }), code("NOT_FOUND", /nope/));
  });
  it("group without multiscales", async () => {
    const g = path.join(tmp, "plain-group");
    fs.mkdirSync(g, { recursive: true });
    fs.writeFileSync(path.join(g, ".zgroup"), JSON.stringify({ zarr_format: 2 }));
    await assert.rejects(CellMapImage.open({ path: g, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }), code("INVALID_METADATA", /plain-group/));
  });
  it("bad array specs", async () => {
    await assert.rejects(CellMapImage.open({ path: dir, targetScale: [4, -4, 4], targetVoxelShape: [1, 1, 1] }), code("INVALID_ARGUMENT", /targetScale/));
    await assert.rejects(CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 0, 1] }), code("INVALID_ARGUMENT", /targetVoxelShape/));
    await assert.rejects(CellMapImage.open({ path: dir, targetScale: [4, 4, 4, 4], targetVoxelShape: [1, 1, 1] }), code("INVALID_ARGUMENT"));
  });
  it("missing chunk reads as the fill value", async () => {
    fs.rmSync(path.join(dir, "s0", "1.1.1"));
    chunkCache.clear();
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] });
    const t = await img.read([4 * 5 + 2, 4 * 5 + 2, 4 * 5 + 2]);
    assert.equal(t.data[0], 0);
  });
  it("corrupt or wrong-size chunk bytes name the chunk", async () => {
    fs.writeFileSync(path.join(dir, "s0", "0.0.0"), Buffer.from([1, 2, 3]));
    chunkCache.clear();
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] });
    await assert.rejects(img.read([2, 2, 2]), code("CORRUPT_CHUNK", /s0\/0\.0\.0/));
  });
  it("unknown codec", async () => {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "s0", ".zarray"), "utf8"));
    meta.compressor = { id: "nonsense-codec" };
    fs.writeFileSync(path.join(dir, "s0", ".zarray"), JSON.stringify(meta));
    chunkCache.clear();
    const attempt = async () => {
      const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] });
      await img.read([10, 10, 10]);
    };
    await assert.rejects(attempt(), code("UNSUPPORTED", /nonsense-codec/));
  });
});

describe("chunk access", async () => {
  const dir = path.join(tmp, "chunks");
  await makeCoordPyramid(dir, { shape: [32, 32, 32], s0Scale: [4, 4, 4], translation: [2, 2, 2], format: 2, chunks: [8, 8, 8] });

  it("reads only the chunks the patch touches", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [4, 4, 4] });
    chunkCache.clear();
    // voxels 9..12 on every axis lie inside chunk (1,1,1)
    await img.read([2 + 4 * 10.5, 2 + 4 * 10.5, 2 + 4 * 10.5]);
    assert.equal(chunkCache.getStats().misses, 1);
    chunkCache.clear();
    // voxels 6..9 straddle chunks 0 and 1 on every axis: 8 chunks
    await img.read([2 + 4 * 7.5, 2 + 4 * 7.5, 2 + 4 * 7.5]);
    assert.equal(chunkCache.getStats().misses, 8);
  });

  it("serves repeated reads from the decoded-chunk cache and honours a zero budget", async () => {
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [4, 4, 4] });
    chunkCache.clear();
    const c = [2 + 4 * 10.5, 2 + 4 * 10.5, 2 + 4 * 10.5];
    await img.read(c);
    await img.read(c);
    assert.deepEqual([chunkCache.getStats().misses, chunkCache.getStats().hits], [1, 1]);
    const cap = chunkCache.capacityBytes;
    try {
      chunkCache.setCapacity(0);
      chunkCache.clear();
      await img.read(c);
      await img.read(c);
      assert.equal(chunkCache.getStats().misses, 2);
      assert.equal(chunkCache.getStats().bytes, 0);
    } finally {
      chunkCache.setCapacity(cap);
    }
  });

  it("takes its budget from CELLMAP_CHUNK_CACHE_BYTES", async () => {
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync(process.execPath, ["--import", "tsx", "-e", "import('./src/zarr/cache.ts').then(m => console.log(m.chunkCache.capacityBytes))"], {
      env: { ...process.env, CELLMAP_CHUNK_CACHE_BYTES: "12345" },
      encoding: "utf8",
    });
    assert.equal(out.trim(), "12345");
  });
});

describe("dtypes", () => {
  const dtypes = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"] as const;
  for (const dtype of dtypes) {
    it(`reads ${dtype} voxels as float32 and reports the source dtype`, async () => {
      const dir = path.join(tmp, `dtype-${dtype}`);
      const value = (idx: number[]) => {
        const v = idx[0] * 16 + idx[1] * 4 + idx[2];
        if (dtype === "bool") return v % 3 === 0;
        if (dtype === "int64" || dtype === "uint64") return BigInt(dtype === "int64" ? v - 20 : v * 1000);
        if (dtype.startsWith("int")) return v - 20;
        if (dtype.startsWith("float")) return v / 4;
        return v;
      };
      await writeOmePyramid(dir, { format: 3, dtype, levels: [{ shape: [4, 4, 4], scale: [1, 1, 1], translation: [0, 0, 0], chunks: [2, 2, 2], data: value }] });
      const img = await CellMapImage.open({ path: dir, targetScale: [1, 1, 1], targetVoxelShape: [4, 4, 4] });
      const t = await img.read([1.5, 1.5, 1.5]);
      assert.equal(t.sourceDtype, dtype);
      const expected = Array.from({ length: 64 }, (_, v) => Number(value([v >> 4, (v >> 2) & 3, v & 3])));
      assert.deepEqual(Array.from(t.data), expected);
    });
  }
});
