import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { deflateSync } from "node:zlib";
import Blosc from "numcodecs/blosc";
import GZip from "numcodecs/gzip";
import LZ4 from "numcodecs/lz4";
import Zlib from "numcodecs/zlib";
import Zstd from "numcodecs/zstd";
import * as zarr from "zarrita";
import { CellMapError } from "../src/errors.js";
import { decodeBlosc } from "../src/zarr/codecs/blosc/decode.js";
import { readBloscHeader } from "../src/zarr/codecs/blosc/header.js";
import { bitunshuffle, unshuffle } from "../src/zarr/codecs/blosc/shuffle.js";
import { decodeNumcodecsLz4, Lz4Codec } from "../src/zarr/codecs/lz4.js";
import { decodeLz4Block, decodeLz4BlockTs, decodeLz4BlockWasm } from "../src/zarr/codecs/lz4-block.js";
import { codecBackends, registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";
import { expectedDecodedSize } from "../src/zarr/codecs/shared.js";
import { DeflateCodec, decodeDeflate, encodeDeflate } from "../src/zarr/codecs/zlib.js";
import { decodeZstd, encodeZstd, useNativeZstd, ZstdCodec, zstdBackend } from "../src/zarr/codecs/zstd.js";

// ---------------------------------------------------------------------------------------------
// Test data

interface Codec {
  encode(d: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(d: Uint8Array): Uint8Array | Promise<Uint8Array>;
}
type CodecClass = { fromConfig(c: Record<string, unknown>): Codec };
const numcodecs = {
  blosc: Blosc as unknown as CodecClass,
  zstd: Zstd as unknown as CodecClass,
  lz4: LZ4 as unknown as CodecClass,
  gzip: GZip as unknown as CodecClass,
  zlib: Zlib as unknown as CodecClass,
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

type Kind = "random" | "smooth" | "constant" | "em";
/** `n` bytes of data, viewed as items of `typesize` bytes (little-endian). */
function makeData(kind: Kind, n: number, typesize: number, seed = 1): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  const items = Math.floor(n / typesize);
  const put = (i: number, v: number) => {
    for (let b = 0; b < typesize && b < 6; b++) out[i * typesize + b] = Math.floor(v / 2 ** (8 * b)) & 255;
  };
  for (let i = 0; i < items; i++) {
    if (kind === "random") for (let b = 0; b < typesize; b++) out[i * typesize + b] = Math.floor(r() * 256);
    else if (kind === "constant") put(i, 0x1234567);
    else if (kind === "smooth") put(i, Math.floor(1000 + 800 * Math.sin(i / 97) + 300 * Math.cos(i / 13)));
    else put(i, Math.floor(120 + 40 * Math.sin(i / 300) + r() * 24));
  }
  for (let i = items * typesize; i < n; i++) out[i] = (i * 7) & 255;
  return out;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, msg: string): void {
  assert.equal(actual.length, expected.length, `${msg}: length`);
  const i = actual.findIndex((v, k) => v !== expected[k]);
  assert.equal(i, -1, `${msg}: first mismatch at byte ${i}`);
}

function bytesOf(data: unknown): Uint8Array {
  const v = data as ArrayBufferView;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function assertCorrupt(p: Promise<unknown> | (() => unknown), msg: string): Promise<void> {
  await assert.rejects(
    async () => (typeof p === "function" ? p() : p),
    (err: unknown) => err instanceof CellMapError && (err.code === "CORRUPT_CHUNK" || err.code === "UNSUPPORTED"),
    msg,
  );
}

// ---------------------------------------------------------------------------------------------
// Reference blosc1 encoder (test-only, deliberately naive) for typesizes numcodecs.js cannot
// produce: numcodecs' WASM blosc always writes typesize 4. Frames are cross-checked by
// decoding them with the WASM c-blosc too.

function refShuffle(block: Uint8Array, T: number): Uint8Array {
  const n = Math.floor(block.length / T);
  const out = block.slice();
  for (let e = 0; e < n; e++) for (let j = 0; j < T; j++) out[j * n + e] = block[e * T + j];
  return out;
}

function refBitshuffle(block: Uint8Array, T: number): Uint8Array {
  const n = Math.floor(block.length / T);
  if (n % 8 !== 0) return block.slice(); // blosc1 (format 2) stores such blocks unshuffled
  const out = block.slice();
  out.fill(0, 0, n * T);
  const rowLen = n / 8;
  for (let e = 0; e < n; e++)
    for (let j = 0; j < T; j++)
      for (let k = 0; k < 8; k++) {
        const bit = (block[e * T + j] >> k) & 1;
        out[(j * 8 + k) * rowLen + (e >> 3)] |= bit << (e & 7);
      }
  return out;
}

type RefCname = "lz4" | "zstd" | "zlib";
const FORMAT: Record<RefCname, number> = { lz4: 1, zlib: 3, zstd: 4 };

async function refCompress(cname: RefCname, data: Uint8Array): Promise<Uint8Array> {
  if (cname === "zlib") return deflateSync(data);
  if (cname === "zstd") return numcodecs.zstd.fromConfig({ id: "zstd", level: 3 }).encode(data);
  const withSize = await numcodecs.lz4.fromConfig({ id: "lz4", acceleration: 1 }).encode(data);
  return withSize.subarray(4); // numcodecs prefixes the raw block with its size
}

async function refBloscEncode(data: Uint8Array, opts: { typesize: number; cname: RefCname; shuffle: 0 | 1 | 2; blocksize: number; split: boolean }): Promise<Uint8Array> {
  const { typesize: T, blocksize } = opts;
  const nbytes = data.length;
  const nblocks = Math.ceil(nbytes / blocksize);
  const leftover = nbytes % blocksize;
  const parts: Uint8Array[] = [];
  const starts: number[] = [];
  let pos = 16 + 4 * nblocks;
  for (let j = 0; j < nblocks; j++) {
    const isLeft = j === nblocks - 1 && leftover > 0;
    let block = data.subarray(j * blocksize, j * blocksize + (isLeft ? leftover : blocksize));
    if (opts.shuffle === 1 && T > 1) block = refShuffle(block, T);
    else if (opts.shuffle === 2 && block.length >= T) block = refBitshuffle(block, T);
    const nsplits = opts.split && T <= 16 && block.length / T >= 128 && !isLeft ? T : 1;
    const neblock = block.length / nsplits;
    starts.push(pos);
    for (let k = 0; k < nsplits; k++) {
      const raw = block.subarray(k * neblock, (k + 1) * neblock);
      let c = await refCompress(opts.cname, raw);
      if (c.length >= neblock) c = raw; // stored raw
      const size = new Uint8Array(4);
      new DataView(size.buffer).setInt32(0, c.length, true);
      parts.push(size, c);
      pos += 4 + c.length;
    }
  }
  const out = new Uint8Array(pos);
  const dv = new DataView(out.buffer);
  const flags = (opts.shuffle === 1 ? 1 : 0) | (opts.shuffle === 2 ? 4 : 0) | (opts.split ? 0 : 0x10) | (FORMAT[opts.cname] << 5);
  out.set([2, 1, flags, T]);
  dv.setInt32(4, nbytes, true);
  dv.setInt32(8, blocksize, true);
  dv.setInt32(12, pos, true);
  starts.forEach((s, j) => dv.setInt32(16 + 4 * j, s, true));
  let p = 16 + 4 * nblocks;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe("lz4 block decoder", () => {
  test("decodes numcodecs' LZ4 output for random, smooth, constant data and tiny inputs", async () => {
    const lz4 = numcodecs.lz4.fromConfig({ id: "lz4", acceleration: 1 });
    for (const kind of ["random", "smooth", "constant", "em"] as Kind[]) {
      for (const n of [0, 1, 5, 13, 100, 4096, 65536 + 17]) {
        const data = makeData(kind, n, 1, n + 3);
        const enc = await lz4.encode(data);
        assertBytes(decodeNumcodecsLz4(enc, n), data, `${kind} n=${n}`);
        // the raw block inside, decoded into a sub-range of a larger buffer
        const dst = new Uint8Array(n + 20).fill(0xee);
        assert.equal(decodeLz4Block(enc, dst, 4, enc.length, 10, 10 + n), 10 + n);
        assertBytes(dst.subarray(10, 10 + n), data, `${kind} n=${n} (offset)`);
        assert.ok(dst.subarray(0, 10).every((v) => v === 0xee) && dst.subarray(10 + n).every((v) => v === 0xee), "no writes outside the range");
      }
    }
  });

  test("malformed blocks throw CORRUPT_CHUNK, never write out of range", async () => {
    const data = makeData("smooth", 5000, 1);
    const enc = (await numcodecs.lz4.fromConfig({ id: "lz4" }).encode(data)).subarray(4);
    const cases: [string, Uint8Array, number][] = [
      ["empty", new Uint8Array(0), 10],
      ["truncated", enc.subarray(0, enc.length >> 1), 5000],
      ["output too small", enc, 4999],
      ["zero offset", new Uint8Array([0x14, 0x41, 0x00, 0x00, 0x00]), 100],
      ["offset before start", new Uint8Array([0x14, 0x41, 0x05, 0x00, 0x00]), 100],
      ["literal length past end", new Uint8Array([0xf0, 0xff, 0xff]), 1000],
      ["truncated offset", new Uint8Array([0x10, 0x41, 0x01]), 100],
    ];
    for (const [name, src, size] of cases) {
      const dst = new Uint8Array(size);
      await assertCorrupt(() => decodeLz4Block(src, dst), name);
    }
    // random corruption: either a CellMapError or a result within bounds
    const r = rng(7);
    for (let it = 0; it < 300; it++) {
      const bad = enc.slice();
      for (let k = 0; k < 3; k++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      const dst = new Uint8Array(5000);
      try {
        assert.ok(decodeLz4Block(bad, dst) <= 5000);
      } catch (err) {
        assert.ok(err instanceof CellMapError && err.code === "CORRUPT_CHUNK", String(err));
      }
    }
  });

  test("the WebAssembly and TypeScript decoders agree byte for byte, and on every damaged block", async () => {
    const lz4 = numcodecs.lz4.fromConfig({ id: "lz4", acceleration: 1 });
    const r = rng(11);
    let damagedOk = 0;
    let damagedErr = 0;
    for (const kind of ["random", "smooth", "constant", "em"] as Kind[]) {
      for (const n of [4096, 20000, 131072]) {
        const data = makeData(kind, n, 1, n + 5);
        const enc = (await lz4.encode(data)).subarray(4);
        const a = new Uint8Array(n + 32).fill(1);
        const b = new Uint8Array(n + 32).fill(1);
        assert.equal(decodeLz4BlockWasm(enc, b, 0, enc.length, 16, 16 + n), decodeLz4BlockTs(enc, a, 0, enc.length, 16, 16 + n));
        assertBytes(b, a, `${kind} n=${n}`);
        // Flipped, inverted and truncated bytes at seeded positions: both succeed with the same
        // bytes, or both throw CORRUPT_CHUNK.
        for (let it = 0; it < 60; it++) {
          const bad = enc.slice(0, it % 3 === 2 ? Math.floor(r() * enc.length) : enc.length);
          const at = Math.floor(r() * bad.length);
          if (it % 3 === 0) bad[at] ^= 1 << Math.floor(r() * 8);
          if (it % 3 === 1) bad[at] = ~bad[at] & 255;
          const outs = [decodeLz4BlockTs, decodeLz4BlockWasm].map((fn) => {
            const dst = new Uint8Array(n);
            try {
              return { end: fn(bad, dst), dst };
            } catch (err) {
              assert.ok(err instanceof CellMapError && err.code === "CORRUPT_CHUNK", String(err));
              return null;
            }
          });
          assert.equal(outs[0] === null, outs[1] === null, `${kind} n=${n} damage ${it}: one decoder threw, the other did not`);
          if (outs[0] && outs[1]) {
            assert.equal(outs[1].end, outs[0].end);
            assertBytes(outs[1].dst, outs[0].dst, `${kind} n=${n} damage ${it}`);
            damagedOk++;
          } else damagedErr++;
        }
      }
    }
    assert.ok(damagedOk > 0 && damagedErr > 0, `${damagedOk} decoded, ${damagedErr} rejected`);
  });

  test("numcodecs lz4 wrapper checks the size prefix", async () => {
    const data = makeData("em", 3000, 1);
    const enc = await numcodecs.lz4.fromConfig({ id: "lz4" }).encode(data);
    await assertCorrupt(() => decodeNumcodecsLz4(enc, 2999), "expected size mismatch");
    const wrong = enc.slice();
    wrong[0] ^= 1; // size prefix off by one
    await assertCorrupt(() => decodeNumcodecsLz4(wrong), "size prefix mismatch");
    const huge = enc.slice();
    huge[3] = 0x40; // 1 GiB claimed
    await assertCorrupt(() => decodeNumcodecsLz4(huge), "impossible size");
    await assertCorrupt(() => decodeNumcodecsLz4(enc.subarray(0, 3)), "too short");
  });

  test("Lz4Codec round-trips both ways with numcodecs", async () => {
    const data = makeData("em", 20000, 1);
    const ours = new Lz4Codec(1, data.length);
    const theirs = numcodecs.lz4.fromConfig({ id: "lz4", acceleration: 1 });
    assertBytes(await ours.decode(await theirs.encode(data)), data, "numcodecs -> ours");
    assertBytes(await theirs.decode(await ours.encode(data)), data, "ours -> numcodecs");
  });
});

describe("blosc decoder", () => {
  test("byte/bit unshuffle match the naive reference at any typesize, size and alignment", () => {
    for (const typesize of [1, 2, 3, 4, 5, 8, 12, 16]) {
      for (const size of [8 * typesize, 32 * typesize, 96 * typesize + 3, 1024 * typesize, 1000 * typesize + typesize - 1]) {
        const data = makeData("random", size, 1, size + typesize);
        for (const [sOff, dOff] of [
          [0, 0],
          [1, 3],
          [4, 2],
          [8, 8],
        ]) {
          for (const [name, fwd, inv] of [
            ["shuffle", refShuffle, unshuffle],
            ["bitshuffle", refBitshuffle, bitunshuffle],
          ] as const) {
            const shuffled = fwd(data, typesize);
            const srcBuf = new Uint8Array(size + sOff + 4).fill(0xaa);
            srcBuf.set(shuffled, sOff);
            const dstBuf = new Uint8Array(size + dOff + 4).fill(0x55);
            inv(srcBuf, sOff, dstBuf, dOff, typesize, size);
            assertBytes(dstBuf.subarray(dOff, dOff + size), data, `${name} typesize=${typesize} size=${size} offsets=${sOff},${dOff}`);
            assert.ok(dstBuf.subarray(0, dOff).every((v) => v === 0x55) && dstBuf.subarray(dOff + size).every((v) => v === 0x55), "no writes outside the block");
          }
        }
      }
    }
  });

  test("decodes numcodecs' blosc for every cname, shuffle and blocksize", async () => {
    let frames = 0;
    let memcpyed = 0;
    let multiBlock = 0;
    for (const cname of ["lz4", "lz4hc", "zstd", "zlib", "blosclz"]) {
      for (const shuffle of [0, 1, 2]) {
        for (const blocksize of [0, 128, 1000, 4096]) {
          for (const kind of ["random", "smooth", "constant", "em"] as Kind[]) {
            for (const n of [12345, 20000]) {
              const data = makeData(kind, n, 4, n);
              const enc = await numcodecs.blosc.fromConfig({ id: "blosc", cname, clevel: 5, shuffle, blocksize }).encode(data);
              const h = readBloscHeader(enc);
              if (h.flags & 2) memcpyed++;
              if (h.blocksize < h.nbytes) multiBlock++;
              assertBytes(await decodeBlosc(enc, n), data, `${cname} shuffle=${shuffle} blocksize=${blocksize} ${kind} n=${n}`);
              frames++;
            }
          }
        }
      }
    }
    assert.ok(memcpyed > 0, "some frames were memcpy'd (incompressible data)");
    assert.ok(multiBlock > frames / 2, "most frames have several blocks");
  });

  test("memcpy'd frames: clevel 0, incompressible and tiny buffers", async () => {
    for (const [clevel, kind, n] of [
      [0, "smooth", 5000],
      [5, "random", 70000],
      [5, "smooth", 100],
    ] as [number, Kind, number][]) {
      const data = makeData(kind, n, 1, 3);
      const enc = await numcodecs.blosc.fromConfig({ id: "blosc", cname: "lz4", clevel, shuffle: 1 }).encode(data);
      assert.ok(readBloscHeader(enc).flags & 2, `clevel=${clevel} ${kind} n=${n} is memcpy'd`);
      assertBytes(await decodeBlosc(enc, n), data, `memcpy clevel=${clevel} ${kind}`);
    }
  });

  test("bytes after a complete frame are ignored, as c-blosc does (z5py writes 16); a frame shorter than its cbytes raises", async () => {
    const data = makeData("em", 30000, 2);
    const frames: [string, Uint8Array][] = [];
    for (const cname of ["lz4", "zstd", "zlib", "blosclz"]) {
      for (const shuffle of [1, 2])
        frames.push([`${cname} shuffle=${shuffle}`, await numcodecs.blosc.fromConfig({ id: "blosc", cname, clevel: 5, shuffle, blocksize: 4096 }).encode(data)]);
    }
    frames.push(["memcpy'd", await numcodecs.blosc.fromConfig({ id: "blosc", cname: "lz4", clevel: 0, shuffle: 1 }).encode(data)]);
    assert.ok(readBloscHeader(frames[frames.length - 1][1]).flags & 2, "the clevel 0 frame is memcpy'd");
    for (const [what, enc] of frames) {
      assert.equal(readBloscHeader(enc).cbytes, enc.length, `${what}: numcodecs writes no trailing bytes`);
      for (const extra of [1, 16, 1000]) {
        const padded = new Uint8Array(enc.length + extra).fill(0xa5);
        padded.set(enc);
        assertBytes(await decodeBlosc(padded, data.length), data, `${what} followed by ${extra} bytes`);
        assertBytes(await decodeBlosc(padded, data.length, new Uint8Array(data.length)), data, `${what} followed by ${extra} bytes, into a slot`);
      }
      for (const short of [1, 3, 16]) {
        await assert.rejects(
          decodeBlosc(enc.subarray(0, enc.length - short), data.length),
          (e: unknown) => e instanceof CellMapError && e.code === "CORRUPT_CHUNK" && /header says the frame is \d+ bytes but the chunk has only \d+/.test(e.message),
          `${what} cut by ${short} bytes`,
        );
      }
    }
  });

  test("typesizes 1, 2, 3, 4, 8, 16, 17 (reference frames, cross-checked against WASM c-blosc)", async () => {
    const wasm = numcodecs.blosc.fromConfig({ id: "blosc" });
    for (const typesize of [1, 2, 3, 4, 8, 16, 17]) {
      for (const shuffle of [0, 1, 2] as const) {
        for (const cname of ["lz4", "zstd", "zlib"] as RefCname[]) {
          for (const [blocksize, split] of [
            [4096, true],
            [4096, false],
            [776, true],
            [256 * typesize, true],
          ] as [number, boolean][]) {
            for (const kind of ["smooth", "em"] as Kind[]) {
              const n = 3 * blocksize + 8 * typesize + 5; // several blocks plus a ragged leftover
              const data = makeData(kind, n, typesize, typesize * 31 + shuffle);
              const bs = blocksize - (blocksize % typesize);
              const frame = await refBloscEncode(data, { typesize, cname, shuffle, blocksize: bs, split });
              const label = `typesize=${typesize} shuffle=${shuffle} ${cname} blocksize=${bs} split=${split} ${kind}`;
              assertBytes(await wasm.decode(frame), data, `${label} (WASM c-blosc accepts the reference frame)`);
              assertBytes(await decodeBlosc(frame, n), data, label);
            }
          }
        }
      }
    }
  });

  test("zstd inner streams also decode on the WASM fallback", async () => {
    const data = makeData("em", 50000, 1);
    const enc = await numcodecs.blosc.fromConfig({ id: "blosc", cname: "zstd", clevel: 5, shuffle: 2, blocksize: 8192 }).encode(data);
    useNativeZstd(false);
    try {
      assert.equal(zstdBackend(), "wasm");
      assertBytes(await decodeBlosc(enc, data.length), data, "wasm zstd inner");
    } finally {
      useNativeZstd(true);
    }
  });

  test("malformed frames throw instead of returning garbage", async () => {
    const data = makeData("smooth", 30000, 4);
    const enc = await numcodecs.blosc.fromConfig({ id: "blosc", cname: "lz4", clevel: 5, shuffle: 1, blocksize: 4096 }).encode(data);
    assert.equal(readBloscHeader(enc).flags & 2, 0, "a compressed (not memcpy'd) frame");
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = enc.slice();
      f(b);
      return b;
    };
    await assertCorrupt(decodeBlosc(enc.subarray(0, 10)), "shorter than the header");
    await assertCorrupt(decodeBlosc(enc.subarray(0, enc.length - 1)), "truncated frame");
    await assertCorrupt(decodeBlosc(enc, 30001), "nbytes differs from the expected chunk size");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(4, 40000, true))), "nbytes too large for the data");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(4, -5, true))), "negative nbytes");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(8, 0, true))), "zero blocksize");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(8, 40000, true))), "blocksize larger than nbytes");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(12, 1 << 30, true))), "cbytes too large");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(16, 1 << 30, true))), "block offset outside the frame");
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(16, 3, true))), "block offset inside the header");
    await assertCorrupt(decodeBlosc(mutate((b) => (b[0] = 3))), "unknown format version");
    await assertCorrupt(decodeBlosc(mutate((b) => (b[2] |= 8))), "flag from the future");
    await assertCorrupt(decodeBlosc(mutate((b) => (b[2] |= 2))), "memcpy flag on a compressed frame");
    const first = dv(enc).getInt32(16, true);
    await assertCorrupt(decodeBlosc(mutate((b) => dv(b).setInt32(first, 1 << 29, true))), "split size past the end");
    // random corruption: a CellMapError, or output of the right size (raw splits carry no checksum)
    const r = rng(11);
    for (let it = 0; it < 300; it++) {
      const bad = enc.slice();
      for (let k = 0; k < 4; k++) bad[16 + Math.floor(r() * (bad.length - 16))] = Math.floor(r() * 256);
      try {
        assert.equal((await decodeBlosc(bad, data.length)).length, data.length);
      } catch (err) {
        assert.ok(err instanceof CellMapError, String(err));
      }
    }
  });
});

describe("gzip / zlib / zstd codecs", () => {
  const sizes = [0, 1, 1000, 70000];
  test("gzip and zlib round-trip with numcodecs (fflate) both ways", async () => {
    for (const format of ["gzip", "zlib"] as const) {
      const theirs = numcodecs[format].fromConfig({ id: format, level: 5 });
      for (const n of sizes) {
        for (const kind of ["random", "em", "constant"] as Kind[]) {
          const data = makeData(kind, n, 1, n);
          const ours = new DeflateCodec(format, 5, n);
          assertBytes(await ours.decode(await theirs.encode(data)), data, `${format} numcodecs -> ours n=${n} ${kind}`);
          assertBytes(await theirs.decode(await ours.encode(data)), data, `${format} ours -> numcodecs n=${n} ${kind}`);
        }
      }
    }
  });

  test("gzip/zlib reject truncated, wrong-format and wrong-size input", async () => {
    const data = makeData("em", 10000, 1);
    const gz = encodeDeflate("gzip", data, 5);
    await assertCorrupt(() => decodeDeflate("gzip", gz.subarray(0, gz.length - 10)), "truncated gzip");
    await assertCorrupt(() => decodeDeflate("zlib", gz), "gzip given to zlib");
    await assertCorrupt(() => decodeDeflate("gzip", gz, 9999), "inflates past the chunk size");
    await assertCorrupt(() => decodeDeflate("gzip", gz, 10001), "shorter than the chunk size");
  });

  test("zstd round-trips with numcodecs both ways, on zstd-napi and on the WASM fallback", async () => {
    const theirs = numcodecs.zstd.fromConfig({ id: "zstd", level: 3 });
    for (const native of [true, false]) {
      useNativeZstd(native);
      try {
        assert.equal(zstdBackend(), native ? "zstd-napi" : "wasm");
        for (const n of sizes) {
          for (const kind of ["random", "em", "constant"] as Kind[]) {
            const data = makeData(kind, n, 1, n);
            const ours = new ZstdCodec(3, native, n);
            assertBytes(await ours.decode(await theirs.encode(data)), data, `zstd(native=${native}) numcodecs -> ours n=${n}`);
            assertBytes(await theirs.decode(await ours.encode(data)), data, `zstd(native=${native}) ours -> numcodecs n=${n}`);
          }
        }
      } finally {
        useNativeZstd(true);
      }
    }
  });

  test("zstd handles multi-frame input and rejects bad input", async () => {
    const a = makeData("em", 5000, 1, 1);
    const b = makeData("smooth", 3000, 1, 2);
    const two = new Uint8Array([...(await encodeZstd(a)), ...(await encodeZstd(b))]);
    assertBytes(await decodeZstd(two, 8000), new Uint8Array([...a, ...b]), "two frames");
    const one = await encodeZstd(a, 3);
    await assertCorrupt(decodeZstd(one.subarray(0, one.length - 5)), "truncated");
    await assertCorrupt(decodeZstd(one, 4999), "wrong expected size");
    await assertCorrupt(decodeZstd(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), "not zstd");
  });
});

describe("expected chunk size from metadata", () => {
  test("derived only when the codec directly follows size-preserving codecs", () => {
    const meta = (codecs: string[], dataType = "uint16", shape = [4, 5]) => ({ dataType, shape, codecs: codecs.map((name) => ({ name })) });
    assert.equal(expectedDecodedSize("blosc", meta(["bytes", "blosc"])), 40);
    assert.equal(expectedDecodedSize("blosc", meta(["transpose", "bytes", "blosc", "crc32c"], "float64")), 160);
    assert.equal(expectedDecodedSize("numcodecs.zstd", meta(["numcodecs.delta", "numcodecs.zstd"], "v2:U3")), 240);
    assert.equal(expectedDecodedSize("gzip", meta(["bytes", "crc32c", "gzip"])), undefined);
    assert.equal(expectedDecodedSize("gzip", meta(["bytes", "gzip", "gzip"])), undefined);
    assert.equal(expectedDecodedSize("gzip", meta(["vlen-utf8", "gzip"], "string")), undefined);
  });
});

describe("registry", () => {
  const NAMES = ["blosc", "zstd", "gzip", "zlib", "lz4", "numcodecs.blosc", "numcodecs.zstd", "numcodecs.gzip", "numcodecs.zlib", "numcodecs.lz4"];

  test("registerFastCodecs replaces the entries (idempotently); registerWasmCodecs restores them", async () => {
    registerWasmCodecs();
    const before = NAMES.map((n) => zarr.registry.get(n));
    assert.deepEqual(codecBackends(), { blosc: "wasm", zstd: "wasm", gzip: "zarrita", zlib: "zarrita", lz4: "wasm", "blosc-zstd": "wasm" });
    registerFastCodecs();
    const after = NAMES.map((n) => zarr.registry.get(n));
    after.forEach((l, i) => assert.notEqual(l, before[i], `${NAMES[i]} replaced`));
    registerFastCodecs();
    assert.deepEqual(
      NAMES.map((n) => zarr.registry.get(n)),
      after,
      "idempotent",
    );
    assert.deepEqual(codecBackends(), { blosc: "ts", zstd: "zstd-napi", gzip: "node:zlib", zlib: "node:zlib", lz4: "ts", "blosc-zstd": "zstd-napi" });
    const entry = (await zarr.registry.get("numcodecs.blosc")!()) as unknown as { fromConfig: (c: unknown, m: unknown) => unknown };
    assert.ok(entry.fromConfig({ cname: "zstd", clevel: 3, shuffle: 2 }, { dataType: "uint8", shape: [4], codecs: [] }) instanceof Object);
    registerWasmCodecs();
    assert.deepEqual(
      NAMES.map((n) => zarr.registry.get(n)),
      before,
      "restored",
    );
    registerFastCodecs();
  });

  test("CELLMAP_CODECS=wasm makes registerFastCodecs a no-op", () => {
    registerWasmCodecs();
    process.env.CELLMAP_CODECS = "wasm";
    try {
      registerFastCodecs();
      assert.equal(codecBackends().blosc, "wasm");
    } finally {
      delete process.env.CELLMAP_CODECS;
    }
    registerFastCodecs();
    assert.equal(codecBackends().blosc, "ts");
  });

  test("bad codec configuration is reported as INVALID_METADATA", async () => {
    registerFastCodecs();
    const entry = (await zarr.registry.get("blosc")!()) as unknown as { fromConfig: (c: unknown, m: unknown) => unknown };
    assert.throws(
      () => entry.fromConfig({ cname: "lzma", clevel: 5 }, { dataType: "uint8", shape: [4], codecs: [] }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_METADATA",
    );
    assert.throws(
      () => entry.fromConfig({ cname: "lz4", clevel: 5, shuffle: "sideways" }, { dataType: "uint8", shape: [4], codecs: [] }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_METADATA",
    );
  });

  test("zarrita v3 arrays with [bytes, blosc] / [bytes, zstd] / [bytes, gzip] round-trip with our codecs", async () => {
    registerFastCodecs();
    const cases: [string, zarr.CodecMetadata[], "uint8" | "uint16" | "float32" | "float64"][] = [
      ["blosc lz4 shuffle", [{ name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "shuffle", typesize: 2, blocksize: 0 } }], "uint16"],
      ["blosc zstd bitshuffle", [{ name: "blosc", configuration: { cname: "zstd", clevel: 3, shuffle: "bitshuffle", typesize: 1, blocksize: 0 } }], "uint8"],
      ["blosc zlib noshuffle", [{ name: "blosc", configuration: { cname: "zlib", clevel: 5, shuffle: "noshuffle", typesize: 4, blocksize: 0 } }], "float32"],
      ["zstd", [{ name: "zstd", configuration: { level: 3, checksum: true } }], "float64"],
      ["gzip (zarrita cannot encode it)", [{ name: "gzip", configuration: { level: 5 } }], "uint16"],
      ["zlib", [{ name: "zlib", configuration: { level: 5 } }], "uint8"],
      ["lz4", [{ name: "lz4", configuration: { acceleration: 1 } }], "float32"],
    ];
    for (const [label, compressors, dtype] of cases) {
      const store = new Map<string, Uint8Array>();
      const arr = await zarr.create(store, {
        shape: [30, 40, 20],
        chunkShape: [16, 16, 16],
        dtype,
        codecs: [{ name: "bytes", configuration: { endian: "little" } }, ...compressors],
      });
      const n = 30 * 40 * 20;
      const src = makeData("em", n * 8, 8, 5);
      const values =
        dtype === "uint8"
          ? new Uint8Array(src.buffer, 0, n)
          : dtype === "uint16"
            ? new Uint16Array(src.buffer, 0, n)
            : dtype === "float32"
              ? new Float32Array(n).map((_, i) => Math.sin(i / 50) * 100)
              : new Float64Array(n).map((_, i) => Math.cos(i / 70) * 1e6);
      await zarr.set(arr, null, { data: values, shape: [30, 40, 20], stride: [800, 20, 1] } as never);
      const got = await zarr.get(arr, null);
      const a = bytesOf(got.data);
      const b = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      assertBytes(a, b, label);
      // the stored chunks are genuine: zarrita's default (WASM) codecs read them too
      registerWasmCodecs();
      try {
        if (!label.startsWith("gzip") && label !== "zlib") {
          const again = await zarr.get(await zarr.open.v3(store, { kind: "array" }), null);
          assertBytes(bytesOf(again.data), b, `${label} (WASM read-back)`);
        }
      } finally {
        registerFastCodecs();
      }
    }
  });

  test("zarrita v2 array with a gzip compressor: write and read through our codecs", async () => {
    registerFastCodecs();
    const store = new Map<string, Uint8Array>();
    const enc = new TextEncoder();
    store.set(
      "/.zarray",
      enc.encode(
        JSON.stringify({ zarr_format: 2, shape: [50, 60], chunks: [32, 32], dtype: "<u2", compressor: { id: "gzip", level: 5 }, fill_value: 0, order: "C", filters: null }),
      ),
    );
    const arr = await zarr.open.v2(store, { kind: "array" });
    const values = new Uint16Array(50 * 60).map((_, i) => (i * 37) % 65521);
    await zarr.set(arr, null, { data: values, shape: [50, 60], stride: [60, 1] } as never);
    const got = await zarr.get(arr, null);
    assert.deepEqual(Array.from(got.data as Uint16Array), Array.from(values));
    // chunk files are plain gzip streams numcodecs can read
    const chunk = store.get("/0.0")!;
    assert.equal((await numcodecs.gzip.fromConfig({ id: "gzip" }).decode(chunk)).length, 32 * 32 * 2);
  });

  test("a chunk whose blosc frame has the wrong decoded size fails the read", async () => {
    registerFastCodecs();
    const store = new Map<string, Uint8Array>();
    const arr = await zarr.create(store, {
      shape: [8, 8],
      chunkShape: [8, 8],
      dtype: "uint8",
      codecs: [
        { name: "bytes", configuration: {} },
        { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "noshuffle", typesize: 1, blocksize: 0 } },
      ],
    });
    // a valid blosc frame for 60 bytes instead of 64
    const wrong = await numcodecs.blosc.fromConfig({ id: "blosc", cname: "lz4", clevel: 5, shuffle: 0 }).encode(new Uint8Array(60).fill(3));
    store.set("/c/0/0", wrong);
    await assert.rejects(zarr.get(arr, null), (e: unknown) => {
      const cause = (e as { cause?: unknown }).cause;
      return cause instanceof CellMapError && cause.code === "CORRUPT_CHUNK" && /expected 64/.test(cause.message);
    });
  });

  test("works inside a worker thread", async () => {
    const data = makeData("em", 40000, 1);
    const frame = await numcodecs.blosc.fromConfig({ id: "blosc", cname: "zstd", clevel: 3, shuffle: 2 }).encode(data);
    const regUrl = new URL("../src/zarr/codecs/register.ts", import.meta.url).href;
    const bloscUrl = new URL("../src/zarr/codecs/blosc/decode.ts", import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      (async () => {
        // test-only: let the worker import the TypeScript sources
        (await import("tsx/esm/api")).register();
        const reg = await import(workerData.regUrl);
        const { decodeBlosc } = await import(workerData.bloscUrl);
        reg.registerFastCodecs();
        const out = await decodeBlosc(workerData.frame, workerData.n);
        parentPort.postMessage({ backends: reg.codecBackends(), out });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
    `;
    const worker = new Worker(code, { eval: true, workerData: { regUrl, bloscUrl, frame, n: data.length } });
    const msg = await new Promise<{ backends?: Record<string, string>; out?: Uint8Array; error?: string }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    await worker.terminate();
    assert.equal(msg.error, undefined, msg.error);
    assert.equal(msg.backends?.blosc, "ts");
    assert.equal(msg.backends?.zstd, "zstd-napi");
    assertBytes(msg.out!, data, "decoded in a worker");
  });
});
