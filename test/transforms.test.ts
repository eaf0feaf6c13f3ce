import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { CellMapError } from "../src/errors.js";
import { Rng, RngStream, sampleRng } from "../src/util/rng.js";
import { tensor, type Tensor } from "../src/tensor.js";
import {
  Affinities,
  Binarize,
  DefectAugment,
  IntensityScaleShift,
  BUILTIN_TRANSFORMS,
  Compose,
  DistanceTransform,
  drawSpatialTransform,
  FLOAT32_MAX,
  GaussianBlur,
  GaussianNoise,
  isSignedPermutation,
  loadTransform,
  NaNtoNum,
  Normalize,
  PerClass,
  RandomContrast,
  RandomGamma,
  rotatedExtent,
  spatialMatrix,
  ToDtype,
  transformFromSpec,
  type ValueTransform,
} from "../src/transforms/index.js";

const FC = { seed: 20240611, numRuns: 100 };

function mat3(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}
function det3(m: number[][]): number {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}
const I3 = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];
const ZYX = ["z", "y", "x"];

function throwsNaming(fn: () => unknown, ...names: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CellMapError, `expected CellMapError, got ${e}`);
    assert.equal(e.code, "INVALID_ARGUMENT");
    for (const n of names) assert.ok(e.message.includes(n), `message ${JSON.stringify(e.message)} should name ${n}`);
    return true;
  });
}

function filled(shape: number[], f: (i: number) => number, dtype: Tensor["sourceDtype"] = "float32"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = f(i);
  return tensor(d, shape, dtype);
}

function meanStd(d: ArrayLike<number>): [number, number] {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i];
  const m = s / d.length;
  let v = 0;
  for (let i = 0; i < d.length; i++) v += (d[i] - m) ** 2;
  return [m, Math.sqrt(v / d.length)];
}

describe("spatial matrices", () => {
  it("mirroring twice is the identity", () => {
    for (const m of [["z"], ["y"], ["x"], ["z", "x"], ["z", "y", "x"]]) {
      const M = spatialMatrix({ mirror: m });
      assert.ok(isSignedPermutation(M));
      assert.deepEqual(mat3(M, M), I3);
    }
  });

  it("rotation about z by 90° equals mirror x + transpose y/x, and turns x toward y", () => {
    const A = spatialMatrix({ rotate: { z: 90 } });
    assert.deepEqual(A, [
      [1, 0, 0],
      [0, 0, 1],
      [0, -1, 0],
    ]);
    assert.deepEqual(A, spatialMatrix({ mirror: ["x"], transpose: ["z", "x", "y"] }));
    // Output x offset (zyx e_x) lands on world +y.
    assert.deepEqual([A[0][2], A[1][2], A[2][2]], [0, 1, 0]);
    // Ry turns z toward x, Rx turns y toward z.
    const Ay = spatialMatrix({ rotate: { y: 90 } });
    assert.deepEqual([Ay[0][0], Ay[1][0], Ay[2][0]], [0, 0, 1]);
    const Ax = spatialMatrix({ rotate: { x: 90 } });
    assert.deepEqual([Ax[0][1], Ax[1][1], Ax[2][1]], [1, 0, 0]);
  });

  it("transpose: output axis k reads world axis transpose[k]", () => {
    const P = spatialMatrix({ transpose: ["y", "x", "z"] });
    // output z offset goes to world y, output y to world x, output x to world z
    assert.deepEqual(P, [
      [0, 0, 1],
      [1, 0, 0],
      [0, 1, 0],
    ]);
  });

  it("multiples of 90° give exact signed permutations equal to a flip+transpose", () => {
    const angles = [0, 90, 180, 270, -90];
    let n = 0;
    for (const z of angles)
      for (const y of angles)
        for (const x of angles) {
          const A = spatialMatrix({ rotate: { z, y, x } });
          assert.ok(isSignedPermutation(A), `z=${z} y=${y} x=${x}: ${JSON.stringify(A)}`);
          assert.equal(det3(A), 1);
          // Decompose: output axis k reads world axis i where A[i][k] != 0, mirrored when -1.
          const transpose: string[] = [];
          const mirror: string[] = [];
          for (let k = 0; k < 3; k++) {
            const i = [0, 1, 2].find((r) => A[r][k] !== 0)!;
            transpose.push(ZYX[i]);
            if (A[i][k] === -1) mirror.push(ZYX[i]);
          }
          assert.deepEqual(spatialMatrix({ mirror, transpose }), A);
          n++;
        }
    assert.equal(n, 125);
  });

  it("random angles give proper orthogonal rotations (det +1)", () => {
    const ang = fc.double({ min: -360, max: 360, noNaN: true });
    fc.assert(
      fc.property(ang, ang, ang, (z, y, x) => {
        const R = spatialMatrix({ rotate: { z, y, x } });
        const RtR = mat3(
          R[0].map((_, j) => R.map((row) => row[j])),
          R,
        );
        for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(RtR[i][j] - I3[i][j]) < 1e-12);
        assert.ok(Math.abs(det3(R) - 1) < 1e-12);
        // composition order Rz·Ry·Rx
        const expect = mat3(mat3(spatialMatrix({ rotate: { z } }), spatialMatrix({ rotate: { y } })), spatialMatrix({ rotate: { x } }));
        for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(R[i][j] - expect[i][j]) < 1e-12);
      }),
      FC,
    );
  });

  it("matrix = R·M·P", () => {
    const draw = { mirror: ["y"], transpose: ["x", "y", "z"], rotate: { z: 30, x: -10 } };
    const A = spatialMatrix(draw);
    const R = spatialMatrix({ rotate: draw.rotate });
    const M = spatialMatrix({ mirror: draw.mirror });
    const P = spatialMatrix({ transpose: draw.transpose });
    const E = mat3(mat3(R, M), P);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(A[i][j] - E[i][j]) < 1e-15);
    assert.ok(Math.abs(det3(A) - det3(P) * -1) < 1e-12);
  });

  it("rotatedExtent is |A|·h", () => {
    assert.deepEqual(rotatedExtent(I3, [10, 20, 30]), [10, 20, 30]);
    const e = rotatedExtent(spatialMatrix({ rotate: { z: 45 } }), [5, 10, 10]);
    assert.equal(e[0], 5);
    assert.ok(Math.abs(e[1] - 10 * Math.SQRT2) < 1e-9 && Math.abs(e[2] - 10 * Math.SQRT2) < 1e-9);
    assert.deepEqual(rotatedExtent(spatialMatrix({ rotate: { z: 90 } }), [1, 2, 3]), [1, 3, 2]);
    assert.deepEqual(rotatedExtent(spatialMatrix({ rotate: { z: 90 } }, ["y", "x"]), [2, 3]), [3, 2]);
  });

  it("2-D data: z fixed, only rotation about z", () => {
    const yx = ["y", "x"];
    assert.deepEqual(spatialMatrix({ rotate: { z: 90 } }, yx), [
      [1, 0, 0],
      [0, 0, 1],
      [0, -1, 0],
    ]);
    assert.deepEqual(spatialMatrix({ transpose: ["x", "y"], mirror: ["y"] }, yx), [
      [1, 0, 0],
      [0, 0, -1],
      [0, 1, 0],
    ]);
    throwsNaming(() => spatialMatrix({ rotate: { y: 10 } }, yx), "y", "2-D");
    throwsNaming(() => drawSpatialTransform({ rotate: { axes: { x: [0, 1] } } }, new Rng(1), yx), "x", "2-D");
    throwsNaming(() => drawSpatialTransform({ mirror: { axes: { z: 0.5 } } }, new Rng(1), yx), '"z"');
    const d = drawSpatialTransform({ rotate: { axes: { z: [-30, 30] } }, transpose: { axes: ["x", "y"] } }, new Rng(3), yx);
    assert.equal(d.matrix[0][0], 1);
    assert.ok(d.transpose === null || d.transpose.length === 2);
  });
});

describe("spatial draws", () => {
  const config = {
    mirror: { axes: { x: 0.5, y: 0.5, z: 0.2 } },
    transpose: { axes: ["x", "y"] },
    rotate: { axes: { z: [-30, 30], y: [-15, 15] } },
  };

  it("are a function of (seed, epoch, idx) and JSON-serialisable", () => {
    const a = drawSpatialTransform(config, sampleRng(7, 2, 41, RngStream.spatial));
    const b = drawSpatialTransform(config, sampleRng(7, 2, 41, RngStream.spatial));
    assert.deepEqual(a, b);
    assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
    assert.deepEqual(a.matrix, spatialMatrix(a));
    const c = drawSpatialTransform(config, sampleRng(7, 2, 42, RngStream.spatial));
    assert.notDeepEqual(a, c);
    const d = drawSpatialTransform(config, sampleRng(7, 3, 41, RngStream.spatial));
    assert.notDeepEqual(a, d);
    // key order of the config does not matter
    const reordered = { rotate: { axes: { y: [-15, 15], z: [-30, 30] } }, transpose: { axes: ["y", "x"] }, mirror: { axes: { z: 0.2, y: 0.5, x: 0.5 } } };
    assert.deepEqual(drawSpatialTransform(reordered, sampleRng(7, 2, 41, RngStream.spatial)), a);
  });

  it("have the configured statistics", () => {
    const n = 4000;
    const mirrors: Record<string, number> = { z: 0, y: 0, x: 0 };
    let swapped = 0;
    for (let i = 0; i < n; i++) {
      const d = drawSpatialTransform(config, sampleRng(1, 0, i, RngStream.spatial));
      for (const m of d.mirror) mirrors[m]++;
      if (d.transpose) {
        assert.deepEqual(d.transpose, ["z", "x", "y"]);
        swapped++;
      }
      assert.ok(d.rotate.z >= -30 && d.rotate.z < 30 && d.rotate.y >= -15 && d.rotate.y < 15);
      assert.equal(d.rotate.x, undefined);
      const m = d.matrix;
      assert.ok(Math.abs(Math.abs(det3(m)) - 1) < 1e-12);
    }
    assert.ok(Math.abs(mirrors.x / n - 0.5) < 0.04 && Math.abs(mirrors.y / n - 0.5) < 0.04);
    assert.ok(Math.abs(mirrors.z / n - 0.2) < 0.03);
    assert.ok(Math.abs(swapped / n - 0.5) < 0.04);
  });

  it("empty config is the identity", () => {
    const d = drawSpatialTransform({}, new Rng(1));
    assert.deepEqual(d, { mirror: [], transpose: null, rotate: {}, matrix: I3 });
  });

  it("unknown keys and axes are errors naming them", () => {
    throwsNaming(() => drawSpatialTransform({ flip: { axes: { x: 0.5 } } }, new Rng(1)), '"flip"');
    throwsNaming(() => drawSpatialTransform({ mirror: { axes: { w: 0.5 } } }, new Rng(1)), '"w"', "mirror");
    throwsNaming(() => drawSpatialTransform({ mirror: { axes: { x: 0.5 }, prob: 1 } }, new Rng(1)), '"prob"');
    throwsNaming(() => drawSpatialTransform({ transpose: { axes: ["x", "q"] } }, new Rng(1)), '"q"', "transpose");
    throwsNaming(() => drawSpatialTransform({ rotate: { axes: { t: [0, 1] } } }, new Rng(1)), '"t"', "rotate");
    throwsNaming(() => drawSpatialTransform({ rotate: { axes: { z: [10, 1] } } }, new Rng(1)), "rotate.axes.z");
    throwsNaming(() => drawSpatialTransform({ mirror: { axes: { x: 1.5 } } }, new Rng(1)), "mirror.axes.x");
    throwsNaming(() => drawSpatialTransform({ transpose: { axes: ["x", "x"] } }, new Rng(1)), "twice");
    throwsNaming(() => spatialMatrix({ mirror: ["v"] }), '"v"');
    throwsNaming(() => spatialMatrix({ transpose: ["z", "z", "x"] }), "permutation");
  });
});

describe("value transforms", () => {
  it("GaussianNoise has the requested mean and std, keeps NaN, is seeded", () => {
    const n = 200_000;
    const t = filled([n], () => 0);
    new GaussianNoise({ mean: 0.5, std: 2 }).apply(t, new Rng(11));
    const [m, s] = meanStd(t.data);
    assert.ok(Math.abs(m - 0.5) < 0.02, `mean ${m}`);
    assert.ok(Math.abs(s - 2) < 0.02, `std ${s}`);
    const u = filled([5], (i) => (i === 2 ? NaN : 1));
    new GaussianNoise({ std: 0.1 }).apply(u, new Rng(5));
    assert.ok(Number.isNaN(u.data[2]));
    const v = filled([5], (i) => (i === 2 ? NaN : 1));
    new GaussianNoise({ std: 0.1 }).apply(v, new Rng(5));
    assert.deepEqual(v.data, u.data);
    const w = filled([3], () => 1);
    new GaussianNoise({ std: 0 }).apply(w, new Rng(5));
    assert.deepEqual([...w.data], [1, 1, 1]);
  });

  it("RandomGamma is monotonic on [0,1], clamps, keeps NaN", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
        const t = filled([101], (i) => i / 100);
        new RandomGamma({ range: [0.3, 3] }).apply(t, new Rng(seed));
        for (let i = 1; i < 101; i++) assert.ok(t.data[i] >= t.data[i - 1]);
        assert.equal(t.data[0], 0);
        assert.equal(t.data[100], 1);
      }),
      { ...FC, numRuns: 30 },
    );
    const t = filled([4], (i) => [0.25, NaN, -1, 2][i]);
    new RandomGamma({ range: [0.5, 0.5] }).apply(t, new Rng(1));
    assert.deepEqual([...t.data], [0.5, NaN, 0, 1]);
    const u8 = filled([2], (i) => [255, 0][i], "uint8");
    new RandomGamma({ range: [2, 2] }).apply(u8, new Rng(1));
    assert.deepEqual([...u8.data], [1, 0]);
    assert.equal(u8.sourceDtype, "float32");
    throwsNaming(() => new RandomGamma({ range: [0, 1] }), "range");
  });

  it("RandomContrast scales about the non-NaN mean", () => {
    const t = filled([5], (i) => [0.2, 0.4, NaN, 0.6, 0.8][i]);
    new RandomContrast({ range: [1, 1] }).apply(t, new Rng(1));
    assert.deepEqual([...t.data], [...new Float32Array([0.2, 0.4, NaN, 0.6, 0.8])]);
    new RandomContrast({ range: [2, 2] }).apply(t, new Rng(1));
    const expect = [0, 0.3, NaN, 0.7, 1]; // 2x − 0.5, clipped to [0,1]
    t.data.forEach((v, i) => (Number.isNaN(expect[i]) ? assert.ok(Number.isNaN(v)) : assert.ok(Math.abs(v - expect[i]) < 1e-6)));
    const r = filled([1000], (i) => 0.4 + (0.2 * ((i * 7919) % 1000)) / 1000);
    const [m0] = meanStd(r.data);
    new RandomContrast({ range: [0.5, 1.5] }).apply(r, new Rng(9));
    assert.ok(Math.abs(meanStd(r.data)[0] - m0) < 1e-5);
  });

  it("GaussianBlur reduces variance, preserves the mean and linear ramps in the interior", () => {
    const n = 24;
    const rng = new Rng(3);
    const t = filled([n, n, n], () => rng.random());
    const [m0, s0] = meanStd(t.data);
    new GaussianBlur({ sigma: 2, dims: 3 }).apply(t, new Rng(0));
    const [m1, s1] = meanStd(t.data);
    assert.ok(s1 < s0 / 4, `std ${s0} -> ${s1}`);
    assert.ok(Math.abs(m1 - m0) < 0.01);
    // a linear ramp is unchanged away from the border (symmetric kernel)
    const ramp = filled([n, n, n], (i) => 0.5 * Math.floor(i / (n * n)) + 0.25 * (i % n));
    const orig = Float32Array.from(ramp.data);
    new GaussianBlur({ sigma: 1.5, dims: 3 }).apply(ramp, new Rng(0));
    const r = 5; // ceil(3σ)
    for (let z = r; z < n - r; z++)
      for (let y = r; y < n - r; y++)
        for (let x = r; x < n - r; x++) {
          const i = (z * n + y) * n + x;
          assert.ok(Math.abs(ramp.data[i] - orig[i]) < 1e-4);
        }
    // constants stay constant, also next to NaN holes and borders
    const c = filled([2, 9, 9], (i) => (i % 17 === 0 ? NaN : 3));
    new GaussianBlur({ sigma: 1, dims: 2 }).apply(c, new Rng(0));
    c.data.forEach((v, i) => (i % 17 === 0 ? assert.ok(Number.isNaN(v)) : assert.ok(Math.abs(v - 3) < 1e-6)));
  });

  for (const nanFrac of [0, 0.2])
    it(`GaussianBlur (NaN fraction ${nanFrac}) equals brute-force normalised convolution`, () => {
      const shape = [5, 6, 7];
      const rng = new Rng(8);
      const t = filled(shape, () => (rng.random() < nanFrac ? NaN : rng.random()));
      const x = Float32Array.from(t.data);
      const sigma = [0.7, 1.2, 1];
      new GaussianBlur({ sigma, dims: 3 }).apply(t, new Rng(0));
      const rad = sigma.map((s) => Math.ceil(3 * s));
      for (let z = 0; z < 5; z++)
        for (let y = 0; y < 6; y++)
          for (let xx = 0; xx < 7; xx++) {
            const i = (z * 6 + y) * 7 + xx;
            if (Number.isNaN(x[i])) {
              assert.ok(Number.isNaN(t.data[i]));
              continue;
            }
            let num = 0;
            let den = 0;
            for (let a = -rad[0]; a <= rad[0]; a++)
              for (let b = -rad[1]; b <= rad[1]; b++)
                for (let c = -rad[2]; c <= rad[2]; c++) {
                  const [zz, yy, xc] = [z + a, y + b, xx + c];
                  if (zz < 0 || zz >= 5 || yy < 0 || yy >= 6 || xc < 0 || xc >= 7) continue;
                  const v = x[(zz * 6 + yy) * 7 + xc];
                  if (Number.isNaN(v)) continue;
                  const w = Math.exp(-(a * a) / (2 * sigma[0] ** 2) - (b * b) / (2 * sigma[1] ** 2) - (c * c) / (2 * sigma[2] ** 2));
                  num += w * v;
                  den += w;
                }
            assert.ok(Math.abs(t.data[i] - num / den) < 1e-5);
          }
    });

  it("Binarize and NaNtoNum", () => {
    const t = filled([5], (i) => [0, 0.5, 1, 2, NaN][i]);
    new Binarize({ threshold: 0 }).apply(t);
    assert.deepEqual([...t.data], [0, 1, 1, 1, NaN]);
    const u = filled([2], (i) => [0.3, 0.7][i]);
    new Binarize({ threshold: 0.5 }).apply(u);
    assert.deepEqual([...u.data], [0, 1]);
    const v = filled([4], (i) => [NaN, Infinity, -Infinity, 2][i]);
    new NaNtoNum().apply(v);
    assert.deepEqual(
      [...v.data],
      [0, FLOAT32_MAX, -FLOAT32_MAX, 2].map((x) => Math.fround(x)),
    );
    const w = filled([4], (i) => [NaN, Infinity, -Infinity, 2][i]);
    new NaNtoNum({ nan: -1, posinf: 9, neginf: -9 }).apply(w);
    assert.deepEqual([...w.data], [-1, 9, -9, 2]);
  });

  it("Normalize and ToDtype", () => {
    const t = filled([3], (i) => [0, 51, 255][i], "uint8");
    new ToDtype({ scale: true }).apply(t);
    assert.deepEqual([...t.data], [0, Math.fround(0.2), 1]);
    assert.equal(t.sourceDtype, "float32");
    new ToDtype({ scale: true }).apply(t); // float source: no second scaling
    assert.deepEqual([...t.data], [0, Math.fround(0.2), 1]);
    const u = filled([2], (i) => [0, 65535][i], "uint16");
    new ToDtype({ scale: false }).apply(u);
    assert.deepEqual([...u.data], [0, 65535]);
    const v = filled([2], (i) => [0, 65535][i], "uint16");
    new Normalize().apply(v);
    assert.deepEqual([...v.data], [0, 1]);
    const w = filled([3], (i) => [10, 15, 20][i]);
    new Normalize({ min: 10, max: 20 }).apply(w);
    assert.deepEqual([...w.data], [0, 0.5, 1]);
    throwsNaming(() => new Normalize({ min: 1 }), "min");
    assert.throws(() => new ToDtype({ dtype: "uint8" }), /float32/);
  });

  it("Compose applies in order; PerClass applies per class channel", () => {
    const t = filled([3], (i) => [-1, 0.2, 3][i]);
    new Compose([new Binarize({ threshold: 0 }), new NaNtoNum()]).apply(t, new Rng(1));
    assert.deepEqual([...t.data], [0, 1, 1]);
    const pc = new PerClass({ er: new Binarize({ threshold: 0.5 }) }, ["mito", "er"]);
    const u = filled([2, 2], (i) => [0.3, 0.7, 0.3, 0.7][i]);
    pc.apply(u, new Rng(1));
    assert.deepEqual(
      [...u.data].map((x) => Math.round(x * 10) / 10),
      [0.3, 0.7, 0, 1],
    );
    throwsNaming(() => new PerClass({ nuc: new Binarize() }, ["mito", "er"]), '"nuc"');
    throwsNaming(
      () =>
        pc.apply(
          filled([3, 2], () => 0),
          new Rng(1),
        ),
      "2 class channels",
    );
    // a shape-preserving transform that returns a new buffer is copied back
    const dt = new PerClass({ b: new DistanceTransform({ voxelSize: [2] }) }, ["a", "b"]);
    const w = filled([2, 4], (i) => [1, 1, 1, 1, 1, 1, 0, 0][i]);
    dt.apply(w, new Rng(1));
    assert.deepEqual([...w.data], [1, 1, 1, 1, 4, 2, -2, -4]);
  });
});

/** Brute-force signed distance, the reference for DistanceTransform. */
function bruteSigned(x: Float32Array, shape: number[], s: number[]): Float64Array {
  const [nz, ny, nx] = shape;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (Number.isNaN(v)) {
      out[i] = NaN;
      continue;
    }
    const fg = v !== 0;
    const [z, y, xx] = [Math.floor(i / (ny * nx)), Math.floor(i / nx) % ny, i % nx];
    let best = Infinity;
    for (let j = 0; j < x.length; j++) {
      const w = x[j];
      if (Number.isNaN(w) || (w !== 0) === fg) continue;
      const [z2, y2, x2] = [Math.floor(j / (ny * nx)), Math.floor(j / nx) % ny, j % nx];
      best = Math.min(best, ((z - z2) * s[0]) ** 2 + ((y - y2) * s[1]) ** 2 + ((xx - x2) * s[2]) ** 2);
    }
    out[i] = fg ? Math.sqrt(best) : -Math.sqrt(best);
  }
  void nz;
  return out;
}

describe("target transforms", () => {
  it("DistanceTransform matches brute force on random anisotropic 3-D masks, NaN preserved", () => {
    const dimA = fc.integer({ min: 1, max: 7 });
    const sp = fc.constantFrom(1, 2, 4, 8, 3.5);
    fc.assert(
      fc.property(dimA, dimA, dimA, sp, sp, sp, fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }), (a, b, c, s0, s1, s2, seed, p) => {
        const rng = new Rng(seed);
        const shape = [a, b, c];
        const t = filled(shape, () => {
          const u = rng.random();
          return u < 0.1 ? NaN : u < 0.1 + 0.9 * p ? 1 : 0;
        });
        const spacing = [s0, s1, s2];
        const out = new DistanceTransform({ voxelSize: spacing }).apply(t);
        const ref = bruteSigned(t.data, shape, spacing);
        assert.deepEqual(out.shape, shape);
        for (let i = 0; i < ref.length; i++) {
          if (Number.isNaN(ref[i])) assert.ok(Number.isNaN(out.data[i]));
          else if (!Number.isFinite(ref[i])) assert.equal(out.data[i], ref[i]);
          else assert.ok(Math.abs(out.data[i] - ref[i]) <= 1e-4 * Math.max(1, Math.abs(ref[i])), `i=${i}: ${out.data[i]} vs ${ref[i]}`);
        }
      }),
      { ...FC, numRuns: 60 },
    );
  });

  it("DistanceTransform: sign convention, clip, tanh, channels, 2-D", () => {
    const t = filled([1, 1, 6], (i) => [0, 0, 1, 1, 1, NaN][i]);
    const d = new DistanceTransform({ voxelSize: [8, 8, 4] }).apply(t);
    assert.deepEqual([...d.data], [-8, -4, 4, 8, 12, NaN]);
    assert.deepEqual([...t.data], [0, 0, 1, 1, 1, NaN]); // input untouched
    const c = new DistanceTransform({ voxelSize: [8, 8, 4], clip: [-5, 5] }).apply(t);
    assert.deepEqual([...c.data], [-5, -4, 4, 5, 5, NaN]);
    const h = new DistanceTransform({ voxelSize: [8, 8, 4], tanhScale: 4 }).apply(t);
    assert.ok(Math.abs(h.data[2] - Math.tanh(1)) < 1e-6);
    // two channels, 2-D spatial
    const two = filled([2, 1, 3], (i) => [1, 0, 1, 1, 1, 1][i]);
    const o = new DistanceTransform({ voxelSize: [1, 2] }).apply(two);
    assert.deepEqual([...o.data], [2, -2, 2, Infinity, Infinity, Infinity]);
    throwsNaming(() => new DistanceTransform({ voxelSize: [0, 1, 1] }), "voxelSize");
  });

  it("Affinities on a hand-made example", () => {
    // 1 x 2 x 3 label image (z, y, x)
    const t = filled([1, 2, 3], (i) => [1, 1, 0, 2, NaN, 2][i]);
    const a = new Affinities({
      offsets: [
        [0, 0, 1],
        [0, 1, 0],
        [0, -1, 0],
      ],
    }).apply(t);
    assert.deepEqual(a.shape, [3, 1, 2, 3]);
    const N = NaN;
    assert.deepEqual(
      [...a.data],
      [
        // +x: (1,1)=1 (1,0)=0 edge=NaN | (2,NaN)=NaN (NaN,2)=NaN edge=NaN
        1,
        0,
        N,
        N,
        N,
        N,
        // +y: (1,2)=0 (1,NaN)=NaN (0,2)=0 | edge
        0,
        N,
        0,
        N,
        N,
        N,
        // -y: edge | (2,1)=0 (NaN,1)=NaN (2,0)=0
        N,
        N,
        N,
        0,
        N,
        0,
      ],
    );
    const m = filled([4], (i) => [1, 1, 0, 0][i]);
    assert.deepEqual([...new Affinities({ offsets: [[1]] }).apply(m).data], [1, 0, 0, NaN]);
    throwsNaming(() => new Affinities({ offsets: [[1, 0], [1]] }), "offsets");
  });
});

describe("serialisation", () => {
  const instances: ValueTransform[] = [
    new Normalize(),
    new Normalize({ min: -1, max: 3 }),
    new ToDtype({ scale: true }),
    new GaussianNoise({ mean: 0.1, std: 0.3 }),
    new RandomContrast({ range: [0.8, 1.2], clip: false }),
    new RandomGamma({ range: [0.7, 1.4] }),
    new GaussianBlur({ sigma: [1, 0.5], dims: 2, kernelSize: 5 }),
    new Binarize({ threshold: 0.25 }),
    new NaNtoNum({ nan: 0, posinf: 1, neginf: -1 }),
    new DistanceTransform({ voxelSize: [1, 2, 3], clip: [-10, 10], tanhScale: 5 }),
    new Affinities({
      offsets: [
        [0, 0, 1],
        [0, 1, 0],
      ],
    }),
    new Compose([new Binarize(), new GaussianNoise()]),
    new PerClass({ mito: new Binarize({ threshold: 0.5 }) }, ["mito", "er"]),
    new DefectAugment({ missing: 0.2, lowContrast: 0.3, contrast: [0.2, 0.6], fillValue: 0.5 }),
    new IntensityScaleShift({ scale: [0.8, 1.2], shift: [-0.1, 0.2], perSection: true }),
  ];

  it("every built-in round-trips toJSON -> transformFromSpec with identical behaviour", () => {
    const types = new Set(instances.map((t) => t.toJSON().type));
    for (const b of BUILTIN_TRANSFORMS) assert.ok(types.has(b), `no round-trip case for ${b}`);
    for (const tr of instances) {
      const spec = JSON.parse(JSON.stringify(tr.toJSON()));
      const back = transformFromSpec(spec);
      assert.deepEqual(back.toJSON(), tr.toJSON());
      const mk = () => filled([2, 4, 5], (i) => ((i * 37) % 11) / 10 - 0.2 + (i === 7 ? NaN : 0));
      const a = tr.apply(mk(), new Rng(4));
      const b = back.apply(mk(), new Rng(4));
      assert.deepEqual(a, b);
    }
  });

  it("bad specs are errors naming the problem", () => {
    throwsNaming(() => transformFromSpec({ type: "Blurr" }), '"Blurr"');
    throwsNaming(() => transformFromSpec({ type: "GaussianNoise", params: { std: -1 } }), "std");
    throwsNaming(() => transformFromSpec({ type: "GaussianNoise", params: { sd: 1 } }), '"sd"');
    throwsNaming(() => transformFromSpec({ type: "Compose", params: { transforms: [{ type: "Nope" }] } }), "transforms[0]", '"Nope"');
    throwsNaming(() => transformFromSpec({ type: "module", module: "/x.js", export: "a" }), "loadTransform");
    throwsNaming(() => transformFromSpec({ type: "Binarize", param: {} }), '"param"');
  });

  it("loads a user module transform (class and factory) via loadTransform", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-"));
    const file = path.join(dir, "my-transform.mjs");
    fs.writeFileSync(
      file,
      `export class AddConst {
  constructor(params) { this.k = params.k; }
  apply(t, rng) { for (let i = 0; i < t.data.length; i++) t.data[i] += this.k + rng.random() * 0; return t; }
  toJSON() { return { type: "ignored" }; }
}
export function makeScale(params) { return { apply(t) { t.data.forEach((v, i) => (t.data[i] = v * params.f)); return t; } }; }
export const notAFunction = 3;
`,
    );
    try {
      const spec = { type: "module", module: file, export: "AddConst", params: { k: 2 } };
      const tr = await loadTransform(spec);
      const out = tr.apply(
        filled([3], (i) => i),
        new Rng(1),
      );
      assert.deepEqual([...out.data], [2, 3, 4]);
      assert.deepEqual(tr.toJSON(), spec);
      const composed = await loadTransform({
        type: "Compose",
        params: {
          transforms: [
            { type: "module", module: pathToFileURL(file).href, export: "makeScale", params: { f: 10 } },
            { type: "Binarize", params: { threshold: 15 } },
          ],
        },
      });
      assert.deepEqual(
        [
          ...composed.apply(
            filled([3], (i) => i),
            new Rng(1),
          ).data,
        ],
        [0, 0, 1],
      );
      const again = await loadTransform(JSON.parse(JSON.stringify(composed.toJSON())));
      assert.deepEqual(again.toJSON(), composed.toJSON());
      await assert.rejects(loadTransform({ type: "module", module: "./rel.js", export: "x" }), /absolute path/);
      await assert.rejects(loadTransform({ type: "module", module: file, export: "notAFunction" }), /notAFunction/);
      await assert.rejects(
        loadTransform({ type: "module", module: path.join(dir, "missing.mjs"), export: "x" }),
        (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND",
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
