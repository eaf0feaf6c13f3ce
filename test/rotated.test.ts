/**
 * The rotated-grid kernels (`src/image/rotated.ts`, `scripts/build-kernels.ts`) against the JS
 * reference path (`sampleGeneral`): random rotations about z and about every axis, mirrors,
 * transposes, anisotropic voxels, off-scale reads, centres near and past the edges with and
 * without padding, 2-D images, and every source type the kernels read in place (plus uint32,
 * widened to float32 first). Nearest must be bit for bit; linear within 1 ulp of float32 (the
 * section kernel of integer sources sums four weighted taps where the reference blends three
 * times).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { CellMapImage } from "../src/image/image.js";
import { releaseSectionMaps } from "../src/image/rotated.js";
import { DataPlane } from "../src/plane/plane.js";
import type { WritableDataType } from "../src/zarr/write/spec.js";
import { Rng } from "../src/util/rng.js";
import { fillFromFunction, writeOmePyramid } from "../src/writer/pyramid.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-rotated-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Rotation by `deg` about world axis `axis` (zyx vectors; see transforms/spatial.ts). */
function rot(axis: number, deg: number): number[][] {
  const c = Math.cos((deg * Math.PI) / 180);
  const s = Math.sin((deg * Math.PI) / 180);
  if (axis === 0)
    return [
      [1, 0, 0],
      [0, c, -s],
      [0, s, c],
    ];
  if (axis === 1)
    return [
      [c, 0, s],
      [0, 1, 0],
      [-s, 0, c],
    ];
  return [
    [c, -s, 0],
    [s, c, 0],
    [0, 0, 1],
  ];
}

function mul(a: number[][], b: number[][]): number[][] {
  return a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
}

/** A random spatial matrix: axis-aligned or a rotation about z (section kernels), or a rotation about every axis (general), with mirrors and a y/x transpose. */
function randomMatrix(rng: Rng, sectionsOnly: boolean): number[][] {
  // A quarter of the section grids are axis-aligned (identity or mirrors): resampled with the
  // section kernels too when the voxel size changes.
  let m =
    sectionsOnly && rng.random() < 0.25
      ? [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ]
      : rot(0, rng.uniform(-180, 180));
  if (!sectionsOnly) m = mul(mul(m, rot(1, rng.uniform(-40, 40))), rot(2, rng.uniform(-40, 40)));
  const mirror = [0, 1, 2].map((a) => (sectionsOnly && a === 0 ? (rng.random() < 0.5 ? -1 : 1) : rng.random() < 0.3 ? -1 : 1));
  m = m.map((row) => row.map((v, k) => v * mirror[k]));
  if (rng.random() < 0.3) {
    // Output axes y and x swapped (a transpose the sections kernels still handle).
    m = m.map((row) => [row[0], row[2], row[1]]);
  }
  return m;
}

/** Float32 values within one unit in the last place (or both NaN). */
function withinUlp(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  const f = new Float32Array([a, b]);
  const i = new Int32Array(f.buffer);
  return Math.sign(a) === Math.sign(b) && Math.abs(i[0] - i[1]) <= 1;
}

async function volume(name: string, dtype: WritableDataType, shape: number[], scale: number[], value: (idx: number[]) => number): Promise<string> {
  const dir = path.join(tmp, name);
  const translation = scale.map((s) => s / 2 + 3);
  await writeOmePyramid(dir, {
    format: 2,
    dtype,
    codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 },
    axes:
      shape.length === 2
        ? [
            { name: "y", type: "space", unit: "nanometer" },
            { name: "x", type: "space", unit: "nanometer" },
          ]
        : undefined,
    levels: [{ shape, scale, translation, chunks: shape.map(() => 8), data: fillFromFunction(dtype, shape, value) }],
  });
  return dir;
}

describe("rotated-grid kernels equal the JS reference", () => {
  const cases: { dtype: WritableDataType; value: (i: number[]) => number }[] = [
    { dtype: "uint8", value: (i) => (i[0] * 37 + i[1] * 11 + i[2] * 5 + ((i[0] * i[1] * i[2]) % 7)) % 256 },
    { dtype: "int8", value: (i) => ((i[0] * 31 + i[1] * 13 + i[2] * 7) % 256) - 128 },
    { dtype: "uint16", value: (i) => (i[0] * 4099 + i[1] * 257 + i[2] * 17) % 65536 },
    { dtype: "int16", value: (i) => ((i[0] * 4099 + i[1] * 257 + i[2] * 17) % 65536) - 32768 },
    // float32 with NaN regions and negative zeros: the kernels must keep what a zero weight skips
    { dtype: "float32", value: (i) => ((i[0] + i[1] + i[2]) % 11 === 0 ? NaN : (i[0] * 3 + i[1]) % 5 === 0 ? -0 : Math.sin(i[0] * 0.7 + i[1] * 1.3 - i[2] * 0.4) * 1e3) },
    { dtype: "uint32", value: (i) => (i[0] * 65537 + i[1] * 4099 + i[2] * 3) % 1000003 }, // widened to float32 first
  ];

  for (const c of cases) {
    it(`${c.dtype}: sections and general grids, nearest bit for bit, linear within 1 ulp`, async () => {
      const scale = [6, 4, 5];
      const shape = [20, 26, 30];
      const dir = await volume(`v-${c.dtype}`, c.dtype, shape, scale, c.value);
      const plane = DataPlane.create({ cacheBytes: 16 * 2 ** 20, batchBytes: 2 ** 20, batchSlots: 1 });
      const rng = new Rng(c.dtype.length * 7919);
      let compared = 0;
      let exactLinear = 0;
      let linear = 0;
      for (let t = 0; t < 40; t++) {
        const interpolation = t % 2 === 0 ? "nearest" : "linear";
        const pad = t % 3 !== 0;
        // native voxel size, finer, coarser, anisotropic
        const target = [scale, [3, 3, 3], [7, 5, 9], [6, 4, 10]][t % 4];
        const patch = [3 + (t % 5), 4 + ((t * 3) % 7), 5 + ((t * 5) % 6)];
        const img = await CellMapImage.open({ path: dir, targetScale: target, targetVoxelShape: patch, pad, interpolation });
        const m = randomMatrix(rng, t % 4 < 2);
        // centres inside, near the edges and past them
        const box = shape.map((n, a) => n * scale[a]);
        const centre = box.map((b) => rng.uniform(-0.15 * b, 1.15 * b));
        const js = await img.read(centre, { spatialTransform: m });
        const size = patch[0] * patch[1] * patch[2];
        const into = plane.batchView(0, 64, size);
        const viaPlane = await img.read(centre, { spatialTransform: m, store: plane.store, into });
        assert.equal(viaPlane.data, into);
        const a = new Uint32Array(js.data.slice().buffer);
        const b = new Uint32Array(into.slice().buffer);
        for (let i = 0; i < size; i++) {
          const where = `${c.dtype} case ${t} (${interpolation}, pad ${pad}, scale [${target}], patch [${patch}]) at [${centre.map((v) => v.toFixed(1))}] voxel ${i}: ${js.data[i]} vs ${into[i]}`;
          if (interpolation === "nearest") assert.equal(b[i], a[i], where);
          else {
            assert.ok(withinUlp(js.data[i], into[i]), where);
            linear++;
            if (a[i] === b[i]) exactLinear++;
          }
        }
        compared++;
      }
      assert.equal(compared, 40);
      // Integer sources sum four weighted taps (zrot_linear4): rarely, a value lands 1 ulp away.
      assert.ok(exactLinear >= 0.99 * linear, `${linear - exactLinear} of ${linear} linear values differ by 1 ulp`);
      // The kernels ran: their y/x and offset maps are kept in the plane's scratch space.
      assert.ok(plane.scratch!.inUse > 0, "no rotated kernel ran");
      releaseSectionMaps(plane.scratch!);
      assert.equal(plane.scratch!.inUse, 0);
    });
  }

  it("2-D images: rotations in the plane, both interpolations", async () => {
    const dir = await volume("v-2d", "uint8", [40, 36], [4, 4], (i) => (i[0] * 7 + i[1] * 3) % 256);
    const plane = DataPlane.create({ cacheBytes: 16 * 2 ** 20, batchBytes: 2 ** 20, batchSlots: 1 });
    const rng = new Rng(5);
    for (let t = 0; t < 20; t++) {
      const interpolation = t % 2 === 0 ? "nearest" : "linear";
      const img = await CellMapImage.open({ path: dir, targetScale: [4, 4], targetVoxelShape: [9, 11], pad: t % 3 !== 0, axisOrder: "yx", interpolation });
      const a = rng.uniform(-180, 180);
      const m = rot(0, a);
      const centre = [rng.uniform(-10, 170), rng.uniform(-10, 150)];
      const js = await img.read(centre, { spatialTransform: m });
      const into = plane.batchView(0, 0, 99);
      await img.read(centre, { spatialTransform: m, store: plane.store, into });
      assert.deepEqual(new Uint32Array(into.slice().buffer), new Uint32Array(js.data.slice().buffer), `2-D case ${t}`);
    }
    assert.ok(plane.scratch!.inUse > 0, "no rotated kernel ran");
  });
});
