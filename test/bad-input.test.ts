/**
 * One test per row of docs/bad-input.md: what each kind of bad input produces where it enters
 * the library. Every failure must be a CellMapError with the documented code and a message that
 * names the offending path, chunk or field; the few inputs that are *not* errors (non-binary
 * labels, NaN/Inf raw values, huge centres) must behave as documented.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { describeImage } from "../src/cli/info.js";
import { CellMapDataset, CellMapDataSplit, CellMapMultiDataset, CellMapSubset, type CellMapDatasetOptions } from "../src/dataset/index.js";
import { defaultRawTransform } from "../src/dataset/split.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { TEMP_PREFIX } from "../src/util/atomic.js";
import { FLOAT32_MAX } from "../src/transforms/augment/threshold.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { writeArray } from "../src/zarr/write/index.js";
import { DataPlane } from "../src/plane/plane.js";
import type { Tensor } from "../src/tensor.js";
import { chunkCache } from "../src/zarr/cache.js";
import { makeCoordPyramid, makeLabelPyramid } from "./fixtures/builder.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-bad-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => path.join(tmp, `${n++}-${name}`);

/** Asserts a CellMapError with `code` whose message contains every `names` entry. */
function isError(code: string | string[], ...names: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof CellMapError, `expected a CellMapError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.ok((Array.isArray(code) ? code : [code]).includes(e.code), `code ${e.code}: ${e.message}`);
    for (const s of names) assert.ok(e.message.includes(s), `message should name ${JSON.stringify(s)}: ${e.message}`);
    return true;
  };
}

const open3 = (p: string, extra: Partial<Parameters<typeof CellMapImage.open>[0]> = {}) =>
  CellMapImage.open({ path: p, targetScale: [4, 4, 4], targetVoxelShape: [4, 4, 4], ...extra });

/** A small float32 coordinate pyramid (8³ at 4 nm, 4³ chunks). */
function pyramid(dir: string, extra: Parameters<typeof makeCoordPyramid>[1] extends infer O ? Partial<O> : never = {}) {
  return makeCoordPyramid(dir, { shape: [8, 8, 8], chunks: [4, 4, 4], ...extra });
}

function editJson(file: string, edit: (j: Record<string, any>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, "utf8"));
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
}

describe("bad input", () => {
  it("missing or malformed metadata -> NOT_FOUND / INVALID_METADATA naming the path", async () => {
    const dir = fresh("meta");
    await pyramid(dir, { levels: 2 });
    await assert.rejects(open3(path.join(dir, "nothing")), isError("NOT_FOUND", path.join(dir, "nothing")));
    await assert.rejects(open3(path.join(dir, "s0")), isError("NOT_FOUND", "found an array"));
    fs.renameSync(path.join(dir, "s1"), path.join(dir, "s1.gone"));
    await assert.rejects(open3(dir, { targetScale: [8, 8, 8] }), isError("NOT_FOUND", path.join(dir, "s1")));
    const info = await describeImage(dir);
    assert.ok(
      info.problems.some((p) => p.startsWith("s1:") && /not found/i.test(p)),
      info.problems.join("; "),
    );
    fs.renameSync(path.join(dir, "s1.gone"), path.join(dir, "s1"));
    fs.writeFileSync(path.join(dir, ".zattrs"), "{ not json");
    await assert.rejects(open3(dir), isError("INVALID_METADATA", dir));
    fs.writeFileSync(path.join(dir, ".zattrs"), JSON.stringify({ something: "else" }));
    await assert.rejects(open3(dir), isError("INVALID_METADATA", "multiscales", dir));
    fs.writeFileSync(path.join(dir, "s0", ".zarray"), "[1, 2");
    fs.rmSync(path.join(dir, ".zattrs"));
    fs.rmSync(path.join(dir, ".zgroup"));
    await assert.rejects(open3(dir), isError("NOT_FOUND", dir));
  });

  it("unknown codec -> UNSUPPORTED at open, naming the codec and the array; info lists it", async () => {
    const v2 = fresh("codec2");
    await pyramid(v2, { codec: { id: "gzip" } });
    editJson(path.join(v2, "s0", ".zarray"), (j) => (j.compressor = { id: "nonsense" }));
    await assert.rejects(open3(v2), isError("UNSUPPORTED", '"numcodecs.nonsense"', path.join(v2, "s0")));
    const info = await describeImage(v2);
    assert.ok(
      info.problems.some((p) => p.startsWith("s0:") && p.includes("nonsense")),
      info.problems.join("; "),
    );
    const v3 = fresh("codec3");
    await pyramid(v3, { format: 3, chunksPerShard: [2, 2, 2], codec: { id: "gzip" } });
    editJson(path.join(v3, "s0", "zarr.json"), (j) => j.codecs[0].configuration.codecs.push({ name: "frobnicate" }));
    await assert.rejects(open3(v3), isError("UNSUPPORTED", '"frobnicate"', path.join(v3, "s0")));
  });

  it("corrupt or truncated chunk bytes -> CORRUPT_CHUNK naming the chunk key", async () => {
    const blosc = fresh("blosc");
    await pyramid(blosc, { codec: { id: "blosc", cname: "zstd" } });
    fs.writeFileSync(path.join(blosc, "s0", "1.0.1"), "this is not a blosc frame at all");
    const img = await open3(blosc);
    await assert.rejects(
      img.read([4, 4, 4]).then(() => img.read([20, 4, 20])),
      isError("CORRUPT_CHUNK", "s0/1.0.1"),
    );
    const gzip = fresh("gzip");
    await pyramid(gzip, { codec: { id: "gzip" } });
    const g = fs.readFileSync(path.join(gzip, "s0", "0.0.0"));
    fs.writeFileSync(path.join(gzip, "s0", "0.0.0"), g.subarray(0, g.length >> 1));
    await assert.rejects((await open3(gzip)).read([8, 8, 8]), isError("CORRUPT_CHUNK", "s0/0.0.0"));
    const plain = fresh("plain");
    await pyramid(plain);
    fs.writeFileSync(path.join(plain, "s0", "0.0.0"), fs.readFileSync(path.join(plain, "s0", "0.0.0")).subarray(0, 100));
    await assert.rejects((await open3(plain)).read([8, 8, 8]), isError("CORRUPT_CHUNK", "s0/0.0.0", "expected 64"));
    const shard = fresh("shard");
    await pyramid(shard, { format: 3, chunksPerShard: [2, 2, 2], codec: { id: "gzip" } });
    const file = path.join(shard, "s0", "c", "0", "0", "0");
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 200)); // the index at the end is gone
    await assert.rejects((await open3(shard)).read([8, 8, 8]), isError("CORRUPT_CHUNK", "s0/c/0/0/0"));
  });

  it("dtype / shape mismatch between metadata and chunk -> CORRUPT_CHUNK; array rank vs axes -> INVALID_METADATA; odd dtype -> UNSUPPORTED", async () => {
    const dt = fresh("dtype");
    await pyramid(dt);
    editJson(path.join(dt, "s0", ".zarray"), (j) => (j.dtype = "<f8")); // float32 bytes declared float64
    await assert.rejects((await open3(dt)).read([8, 8, 8]), isError("CORRUPT_CHUNK", "s0/0.0.0", "expected 64", "float64"));
    const cs = fresh("chunkshape");
    await pyramid(cs);
    editJson(path.join(cs, "s0", ".zarray"), (j) => (j.chunks = [4, 4, 2]));
    await assert.rejects((await open3(cs)).read([8, 8, 8]), isError("CORRUPT_CHUNK", "s0/0.0.0", "expected 32"));
    const rank = fresh("rank");
    await pyramid(rank);
    editJson(path.join(rank, "s0", ".zarray"), (j) => ((j.shape = [8, 8]), (j.chunks = [4, 4])));
    await assert.rejects(open3(rank), isError("INVALID_METADATA", "2 dimensions", "3 axes", path.join(rank, "s0")));
    const str = fresh("str");
    await pyramid(str);
    editJson(path.join(str, "s0", ".zarray"), (j) => (j.dtype = "<U4"));
    await assert.rejects(open3(str), isError("UNSUPPORTED", "dtype", path.join(str, "s0")));
  });

  it("label values other than 0/1: counted as foreground with a warning; kept in samples; Binarize maps them to 1", async () => {
    const root = fresh("labels");
    const raw = path.join(root, "raw");
    await pyramid(raw, { shape: [16, 16, 16] });
    // instance ids 2 and 7 (no count attributes, so the crop is scanned)
    await makeLabelPyramid(path.join(root, "gt", "cell"), {
      shape: [16, 16, 16],
      chunks: [8, 8, 8],
      shapes: [
        { kind: "box", min: [0, 0, 0], max: [32, 64, 64], value: 2 },
        { kind: "box", min: [32, 0, 0], max: [40, 64, 64], value: 7 },
      ],
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const opts: CellMapDatasetOptions = {
        rawPath: raw,
        targetPath: path.join(root, "gt", "[cell]"),
        classes: ["cell"],
        inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } },
        targetArrays: { gt: { shape: [4, 4, 4], scale: [4, 4, 4] } },
      };
      const ds = await CellMapDataset.open(opts);
      const counts = await ds.classCounts();
      assert.equal(counts.cell.foreground, 10 * 16 * 16); // z < 40 nm: 10 planes of 4 nm
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      const w = warnings.find((x) => (x as Error & { code?: string }).code === "CELLMAP_NON_BINARY_LABELS");
      assert.ok(w, "a CELLMAP_NON_BINARY_LABELS warning");
      assert.ok(w.message.includes(path.join(root, "gt", "cell")), w.message);
      const values = new Set(Array.from(((await ds.get(0)).gt as Tensor).data));
      assert.ok(values.has(2), `stored values are kept without a target transform: ${[...values]}`);
      const split = await CellMapDataSplit.open({
        datasetDict: { train: [{ raw, gt: opts.targetPath! }] },
        classes: ["cell"],
        inputArrays: opts.inputArrays,
        targetArrays: opts.targetArrays,
      });
      const item = await split.trainDatasets[0].get(0);
      assert.deepEqual([...new Set(Array.from((item.gt as Tensor).data))], [1], "the datasplit default Binarize(0) maps them to 1");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("NaN / Inf in raw: preserved by reads and value transforms; the default raw transform maps NaN to 0 and ±Inf to ±FLOAT32_MAX", async () => {
    const dir = fresh("nan");
    const levels = [
      {
        shape: [4, 4, 4],
        scale: [4, 4, 4],
        translation: [2, 2, 2],
        chunks: [4, 4, 4],
        data: (i: number[]) => (i[2] === 1 ? NaN : i[2] === 2 ? Infinity : i[2] === 3 ? -Infinity : 5),
      },
    ];
    await writeOmePyramid(dir, { format: 2, dtype: "float32", levels });
    chunkCache.clear();
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 4] });
    const t = await img.read([6, 6, 8]); // one row x = 0..3 at native scale: copied exactly
    assert.deepEqual(Array.from(t.data), [5, NaN, Infinity, -Infinity]);
    // linear resampling between voxels: any tap on NaN (or on +Inf and -Inf together) gives NaN
    const half = await CellMapImage.open({ path: dir, targetScale: [4, 4, 2], targetVoxelShape: [1, 1, 2], interpolation: "linear" });
    assert.ok(Number.isNaN((await half.read([6, 6, 6])).data[1]), "a sample between 5 and NaN");
    const def = defaultRawTransform().apply({ data: Float32Array.from(t.data), shape: t.shape, sourceDtype: "float32" }, undefined as never);
    assert.deepEqual(Array.from(def.data), [5, 0, Math.fround(FLOAT32_MAX), -Math.fround(FLOAT32_MAX)]);
  });

  it("array specs with wrong dimensionality or non-positive shapes / scales -> INVALID_ARGUMENT naming the field", async () => {
    const raw = fresh("specs");
    await pyramid(raw);
    const bad: [Record<string, unknown>, string][] = [
      [{ shape: [4, 4, 4, 4], scale: [4, 4, 4] }, "inputArrays.raw.shape"],
      [{ shape: [4], scale: [4, 4, 4] }, "inputArrays.raw.shape"],
      [{ shape: [4, 0, 4], scale: [4, 4, 4] }, "inputArrays.raw.shape"],
      [{ shape: [4, -2, 4], scale: [4, 4, 4] }, "inputArrays.raw.shape"],
      [{ shape: [4, 2.5, 4], scale: [4, 4, 4] }, "inputArrays.raw.shape"],
      [{ shape: [4, 4, 4], scale: [4, 0, 4] }, "inputArrays.raw.scale"],
      [{ shape: [4, 4, 4], scale: [4, -4, 4] }, "inputArrays.raw.scale"],
      [{ shape: [4, 4, 4], scale: [4, NaN, 4] }, "inputArrays.raw.scale"],
      [{ shape: [4, 4, 4], scale: [4, 4] }, "inputArrays.raw.scale"],
      [{ shape: [4, 4, 4] }, "inputArrays.raw.scale"],
    ];
    for (const [spec, field] of bad) {
      await assert.rejects(CellMapDataset.open({ rawPath: raw, inputArrays: { raw: spec as never } }), isError("INVALID_ARGUMENT", field), JSON.stringify(spec));
    }
    await assert.rejects(CellMapDataset.open({ rawPath: raw, inputArrays: {} }), isError("INVALID_ARGUMENT", "inputArrays"));
    await assert.rejects(
      CellMapDataSplit.open({ datasetDict: { train: [{ raw }] }, inputArrays: { raw: { shape: [4, 4, 4], scale: [0, 4, 4] } } }),
      isError("INVALID_ARGUMENT", "inputArrays.raw.scale"),
    );
    for (const extra of [{ targetScale: [4, 4, 4, 4] }, { targetScale: [0, 4, 4] }, { targetVoxelShape: [4, -1, 4] }, { targetVoxelShape: [] }]) {
      await assert.rejects(open3(raw, extra), isError("INVALID_ARGUMENT", Object.keys(extra)[0]), JSON.stringify(extra));
    }
  });

  it("negative, huge or non-integer indices -> OUT_OF_RANGE; non-finite centres -> INVALID_ARGUMENT; huge finite centres read padding / the clamped edge", async () => {
    const raw = fresh("idx");
    await pyramid(raw);
    const ds = await CellMapDataset.open({ rawPath: raw, inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } } });
    assert.ok(ds.length > 0);
    for (const i of [-1, ds.length, 2 ** 53, Number.MAX_VALUE, 1.5, NaN, Infinity]) {
      await assert.rejects(ds.get(i), isError("OUT_OF_RANGE", `index ${i}`), String(i));
      assert.throws(() => ds.center(i), isError("OUT_OF_RANGE"));
    }
    const multi = new CellMapMultiDataset([ds, ds], { classes: [], inputArrays: ds.inputArrays, targetArrays: {} });
    await assert.rejects(multi.get(2 * ds.length), isError("OUT_OF_RANGE"));
    await assert.rejects(new CellMapSubset(ds, [0]).get(1), isError("OUT_OF_RANGE"));
    await assert.rejects(new CellMapDataLoader(ds).get([0, -3]), isError("OUT_OF_RANGE", "sample -3"));
    const img = await open3(raw, { targetVoxelShape: [2, 2, 2] });
    for (const c of [
      [NaN, 8, 8],
      [8, Infinity, 8],
      [8, 8],
    ])
      await assert.rejects(img.read(c), isError("INVALID_ARGUMENT", "center"), String(c));
    const clamped = await img.read([1e12, -1e12, 1e300]);
    assert.ok(
      clamped.data.every((v) => Number.isFinite(v)),
      "without padding, far-away centres read the clamped edge",
    );
    const padded = await open3(raw, { targetVoxelShape: [2, 2, 2], pad: true, padValue: -7 });
    assert.deepEqual(Array.from((await padded.read([1e12, -1e12, 1e300])).data), new Array(8).fill(-7));
  });

  it("bad CSV rows are skipped and listed with their line; no usable row -> INVALID_ARGUMENT; missing file -> NOT_FOUND", async () => {
    const root = fresh("csv");
    const raw = path.join(root, "raw");
    await pyramid(raw, { shape: [16, 16, 16] });
    const csv = path.join(root, "split.csv");
    fs.writeFileSync(
      csv,
      [
        "# usage,raw_path",
        `train,${raw}`,
        `train,"${raw}`, // unterminated quote: reported, skipped
      ].join("\n") + "\n",
    );
    const text = [
      `train,${raw}`,
      `testing,${raw}`, // unknown usage
      `train`, // too few fields
      `train,${raw},a,b,c,d`, // too many fields
      `train,${path.join(root, "missing")}`, // path that does not exist
      `validate,"${raw}" x`, // junk after a quoted field
    ].join("\n");
    const split = await CellMapDataSplit.open({ csvText: text, inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } } });
    assert.equal(split.trainDatasets.length, 1);
    const lines = split.problems.map((p) => p.line).sort();
    assert.deepEqual(lines, [2, 3, 4, 5, 6]);
    assert.ok(split.problems.find((p) => p.line === 5)!.reason.includes("missing"), JSON.stringify(split.problems));
    await assert.rejects(
      CellMapDataSplit.open({ csvText: "train\nvalidate,x,y,z,w,v,u\n", inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } } }),
      isError("INVALID_ARGUMENT", "no valid training dataset", "line 1"),
    );
    await assert.rejects(
      CellMapDataSplit.open({ csvPath: path.join(root, "nope.csv"), inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } } }),
      isError("NOT_FOUND", "nope.csv"),
    );
    const fromFile = await CellMapDataSplit.open({ csvPath: csv, inputArrays: { raw: { shape: [4, 4, 4], scale: [4, 4, 4] } } });
    assert.equal(fromFile.trainDatasets.length, 1);
    assert.deepEqual(
      fromFile.problems.map((p) => p.line),
      [3],
    );
  });

  it("unwritable output path -> IO naming the path", async () => {
    const level = { shape: [4, 4, 4], scale: [4, 4, 4], translation: [2, 2, 2], chunks: [4, 4, 4], data: () => 1 };
    const file = fresh("a-file");
    fs.writeFileSync(file, "not a directory");
    await assert.rejects(writeOmePyramid(path.join(file, "out.zarr"), { format: 2, dtype: "uint8", levels: [level] }), isError("IO", path.join(file, "out.zarr")));
    // a read-only directory: real permissions when not root (root ignores them), an EACCES from the filesystem otherwise
    const ro = fresh("readonly");
    fs.mkdirSync(ro);
    const target = path.join(ro, "out.zarr");
    const root = process.getuid?.() === 0;
    const restore = root ? failWrites((p) => p.startsWith(ro), "EACCES", "permission denied") : (fs.chmodSync(ro, 0o555), () => fs.chmodSync(ro, 0o755));
    try {
      await assert.rejects(writeOmePyramid(target, { format: 3, dtype: "uint8", levels: [level] }), isError("IO", target, "EACCES"));
    } finally {
      restore();
    }
    assert.deepEqual(leftovers(ro), []);
  });

  it("disk full during writes -> IO with ENOSPC naming the chunk; no torn chunk or temp file remains", async () => {
    const dir = fresh("enospc");
    const lv = (v: number) => [{ shape: [8, 8, 8], scale: [4, 4, 4], translation: [2, 2, 2], chunks: [4, 4, 4], data: () => v }];
    await writeOmePyramid(dir, { format: 2, dtype: "uint16", levels: lv(1), codec: { id: "gzip" } });
    let writes = 0;
    // The 4th chunk write fills the disk after a few bytes (a partial temp file really exists).
    const restore = failWrites((p) => path.basename(p).startsWith(TEMP_PREFIX) && /\d\.\d\.\d\./.test(p) && ++writes === 4, "ENOSPC", "no space left on device");
    try {
      await assert.rejects(
        writeOmePyramid(dir, { format: 2, dtype: "uint16", levels: lv(2), codec: { id: "gzip" }, overwrite: true }),
        isError("IO", "ENOSPC", path.join(dir, "s0")),
      );
    } finally {
      restore();
    }
    assert.deepEqual(leftovers(dir), [], "no temp files left behind");
    // every chunk is whole: either the old (1) or the new (2) version, never a torn mix
    chunkCache.clear();
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] });
    const seen = new Set<number>();
    for (const z of [0, 1])
      for (const y of [0, 1])
        for (const x of [0, 1]) {
          const t = await img.read([8 + 16 * z, 8 + 16 * y, 8 + 16 * x]);
          const v = new Set(t.data);
          assert.equal(v.size, 1, `chunk ${z}.${y}.${x} is uniform`);
          seen.add([...v][0]);
        }
    assert.deepEqual([...seen].sort(), [1, 2]);
  });
});

/** Temp files (`.cm-tmp-*`) anywhere under `dir`. */
function leftovers(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => path.basename(f).startsWith(TEMP_PREFIX));
}

/**
 * Makes `fs.promises.writeFile` (what the writer's atomic writes use) fail with `code` for paths
 * matching `when`, as a full or read-only disk would; a full disk first writes 3 bytes, so a
 * partial temp file really exists. Returns the
 * function that restores it.
 */
function failWrites(when: (p: string) => boolean, code: string, text: string, partial = code === "ENOSPC"): () => void {
  const fsp = createRequire(import.meta.url)("node:fs/promises") as typeof import("node:fs/promises");
  const original = fsp.writeFile;
  fsp.writeFile = (async (file: string, data: Uint8Array | string, ...rest: unknown[]) => {
    if (typeof file === "string" && when(file)) {
      if (partial) await original(file, typeof data === "string" ? data.slice(0, 3) : data.subarray(0, 3));
      throw Object.assign(new Error(`${code}: ${text}, write '${file}'`), { code, errno: -28, syscall: "write", path: file });
    }
    return (original as (...a: unknown[]) => Promise<void>)(file, data, ...rest);
  }) as typeof fsp.writeFile;
  syncBuiltinESMExports();
  return () => {
    fsp.writeFile = original;
    syncBuiltinESMExports();
  };
}

describe("metadata other tools write", () => {
  it("NGFF versions like 0.4-dev-* / 0.5-rc* are read by their base version and noted under problems; unknown bases are refused", async () => {
    const v2 = fresh("dev04");
    await pyramid(v2, { levels: 2 });
    editJson(path.join(v2, ".zattrs"), (j) => {
      j.multiscales[0].version = "0.4-dev-spatialdata";
    });
    const img = await open3(v2);
    assert.equal(img.multiscale.version, "0.4");
    assert.deepEqual(img.multiscale.notes, [`NGFF version "0.4-dev-spatialdata" read as 0.4`]);
    const info = await describeImage(v2);
    assert.ok(info.problems.includes(`NGFF version "0.4-dev-spatialdata" read as 0.4`), info.problems.join("; "));
    assert.equal(info.levels.length, 2);

    const v3 = fresh("rc05");
    await pyramid(v3, { levels: 1, format: 3 });
    editJson(path.join(v3, "zarr.json"), (j) => {
      j.attributes.ome.version = "0.5-rc2";
    });
    assert.equal((await open3(v3)).multiscale.version, "0.5");
    assert.ok((await describeImage(v3)).problems.includes(`NGFF version "0.5-rc2" read as 0.5`));

    editJson(path.join(v3, "zarr.json"), (j) => {
      j.attributes.ome.version = "0.6-dev";
    });
    await assert.rejects(open3(v3), isError("UNSUPPORTED", `unsupported NGFF version "0.6-dev"`, v3));
    editJson(path.join(v2, ".zattrs"), (j) => {
      j.multiscales[0].version = "0.40";
    });
    await assert.rejects(open3(v2), isError("UNSUPPORTED", `unsupported NGFF version "0.40"`));
  });

  it("spatial axes without a unit: read as nanometer, noted under problems, one warning per image", async () => {
    const dir = fresh("nounit");
    await pyramid(dir, { levels: 1 });
    editJson(path.join(dir, ".zattrs"), (j) => {
      for (const a of j.multiscales[0].axes) if (a.name !== "z") delete a.unit;
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const img = await open3(dir);
      await open3(dir);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(img.scaleLevel.scale, [4, 4, 4]);
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === "CELLMAP_NO_UNIT");
      assert.deepEqual(
        ours.map((w) => w.message),
        [`${dir}: axis y has no unit; assuming nanometer`, `${dir}: axis x has no unit; assuming nanometer`],
      );
    } finally {
      process.off("warning", onWarning);
    }
    const info = await describeImage(dir);
    assert.deepEqual(info.problems, ["axis y has no unit; assuming nanometer", "axis x has no unit; assuming nanometer"]);
  });

  it("spatial units that are not lengths (IDR's pixel) and a misspelt `units`: read like a missing unit, noted, one warning per image", async () => {
    const dir = fresh("pixel");
    const fx = await pyramid(dir, { levels: 1 });
    editJson(path.join(dir, ".zattrs"), (j) => {
      for (const a of j.multiscales[0].axes) {
        if (a.name === "z") {
          a.units = a.unit;
          delete a.unit;
        } else a.unit = "pixel";
      }
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const img = await open3(dir);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(img.scaleLevel.scale, [4, 4, 4]);
      await open3(dir);
      assert.equal((await img.read([10, 10, 10])).data[0], fx.value([4, 4, 4]), "voxel 0 of the patch sits at [4, 4, 4] nm");
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === "CELLMAP_NO_UNIT");
      assert.deepEqual(
        ours.map((w) => w.message),
        [`${dir}: axis y has no unit of length (unit "pixel"); assuming nanometer`, `${dir}: axis x has no unit of length (unit "pixel"); assuming nanometer`],
      );
    } finally {
      process.off("warning", onWarning);
    }
    const info = await describeImage(dir);
    assert.deepEqual(info.problems, [
      `axis z has "units" instead of "unit"; reading "nanometer" as its unit`,
      `axis y has no unit of length (unit "pixel"); assuming nanometer`,
      `axis x has no unit of length (unit "pixel"); assuming nanometer`,
    ]);
    editJson(path.join(dir, ".zattrs"), (j) => {
      j.multiscales[0].axes[2].unit = 1;
    });
    await assert.rejects(open3(dir), isError("INVALID_METADATA", "multiscales[0].axes[2].unit: expected string, got number", dir));
  });

  it("NGFF 0.1/0.2 and 0.6.dev1 (RFC-5) groups: UNSUPPORTED naming the version, the supported ones and how to read a level as a bare array", async () => {
    const v2 = fresh("ngff02");
    const fx = await pyramid(v2, { levels: 2 });
    const want = Array.from((await (await open3(v2)).read([10, 10, 10])).data);
    for (const version of ["0.1", "0.2"]) {
      fs.writeFileSync(path.join(v2, ".zattrs"), JSON.stringify({ multiscales: [{ version, name: "raw", datasets: [{ path: "s0" }, { path: "s1" }], type: "mean" }] }));
      const refusal = isError(
        "UNSUPPORTED",
        `multiscales[0].version: unsupported NGFF version "${version}"`,
        "0.4 and 0.5",
        `CellMapImage.open({ path: "${v2}/s0", voxelSize`,
        `info ${v2}/s0 --voxel-size`,
        `[${v2}]`,
      );
      await assert.rejects(open3(v2), refusal);
      await assert.rejects(describeImage(v2), refusal);
    }
    // ... and the way out the message names: the level as a bare array with its voxel size and offset
    const level = await open3(path.join(v2, "s0"), { voxelSize: [4, 4, 4], translation: [2, 2, 2] });
    assert.deepEqual(Array.from((await level.read([10, 10, 10])).data), want);
    assert.equal(want[0], fx.value([4, 4, 4]));
    assert.deepEqual((await describeImage(path.join(v2, "s0"), undefined, undefined, { voxelSize: [4, 4, 4] })).levels[0].scale, [4, 4, 4]);

    const v3 = fresh("ngff06");
    await pyramid(v3, { levels: 1, format: 3 });
    editJson(path.join(v3, "zarr.json"), (j) => {
      const ms = j.attributes.ome.multiscales[0];
      j.attributes.ome = {
        version: "0.6.dev1",
        multiscales: [
          {
            coordinateSystems: [{ name: "physical", axes: ms.axes }],
            datasets: ms.datasets.map((d: { path: string; coordinateTransformations: unknown[] }) => ({
              path: d.path,
              coordinateTransformations: [{ type: "sequence", input: d.path, output: "physical", transformations: d.coordinateTransformations }],
            })),
          },
        ],
      };
    });
    const refusal = isError("UNSUPPORTED", `ome.version: unsupported NGFF version "0.6.dev1"`, "0.4 and 0.5", `${v3}/s0`, "--voxel-size");
    await assert.rejects(open3(v3), refusal);
    await assert.rejects(describeImage(v3), refusal);
  });

  it("NGFF 0.4 metadata on a zarr v3 group (as ngff-zarr writes it): read as 0.4, noted under problems", async () => {
    const dir = fresh("ngff04-v3");
    const fx = await pyramid(dir, { levels: 2, format: 3 });
    editJson(path.join(dir, "zarr.json"), (j) => {
      j.attributes = { multiscales: [{ version: "0.4", ...j.attributes.ome.multiscales[0] }] };
    });
    const img = await open3(dir, { targetScale: [8, 8, 8] });
    assert.equal(img.multiscale.version, "0.4");
    assert.equal(img.multiscale.zarrFormat, 3);
    assert.equal(img.scaleLevel.path, "s1");
    assert.equal((await img.read([16, 16, 16])).data[0], fx.value([4, 4, 4]));
    const info = await describeImage(dir);
    assert.equal(info.levels.length, 2);
    assert.equal(info.problems.length, 1, info.problems.join("; "));
    assert.match(info.problems[0], /NGFF 0\.4 metadata .*on a Zarr v3 group.*pairs 0\.4 with Zarr v2/);
  });

  it("bare arrays with a codec the library lacks (bz2, zfpy, pcodec, fletcher32): info describes them and names the codec; reading is UNSUPPORTED", async () => {
    const cases: Array<{ name: string; codec: string; meta: Record<string, unknown>; file: string }> = [
      {
        name: "bz2",
        codec: "numcodecs.bz2",
        file: "0.0",
        meta: { ".zarray": { zarr_format: 2, shape: [4, 6], chunks: [2, 3], dtype: "<u2", compressor: { id: "bz2", level: 1 }, fill_value: 0, filters: null, order: "C" } },
      },
      {
        name: "fletcher32",
        codec: "numcodecs.fletcher32",
        file: "0.0",
        meta: { ".zarray": { zarr_format: 2, shape: [4, 6], chunks: [2, 3], dtype: "<u2", compressor: null, fill_value: 0, filters: [{ id: "fletcher32" }], order: "C" } },
      },
      ...["numcodecs.zfpy", "numcodecs.pcodec"].map((codec) => ({
        name: codec.slice(10),
        codec,
        file: "c/0/0",
        meta: {
          "zarr.json": {
            zarr_format: 3,
            node_type: "array",
            shape: [4, 6],
            data_type: "float32",
            fill_value: 0,
            attributes: {},
            chunk_grid: { name: "regular", configuration: { chunk_shape: [2, 3] } },
            chunk_key_encoding: { name: "default" },
            codecs: [
              { name: "bytes", configuration: { endian: "little" } },
              { name: codec, configuration: {} },
            ],
          },
        },
      })),
    ];
    for (const c of cases) {
      const dir = fresh(`bare-${c.name}`);
      fs.mkdirSync(path.dirname(path.join(dir, c.file)), { recursive: true });
      for (const [file, json] of Object.entries(c.meta)) fs.writeFileSync(path.join(dir, file), JSON.stringify(json));
      fs.writeFileSync(path.join(dir, c.file), Buffer.from("not a chunk any codec wrote"));
      const info = await describeImage(dir);
      assert.equal(info.kind, "array", c.name);
      assert.deepEqual(
        [info.levels[0].shape, info.levels[0].chunks],
        [
          [4, 6],
          [2, 3],
        ],
        c.name,
      );
      assert.ok(
        info.levels[0].codecs.some((x) => x.includes(c.name)),
        `${c.name}: ${info.levels[0].codecs.join(" > ")}`,
      );
      assert.ok(
        info.problems.some((p) => /no voxel size/.test(p)),
        info.problems.join("; "),
      );
      assert.ok(info.problems.includes(`unknown codec "${c.codec}": the array cannot be read (no such codec is registered)`), info.problems.join("; "));
      const sized = await describeImage(dir, undefined, undefined, { voxelSize: [8, 4] });
      assert.deepEqual(
        [sized.spatialAxes, sized.levels[0].scale],
        [
          ["y", "x"],
          [8, 4],
        ],
        c.name,
      );
      assert.ok(
        sized.problems.some((p) => p.startsWith(`unknown codec "${c.codec}"`)),
        sized.problems.join("; "),
      );
      await assert.rejects(
        CellMapImage.open({ path: dir, voxelSize: [8, 4], targetScale: [8, 4], targetVoxelShape: [2, 2], axisOrder: "yx" }),
        isError("UNSUPPORTED", `unknown codec "${c.codec}"`, dir),
      );
    }
  });

  it("bare zarr arrays: info describes them; CellMapImage.open reads them with the voxel size and offset the caller gives", async () => {
    const v3 = fresh("bare3");
    const data = Float32Array.from({ length: 2 * 6 * 8 * 10 }, (_, i) => i);
    await writeArray(v3, { zarrFormat: 3, shape: [2, 6, 8, 10], chunks: [1, 3, 4, 5], dtype: "float32", compressor: { id: "zstd" } }, data);
    const info = await describeImage(v3);
    assert.equal(info.kind, "array");
    assert.deepEqual(
      info.levels.map((l) => [l.shape, l.chunks, l.dtype, l.scale]),
      [[[2, 6, 8, 10], [1, 3, 4, 5], "float32", []]],
    );
    assert.match(info.problems.join(), /bare array: no multiscales metadata, so no voxel size/);
    const withSize = await describeImage(v3, undefined, undefined, { voxelSize: [16, 8, 8], translation: [100, 0, 4] });
    assert.deepEqual(
      [withSize.spatialAxes, withSize.levels[0].scale, withSize.levels[0].translation],
      [
        ["z", "y", "x"],
        [16, 8, 8],
        [100, 0, 4],
      ],
    );

    await assert.rejects(open3(v3), isError("NOT_FOUND", "found an array", "voxelSize"));
    // Leading dim = channel; voxel (z=1, y=2, x=3) of channel 1 sits at [116, 16, 28] nm.
    const img = await CellMapImage.open({ path: v3, voxelSize: [16, 8, 8], translation: [100, 0, 4], targetScale: [16, 8, 8], targetVoxelShape: [1, 1, 2], channel: 1 });
    assert.deepEqual(img.scaleLevel.scale, [16, 8, 8]);
    assert.equal(img.multiscale.version, "none");
    const patch = await img.read([116, 16, 32]);
    const at = (c: number, z: number, y: number, x: number) => ((c * 6 + z) * 8 + y) * 10 + x;
    assert.deepEqual(Array.from(patch.data), [at(1, 1, 2, 3), at(1, 1, 2, 4)]);

    const v2 = fresh("bare2");
    await writeArray(
      v2,
      { zarrFormat: 2, shape: [6, 8], chunks: [3, 4], dtype: "uint8", compressor: { id: "blosc", cname: "lz4" } },
      Uint8Array.from({ length: 48 }, (_, i) => i),
    );
    const flat = await CellMapImage.open({ path: v2, voxelSize: [4, 4], targetScale: [4, 4], targetVoxelShape: [6, 8], axisOrder: "yx" });
    assert.deepEqual(
      Array.from((await flat.read([10, 14])).data),
      Array.from({ length: 48 }, (_, i) => i),
    );

    await assert.rejects(
      CellMapImage.open({ path: v2, voxelSize: [4, 4, 4], targetScale: [4, 4], targetVoxelShape: [2, 2], axisOrder: "yx" }),
      isError("INVALID_ARGUMENT", "voxelSize has 3 entries but the array has only 2 dimensions"),
    );
    await assert.rejects(
      CellMapImage.open({ path: v2, voxelSize: [4, 0], targetScale: [4, 4], targetVoxelShape: [2, 2], axisOrder: "yx" }),
      isError("INVALID_ARGUMENT", "voxelSize must be 2 or 3 positive numbers"),
    );
    await assert.rejects(
      CellMapImage.open({ path: v2, voxelSize: [4, 4], translation: [1], targetScale: [4, 4], targetVoxelShape: [2, 2], axisOrder: "yx" }),
      isError("INVALID_ARGUMENT", "translation must be 2 finite numbers"),
    );
    const group = fresh("group");
    await pyramid(group, { levels: 1 });
    await assert.rejects(open3(group, { voxelSize: [4, 4, 4] }), isError("NOT_FOUND", "no zarr array here (voxelSize opens a bare array"));
    await assert.rejects(open3(group, { translation: [0, 0, 0] }), isError("INVALID_ARGUMENT", "translation is only for bare arrays"));
  });

  it("float16 arrays (v2 <f2 / >f2, v3 float16, sharded) read as their float values, fill value included", async () => {
    // bits -> value: 1, -2, 65504 (max), 2^-24 (smallest subnormal), +Inf, NaN, -0, 1/3 rounded.
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00, 0x8000, 0x3555];
    const want = [1, -2, 65504, 2 ** -24, Infinity, NaN, -0, 0.333251953125];
    const data = Uint16Array.from({ length: 4 * 8 }, (_, i) => bits[i % 8]);
    const cases = [
      { name: "v2-le", spec: { zarrFormat: 2 as const, compressor: { id: "blosc" as const, cname: "lz4" as const } } },
      { name: "v2-be", spec: { zarrFormat: 2 as const, endian: "big" as const, compressor: { id: "zstd" as const } } },
      { name: "v3-sharded", spec: { zarrFormat: 3 as const, shards: [4, 8], compressor: { id: "zstd" as const } } },
    ];
    for (const c of cases) {
      const dir = fresh(`f16-${c.name}`);
      // The project's writer has no float16; write the bit patterns as uint16, then declare float16.
      await writeArray(
        dir,
        { ...c.spec, shape: [8, 8], chunks: [4, 4], dtype: "uint16" },
        Uint16Array.from({ length: 64 }, (_, i) => (i < 32 ? data[i] : 0)),
        { skipEmptyChunks: true },
      );
      const metaFile = path.join(dir, c.spec.zarrFormat === 3 ? "zarr.json" : ".zarray");
      editJson(metaFile, (j) => {
        if (c.spec.zarrFormat === 3) {
          j.data_type = "float16";
          j.fill_value = "NaN";
        } else {
          j.dtype = j.dtype.replace("u2", "f2");
          j.fill_value = "NaN";
        }
      });
      // Rows 4..7 are all fill, so not stored (missing chunks / inner chunks): they read as the NaN fill value.
      const img = await CellMapImage.open({ path: dir, voxelSize: [4, 4], targetScale: [4, 4], targetVoxelShape: [8, 8], axisOrder: "yx" });
      assert.equal(img.dtype, "float16");
      const got = Array.from((await img.read([14, 14])).data);
      assert.deepEqual(
        got.slice(0, 32),
        Array.from({ length: 32 }, (_, i) => want[i % 8]),
        c.name,
      );
      assert.ok(got.slice(32).every(Number.isNaN), `${c.name}: missing chunks read as the NaN fill value`);
      assert.ok(Object.is(got[6], -0), "negative zero survives");
      // The shared data plane (what loaders use) holds the bit patterns and widens them the same way.
      const plane = DataPlane.create({ cacheBytes: 1 << 20, batchBytes: 1 << 16, batchSlots: 1 });
      const into = plane.batchView(0, 0, 64);
      await img.read([14, 14], { store: plane.store, into });
      assert.deepEqual(new Uint32Array(into.slice().buffer), new Uint32Array(Float32Array.from(got).buffer), `${c.name} through the plane`);
    }
  });

  it("integers float32 cannot hold: an error naming the array and the largest value by default; outputDtype int32/uint32/float64 reads them exactly", async () => {
    const dir = fresh("ids");
    const ids = Uint32Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? 16777217 + i : i)); // 2^24 + 1 + i
    await writeArray(dir, { zarrFormat: 2, shape: [8, 8], chunks: [4, 4], dtype: "uint32", compressor: { id: "zstd" } }, ids);
    const base = { path: dir, voxelSize: [4, 4], targetScale: [4, 4], targetVoxelShape: [8, 8], axisOrder: "yx" };
    const f32 = await CellMapImage.open(base);
    await assert.rejects(f32.read([14, 14]), isError("UNSUPPORTED", dir, "largest 16777280", "outputDtype"));
    // A patch that holds only small ids reads fine as float32.
    const small = await CellMapImage.open({ ...base, targetVoxelShape: [1, 2] });
    assert.deepEqual(Array.from((await small.read([0, 6])).data), [1, 2]);

    const u32 = await CellMapImage.open({ ...base, outputDtype: "uint32" });
    const t = await u32.read([14, 14]);
    assert.ok(t.data instanceof Uint32Array);
    assert.equal(t.dtype, "uint32");
    assert.deepEqual(Array.from(t.data), Array.from(ids));
    // Resampled (nearest, mirrored) reads stay exact.
    const half = await CellMapImage.open({ ...base, targetScale: [8, 8], targetVoxelShape: [4, 4], outputDtype: "int32", interpolation: "nearest" });
    const m = await half.read([14, 14], {
      spatialTransform: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, -1],
      ],
    });
    assert.ok(m.data instanceof Int32Array);
    assert.ok(
      Array.from(m.data).every((v) => ids.includes(v)),
      "nearest samples are stored ids",
    );
    const f64 = await CellMapImage.open({ ...base, outputDtype: "float64" });
    assert.deepEqual(Array.from((await f64.read([14, 14])).data), Array.from(ids));

    // Values that do not fit the asked dtype, NaN padding for integers, transforms: refused.
    const neg = fresh("neg");
    await writeArray(neg, { zarrFormat: 3, shape: [2, 2], chunks: [2, 2], dtype: "int64" }, BigInt64Array.from([-5n, 2n ** 40n, 3n, 2n ** 54n]));
    const negBase = { ...base, path: neg, targetVoxelShape: [2, 2] };
    await assert.rejects((await CellMapImage.open({ ...negBase, outputDtype: "uint32" })).read([2, 2]), isError("UNSUPPORTED", "does not fit outputDtype uint32", neg));
    await assert.rejects((await CellMapImage.open({ ...negBase, outputDtype: "float64" })).read([2, 2]), isError("UNSUPPORTED", "does not fit outputDtype float64"));
    await assert.rejects(CellMapImage.open({ ...base, outputDtype: "int32", pad: true, targetClass: "ids" }), isError("INVALID_ARGUMENT", "integer padValue", "NaN"));
    assert.ok(await CellMapImage.open({ ...base, outputDtype: "int32", pad: true, padValue: -1, targetClass: "ids" }));
    await assert.rejects(CellMapImage.open({ ...base, outputDtype: "int16" as never }), isError("INVALID_ARGUMENT", "outputDtype must be one of"));
  });
});
