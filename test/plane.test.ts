/**
 * The data plane: SIMD gather kernels against the JS loops, the shared chunk cache (decode
 * once, waiting, failures, eviction that respects pins, many threads), and the batch pool.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import { CellMapImage } from "../src/image/image.js";
import { releaseSectionMaps } from "../src/image/rotated.js";
import { gatherBox } from "../src/kernels/gather.js";
import { makeCoordPyramid, makeLabelPyramid, makeRawEM } from "./fixtures/builder.js";
import { DataPlane } from "../src/plane/plane.js";
import type { ZarrArray } from "../src/zarr/array.js";
import type { DecodedChunk, NumericArray } from "../src/zarr/cache.js";
import { generatedKernelFiles } from "../scripts/build-kernels.js";

const MiB = 2 ** 20;

/** A stand-in array: only what the cache keys on. */
function fakeArray(id: string, dtype: ZarrArray["dtype"], chunks = [64, 64, 64], shape = [256, 256, 256]): ZarrArray {
  return { id, dtype, chunks, shape, chunkKey: (c: number[]) => c.join("/") } as unknown as ZarrArray;
}

/** Chunk `coords` of `za`, its values a function of (array, coords, position). */
function chunkFor(za: ZarrArray, coords: readonly number[], seed = 0): DecodedChunk {
  const n = za.chunks.reduce((a, b) => a * b, 1);
  const data = new Uint8Array(n);
  const base = coords.reduce((a, c) => a * 31 + c, seed + za.id.length);
  for (let i = 0; i < n; i++) data[i] = (base + i * 7) & 255;
  return { data, shape: [...za.chunks], stride: [za.chunks[1] * za.chunks[2], za.chunks[2], 1] };
}

function reference(src: NumericArray, sBase: number, s0: number, s1: number, s2: number, out: Float32Array, o: number, d0: number, d1: number, zn: number, yn: number, xn: number) {
  for (let z = 0; z < zn; z++) for (let y = 0; y < yn; y++) for (let x = 0; x < xn; x++) out[o + z * d0 + y * d1 + x] = src[sBase + z * s0 + y * s1 + x * s2];
}

describe("gather kernels", () => {
  it("the committed WebAssembly modules are what scripts/build-kernels.ts builds", async () => {
    for (const [file, text] of Object.entries(await generatedKernelFiles())) {
      assert.equal(fs.readFileSync(new URL(`../${file}`, import.meta.url), "utf8"), text, `${file}: run npm run build:kernels`);
    }
  });

  it("SIMD and JS gathers equal a plain loop for every element type and row length", () => {
    const plane = DataPlane.create({ cacheBytes: 0, batchBytes: 4 * MiB, batchSlots: 2 });
    const types = [
      [Uint8Array, 255, 0],
      [Int8Array, 255, -128],
      [Uint16Array, 65535, 0],
      [Int16Array, 65535, -32768],
      [Float32Array, 1000, -500.25],
      [Int32Array, 2 ** 31 - 1, -(2 ** 30)],
      [Uint32Array, 2 ** 32 - 1, 0],
      [Float64Array, 1e6, -0.5],
    ] as const;
    for (const [Ctor, span, lo] of types) {
      const n = 40 * 40 * 40;
      // Source inside the plane (batch slot 1) so the SIMD path applies; destination in slot 0.
      const src = new (Ctor as unknown as new (b: ArrayBufferLike, o: number, n: number) => NumericArray)(plane.buffer, plane.batches.base + plane.batches.slotBytes, n);
      for (let i = 0; i < n; i++) src[i] = lo + ((i * 2654435761) % span);
      const outPlane = plane.batchView(0, 0, 64 * 64 * 64);
      const outPlain = new Float32Array(64 * 64 * 64);
      const want = new Float32Array(64 * 64 * 64);
      for (const [zn, yn, xn] of [
        [1, 1, 1],
        [3, 5, 15],
        [2, 3, 16],
        [4, 4, 17],
        [5, 7, 31],
        [2, 2, 33],
        [6, 9, 40],
      ]) {
        const sBase = 3 * 1600 + 2 * 40 + 1;
        for (const out of [outPlane, outPlain, want]) out.fill(-7);
        gatherBox(src, sBase, 1600, 40, 1, { data: outPlane, offset: 5, d0: 64 * 64, d1: 64 }, zn, yn, xn);
        gatherBox(src, sBase, 1600, 40, 1, { data: outPlain, offset: 5, d0: 64 * 64, d1: 64 }, zn, yn, xn);
        reference(src, sBase, 1600, 40, 1, want, 5, 64 * 64, 64, zn, yn, xn);
        assert.deepEqual(outPlane, want, `${Ctor.name} ${zn}x${yn}x${xn} (plane)`);
        assert.deepEqual(outPlain, want, `${Ctor.name} ${zn}x${yn}x${xn} (plain)`);
      }
      // Strided rows (F order) take the JS loop.
      outPlane.fill(0);
      want.fill(0);
      gatherBox(src, 7, 1, 40, 1600, { data: outPlane, offset: 0, d0: 64 * 64, d1: 64 }, 3, 4, 5);
      reference(src, 7, 1, 40, 1600, want, 0, 64 * 64, 64, 3, 4, 5);
      assert.deepEqual(outPlane, want, `${Ctor.name} strided`);
    }
  });
});

describe("shared chunk cache", () => {
  it("decodes a chunk once, serves hits, and shares a decode in progress", async () => {
    const plane = DataPlane.create({ cacheBytes: 64 * MiB, batchBytes: 0, batchSlots: 0 });
    const cache = plane.cache!;
    const za = fakeArray("a", "uint8");
    let loads = 0;
    const load = (c: number[]) => async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      return chunkFor(za, c);
    };
    assert.equal(cache.peek(za, [0, 0, 0]), null);
    const [a, b] = await Promise.all([cache.get(za, [0, 0, 0], load([0, 0, 0])), cache.get(za, [0, 0, 0], load([0, 0, 0]))]);
    assert.equal(loads, 1);
    assert.deepEqual(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.length), chunkFor(za, [0, 0, 0]).data);
    assert.equal(a.data.byteOffset, b.data.byteOffset);
    assert.deepEqual(a.stride, [4096, 64, 1]);
    a.release();
    b.release();
    const hit = cache.peek(za, [0, 0, 0]);
    assert.ok(hit);
    hit.release();
    // Another array with the same chunk coordinates is another chunk.
    const other = fakeArray("b", "uint8");
    const c = await cache.get(other, [0, 0, 0], async () => chunkFor(other, [0, 0, 0]));
    assert.notEqual(c.data.byteOffset, a.data.byteOffset);
    assert.equal(c.data[5], chunkFor(other, [0, 0, 0]).data[5]);
    c.release();
    const s = cache.getStats();
    assert.equal(s.misses, 2);
    assert.equal(s.entries, 2);
    assert.equal(s.bytes, 2 * 64 ** 3);
    assert.ok(s.hits >= 2);
  });

  it("a failed decode publishes nothing; the next reader decodes again and sees its own error", async () => {
    const plane = DataPlane.create({ cacheBytes: 16 * MiB, batchBytes: 0, batchSlots: 0 });
    const cache = plane.cache!;
    const za = fakeArray("bad", "uint8");
    let n = 0;
    const failing = async (): Promise<DecodedChunk> => {
      n++;
      await new Promise((r) => setTimeout(r, 5));
      throw new Error(`boom ${n}`);
    };
    const results = await Promise.allSettled([cache.get(za, [1, 0, 0], failing), cache.get(za, [1, 0, 0], failing)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(n, 2); // the waiter retried after the first decode failed
    assert.equal(cache.getStats().entries, 0);
    const ok = await cache.get(za, [1, 0, 0], async () => chunkFor(za, [1, 0, 0]));
    assert.equal(ok.data[3], chunkFor(za, [1, 0, 0]).data[3]);
    ok.release();
    // A decode of the wrong size is refused (never cached).
    await assert.rejects(
      cache.get(za, [2, 0, 0], async () => ({ data: new Uint8Array(10), shape: [10], stride: [1] })),
      /expected 262144/,
    );
  });

  it("evicts within its budget, never a pinned chunk", async () => {
    // 4 pages of 1 MiB = 16 chunks of 256 KiB.
    const plane = DataPlane.create({ cacheBytes: 4 * MiB, batchBytes: 0, batchSlots: 0 });
    const cache = plane.cache!;
    assert.equal(cache.capacityBytes, 4 * MiB);
    const za = fakeArray("e", "uint8");
    const pinned = await cache.get(za, [0, 0, 0], async () => chunkFor(za, [0, 0, 0]));
    for (let i = 1; i < 64; i++) {
      const c = [i % 4, (i >> 2) % 4, i >> 4];
      const l = await cache.get(za, c, async () => chunkFor(za, c));
      assert.equal(l.data[100], chunkFor(za, c).data[100]);
      l.release();
    }
    const s = cache.getStats();
    assert.ok(s.evictions > 0);
    assert.ok(s.bytes <= 4 * MiB && s.entries <= 16, JSON.stringify(s));
    // The pinned chunk still holds its own values (its page was never reused).
    assert.deepEqual(new Uint8Array(pinned.data.buffer, pinned.data.byteOffset, pinned.data.length), chunkFor(za, [0, 0, 0]).data);
    pinned.release();
    // Chunks larger than a page are decoded without caching.
    const big = fakeArray("big", "float64", [128, 128, 128], [128, 128, 128]);
    const bl = await cache.get(big, [0, 0, 0], async () => ({ data: new Float64Array(128 ** 3), shape: [128, 128, 128], stride: [16384, 128, 1] }));
    assert.equal(bl.data.length, 128 ** 3);
    bl.release();
    assert.equal(cache.getStats().bypassed, 1);
  });

  it("a budget of 0 keeps nothing between reads, but concurrent readers share one decode", async () => {
    const plane = DataPlane.create({ cacheBytes: 0, batchBytes: 0, batchSlots: 0, transitBytes: 8 * MiB });
    const cache = plane.cache!;
    assert.equal(cache.capacityBytes, 0);
    const za = fakeArray("t", "uint8");
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      return chunkFor(za, [0, 1, 0]);
    };
    const [a, b] = await Promise.all([cache.get(za, [0, 1, 0], load), cache.get(za, [0, 1, 0], load)]);
    assert.equal(loads, 1);
    assert.equal(a.data.buffer, plane.buffer); // decoded into shared memory (the SIMD gathers read it)
    assert.equal(a.data[77], chunkFor(za, [0, 1, 0]).data[77]);
    a.release();
    assert.equal(cache.getStats().entries, 1); // b still reads it
    b.release();
    assert.equal(cache.getStats().entries, 0);
    assert.equal(cache.peek(za, [0, 1, 0]), null);
    (await cache.get(za, [0, 1, 0], load)).release();
    assert.equal(loads, 2); // not kept
    // A reader that lets go at once (as a copy does) does not take the chunk away from a
    // concurrent reader still waiting for the decode: that one shares it too.
    const quick = cache.get(za, [3, 1, 0], load).then((l) => l.release());
    const waiter = cache.get(za, [3, 1, 0], load);
    await quick;
    const w = await waiter;
    assert.equal(loads, 3);
    assert.equal(w.data[77], chunkFor(za, [0, 1, 0]).data[77]);
    w.release();
    assert.equal(cache.getStats().entries, 0);
  });

  it("threads share one cache: each chunk is decoded once in the process", async () => {
    const plane = DataPlane.create({ cacheBytes: 64 * MiB, batchBytes: 0, batchSlots: 0 });
    // Worker threads run TypeScript through tsx's loader, registered by a preload.
    const preload = `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve("tsx/esm/api"))};register();`;
    const run = () =>
      new Promise<{ decodes: number; sum: number }>((resolve, reject) => {
        const w = new Worker(new URL("./helpers/plane-worker.ts", import.meta.url), { workerData: { init: plane.init() }, execArgv: ["--import", preload] });
        w.once("message", resolve);
        w.once("error", reject);
        w.once("exit", (code) => reject(new Error(`plane worker exited with ${code} before reporting`)));
      });
    const results = await Promise.all([run(), run(), run()]);
    const total = results.reduce((a, r) => a + r.decodes, 0);
    assert.equal(total, 64, `decodes per thread: ${results.map((r) => r.decodes)}`);
    assert.ok(results.every((r) => r.sum === results[0].sum));
    const s = plane.cache!.getStats();
    assert.equal(s.misses, 64);
    assert.equal(s.entries, 64);
  });
});

describe("data plane", () => {
  it("cuts a cache budget beyond 4 GiB with a warning", () => {
    const plane = DataPlane.create({ cacheBytes: 8 * 2 ** 30, batchBytes: 32 * MiB, batchSlots: 4 });
    assert.match(plane.warning ?? "", /cut from 8\.00 GiB/);
    assert.ok(plane.cache!.capacityBytes < 4 * 2 ** 30 && plane.cache!.capacityBytes > 3 * 2 ** 30);
    assert.throws(() => DataPlane.create({ cacheBytes: 0, batchBytes: 2 * 2 ** 30, batchSlots: 4 }), /do not fit/);
  });
});

describe("reads through the plane", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-plane-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("SIMD gathers and WebAssembly resampling equal the JS path bit for bit", async () => {
    const raw = path.join(tmp, "raw");
    const lab = path.join(tmp, "lab");
    await makeRawEM(raw, { shape: [40, 44, 48], levels: 2, chunks: [16, 16, 16], codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } });
    await makeLabelPyramid(lab, { shape: [40, 44, 48], levels: 2, chunks: [16, 16, 16], shapes: [{ kind: "sphere", center: [80, 80, 90], radius: 50 }] });
    const plane = DataPlane.create({ cacheBytes: 16 * MiB, batchBytes: 4 * MiB, batchSlots: 1 });
    const cases: { path: string; scale: number[]; shape: number[]; cls?: string; pad: boolean }[] = [
      { path: raw, scale: [6, 6, 6], shape: [12, 14, 16], pad: true }, // linear, off-grid
      { path: raw, scale: [4, 5, 7], shape: [9, 20, 13], pad: false }, // anisotropic linear, clamped
      { path: raw, scale: [4, 4, 4], shape: [8, 8, 8], pad: true }, // native
      { path: lab, scale: [6, 6, 6], shape: [12, 14, 16], cls: "a", pad: true }, // nearest
    ];
    const r = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
    const [c1, s1] = r(33);
    const [c2, s2] = r(-71);
    const transforms = [
      null,
      [
        [1, 0, 0],
        [0, -1, 0],
        [0, 0, 1],
      ],
      [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
      ],
      [
        [0, 0, -1],
        [0, 1, 0],
        [1, 0, 0],
      ],
      [
        [1, 0, 0],
        [0, c1, -s1],
        [0, s1, c1],
      ], // rotations: the one-pass general sampler
      [
        [c2, 0, s2],
        [0, 1, 0],
        [-s2, 0, c2 * 1.1],
      ],
    ];
    let n = 0;
    for (const c of cases) {
      const img = await CellMapImage.open({ path: c.path, targetScale: c.scale, targetVoxelShape: c.shape, pad: c.pad, targetClass: c.cls });
      const size = c.shape.reduce((a, b) => a * b, 1);
      for (const centre of [
        [80, 88, 96],
        [10, 12, 150],
        [150, 170, 5],
      ]) {
        for (const m of transforms) {
          const js = await img.read(centre, { spatialTransform: m });
          const into = plane.batchView(0, 64, size);
          const viaPlane = await img.read(centre, { spatialTransform: m, store: plane.store, into });
          assert.equal(viaPlane.data, into);
          assert.deepEqual(new Uint32Array(into.slice().buffer), new Uint32Array(js.data.slice().buffer), `${c.path} ${c.scale} at [${centre}] ${JSON.stringify(m)}`);
          n++;
        }
      }
    }
    assert.equal(n, 72);
    releaseSectionMaps(plane.scratch!); // the y/x maps kept for later samples
    assert.equal(plane.scratch!.inUse, 0); // every scratch block returned
  });
});

describe("decoding straight into the cache", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-direct-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("gives zarrita's values for every v2 codec, dtype and order; missing chunks read as the fill value", async () => {
    const cases = [
      { codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }, dtype: "uint8" },
      { codec: { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2 }, dtype: "uint16" },
      { codec: { id: "zstd", level: 3 }, dtype: "float32", order: "F" },
      { codec: { id: "lz4", acceleration: 1 }, dtype: "int16" },
      { codec: null, dtype: "int32" },
      { codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }, dtype: "float64", skipEmptyChunks: true },
      { codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }, dtype: "int64", skipEmptyChunks: true }, // no direct plan (widened by zarrita)
      { codec: { id: "zstd", level: 3 }, dtype: "uint64" }, // no direct plan
      { codec: { id: "gzip", level: 5 }, dtype: "uint8" }, // no direct plan: zarrita decodes
      { codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }, dtype: "uint16", endian: "big" }, // no direct plan
    ] as const;
    for (const [i, c] of cases.entries()) {
      const dir = path.join(tmp, `a${i}`);
      await makeCoordPyramid(dir, { shape: [20, 24, 28], levels: 1, chunks: [8, 8, 8], ...c } as Parameters<typeof makeCoordPyramid>[1]);
      const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [10, 12, 14], pad: true });
      // gzip, big-endian and 64-bit integers go through zarrita; everything else decodes in place.
      const expectDirect = !("endian" in c) && c.codec?.id !== "gzip" && c.dtype !== "int64" && c.dtype !== "uint64";
      assert.equal(img.array.direct !== null, expectDirect, `case ${i}`);
      const plane = DataPlane.create({ cacheBytes: 16 * MiB, batchBytes: 1 * MiB, batchSlots: 1 });
      for (const centre of [
        [40, 48, 56],
        [2, 2, 2],
        [78, 94, 110],
      ]) {
        const js = await img.read(centre);
        const into = plane.batchView(0, 0, 10 * 12 * 14);
        await img.read(centre, { store: plane.store, into });
        assert.deepEqual(new Uint32Array(into.slice().buffer), new Uint32Array(js.data.slice().buffer), `case ${i} at [${centre}]`);
      }
    }
  });

  it("a damaged chunk is CORRUPT_CHUNK naming the array and the chunk", async () => {
    const dir = path.join(tmp, "bad");
    await makeCoordPyramid(dir, { shape: [16, 16, 16], levels: 1, chunks: [8, 8, 8], dtype: "uint8", codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } } as Parameters<
      typeof makeCoordPyramid
    >[1]);
    const chunk = path.join(dir, "s0", "0.0.0");
    const bytes = fs.readFileSync(chunk);
    fs.writeFileSync(chunk, bytes.subarray(0, bytes.length - 7)); // cut short
    const img = await CellMapImage.open({ path: dir, targetScale: [4, 4, 4], targetVoxelShape: [4, 4, 4] });
    const plane = DataPlane.create({ cacheBytes: 16 * MiB, batchBytes: 0, batchSlots: 0 });
    await assert.rejects(img.read([8, 8, 8], { store: plane.store }), (e: unknown) => {
      assert.ok(e instanceof Error && (e as { code?: string }).code === "CORRUPT_CHUNK", String(e));
      assert.match(e.message, /s0: chunk s0\/0\.0\.0/);
      return true;
    });
    assert.equal(plane.cache!.getStats().entries, 0);
  });
});
