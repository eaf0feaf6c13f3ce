import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { parseMultiscales, validateImageMetadata } from "../src/ome/index.js";
import { readMultiscale } from "../src/ome/read.js";
import { openDescription } from "../src/dataset/kinds.js";
import { openStore } from "../src/store/open.js";
import { TEMP_PREFIX } from "../src/util/atomic.js";
import type { Tensor } from "../src/tensor.js";
import { CellMapDatasetWriter, ImageWriter, type ImageWriterOptions } from "../src/writer/index.js";
import { makeCoordPyramid } from "./fixtures/builder.js";
import { jobOptions, runJob } from "./helpers/writer-job.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cm-writer-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;
/** A fresh directory path (not created). Every output gets its own, so the chunk cache never sees stale data. */
const fresh = (name = "out") => path.join(root, `${name}-${counter++}`);

const isCode = (code: string) => (e: unknown) => e instanceof CellMapError && e.code === code;

type WorldFn = (p: number[], c: number) => number;

/** Values of tile `id` of `w`: `f(world, channel)` on the tile's window, as float32. */
function tileOf(w: ImageWriter, id: number, f: WorldFn): Float32Array {
  const t = w.tile(id);
  const C = w.nChannels ?? 1;
  const P = w.writeShape;
  const n = P.reduce((a, b) => a * b, 1);
  const out = new Float32Array(C * n);
  const idx = new Array<number>(P.length).fill(0);
  const world = new Array<number>(P.length);
  for (let c = 0; c < C; c++) {
    idx.fill(0);
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < P.length; a++) world[a] = w.translation[a] + (t.windowStart[a] + idx[a]) * w.scale[a];
      out[c * n + i] = f(world, c);
      for (let a = P.length - 1; a >= 0; a--) {
        if (++idx[a] < P[a]) break;
        idx[a] = 0;
      }
    }
  }
  return out;
}

/** Reads the whole s0 image through CellMapImage (nearest, exact) for `channel`. */
async function readImage(w: ImageWriter, channel = 0, dir = w.path): Promise<Float32Array> {
  const img = await CellMapImage.open({
    path: dir,
    targetScale: w.scale,
    targetVoxelShape: w.shape,
    interpolation: "nearest",
    axisOrder: w.axes.join(""),
    channel,
  });
  assert.deepEqual(img.scaleLevel.shape.slice(3 - w.axes.length), w.shape);
  const center = w.translation.map((t, a) => t + ((w.shape[a] - 1) / 2) * w.scale[a]);
  return (await img.read(center)).data;
}

/** Asserts that the image holds `f(world, c)` (as float32) at every s0 voxel. */
async function expectImage(w: ImageWriter, f: WorldFn): Promise<void> {
  const n = w.shape.reduce((a, b) => a * b, 1);
  for (let c = 0; c < (w.nChannels ?? 1); c++) {
    const got = await readImage(w, c);
    assert.equal(got.length, n);
    const idx = new Array<number>(w.shape.length).fill(0);
    let bad = 0;
    let first = "";
    for (let i = 0; i < n; i++) {
      const world = idx.map((v, a) => w.translation[a] + v * w.scale[a]);
      const want = Math.fround(f(world, c));
      if (!Object.is(got[i], want)) {
        if (bad++ === 0) first = `voxel [${idx}] channel ${c}: got ${got[i]}, want ${want}`;
      }
      for (let a = idx.length - 1; a >= 0; a--) {
        if (++idx[a] < w.shape[a]) break;
        idx[a] = 0;
      }
    }
    assert.equal(bad, 0, `${bad} of ${n} voxels differ; first: ${first}`);
  }
}

/** Writes every tile (in reverse order: the result must not depend on it) and finalizes. */
async function writeAll(w: ImageWriter, f: WorldFn): Promise<void> {
  for (let id = w.tileCount - 1; id >= 0; id--) await w.writeTile(id, tileOf(w, id, f));
  await w.finalize();
}

/** Group attributes as written (v2 `.zattrs`, v3 `zarr.json` attributes). */
function groupAttrs(dir: string, format: 2 | 3): unknown {
  if (format === 2) return JSON.parse(fs.readFileSync(path.join(dir, ".zattrs"), "utf8"));
  return JSON.parse(fs.readFileSync(path.join(dir, "zarr.json"), "utf8")).attributes;
}

/** All files below `dir` (relative paths, sorted). */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((e) => fs.statSync(path.join(dir, e)).isFile()).sort();
}

const lin: WorldFn = (p, c) => 1000 * c + p.reduce((s, v, a) => s + v * [0.25, 0.5, 0.125][a + 3 - p.length], 1);

describe("ImageWriter round trip", () => {
  const cases: { name: string; opts: Omit<ImageWriterOptions, "path">; f?: WorldFn }[] = [
    { name: "isotropic 3-D", opts: { scale: [8, 8, 8], bounds: { z: [0, 128], y: [0, 128], x: [0, 128] }, writeShape: [8, 8, 8] } },
    {
      name: "anisotropic, translated, not a multiple of the tile",
      opts: { scale: [16, 4, 4], bounds: { x: [12.5, 12.5 + 4 * 30 - 1], z: [-100, -100 + 16 * 7 + 5], y: [1000, 1000 + 4 * 27] }, writeShape: [4, 8, 8] },
    },
    { name: "2-D", opts: { scale: [4, 6], bounds: { y: [0, 4 * 37], x: [30, 30 + 6 * 29] }, writeShape: [16, 16], pyramid: 1 } },
    { name: "multi-channel", opts: { scale: [8, 8, 8], bounds: { z: [0, 80], y: [0, 96], x: [8, 104] }, writeShape: [4, 8, 8], nChannels: 3, pyramid: 2 } },
    { name: "window larger than the region", opts: { scale: [4, 4, 4], bounds: { z: [0, 12], y: [0, 20], x: [0, 100] }, writeShape: [8, 8, 8] } },
    {
      name: "overlap with centre-crop stitching",
      opts: { scale: [16, 4, 4], bounds: { z: [0, 16 * 11], y: [8, 8 + 4 * 29], x: [0, 4 * 33] }, writeShape: [6, 12, 12], overlap: [1, 3, 3] },
    },
    {
      name: "overlap with linear blending",
      opts: { scale: [16, 4, 4], bounds: { z: [0, 16 * 11], y: [8, 8 + 4 * 29], x: [0, 4 * 33] }, writeShape: [6, 12, 12], overlap: [1, 3, 3], blend: "linear" },
    },
    {
      name: "overlap with gaussian blending, 2-D, channels",
      opts: { scale: [4, 4], bounds: { y: [0, 4 * 45], x: [0, 4 * 40] }, writeShape: [16, 16], overlap: 4, blend: "gaussian", nChannels: 2 },
    },
    {
      name: "Zarr v3 + NGFF 0.5",
      opts: { scale: [8, 4, 4], bounds: { z: [0, 64], y: [0, 88], x: [4, 84] }, writeShape: [4, 16, 16], format: 3, compressor: { id: "zstd", level: 3 }, pyramid: 1 },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const w = await ImageWriter.open({ path: fresh(), ...c.opts });
      const f = c.f ?? lin;
      await writeAll(w, f);
      await expectImage(w, f);
      // Metadata: validates, and parses to the geometry we wrote.
      const fmt = c.opts.format ?? 2;
      const attrs = groupAttrs(w.path, fmt);
      validateImageMetadata(attrs, w.path);
      const ms = parseMultiscales(attrs, { path: w.path, zarrFormat: fmt });
      assert.deepEqual(ms.levels[0].scale, w.scale);
      const bounds = c.opts.bounds as Record<string, number[]>;
      assert.deepEqual(
        ms.levels[0].translation,
        w.axes.map((a, i) => bounds[a][0] + w.scale[i] / 2),
      );
      assert.deepEqual(ms.spatialAxes, w.axes);
      // zarrita opens it; chunks are aligned to the write patch (core = window - 2·overlap).
      const arr = await zarr.open(new FileSystemStore(path.join(w.path, "s0")), { kind: "array" });
      const lead = w.nChannels === null ? [] : [w.nChannels];
      assert.deepEqual(arr.shape, [...lead, ...w.shape]);
      assert.deepEqual(arr.chunks, [...lead, ...w.writeShape.map((p, a) => (w.shape[a] <= p ? w.shape[a] : p - 2 * w.overlap[a]))]);
      assert.equal(arr.dtype, "float32");
      const got = await zarr.get(arr);
      assert.equal(
        got.data.length,
        arr.shape.reduce((a, b) => a * b, 1),
      );
      assert.ok(!fs.existsSync(path.join(w.path, ".cm-partial")), "partials removed by finalize");
      assert.equal(ms.levels.length, (c.opts.pyramid ?? 0) + 1);
      for (let l = 1; l < ms.levels.length; l++) {
        const lv = await zarr.get(await zarr.open(new FileSystemStore(path.join(w.path, `s${l}`)), { kind: "array" }));
        assert.deepEqual(lv.shape, [...lead, ...w.shape.map((n) => Math.ceil(n / 2 ** l))]);
        // A linear function's block means: full interior 2^l blocks hold the value at the block centre.
        const v = lv.data as Float32Array;
        const idx = w.shape.map(() => 0);
        const world = idx.map((_, a) => ms.levels[l].translation[a]);
        assert.ok(Math.abs(v[0] - Math.fround(lin(world, 0))) < 1e-3, `s${l} voxel 0: ${v[0]} vs ${lin(world, 0)}`);
      }
    });
  }

  it("a constant prediction with overlap is that constant everywhere (no seams)", async () => {
    for (const blend of ["linear", "gaussian", "crop"] as const) {
      const w = await ImageWriter.open({
        path: fresh(),
        scale: [8, 4, 4],
        bounds: { z: [0, 8 * 9], y: [0, 4 * 23], x: [0, 4 * 25] },
        writeShape: [6, 12, 12],
        overlap: [1, 4, 3],
        blend,
      });
      const v = Math.fround(0.3);
      await writeAll(w, () => v);
      const got = await readImage(w);
      assert.ok(
        got.every((x) => x === v),
        `${blend}: ${got.find((x) => x !== v)} != ${v}`,
      );
    }
  });

  it("blending mixes neighbouring tiles smoothly across their overlap", async () => {
    // Two tiles along x (values 0 and 1): the blended row rises monotonically from 0 to 1.
    const w = await ImageWriter.open({ path: fresh(), scale: [1, 1], bounds: { y: [0, 1], x: [0, 28] }, writeShape: [1, 16], overlap: [0, 2], blend: "linear" });
    assert.equal(w.tileCount, 3);
    for (let id = 0; id < 3; id++) await w.writeTile(id, new Float32Array(16).fill(id === 0 ? 0 : 1));
    await w.finalize();
    const row = await readImage(w);
    for (let i = 1; i < row.length; i++) assert.ok(row[i] >= row[i - 1], `monotone at ${i}`);
    assert.equal(row[0], 0);
    assert.equal(row[row.length - 1], 1);
    assert.ok(
      row.some((x) => x > 0 && x < 1),
      "a blended transition exists",
    );
  });

  it("integer dtypes round and clip; pyramid levels use mean / mode with the NGFF geometry", async () => {
    const w = await ImageWriter.open({ path: fresh(), scale: [1, 1], bounds: { y: [0, 1], x: [0, 8] }, writeShape: [1, 8], dtype: "uint8" });
    await w.writeTile(0, Float32Array.from([-5, 0.4, 0.5, 1.6, 254.5, 300, NaN, 7]));
    await w.finalize();
    const arr = await zarr.open(new FileSystemStore(path.join(w.path, "s0")), { kind: "array" });
    assert.equal(arr.dtype, "uint8");
    assert.deepEqual(Array.from((await zarr.get(arr)).data as Uint8Array), [0, 0, 1, 2, 255, 255, 0, 7]);

    // Pyramid of a float image (mean) and of a label image (mode).
    for (const [dtype, method] of [
      ["float32", "mean"],
      ["uint16", "mode"],
    ] as const) {
      const p = await ImageWriter.open({
        path: fresh(),
        scale: [8, 4, 4],
        bounds: { z: [0, 8 * 9], y: [10, 10 + 4 * 13], x: [0, 4 * 16] },
        writeShape: [4, 8, 8],
        pyramid: 2,
        dtype,
      });
      assert.equal(p.pyramidMethod, method);
      const f: WorldFn = (q) => (method === "mean" ? q[0] * 0.5 + q[1] * 0.25 - q[2] : Math.floor(q[2] / 10) % 3);
      await writeAll(p, f);
      const ms = parseMultiscales(groupAttrs(p.path, 2), { path: p.path, zarrFormat: 2 });
      assert.deepEqual(
        ms.levels.map((l) => l.path),
        ["s0", "s1", "s2"],
      );
      for (const [l, lv] of ms.levels.entries()) {
        assert.deepEqual(
          lv.scale,
          p.scale.map((s) => s * 2 ** l),
        );
        assert.deepEqual(
          lv.translation,
          p.translation.map((t, a) => t + (p.scale[a] * 2 ** l - p.scale[a]) / 2),
        );
      }
      // s1 = blocks of s0 (partial blocks at odd edges), s2 = blocks of s1.
      for (const l of [1, 2]) {
        const src = await zarr.get(await zarr.open(new FileSystemStore(path.join(p.path, `s${l - 1}`)), { kind: "array" }));
        const dst = await zarr.get(await zarr.open(new FileSystemStore(path.join(p.path, `s${l}`)), { kind: "array" }));
        const [sz, sy, sx] = src.shape;
        assert.deepEqual(
          dst.shape,
          src.shape.map((n) => Math.ceil(n / 2)),
        );
        const s = src.data as ArrayLike<number>;
        const d = dst.data as ArrayLike<number>;
        for (let z = 0; z < dst.shape[0]; z++) {
          for (let y = 0; y < dst.shape[1]; y++) {
            for (let x = 0; x < dst.shape[2]; x++) {
              const vals: number[] = [];
              for (let a = 2 * z; a < Math.min(2 * z + 2, sz); a++)
                for (let b = 2 * y; b < Math.min(2 * y + 2, sy); b++) for (let c = 2 * x; c < Math.min(2 * x + 2, sx); c++) vals.push(s[(a * sy + b) * sx + c]);
              let want: number;
              if (method === "mean") want = Math.fround(vals.reduce((p2, v) => p2 + v, 0) / vals.length);
              else {
                const counts = new Map<number, number>();
                for (const v of vals) counts.set(v, (counts.get(v) ?? 0) + 1);
                want = [...counts].sort((u, v) => v[1] - u[1] || u[0] - v[0])[0][0];
              }
              assert.equal(d[(z * dst.shape[1] + y) * dst.shape[2] + x], want, `s${l} [${z},${y},${x}]`);
            }
          }
        }
      }
      // The project's reader picks the coarse level and reads it.
      const img = await CellMapImage.open({ path: p.path, targetScale: [32, 16, 16], targetVoxelShape: [1, 1, 1] });
      assert.equal(img.scaleLevel.path, "s2");
    }
  });
});

describe("ImageWriter safety", () => {
  const base = (p: string): ImageWriterOptions => ({ path: p, scale: [4, 4, 4], bounds: { z: [0, 32], y: [0, 32], x: [0, 48] }, writeShape: [8, 8, 8] });

  it("overwrite: false refuses existing output naming the path; overwrite: true replaces it", async () => {
    const p = fresh();
    const w = await ImageWriter.open(base(p));
    await writeAll(w, () => 1);
    await assert.rejects(ImageWriter.open(base(p)), (e: unknown) => isCode("WRITE_CONFLICT")(e) && (e as CellMapError).path === p && (e as Error).message.includes(p));
    const stale = path.join(p, "s0", "9.9.9");
    fs.writeFileSync(stale, "stale");
    const w2 = await ImageWriter.open({ ...base(p), overwrite: true, bounds: { z: [0, 16], y: [0, 16], x: [0, 16] } });
    assert.ok(!fs.existsSync(stale), "old chunks are gone");
    assert.deepEqual(w2.shape, [4, 4, 4]);
    await assert.rejects(ImageWriter.open({ ...base(p), overwrite: true, resume: true }), isCode("INVALID_ARGUMENT"));
  });

  it("resume skips written tiles (chunk existence) and refuses different settings", async () => {
    for (const blend of ["crop", "linear"] as const) {
      const p = fresh();
      const opts: ImageWriterOptions = { ...base(p), overlap: 2, blend };
      const f: WorldFn = (q) => q[0] - q[1] + 2 * q[2];
      const w = await ImageWriter.open(opts);
      const half = Math.floor(w.tileCount / 2);
      for (let id = 0; id < half; id++) await w.writeTile(id, tileOf(w, id, f));
      await assert.rejects(w.finalize(), (e: unknown) => isCode("INVALID_ARGUMENT")(e) && /not written/.test((e as Error).message));
      // "Crash": drop the writer, re-open with resume.
      const r = await ImageWriter.open({ ...opts, resume: true });
      const pending = r.pendingTiles();
      assert.deepEqual(
        pending,
        Array.from({ length: w.tileCount - half }, (_, i) => half + i),
      );
      await assert.rejects(ImageWriter.open({ ...opts, resume: true, dtype: "uint8" }), isCode("WRITE_CONFLICT"));
      await assert.rejects(ImageWriter.open({ ...opts, resume: true, writeShape: [8, 8, 16] }), isCode("WRITE_CONFLICT"));
      for (const id of pending) await r.writeTile(id, tileOf(r, id, f));
      await r.finalize();
      await r.finalize(); // idempotent
      await expectImage(r, f);
      assert.deepEqual((await ImageWriter.open({ ...opts, resume: true })).pendingTiles(), []);
    }
  });

  it("rejects bad options and bad tile data", async () => {
    await assert.rejects(ImageWriter.open({ ...base(fresh()), overlap: 4 }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(ImageWriter.open({ ...base(fresh()), bounds: { y: [0, 8], x: [0, 8] } }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(ImageWriter.open({ ...base(fresh()), bounds: { z: [0, 8], y: [8, 0], x: [0, 8] } }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(ImageWriter.open({ ...base("https://example.org/out.zarr") }), isCode("UNSUPPORTED"));
    await assert.rejects(ImageWriter.open({ ...base(fresh()), dtype: "int64" as never }), isCode("UNSUPPORTED"));
    const w = await ImageWriter.open(base(fresh()));
    await assert.rejects(w.writeTile(0, new Float32Array(10)), isCode("INVALID_ARGUMENT"));
    await assert.rejects(w.writeTile(0, { data: new Float32Array(512), shape: [8, 64], sourceDtype: "float32" }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(w.writeTile(w.tileCount, new Float32Array(512)), isCode("OUT_OF_RANGE"));
    await w.writeTile(0, { data: new Float32Array(512), shape: [1, 1, 8, 8, 8], sourceDtype: "float32" }); // size-1 axes are fine
  });
});

describe("CellMapDatasetWriter", () => {
  /** A raw float32 image whose voxels hold a linear function of world position. */
  async function makeRaw(twoD = false) {
    const dir = fresh("raw");
    const raw = await makeCoordPyramid(
      dir,
      twoD ? { shape: [40, 44], s0Scale: [4, 4], translation: [2, 6], chunks: [16, 16] } : { shape: [20, 40, 44], s0Scale: [8, 4, 4], translation: [4, 2, 6], chunks: [8, 16, 16] },
    );
    return { dir, raw };
  }
  const SPEC = { shape: [4, 12, 12], scale: [8, 4, 4] };

  /** "Model": identity for mito, 2·x + 1 for er, on the input patch. Returns [N, 2, ...] values. */
  function model(batch: Tensor): Tensor {
    const [N, , ...sp] = batch.shape;
    const n = sp.reduce((a, b) => a * b, 1);
    const out = new Float32Array(N * 2 * n);
    for (let b = 0; b < N; b++) {
      for (let i = 0; i < n; i++) {
        const v = batch.data[b * n + i];
        out[b * 2 * n + i] = v;
        out[(b * 2 + 1) * n + i] = 2 * v + 1;
      }
    }
    return { data: out, shape: [N, 2, ...sp], sourceDtype: "float32" };
  }

  /** Checks that class images equal raw (mito) and 2·raw + 1 (er) on the output grid. */
  async function expectPredictions(writer: CellMapDatasetWriter, value: (p: number[]) => number, array = "pred"): Promise<void> {
    await expectImage(writer.writers[array].mito, (p) => value(p));
    await expectImage(writer.writers[array].er, (p) => 2 * Math.fround(value(p)) + 1);
  }

  it("serves input patches per tile and writes predictions back exactly (3-D, not a multiple of the tile)", async () => {
    const { dir, raw } = await makeRaw();
    const target = path.join(fresh("pred"), "out.zarr");
    const writer = await CellMapDatasetWriter.open({
      rawPath: dir,
      targetPath: target,
      classes: ["mito", "er"],
      inputArrays: { raw: SPEC },
      targetArrays: { pred: SPEC },
      // Bounds aligned to the raw grid (voxel corners at 0 + k·scale), inside it, not a multiple of the tile.
      targetBounds: { pred: { x: [4 + 4 * 3, 4 + 4 * 3 + 4 * 29], y: [4 * 2, 4 * 2 + 4 * 35], z: [8, 8 + 8 * 15] } },
    });
    assert.equal(writer.length, writer.tileCount);
    assert.ok(writer.verify());
    for (let i = 0; i < writer.length; i++) {
      const item = await writer.get(i);
      assert.equal(item.idx, i);
      const x = item.raw as Tensor;
      assert.deepEqual(x.shape, [1, 4, 12, 12]);
      assert.deepEqual(item.metadata.center, writer.center(i));
      const y = model({ ...x, shape: [1, ...x.shape] });
      // Mixed key styles: class keys with [1, 1, z, y, x] and a Float32Array.
      await writer.write([i], { mito: { data: y.data.subarray(0, x.data.length), shape: [1, 1, 4, 12, 12], sourceDtype: "float32" }, er: y.data.slice(x.data.length) });
    }
    await writer.finalize();
    await expectPredictions(writer, raw.value);
    // Layout: targetPath/<class>/s0 with zarr groups from the .zarr root down.
    assert.ok(fs.existsSync(path.join(target, ".zgroup")));
    assert.ok(fs.existsSync(path.join(target, "mito", "s0", ".zarray")));
    const ms = await readMultiscale(zarr.root(openStore(path.join(target, "er")).store), "", { id: "er" });
    assert.equal(ms.levels[0].path, "s0");
    await assert.rejects(writer.get(writer.length), isCode("OUT_OF_RANGE"));
    await assert.rejects(writer.write(0, { nope: new Float32Array(1) }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(writer.write(0, { mito: new Float32Array(3) }), isCode("INVALID_ARGUMENT"));
    await assert.rejects(writer.classCounts(), isCode("UNSUPPORTED"));
  });

  it("batched writes by target array, with overlap blending, and a describe/openDescription round trip", async () => {
    const { dir, raw } = await makeRaw();
    const target = fresh("pred");
    const writer = await CellMapDatasetWriter.open({
      rawPath: dir,
      targetPath: target,
      classes: ["er", "mito"],
      modelClasses: ["mito", "er"],
      inputArrays: { raw: SPEC },
      targetArrays: { pred: SPEC },
      targetBounds: { pred: { z: [0, 8 * 17], y: [4, 4 + 4 * 37], x: [4, 4 + 4 * 40] } },
      overlap: [0, 2, 2],
      blend: "linear",
      pyramid: 1,
    });
    const desc = JSON.parse(JSON.stringify(writer.describe()));
    const copy = await openDescription(desc);
    assert.equal(copy.kind, "CellMapDatasetWriter");
    assert.equal(copy.length, writer.length);
    for (const i of [0, writer.length - 1]) {
      const [a, b] = await Promise.all([writer.get(i), copy.get(i)]);
      assert.deepEqual(a.metadata, b.metadata);
      assert.deepEqual((a.raw as Tensor).data, (b.raw as Tensor).data);
    }
    const B = 5;
    for (let s = 0; s < writer.length; s += B) {
      const idx = Array.from({ length: Math.min(B, writer.length - s) }, (_, k) => s + k);
      const items = await Promise.all(idx.map((i) => writer.get(i)));
      const n = (items[0].raw as Tensor).data.length;
      const batch = new Float32Array(idx.length * n);
      items.forEach((it, k) => batch.set((it.raw as Tensor).data, k * n));
      await writer.write(idx, { pred: model({ data: batch, shape: [idx.length, 1, 4, 12, 12], sourceDtype: "float32" }), idx: idx as never });
    }
    await writer.finalize();
    await expectPredictions(writer, raw.value);
  });

  it("several target arrays go to targetPath/<array>/<class>; mismatched tilings are refused", async () => {
    const { dir, raw } = await makeRaw();
    const target = fresh("pred");
    const coarse = { shape: [2, 6, 6], scale: [16, 8, 8] };
    const bounds = { z: [0, 8 * 16], y: [0, 4 * 36], x: [4, 4 + 4 * 36] };
    const writer = await CellMapDatasetWriter.open({
      rawPath: dir,
      targetPath: target,
      classes: ["mito", "er"],
      inputArrays: { raw: SPEC },
      targetArrays: { pred: SPEC, pred16: coarse },
      targetBounds: { pred: bounds, pred16: bounds },
    });
    assert.ok(fs.existsSync(path.join(target, "pred", "mito", ".zattrs")));
    assert.ok(fs.existsSync(path.join(target, "pred16", "er", ".zattrs")));
    await assert.rejects(writer.write(0, { mito: new Float32Array(576) }), isCode("INVALID_ARGUMENT")); // ambiguous
    for (let i = 0; i < writer.length; i++) {
      const x = (await writer.get(i)).raw as Tensor;
      const y = model({ ...x, shape: [1, ...x.shape] });
      // Coarse output: every other voxel of the fine one, which is the raw value at the coarse voxel centre ± 2 nm.
      const c = new Float32Array(2 * 2 * 6 * 6);
      for (let k = 0; k < 2; k++)
        for (let z = 0; z < 2; z++)
          for (let yy = 0; yy < 6; yy++)
            for (let xx = 0; xx < 6; xx++) {
              c[((k * 2 + z) * 6 + yy) * 6 + xx] = y.data[((k * 4 + 2 * z) * 12 + 2 * yy) * 12 + 2 * xx];
            }
      await writer.write(i, { pred: { data: y.data, shape: y.shape.slice(1), sourceDtype: "float32" }, "pred16/mito": c.subarray(0, 72), "pred16/er": c.subarray(72) });
    }
    await writer.finalize();
    await expectPredictions(writer, raw.value, "pred");
    // The coarse image's voxel j came from fine voxel 2j, i.e. world = centre16(j) - (4, 2, 2).
    await expectImage(writer.writers.pred16.mito, (p) => raw.value([p[0] - 4, p[1] - 2, p[2] - 2]));
    await assert.rejects(
      CellMapDatasetWriter.open({
        rawPath: dir,
        targetPath: fresh("pred"),
        classes: ["mito"],
        inputArrays: { raw: SPEC },
        targetArrays: { pred: SPEC, other: { shape: [4, 8, 8], scale: [8, 4, 4] } },
        targetBounds: { pred: bounds, other: bounds },
      }),
      isCode("INVALID_ARGUMENT"),
    );
    await assert.rejects(
      CellMapDatasetWriter.open({ rawPath: dir, targetPath: fresh("pred"), classes: ["mito"], inputArrays: { raw: SPEC }, targetArrays: { pred: SPEC }, targetBounds: {} }),
      isCode("INVALID_ARGUMENT"),
    );
  });

  it("2-D, with resume serving only the missing tiles", async () => {
    const { dir, raw } = await makeRaw(true);
    const target = fresh("pred");
    const spec2 = { shape: [12, 12], scale: [4, 4] };
    const opts = {
      rawPath: dir,
      targetPath: target,
      classes: ["mito", "er"],
      inputArrays: { raw: spec2 },
      targetArrays: { pred: spec2 },
      targetBounds: { pred: { y: [4, 4 + 4 * 33], x: [8, 8 + 4 * 31] } },
    };
    const writer = await CellMapDatasetWriter.open(opts);
    const half = Math.floor(writer.length / 2);
    const step = async (w: CellMapDatasetWriter, i: number) => {
      const item = await w.get(i);
      const x = item.raw as Tensor;
      assert.deepEqual(x.shape, [1, 12, 12]);
      await w.write(i, { pred: model({ ...x, shape: [1, ...x.shape] }) });
    };
    for (let i = 0; i < half; i++) await step(writer, i);
    await assert.rejects(CellMapDatasetWriter.open(opts), isCode("WRITE_CONFLICT"));
    const resumed = await CellMapDatasetWriter.open({ ...opts, resume: true });
    assert.equal(resumed.length, writer.length - half);
    assert.equal(resumed.tileOf(0), half);
    assert.equal((await resumed.get(0)).metadata.index, half);
    const copy = await openDescription(JSON.parse(JSON.stringify(resumed.describe())));
    assert.equal(copy.length, resumed.length);
    assert.deepEqual((await copy.get(0)).metadata.center, resumed.center(0));
    for (let i = 0; i < resumed.length; i++) await step(resumed, i);
    await resumed.finalize();
    await expectPredictions(resumed, raw.value);
  });

  it("runs inference-style with CellMapDataLoader and 2 worker threads", async () => {
    const loaderMod = await import("../src/loader/index.js");
    {
      const { dir, raw } = await makeRaw();
      const writer = await CellMapDatasetWriter.open({
        rawPath: dir,
        targetPath: fresh("pred"),
        classes: ["mito", "er"],
        inputArrays: { raw: SPEC },
        targetArrays: { pred: SPEC },
        targetBounds: { pred: { z: [0, 8 * 12], y: [0, 4 * 30], x: [4, 4 + 4 * 30] } },
      });
      const loader = new loaderMod.CellMapDataLoader(writer, { numWorkers: 2, isTrain: false, batchSize: 4 });
      const seen: number[] = [];
      for await (const batch of loader) {
        seen.push(...batch.idx);
        await writer.write(batch.idx, { pred: model(batch.raw as Tensor) });
      }
      await loader.close();
      assert.deepEqual(
        seen,
        Array.from({ length: writer.length }, (_, i) => i),
      );
      await writer.finalize();
      await expectPredictions(writer, raw.value);
    }
  });
});

describe("crash safety", () => {
  it("a writer killed mid-run leaves only complete chunks, and resume finishes byte-identically", async () => {
    // Same leaf name: the multiscale `name` is derived from it.
    const ref = path.join(fresh("ref"), "job");
    await runJob(ref);

    const dir = path.join(fresh("killed"), "job");
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./helpers/writer-child.ts", import.meta.url)), dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tiles = 0;
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d: Buffer) => {
      tiles += (d.toString().match(/^tile /gm) ?? []).length;
      if (tiles >= 15) child.kill("SIGKILL");
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on("exit", (c, s) => res([c, s])));
    assert.equal(signal, "SIGKILL", `child should be killed mid-run (exit ${code}, ${tiles} tiles, stderr: ${stderr})`);

    // Every file is metadata, a complete chunk / partial, or a temp file no reader looks at.
    const w = await ImageWriter.open({ ...jobOptions(fresh("probe")) });
    const chunkBytes = w.chunks.reduce((a, b) => a * b, 4);
    const partialBytes = w.writeShape.reduce((a, b) => a * b, 4);
    let chunks = 0;
    for (const f of tree(dir)) {
      const base = path.basename(f);
      if (base.startsWith(TEMP_PREFIX) || [".zarray", ".zattrs", ".zgroup"].includes(base)) continue;
      const size = fs.statSync(path.join(dir, f)).size;
      if (f.startsWith(".cm-partial")) assert.equal(size, partialBytes, f);
      else {
        assert.match(f, /^s[01]\/\d+\.\d+\.\d+$/);
        assert.equal(size, chunkBytes, f);
        chunks++;
      }
    }
    assert.ok(chunks > 0 || tiles > 0);
    // zarrita reads the interrupted array (missing chunks are fill).
    await zarr.get(await zarr.open(new FileSystemStore(path.join(dir, "s0")), { kind: "array" }));

    const resumed = await runJob(dir, { resume: true });
    assert.ok(resumed.tileCount > 15);
    const a = tree(ref);
    assert.deepEqual(tree(dir), a);
    for (const f of a) assert.ok(fs.readFileSync(path.join(ref, f)).equals(fs.readFileSync(path.join(dir, f))), `${f} differs`);
  });
});
