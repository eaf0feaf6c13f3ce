/**
 * Codec-only decode throughput: our fast codecs vs zarrita's defaults (numcodecs WASM, and
 * DecompressionStream for gzip), on 64³ uint8 EM-like chunks (smooth structure + noise).
 *
 * Blosc frames are built the way Python numcodecs writes uint8 data (typesize 1, 128 KiB
 * blocks); numcodecs.js' own encoder always writes typesize 4, which real uint8 arrays never
 * have. Inner streams come from numcodecs' LZ4/zstd. Every frame is checked to decode
 * identically with both implementations before timing.
 *
 * Run alone: `node --import tsx bench/codecs.ts`.
 */

import { pathToFileURL } from "node:url";
import GZip from "numcodecs/gzip";
import LZ4 from "numcodecs/lz4";
import Zstd from "numcodecs/zstd";
import { registry } from "zarrita";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { decodeBlosc } from "../src/zarr/codecs/blosc/decode.js";
import { setLz4Backend } from "../src/zarr/codecs/lz4-block.js";
import { codecBackends, registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";

/** One measurement: decoded megabytes (1e6 bytes) per second. */
export interface Row {
  name: string;
  variant: string;
  mbPerS: number;
}

interface AnyCodec {
  encode(d: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(d: Uint8Array): Uint8Array | Promise<Uint8Array>;
}
type AnyClass = { fromConfig(c: Record<string, unknown>): AnyCodec };

const SIDE = 64;
const CHUNK = SIDE ** 3;
const NCHUNKS = 6;

/** Deterministic EM-like 64³ uint8 chunk: smooth blobs + gradient + gaussian noise (sd `sd`). */
function emChunk(seed: number, sd = 6): Uint8Array {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const out = new Uint8Array(CHUNK);
  const ph = [rand() * 6, rand() * 6, rand() * 6];
  for (let z = 0, i = 0; z < SIDE; z++)
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++, i++) {
        const smooth = 35 * Math.sin(x / 9 + ph[0]) * Math.cos(y / 11 + ph[1]) + 20 * Math.sin(z / 7 + ph[2] + x / 23);
        const noise = sd * Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
        out[i] = Math.max(0, Math.min(255, Math.round(128 + smooth + 0.5 * z + noise)));
      }
  return out;
}

/** Forward bitshuffle for typesize 1 (only used to build the benchmark frames). */
function bitshuffle1(block: Uint8Array): Uint8Array {
  const n = block.length - (block.length % 8);
  const out = block.slice();
  out.fill(0, 0, n);
  const row = n / 8;
  for (let e = 0; e < n; e++) {
    const v = block[e];
    for (let k = 0; k < 8; k++) out[k * row + (e >> 3)] |= ((v >> k) & 1) << (e & 7);
  }
  return out;
}

/** A blosc1 frame with typesize 1 and one stream per block, as c-blosc writes uint8 data. */
async function bloscFrame(data: Uint8Array, cname: "lz4" | "zstd", bitshuffle: boolean): Promise<Uint8Array> {
  const blocksize = 128 * 1024;
  const nblocks = Math.ceil(data.length / blocksize);
  const inner = cname === "lz4" ? (LZ4 as unknown as AnyClass).fromConfig({ id: "lz4", acceleration: 1 }) : (Zstd as unknown as AnyClass).fromConfig({ id: "zstd", level: 3 });
  const parts: Uint8Array[] = [];
  let pos = 16 + 4 * nblocks;
  const starts: number[] = [];
  for (let j = 0; j < nblocks; j++) {
    let block = data.subarray(j * blocksize, Math.min(data.length, (j + 1) * blocksize));
    if (bitshuffle) block = bitshuffle1(block);
    let c = await inner.encode(block);
    if (cname === "lz4") c = c.subarray(4); // strip numcodecs' size prefix: blosc stores raw blocks
    if (c.length >= block.length) c = block;
    const len = new Uint8Array(4);
    new DataView(len.buffer).setInt32(0, c.length, true);
    starts.push(pos);
    parts.push(len, c);
    pos += 4 + c.length;
  }
  const out = new Uint8Array(pos);
  const dv = new DataView(out.buffer);
  const flags = (bitshuffle ? 0x4 : 0x1) | (cname === "zstd" ? 0x10 : 0) | ((cname === "lz4" ? 1 : 4) << 5);
  out.set([2, 1, flags, 1]);
  dv.setInt32(4, data.length, true);
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

interface Case {
  name: string;
  /** zarrita registry name and configuration. */
  codec: string;
  config: Record<string, unknown>;
  frames: Uint8Array[];
  /** The decoded chunks, when not the default sd-6 set. */
  chunks?: Uint8Array[];
}

async function decoderFor(c: Case): Promise<AnyCodec> {
  const entry = (await registry.get(c.codec)!()) as unknown as {
    fromConfig(config: unknown, meta: unknown): AnyCodec;
  };
  return entry.fromConfig(c.config, { dataType: "uint8", shape: [SIDE, SIDE, SIDE], codecs: [{ name: "bytes" }, { name: c.codec }], fillValue: 0 });
}

/** Decodes all frames repeatedly for about `ms` milliseconds; returns decoded MB/s. */
async function time(codec: AnyCodec, frames: Uint8Array[], ms: number): Promise<number> {
  for (const f of frames) await codec.decode(f); // warm-up (JIT, WASM instantiation)
  let bytes = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (const f of frames) bytes += (await codec.decode(f)).length;
    t = performance.now();
  }
  return bytes / 1e6 / ((t - t0) / 1000);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Measures decode MB/s of ours ("fast") vs zarrita's default ("wasm", or "zarrita" for
 * gzip's DecompressionStream) for blosc-lz4, blosc-zstd-bitshuffle, zstd and gzip.
 * Leaves the fast codecs registered. Takes a few seconds.
 */
export async function benchCodecs(msPerRun = 400): Promise<Row[]> {
  const chunks = Array.from({ length: NCHUNKS }, (_, i) => emChunk(i + 1));
  const zstd = (Zstd as unknown as AnyClass).fromConfig({ id: "zstd", level: 3 });
  const gzip = (GZip as unknown as AnyClass).fromConfig({ id: "gzip", level: 5 });
  const cases: Case[] = [
    { name: "blosc-lz4", codec: "numcodecs.blosc", config: { cname: "lz4", clevel: 5, shuffle: 1 }, frames: await Promise.all(chunks.map((c) => bloscFrame(c, "lz4", false))) },
    {
      name: "blosc-zstd-bitshuffle",
      codec: "numcodecs.blosc",
      config: { cname: "zstd", clevel: 3, shuffle: 2 },
      frames: await Promise.all(chunks.map((c) => bloscFrame(c, "zstd", true))),
    },
    { name: "zstd", codec: "numcodecs.zstd", config: { level: 3 }, frames: await Promise.all(chunks.map((c) => zstd.encode(c))) },
    { name: "gzip", codec: "numcodecs.gzip", config: { level: 5 }, frames: await Promise.all(chunks.map((c) => gzip.encode(c))) },
  ];
  // LZ4 leaves sd-6 noise uncompressed (streams stored raw); a quieter volume exercises the LZ4 decoder.
  const quiet = Array.from({ length: NCHUNKS }, (_, i) => emChunk(i + 1, 1.5));
  cases.push({
    name: "blosc-lz4, noise sd 1.5",
    codec: "numcodecs.blosc",
    config: { cname: "lz4", clevel: 5, shuffle: 1 },
    frames: await Promise.all(quiet.map((c) => bloscFrame(c, "lz4", false))),
    chunks: quiet,
  });

  const rows: Row[] = [];
  for (const c of cases) {
    registerWasmCodecs();
    const slow = await decoderFor(c);
    registerFastCodecs();
    const fast = await decoderFor(c);
    const expected = c.chunks ?? chunks;
    for (let i = 0; i < expected.length; i++) {
      const [a, b] = [await fast.decode(c.frames[i]), await slow.decode(c.frames[i])];
      if (!sameBytes(a, expected[i]) || !sameBytes(b, expected[i])) throw new Error(`${c.name}: decoders disagree on chunk ${i}`);
    }
    const ratio = (chunks.length * CHUNK) / c.frames.reduce((n, f) => n + f.length, 0);
    rows.push({ name: `${c.name} (ratio ${ratio.toFixed(2)})`, variant: c.name === "gzip" ? "zarrita" : "wasm", mbPerS: await time(slow, c.frames, msPerRun) });
    rows.push({ name: `${c.name} (ratio ${ratio.toFixed(2)})`, variant: "fast", mbPerS: await time(fast, c.frames, msPerRun) });
  }
  registerFastCodecs();
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  registerFastCodecs();
  console.log("backends:", JSON.stringify(codecBackends()));
  const rows = await benchCodecs();
  for (const r of rows) console.log(`${r.name.padEnd(44)} ${r.variant.padEnd(8)} ${r.mbPerS.toFixed(0).padStart(6)} MB/s`);
}

/** Chunk files of a v2 array folder (`/`-separated keys), up to `max`. */
function chunkFiles(dir: string, max: number): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of fs.readdirSync(d).sort()) {
      if (out.length >= max) return;
      if (e.startsWith(".")) continue;
      const p = path.join(d, e);
      if (depth < 2) walk(p, depth + 1);
      else out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}

/** Python numcodecs' c-blosc on the same chunk files (one thread), MB/s, or null when Python is not there. */
function pythonBlosc(files: string[], ms: number): number | null {
  const code = `
import sys, time, json
try:
    import numcodecs
    from numcodecs import Blosc
except Exception:
    print("null"); sys.exit(0)
numcodecs.blosc.set_nthreads(1)
bufs = [open(f, "rb").read() for f in json.loads(sys.argv[1])]
c = Blosc()
for b in bufs: c.decode(b)
n = 0; t = time.perf_counter()
while time.perf_counter() - t < ${ms / 1000}:
    for b in bufs: n += len(c.decode(b))
print(n / (time.perf_counter() - t) / 1e6)`;
  const r = spawnSync("/usr/bin/python3", ["-c", code, JSON.stringify(files)], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const v = Number(r.stdout.trim());
  return Number.isFinite(v) ? v : null;
}

/**
 * Decode MB/s on the real chunks of `jrc_synth-bench.zarr` (raw blosc-zstd, labels blosc-lz4):
 * ours decoding into a cache slot as the loader does (WebAssembly LZ4, and the TypeScript LZ4
 * decoder), ours through zarrita's pipeline (a new array per chunk), zarrita's WASM codecs, and
 * Python numcodecs' c-blosc on the same files (single-threaded), when available.
 */
export async function benchFixtureChunks(fixtures: string, msPerRun = 400): Promise<Row[]> {
  const root = path.join(fixtures, "jrc_synth-bench.zarr", "recon-1");
  const sets = [
    { name: "jrc raw s1, blosc-zstd", dir: path.join(root, "em", "fibsem-uint8", "s1"), cname: "zstd", clevel: 3 },
    { name: "jrc labels s0, blosc-lz4", dir: path.join(root, "labels", "groundtruth", "crop1", "mito", "s0"), cname: "lz4", clevel: 5 },
  ];
  const rows: Row[] = [];
  for (const set of sets) {
    if (!fs.existsSync(set.dir)) continue;
    const files = chunkFiles(set.dir, 48);
    const frames = files.map((f) => new Uint8Array(fs.readFileSync(f)));
    const c: Case = { name: set.name, codec: "numcodecs.blosc", config: { cname: set.cname, clevel: set.clevel, shuffle: 1 }, frames };
    registerWasmCodecs();
    const slow = await decoderFor(c);
    registerFastCodecs();
    const fast = await decoderFor(c);
    for (const f of frames) if (!sameBytes(await fast.decode(f), await slow.decode(f))) throw new Error(`${set.name}: decoders disagree`);
    // The loader's path: decoded straight into a cache slot (no allocation per chunk).
    const slot = new Uint8Array(new SharedArrayBuffer(64 ** 3));
    const intoSlot: AnyCodec = { encode: (d) => d, decode: (f) => decodeBlosc(f, slot.length, slot) };
    rows.push({ name: set.name, variant: "ours, into a cache slot", mbPerS: await time(intoSlot, frames, msPerRun) });
    if (set.cname === "lz4") {
      setLz4Backend("ts");
      rows.push({ name: set.name, variant: "ours, into a slot, ts lz4", mbPerS: await time(intoSlot, frames, msPerRun) });
      setLz4Backend("wasm");
    }
    rows.push({ name: set.name, variant: "ours via zarrita (new array)", mbPerS: await time(fast, frames, msPerRun) });
    rows.push({ name: set.name, variant: "zarrita wasm", mbPerS: await time(slow, frames, msPerRun) });
    const py = pythonBlosc(files, msPerRun * 2);
    if (py !== null) rows.push({ name: set.name, variant: "python c-blosc", mbPerS: py });
  }
  registerFastCodecs();
  return rows;
}
