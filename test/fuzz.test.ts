/**
 * Property-based tests (fast-check, fixed seed, bounded runs) of geometry and sampling.
 *
 * The fixtures are coordinate pyramids (`makeCoordPyramid`): every level stores a *linear*
 * function of world position, so the exact expected value of any sample is known:
 * - linear interpolation of a linear function is exact, so a sample at world point p equals
 *   value(p clamped per axis to the span of the chosen level's voxel centres);
 * - nearest interpolation equals value(centre of the nearest voxel, clamped);
 * - with padding, points outside the level's bounding box read the pad value.
 * A misaligned sample (off by even one voxel on any axis of any level) changes the value by at
 * least 1, far above the float32 rounding tolerance. Chunk requests are watched too: a request
 * for a chunk key outside the array (which would silently read as fill value) is a failure.
 */
import { after, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import type { AbsolutePath } from "@zarrita/storage";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapError, type CellMapErrorCode } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { LocalStore } from "../src/store/local.js";
import type { Tensor } from "../src/tensor.js";
import { makeCoordPyramid, type CoordPyramid, type FixtureLevel } from "./fixtures/builder.js";

const SEED = 20240611;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-fuzz-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

// Every chunk a read asks for must exist (fixtures write every chunk): record the ones that do not.
const CHUNK_KEY = /\/s\d+\/(\d+\.\d+\.\d+|c\/\d+\/\d+\/\d+)$/;
const missingChunks: string[] = [];
for (const method of ["get", "getRange"] as const) {
  const original = LocalStore.prototype[method] as (this: LocalStore, key: AbsolutePath, ...rest: never[]) => Promise<Uint8Array | undefined>;
  mock.method(LocalStore.prototype, method, async function (this: LocalStore, key: AbsolutePath, ...rest: never[]) {
    const out = await original.call(this, key, ...rest);
    if (out === undefined && CHUNK_KEY.test(key)) missingChunks.push(`${this.root}${key}`);
    return out;
  });
}

/** A random pyramid: levels, anisotropic voxel sizes, translations, chunking, format. */
const pyramidArb = fc.record({
  levels: fc.integer({ min: 1, max: 3 }),
  shape: fc.tuple(fc.integer({ min: 3, max: 14 }), fc.integer({ min: 3, max: 14 }), fc.integer({ min: 3, max: 14 })),
  s0Scale: fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })),
  translation: fc.tuple(fc.integer({ min: -60, max: 60 }), fc.integer({ min: -60, max: 60 }), fc.integer({ min: -60, max: 60 }), fc.constantFrom(0, 0.5, 0.25)),
  chunks: fc.tuple(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 2, max: 6 }), fc.integer({ min: 2, max: 6 })),
  storage: fc.constantFrom("v2", "v3", "v3-sharded"),
});
type PyramidSpec = typeof pyramidArb extends fc.Arbitrary<infer T> ? T : never;

async function writePyramid(p: PyramidSpec): Promise<CoordPyramid> {
  const dir = path.join(tmp, `p${dirs++}`);
  return makeCoordPyramid(dir, {
    levels: p.levels,
    shape: [...p.shape],
    s0Scale: [...p.s0Scale],
    translation: p.translation.slice(0, 3).map((t) => t + p.translation[3]),
    chunks: [...p.chunks],
    format: p.storage === "v2" ? 2 : 3,
    chunksPerShard: p.storage === "v3-sharded" ? [2, 2, 2] : undefined,
  });
}

const SNAP = 1e-6;
const snap = (f: number) => (Math.abs(f - Math.round(f)) < SNAP ? Math.round(f) : f);
const TOL = 0.02;

/**
 * Expected value of one sample at world point `p` read from `level`, or `undefined` where the
 * answer is legitimately ambiguous (a nearest-neighbour tie, a point on the padding boundary).
 */
function expected(fx: CoordPyramid, level: FixtureLevel, p: number[], o: { interpolation: "nearest" | "linear"; pad: boolean; padValue: number }): number | undefined {
  const q = new Array<number>(3);
  let outside = false;
  for (let a = 0; a < 3; a++) {
    const n = level.shape[a];
    const f = snap((p[a] - level.translation[a]) / level.scale[a]);
    if (o.pad) {
      if (Math.abs(f + 0.5) < 1e-4 || Math.abs(f - (n - 0.5)) < 1e-4) return undefined;
      if (f < -0.5 || f > n - 0.5) outside = true;
    }
    let idx: number;
    if (o.interpolation === "nearest") {
      if (Math.abs(f - Math.floor(f) - 0.5) < 1e-4 && f > 0 && f < n - 1) return undefined;
      idx = Math.min(n - 1, Math.max(0, Math.round(f)));
    } else idx = Math.min(n - 1, Math.max(0, f));
    q[a] = level.translation[a] + idx * level.scale[a];
  }
  return outside ? o.padValue : fx.value(q);
}

/**
 * Compares a patch with the oracle at its sample points `center + A·offset` (A = `matrix`, the
 * identity when null); returns a description of the first mismatch.
 */
function mismatch(
  t: Tensor,
  fx: CoordPyramid,
  level: FixtureLevel,
  center: number[],
  shape: number[],
  scale: number[],
  o: { interpolation: "nearest" | "linear"; pad: boolean; padValue: number },
  matrix: number[][] | null = null,
): string | null {
  let k = 0;
  const A = matrix ?? [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++, k++) {
        const off = [z, y, x].map((i, a) => (i - (shape[a] - 1) / 2) * scale[a]);
        const p = [0, 1, 2].map((w) => center[w] + A[w][0] * off[0] + A[w][1] * off[1] + A[w][2] * off[2]);
        const want = expected(fx, level, p, o);
        if (want === undefined) continue;
        const got = t.data[k];
        const ok = Number.isNaN(want) ? Number.isNaN(got) : Math.abs(got - want) <= TOL;
        if (!ok) return `voxel [${z},${y},${x}] at world [${p}]: got ${got}, expected ${want} (level ${level.path}, ${o.interpolation}, pad ${o.pad})`;
      }
  return null;
}

/** A spatial transform: none, an axis-aligned flip/permutation (copy path) or a rotation (interpolated path). */
const matrixArb = fc.oneof(
  fc.constant(null),
  fc
    .record({
      perm: fc.constantFrom([0, 1, 2], [0, 2, 1], [1, 0, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]),
      sign: fc.tuple(fc.constantFrom(1, -1), fc.constantFrom(1, -1), fc.constantFrom(1, -1)),
    })
    .map(({ perm, sign }) => [0, 1, 2].map((w) => [0, 1, 2].map((k) => (perm[k] === w ? sign[k] : 0)))),
  fc
    .tuple(
      fc.double({ min: -Math.PI, max: Math.PI, noNaN: true }),
      fc.double({ min: -Math.PI, max: Math.PI, noNaN: true }),
      fc.double({ min: -Math.PI, max: Math.PI, noNaN: true }),
    )
    .map(([a, b, c]) => {
      const rz = [
        [1, 0, 0],
        [0, Math.cos(a), -Math.sin(a)],
        [0, Math.sin(a), Math.cos(a)],
      ];
      const ry = [
        [Math.cos(b), 0, Math.sin(b)],
        [0, 1, 0],
        [-Math.sin(b), 0, Math.cos(b)],
      ];
      const rx = [
        [Math.cos(c), -Math.sin(c), 0],
        [Math.sin(c), Math.cos(c), 0],
        [0, 0, 1],
      ];
      const mul = (m: number[][], n: number[][]) => m.map((row) => [0, 1, 2].map((j) => row[0] * n[0][j] + row[1] * n[1][j] + row[2] * n[2][j]));
      return mul(mul(rz, ry), rx);
    }),
);

/** Error codes the reading API documents for valid-looking but unusable requests. */
function assertDocumented(err: unknown, allowed: CellMapErrorCode[]): void {
  if (!(err instanceof CellMapError)) throw err;
  assert.ok(allowed.includes(err.code), `undocumented error code ${err.code}: ${err.message}`);
}

describe("fuzz: geometry and sampling", () => {
  it("CellMapImage reads equal the coordinate oracle (any level, scale, patch, centre, padding, rotation)", async () => {
    await fc.assert(
      fc.asyncProperty(
        pyramidArb,
        fc.record({
          scaleMode: fc.constantFrom("level", "level", "free"),
          levelPick: fc.nat(),
          freeScale: fc.tuple(fc.double({ min: 0.5, max: 40, noNaN: true }), fc.double({ min: 0.5, max: 40, noNaN: true }), fc.double({ min: 0.5, max: 40, noNaN: true })),
          patch: fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 })),
          interpolation: fc.constantFrom("nearest" as const, "linear" as const),
          pad: fc.boolean(),
          matrix: matrixArb,
          centres: fc.array(
            fc.tuple(
              fc.double({ min: -0.3, max: 1.3, noNaN: true }),
              fc.double({ min: -0.3, max: 1.3, noNaN: true }),
              fc.double({ min: -0.3, max: 1.3, noNaN: true }),
              fc.boolean(),
            ),
            { minLength: 1, maxLength: 4 },
          ),
        }),
        async (p, r) => {
          missingChunks.length = 0;
          const fx = await writePyramid(p);
          const scale = r.scaleMode === "level" ? fx.levels[r.levelPick % fx.levels.length].scale : r.freeScale;
          const o = { interpolation: r.interpolation, pad: r.pad, padValue: -1 };
          const img = await CellMapImage.open({ path: fx.dir, targetScale: scale, targetVoxelShape: [...r.patch], ...o });
          const level = fx.levels[img.scaleLevel.index];
          assert.deepEqual(img.scaleLevel.scale, level.scale);
          const bb = img.boundingBox;
          for (const [u, v, w, aligned] of r.centres) {
            // a point in (or a little outside) the bounding box, optionally moved onto the voxel grid
            let c = [u, v, w].map((f, a) => bb.lo[a] + f * (bb.hi[a] - bb.lo[a]));
            if (aligned)
              c = c.map((x, a) => level.translation[a] + Math.round((x - level.translation[a]) / level.scale[a]) * level.scale[a] + (((r.patch[a] + 1) % 2) * level.scale[a]) / 2);
            const t = await img.read(c, { spatialTransform: r.matrix });
            assert.deepEqual(t.shape, [...r.patch]);
            const bad = mismatch(t, fx, level, c, [...r.patch], img.outputScale, o, r.matrix);
            assert.equal(bad, null, `${JSON.stringify({ p, scale, patch: r.patch, centre: c, matrix: r.matrix })}: ${bad}`);
          }
          assert.deepEqual(missingChunks, [], "requests for chunks outside the array");
        },
      ),
      { seed: SEED, numRuns: 80 },
    );
  });

  it("CellMapDataset samples (raw + a coordinate 'label' crop, any index) equal the oracle", async () => {
    await fc.assert(
      fc.asyncProperty(
        pyramidArb,
        pyramidArb,
        fc.record({
          rawScale: fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })),
          rawShape: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
          gtScale: fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })),
          gtShape: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
          cropOffset: fc.tuple(fc.double({ min: 0, max: 0.6, noNaN: true }), fc.double({ min: 0, max: 0.6, noNaN: true }), fc.double({ min: 0, max: 0.6, noNaN: true })),
          pad: fc.boolean(),
          picks: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 1, maxLength: 5 }),
        }),
        async (rp, cp, r) => {
          missingChunks.length = 0;
          const raw = await writePyramid(rp);
          // the crop starts somewhere in the first 60% of the raw volume, so that the two overlap
          const start = [0, 1, 2].map((a) => raw.levels[0].translation[a] + Math.round(r.cropOffset[a] * raw.levels[0].shape[a] * raw.levels[0].scale[a]));
          const crop = await writePyramid({ ...cp, translation: [start[0], start[1], start[2], cp.translation[3]] });
          const cropRoot = path.dirname(crop.dir);
          const ds = await CellMapDataset.open({
            rawPath: raw.dir,
            targetPath: path.join(cropRoot, `[${path.basename(crop.dir)}]`),
            classes: [path.basename(crop.dir)],
            inputArrays: { raw: { shape: [...r.rawShape], scale: [...r.rawScale] } },
            targetArrays: { gt: { shape: [...r.gtShape], scale: [...r.gtScale] } },
            pad: r.pad,
            forceHasData: true,
          });
          await assert.rejects(ds.get(ds.length), (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE");
          await assert.rejects(ds.get(-1), (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE");
          if (ds.length === 0) return;
          for (const u of r.picks) {
            const i = Math.floor(u * ds.length);
            const item = await ds.get(i);
            const c = item.metadata.center;
            const rawLevel = raw.levels[item.metadata.levels.raw.index];
            const gtLevel = crop.levels[item.metadata.levels[`gt/${path.basename(crop.dir)}`].index];
            const rawT = item.raw as Tensor;
            assert.deepEqual(rawT.shape, [1, ...r.rawShape]);
            let bad = mismatch(rawT, raw, rawLevel, c, [...r.rawShape], [...r.rawScale], { interpolation: "linear", pad: r.pad, padValue: 0 });
            assert.equal(bad, null, `raw, index ${i} of ${ds.length}: ${bad}`);
            const gtT = item.gt as Tensor;
            assert.deepEqual(gtT.shape, [1, ...r.gtShape]);
            bad = mismatch(gtT, crop, gtLevel, c, [...r.gtShape], [...r.gtScale], { interpolation: "nearest", pad: r.pad, padValue: NaN });
            assert.equal(bad, null, `gt, index ${i} of ${ds.length}: ${bad}`);
            // the centre lies in the sampling box, on the documented grid
            for (let a = 0; a < 3; a++) assert.ok(c[a] >= ds.samplingBox!.lo[a] - 1e-9 && c[a] <= ds.samplingBox!.hi[a] + 1e-9);
          }
          assert.deepEqual(missingChunks, [], "requests for chunks outside the array");
        },
      ),
      { seed: SEED + 1, numRuns: 50 },
    );
  });

  it("arbitrary options and indices only ever raise documented CellMapErrors naming the field; accepted ones read the oracle's values", async () => {
    const fx = await makeCoordPyramid(path.join(tmp, "fixed"), { shape: [12, 10, 8], s0Scale: [2, 3, 4], levels: 2, chunks: [4, 4, 4] });
    const num = fc.oneof(fc.integer({ min: -3, max: 8 }), fc.double({ noNaN: false }), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 1e-300, 0.5));
    const garbage = fc.oneof(
      { arbitrary: fc.array(num, { maxLength: 5 }), weight: 3 },
      // JSON / YAML configs can hold these; bigints cannot come from them (and TypeScript forbids them)
      { arbitrary: fc.constantFrom(null, undefined, "4,4,4", { length: 3 }, [[4], [4], [4]], ["4", "4", "4"], {}), weight: 1 },
    );
    const shapeArb = fc.oneof({ arbitrary: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 3 }), weight: 3 }, { arbitrary: garbage, weight: 1 });
    const scaleArb = fc.oneof({ arbitrary: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), weight: 3 }, { arbitrary: garbage, weight: 1 });
    const index = fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.double(), fc.constantFrom(NaN, Infinity, -0, 2 ** 53, 2 ** 60));
    await fc.assert(
      fc.asyncProperty(shapeArb, scaleArb, fc.array(index, { minLength: 1, maxLength: 3 }), async (shape, scale, indices) => {
        let ds: CellMapDataset;
        try {
          ds = await CellMapDataset.open({ rawPath: fx.dir, inputArrays: { raw: { shape, scale } as never } });
        } catch (err) {
          assertDocumented(err, ["INVALID_ARGUMENT", "UNSUPPORTED"]); // UNSUPPORTED: more than 2^53 samples (tiny voxel sizes)
          const e = err as CellMapError;
          if (e.code === "INVALID_ARGUMENT") assert.match(e.message, /inputArrays\.raw\.(shape|scale)/, "the error names the field");
          return;
        }
        // An accepted spec means what the docs say: z y x, a 2-entry shape is one section, a
        // 1-entry scale is isotropic, a 2-entry scale takes z from the data's sections.
        const s = shape as number[],
          v = scale as number[];
        const shape3 = s.length === 2 ? [1, ...s] : s;
        for (const i of indices) {
          try {
            const item = await ds.get(i);
            assert.ok(Number.isInteger(i) && i >= 0 && i < ds.length, `get(${i}) succeeded on a dataset of ${ds.length}`);
            const lv = item.metadata.levels.raw;
            const scale3 = v.length === 1 ? [v[0], v[0], v[0]] : v.length === 2 ? [lv.scale[0], ...v] : v;
            const t = item.raw as Tensor;
            assert.deepEqual(t.shape, [1, ...s]);
            const bad = mismatch(t, fx, fx.levels[lv.index], item.metadata.center, shape3, scale3, { interpolation: "linear", pad: true, padValue: 0 });
            assert.equal(bad, null, `${JSON.stringify({ shape, scale, i })}: ${bad}`);
          } catch (err) {
            assertDocumented(err, ["OUT_OF_RANGE"]);
          }
        }
      }),
      { seed: SEED + 2, numRuns: 400 },
    );
  });
});
