/**
 * Elastic deformation in the sample grid (issue #23): the B-spline field is smooth, bounded and
 * deterministic; reads through it sample `centre + A·(o + d(o))` exactly (a coordinate-encoded
 * volume, where linear interpolation is exact); linear and nearest arrays read the same world
 * points; a z sigma of 0 keeps sections flat; the kernels equal the reference; batches are the
 * same for 0 and 2 workers.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import type { Tensor } from "../src/tensor.js";
import { Deformation } from "../src/transforms/elastic.js";
import { SectionShift, SumDisplacement } from "../src/transforms/section-shift.js";
import { axisRotation, parseSpatialConfig } from "../src/transforms/index.js";
import { Rng } from "../src/util/rng.js";
import { makeCoordPyramid, makeLabelPyramid, type CoordPyramid } from "./fixtures/builder.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-elastic-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let coord: CoordPyramid;
let rawPath: string;
let gtRoot: string;
before(async () => {
  rawPath = path.join(tmp, "raw");
  coord = await makeCoordPyramid(rawPath, { shape: [48, 48, 48], s0Scale: [8, 8, 8], levels: 1, chunks: [16, 16, 16] });
  gtRoot = path.join(tmp, "gt");
  await makeLabelPyramid(path.join(gtRoot, "a"), {
    shape: [48, 48, 48],
    s0Scale: [8, 8, 8],
    levels: 1,
    chunks: [16, 16, 16],
    shapes: [{ kind: "sphere", center: [200, 200, 200], radius: 90 }],
  });
});

const CFG = { controlPointSpacing: [64, 64, 64], sigma: [0, 4, 4] };
/** The displacement along axis `w` (nm) at every voxel of a grid. */
const along = (def: Deformation, shape: number[], scale: number[], w: number) =>
  def.field(
    shape,
    scale,
    [0, 1, 2].map((x) => (x === w ? 1 : 0)),
  );

describe("the B-spline field", () => {
  it("is deterministic, bounded by its control displacements, smooth, and flat in z for a z sigma of 0", () => {
    const a = Deformation.draw(CFG, new Rng(1, 2), [124, 124, 124]);
    const b = Deformation.draw(CFG, new Rng(1, 2), [124, 124, 124]);
    const [dz, dy, dx] = [0, 1, 2].map((w) => along(a, [32, 32, 32], [8, 8, 8], w));
    assert.equal(dz, null, "z does not move");
    assert.deepEqual(Array.from(dy!), Array.from(along(b, [32, 32, 32], [8, 8, 8], 1)!));
    for (const [w, d] of [
      [1, dy!],
      [2, dx!],
    ] as const) {
      let max = 0;
      let step = 0;
      for (let v = 0; v < d.length; v++) {
        max = Math.max(max, Math.abs(d[v]));
        if (v % 32 !== 31) step = Math.max(step, Math.abs(d[v + 1] - d[v])); // x neighbours
      }
      assert.ok(max <= a.maxDisplacement[w] + 1e-4, "no voxel moves further than its control points");
      assert.ok(a.maxDisplacement[w] < 6 * 4, "a few sigma");
      assert.ok(max > 0.5, "it moves");
      assert.ok(step < 2, `neighbours 8 nm apart move alike (largest step ${step.toFixed(3)} nm)`);
    }
    assert.deepEqual(a.report().sigma, [0, 4, 4]);
  });

  it("the config is checked: a 2-D dataset needs a z sigma of 0, spacings must be positive", () => {
    assert.throws(() => parseSpatialConfig({ elastic: { controlPointSpacing: [64, 64, 64], sigma: [2, 4, 4] } }, ["y", "x"]), /z of 0 for 2-D data/);
    assert.throws(
      () => parseSpatialConfig({ elastic: { controlPointSpacing: [64, 0, 64], sigma: [0, 4, 4] } }),
      (e: unknown) => e instanceof CellMapError && /controlPointSpacing/.test(e.message),
    );
    assert.deepEqual(parseSpatialConfig({ elastic: { controlPointSpacing: [64, 64, 64], sigma: [0, 4, 4], p: 0.5 } }).elastic, {
      controlPointSpacing: [64, 64, 64],
      sigma: [0, 4, 4],
      p: 0.5,
    });
  });
});

describe("reads through a deformation", () => {
  const center = [192, 196, 188];
  const shape = [9, 10, 11];
  const open = (interpolation: "linear" | "nearest") => CellMapImage.open({ path: rawPath, targetScale: [8, 8, 8], targetVoxelShape: shape, interpolation });

  it("sample centre + A·(o + d(o)): exact on a coordinate-encoded volume, for nearest and linear alike", async () => {
    const def = Deformation.draw({ controlPointSpacing: [32, 32, 32], sigma: [3, 5, 5] }, new Rng(7), [40, 40, 44]);
    const A = axisRotation("z", 17);
    const lin = await (await open("linear")).read(center, { spatialTransform: A, displacement: def });
    const near = await (await open("nearest")).read(center, { spatialTransform: A, displacement: def });
    const d = [0, 1, 2].map((w) => along(def, shape, [8, 8, 8], w));
    let v = 0;
    let worst = 0;
    for (let i = 0; i < shape[0]; i++)
      for (let j = 0; j < shape[1]; j++)
        for (let k = 0; k < shape[2]; k++, v++) {
          const o = [(i - (shape[0] - 1) / 2) * 8, (j - (shape[1] - 1) / 2) * 8, (k - (shape[2] - 1) / 2) * 8].map((x, a) => x + (d[a] ? d[a]![v] : 0));
          const p = [0, 1, 2].map((w) => center[w] + A[w][0] * o[0] + A[w][1] * o[1] + A[w][2] * o[2]);
          worst = Math.max(worst, Math.abs(lin.data[v] - coord.value(p)) / Math.max(1, Math.abs(coord.value(p))));
          // Nearest: the voxel whose centre is closest to the same point.
          const snapped = p.map((x) => Math.round((x - 4) / 8) * 8 + 4);
          assert.equal(near.data[v], coord.value(snapped), `nearest at voxel ${v}`);
        }
    assert.ok(worst < 1e-6, `linear equals the encoded value at the deformed point (relative error ${worst})`);
  });

  it("a z sigma of 0 keeps every output section in one stored section (rotation about z too)", async () => {
    const def = Deformation.draw(CFG, new Rng(3), [40, 40, 44]);
    // Output sections on stored ones (z centres at 8k + 4 nm).
    const t = await (await open("linear")).read([196, 196, 188], { spatialTransform: axisRotation("z", 25), displacement: def });
    const plane = shape[1] * shape[2];
    for (let i = 0; i < shape[0]; i++) {
      const zs = new Set(Array.from(t.data.subarray(i * plane, (i + 1) * plane)).map((x) => Math.floor(x / (48 * 48))));
      assert.equal(zs.size, 1, `section ${i} reads one stored section`);
    }
  });
});

describe("elastic datasets", () => {
  const spec = { shape: [16, 16, 16], scale: [8, 8, 8] };
  const openDs = () =>
    CellMapDataset.open({
      rawPath,
      targetPath: path.join(gtRoot, "[a]"),
      classes: ["a"],
      inputArrays: { raw: spec },
      targetArrays: { labels: spec },
      isTrain: true,
      seed: 3,
      forceHasData: true,
      spatialTransforms: {
        mirror: { axes: { x: 0.5 } },
        rotate: { axes: { z: [-30, 30] } },
        elastic: { control_point_spacing: CFG.controlPointSpacing, sigma: CFG.sigma },
      } as never,
    });

  it("reports the draw, and reads raw and labels through one field", async () => {
    const ds = await openDs();
    const s = await ds.get(5, { epoch: 2 });
    const e = s.metadata.spatialTransform!.elastic!;
    assert.deepEqual([e.controlPointSpacing, e.sigma], [CFG.controlPointSpacing, CFG.sigma]);
    assert.equal(e.maxDisplacement[0], 0);
    // The labels follow the raw: a deformed read of the label crop equals the dataset's.
    const def = ds.elasticDraw(5, 2)!;
    const img = await CellMapImage.open({
      path: path.join(gtRoot, "a"),
      targetScale: [8, 8, 8],
      targetVoxelShape: [16, 16, 16],
      targetClass: "a",
      pad: true,
      interpolation: "nearest",
    });
    const direct = await img.read(s.metadata.center, { spatialTransform: s.metadata.spatialTransform!.matrix, displacement: def });
    assert.deepEqual(Array.from((s.labels as Tensor).data), Array.from(direct.data));
  });

  it("the kernels (worker threads, 2 and 0) give the reference's batches", async () => {
    const ds = await openDs();
    const want: number[][] = [];
    for (let i = 0; i < 8; i++) {
      const s = await ds.get(i, { epoch: 1 });
      want.push([...Array.from((s.raw as Tensor).data), ...Array.from((s.labels as Tensor).data)]);
    }
    for (const numWorkers of [2, 0]) {
      const loader = new CellMapDataLoader(ds, { batchSize: 4, numWorkers, sampler: [0, 1, 2, 3, 4, 5, 6, 7] });
      loader.setState({ ...loader.state(), epoch: 1 });
      const got: number[][] = [];
      for await (const b of loader) {
        const raw = b.raw as Tensor;
        const labels = b.labels as Tensor;
        const n = raw.data.length / 4;
        for (let s = 0; s < 4; s++) got.push([...Array.from(raw.data.subarray(s * n, (s + 1) * n)), ...Array.from(labels.data.subarray(s * n, (s + 1) * n))]);
      }
      await loader.close();
      assert.deepEqual(got, want, `${numWorkers} workers`);
    }
  });
});

describe("section misalignment", () => {
  const center = [196, 196, 188];
  const shape = [9, 10, 11];

  it("a step shifts every section from z on, a slip one section; the rest reads as without", async () => {
    const img = await CellMapImage.open({ path: rawPath, targetScale: [8, 8, 8], targetVoxelShape: shape, interpolation: "linear" });
    const A = axisRotation("z", 10);
    const plain = await img.read(center, { spatialTransform: A });
    for (const slip of [0, 1]) {
      let shift: SectionShift | null = null;
      for (let s = 0; !shift || Math.abs(shift.draw.z) > 20; s++) shift = SectionShift.draw({ p: 1, maxShift: [12, 12], slip }, new Rng(s), 36, 8);
      const t = await img.read(center, { spatialTransform: A, displacement: shift });
      const plane = shape[1] * shape[2];
      const moved: boolean[] = [];
      for (let i = 0; i < shape[0]; i++) {
        const oz = (i - (shape[0] - 1) / 2) * 8;
        const same = Array.from(t.data.subarray(i * plane, (i + 1) * plane)).every((v, q) => v === plain.data[i * plane + q]);
        moved.push(!same);
        const z0: number = shift.draw.z;
        const want: boolean = slip ? Math.abs(oz - z0) <= 4 : oz >= z0;
        assert.equal(!same, want, `section ${i} (oz ${oz}, z ${shift.draw.z.toFixed(1)}, slip ${slip})`);
        if (!want) continue;
        // Shifted sections read centre + A·(o + (0, sy, sx)).
        const [sy, sx] = shift.draw.shift;
        for (let j = 0; j < shape[1]; j++)
          for (let k = 0; k < shape[2]; k++) {
            const o = [oz, (j - (shape[1] - 1) / 2) * 8 + sy, (k - (shape[2] - 1) / 2) * 8 + sx];
            const p = [0, 1, 2].map((w) => center[w] + A[w][0] * o[0] + A[w][1] * o[1] + A[w][2] * o[2]);
            assert.ok(Math.abs(t.data[i * plane + j * shape[2] + k] - coord.value(p)) < 1e-6 * coord.value(p));
          }
      }
      assert.equal(moved.filter(Boolean).length > 0, true);
      if (slip) assert.equal(moved.filter(Boolean).length, 1, "a slip moves one section");
    }
  });

  it("datasets report it and move raw and labels alike; 2-D data refuses it", async () => {
    const spec = { shape: [16, 16, 16], scale: [8, 8, 8] };
    const ds = await CellMapDataset.open({
      rawPath,
      targetPath: path.join(gtRoot, "[a]"),
      classes: ["a"],
      inputArrays: { raw: spec },
      targetArrays: { labels: spec },
      isTrain: true,
      seed: 5,
      forceHasData: true,
      spatialTransforms: { elastic: CFG, sectionShift: { p: 1, maxShift: [16, 16], slip: 0.5 } },
    });
    const s = await ds.get(4, { epoch: 0 });
    const report = s.metadata.spatialTransform!.sectionShift!;
    assert.ok(Math.abs(report.shift[0]) <= 16 && Math.abs(report.shift[1]) <= 16);
    assert.ok(s.metadata.spatialTransform!.elastic, "with elastic, both");
    const img = await CellMapImage.open({
      path: path.join(gtRoot, "a"),
      targetScale: [8, 8, 8],
      targetVoxelShape: [16, 16, 16],
      targetClass: "a",
      pad: true,
      interpolation: "nearest",
    });
    const direct = await img.read(s.metadata.center, {
      spatialTransform: s.metadata.spatialTransform!.matrix,
      displacement: new SumDisplacement([ds.elasticDraw(4, 0)!, ds.sectionShiftDraw(4, 0)!]),
    });
    assert.deepEqual(Array.from((s.labels as Tensor).data), Array.from(direct.data));
    assert.throws(() => parseSpatialConfig({ sectionShift: { p: 1, maxShift: [8, 8] } }, ["y", "x"]), /needs 3-D data/);
  });
});
