/**
 * Conformance over the zarr-python/zarrita fixtures in ../shared/conformance/zarrita (read in place):
 * every numeric array read through the project's path (fast codecs, decoded-chunk cache, strided
 * region copy) equals (a) the values the fixture generator wrote, where known, and (b) an
 * independent decode by zarrita's own indexing with its default WASM codecs. Non-numeric arrays
 * must be refused with a clear UNSUPPORTED error.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import { LocalStore } from "../src/store/local.js";
import { openZarrArray, SUPPORTED_DTYPES } from "../src/zarr/array.js";
import { readRegion } from "../src/zarr/read.js";
import { chunkCache } from "../src/zarr/cache.js";
import { registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";
import { CellMapError } from "../src/errors.js";
import { describeImage } from "../src/cli/info.js";
import { CellMapImage } from "../src/image/image.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const base = path.resolve(repo, "../shared/conformance/zarrita");
if (!fs.existsSync(base)) throw new Error(`conformance data not found at ${base} (expected ../shared/conformance next to the repo)`);

/** Values written by the fixture generator (zarrita.js test data), C order. */
const KNOWN: Record<string, number[]> = {
  "1d.contiguous.i4": [1, 2, 3, 4],
  "1d.contiguous.raw.i2": [1, 2, 3, 4],
  "1d.contiguous.blosc.i2": [1, 2, 3, 4],
  "1d.contiguous.zlib.i2": [1, 2, 3, 4],
  "1d.contiguous.gzip.i2": [1, 2, 3, 4],
  "1d.contiguous.zstd.i2": [1, 2, 3, 4],
  "1d.contiguous.lz4.i2": [1, 2, 3, 4],
  "1d.contiguous.u1": [255, 0, 255, 0],
  "1d.contiguous.f4.le": [-1000.5, 0, 1000.5, 0],
  "1d.contiguous.f2.le": [-1000.5, 0, 1000.5, 0],
  "1d.contiguous.f4.be": [-1000.5, 0, 1000.5, 0],
  "1d.contiguous.f8": [1.5, 2.5, 3.5, 4.5],
  "1d.contiguous.b1": [1, 0, 1, 0],
  "1d.chunked.i2": [1, 2, 3, 4],
  "1d.chunked.ragged.i2": [1, 2, 3, 4, 5],
  "1d.contiguous.compressed.sharded.i2": [1, 2, 3, 4],
  "1d.contiguous.compressed.sharded.i4": [1, 2, 3, 4],
  "1d.contiguous.compressed.sharded.u1": [255, 0, 255, 0],
  "1d.contiguous.compressed.sharded.f4": [-1000.5, 0, 1000.5, 0],
  "1d.contiguous.compressed.sharded.f8": [1.5, 2.5, 3.5, 4.5],
  "1d.contiguous.compressed.sharded.b1": [1, 0, 1, 0],
  "1d.chunked.compressed.sharded.i2": [1, 2, 3, 4],
  "1d.chunked.filled.compressed.sharded.i2": [1, 2, 0, 0],
  "2d.contiguous.i2": [1, 2, 3, 4],
  "2d.chunked.i2": [1, 2, 3, 4],
  "2d.contiguous.compressed.sharded.i2": [1, 2, 3, 4],
  "3d.contiguous.i2": Array.from({ length: 27 }, (_, i) => i),
  "3d.chunked.i2": Array.from({ length: 27 }, (_, i) => i),
  "3d.chunked.mixed.i2.C": Array.from({ length: 27 }, (_, i) => i),
  "3d.chunked.mixed.i2.F": Array.from({ length: 27 }, (_, i) => i),
};

function listArrays(root: string): string[] {
  return fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, ".zarray")) || isV3Array(path.join(root, n)));
}
function isV3Array(dir: string): boolean {
  const f = path.join(dir, "zarr.json");
  return fs.existsSync(f) && JSON.parse(fs.readFileSync(f, "utf8")).node_type === "array";
}

/** Reference decode: zarrita's own `get` (its default codecs), normalised to C order. */
async function reference(store: LocalStore, name: string): Promise<{ values: number[]; shape: number[] }> {
  const arr = await zarr.open(zarr.root(store).resolve(name), { kind: "array" });
  const r = await zarr.get(arr);
  const shape = r.shape;
  const values: number[] = [];
  const idx = new Array(shape.length).fill(0);
  const total = shape.reduce((a, b) => a * b, 1);
  const data = r.data as unknown as ArrayLike<number | bigint | boolean> & { get?: (i: number) => boolean };
  for (let n = 0; n < total; n++) {
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += idx[d] * r.stride[d];
    const v = typeof data.get === "function" ? data.get(off) : data[off];
    values.push(typeof v === "boolean" ? (v ? 1 : 0) : Number(v));
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { values, shape };
}

for (const version of ["v2", "v3"]) {
  describe(`zarrita conformance ${version}`, () => {
    const root = path.join(base, version, "data.zarr");
    const store = new LocalStore(root);
    for (const name of listArrays(root)) {
      it(name, async () => {
        const meta = JSON.parse(fs.readFileSync(path.join(root, name, version === "v2" ? ".zarray" : "zarr.json"), "utf8"));
        const dtype = String(meta.dtype ?? meta.data_type);
        const numeric = /^[<>|]?[iufb]\d$/.test(dtype) || SUPPORTED_DTYPES.includes(dtype as never);
        const loc = zarr.root(store);
        if (!numeric) {
          await assert.rejects(openZarrArray(loc, name, `${version}/${name}`), (e: unknown) => e instanceof CellMapError && e.code === "UNSUPPORTED" && e.message.includes(name));
          return;
        }
        // zarrita needs a global Float16Array (Node 22+) for float16: the generator's values are the reference.
        const float16 = dtype === "float16" || /f2$/.test(dtype);
        registerWasmCodecs();
        let ref: { values: number[]; shape: number[] } | null = null;
        try {
          ref = float16 ? { values: KNOWN[name], shape: meta.shape } : await reference(store, name);
        } finally {
          registerFastCodecs();
        }
        chunkCache.clear();
        const za = await openZarrArray(loc, name, `${version}/${name}`);
        const got = await readRegion(
          za,
          za.shape.map(() => 0),
          za.shape,
        );
        assert.deepEqual(got.shape, ref.shape);
        const ours = Array.from(got.data);
        // float32 output: compare the reference rounded to float32 (f8 fixtures are exact anyway)
        assert.deepEqual(
          ours,
          ref.values.map((v) => Math.fround(v)),
          "matches zarrita's reference decode",
        );
        if (KNOWN[name]) assert.deepEqual(ours, KNOWN[name], "matches the generator's values");
      });
    }
  });
}

before(() => registerFastCodecs());

describe("bare arrays as images (no multiscales group)", () => {
  for (const version of ["v2", "v3"]) {
    for (const name of ["2d.chunked.i2", "3d.chunked.i2", "3d.chunked.mixed.i2.C", "3d.chunked.mixed.i2.F", "2d.contiguous.compressed.sharded.i2"]) {
      const dir = path.join(base, version, "data.zarr", name);
      if (!fs.existsSync(dir)) continue;
      it(`${version}/${name}: info describes it, CellMapImage.open({ voxelSize }) reads the generator's values`, async () => {
        const info = await describeImage(dir);
        assert.equal(info.kind, "array");
        const shape = info.levels[0].shape;
        const n = shape.length;
        const voxelSize = new Array<number>(n).fill(4);
        const img = await CellMapImage.open({ path: dir, voxelSize, targetScale: voxelSize, targetVoxelShape: shape, axisOrder: n === 2 ? "yx" : "zyx" });
        const patch = await img.read(shape.map((s) => ((s - 1) * 4) / 2));
        assert.deepEqual(Array.from(patch.data), KNOWN[name]);
      });
    }
  }
});
