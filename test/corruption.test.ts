/**
 * Differential corruption fuzz: real chunks (written by the project's writer) are damaged at
 * seeded positions — a flipped bit, an inverted byte range, a truncation — and read through
 * every decode path: the fast codecs with and without the direct decode into cache slots, the
 * TypeScript LZ4 backend, the zstd fallback (numcodecs' WASM zstd), and zarrita's WASM codecs.
 *
 * The rules (see docs/bad-input.md and test/helpers/chunk-roles.ts for which byte is which):
 * - structural damage (sizes, offsets, stream headers, truncation) raises `CORRUPT_CHUNK`
 *   naming the array and the chunk key, on every path;
 * - checksummed formats (gzip, zlib, zstd with a content checksum, a shard index's crc32c)
 *   raise on any damaged payload or checksum byte; a header field no checksum covers decodes
 *   identically or raises;
 * - damage no format can see decodes to a chunk of the right size, identical on every path;
 * - bytes after a complete blosc frame are not damage: c-blosc ignores them (z5py writes 16),
 *   so such a chunk decodes to the clean values on every path (a frame cut short still raises).
 *
 * Deterministic (fixed seeds); `CELLMAP_CORRUPTION_CASES` raises the number of damages per format.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zarr from "zarrita";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { LocalStore } from "../src/store/local.js";
import { crc32c } from "@aws-crypto/crc32c";
import { createZarrArray, type CompressorSpec } from "../src/zarr/write/index.js";
import { type ZarrArray, openZarrArray } from "../src/zarr/array.js";
import { chunkCache } from "../src/zarr/cache.js";
import { setLz4Backend } from "../src/zarr/codecs/lz4-block.js";
import { registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";
import { useNativeZstd } from "../src/zarr/codecs/zstd.js";
import { readRegion } from "../src/zarr/read.js";
import { bloscRoles, gzipRoles, lz4Roles, type Role, shardRoles, zlibRoles, zstdRoles } from "./helpers/chunk-roles.js";

const CASES = Number(process.env.CELLMAP_CORRUPTION_CASES) || 18;
const SHAPE = [8, 32, 64]; // one chunk (or one shard) of uint16: 32 KiB
const INNER = [8, 16, 32]; // inner chunks of the sharded arrays
const N_INNER = 4;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Realistic content: label-like runs on one side (long LZ4 matches), noisy EM-like texture on the other (literals). */
function content(): Uint16Array {
  const r = rng(99);
  const [Z, Y, X] = SHAPE;
  const out = new Uint16Array(Z * Y * X);
  for (let z = 0, i = 0; z < Z; z++)
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++, i++) {
        out[i] = x < 24 ? ((z >> 1) * 7 + (y >> 3) * 3 + (x >> 4)) * 100 : Math.floor(1000 + 300 * Math.sin((x + 2 * y) / 9) + 200 * Math.cos((y - 3 * z) / 7) + r() * 32);
      }
  return out;
}

interface Format {
  name: string;
  zarrFormat: 2 | 3;
  compressor: CompressorSpec | null;
  shards?: boolean;
  /** Roles of each byte of the stored chunk (or shard). */
  roles(bytes: Uint8Array): Role[];
  /** Which optional paths apply. */
  lz4?: boolean;
  zstd?: boolean;
}

const blosc = (cname: "lz4" | "zstd" | "zlib", shuffle: 0 | 1 | 2, blocksize: number): CompressorSpec => ({ id: "blosc", cname, clevel: 5, shuffle, blocksize });

const FORMATS: Format[] = [
  { name: "v2-blosc-lz4", zarrFormat: 2, compressor: blosc("lz4", 1, 16384), roles: (b) => bloscRoles(b, "lz4"), lz4: true },
  { name: "v2-blosc-zstd", zarrFormat: 2, compressor: blosc("zstd", 2, 8192), roles: (b) => bloscRoles(b, "zstd"), zstd: true },
  { name: "v2-blosc-zlib", zarrFormat: 2, compressor: blosc("zlib", 0, 16384), roles: (b) => bloscRoles(b, "zlib") },
  // What numcodecs writes by default: no content checksum (the writer's default writes one).
  { name: "v2-zstd", zarrFormat: 2, compressor: { id: "zstd", level: 3, checksum: false }, roles: zstdRoles, zstd: true },
  { name: "v2-zstd-checksum", zarrFormat: 2, compressor: { id: "zstd", level: 3 }, roles: zstdRoles, zstd: true },
  { name: "v2-gzip", zarrFormat: 2, compressor: { id: "gzip", level: 5 }, roles: (b) => gzipRoles(b.length) },
  { name: "v2-zlib", zarrFormat: 2, compressor: { id: "zlib", level: 5 }, roles: (b) => zlibRoles(b.length) },
  { name: "v2-lz4", zarrFormat: 2, compressor: { id: "lz4", acceleration: 1 }, roles: (b) => lz4Roles(b.length), lz4: true },
  { name: "v3-blosc-zstd", zarrFormat: 3, compressor: blosc("zstd", 1, 16384), roles: (b) => bloscRoles(b, "zstd"), zstd: true },
  {
    name: "v3-sharded-blosc-lz4",
    zarrFormat: 3,
    compressor: blosc("lz4", 1, 0),
    shards: true,
    roles: (b) => shardRoles(b, N_INNER, (c) => bloscRoles(c, "lz4")),
    lz4: true,
  },
  {
    name: "v3-sharded-gzip",
    zarrFormat: 3,
    compressor: { id: "gzip", level: 5 },
    shards: true,
    roles: (b) => shardRoles(b, N_INNER, (c) => gzipRoles(c.length)),
  },
];

// ---------------------------------------------------------------------------------------------
// Decode paths (thread-global state, set before and reset after every read)

interface DecodePath {
  name: string;
  applies(f: Format): boolean;
  set(): void;
}

const PATHS: DecodePath[] = [
  { name: "fast+direct", applies: () => true, set: () => {} },
  { name: "fast, no direct", applies: (f) => f.zarrFormat === 2, set: () => void (process.env.CELLMAP_DIRECT_DECODE = "0") },
  { name: "fast, TS LZ4", applies: (f) => !!f.lz4, set: () => setLz4Backend("ts") },
  { name: "fast, zstd fallback", applies: (f) => !!f.zstd, set: () => useNativeZstd(false) },
  { name: "wasm", applies: () => true, set: () => registerWasmCodecs() },
];

const savedDirect = process.env.CELLMAP_DIRECT_DECODE;
function resetPaths(): void {
  registerFastCodecs();
  setLz4Backend(process.env.CELLMAP_LZ4 === "ts" ? "ts" : "wasm");
  useNativeZstd(true);
  if (savedDirect === undefined) delete process.env.CELLMAP_DIRECT_DECODE;
  else process.env.CELLMAP_DIRECT_DECODE = savedDirect;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-corrupt-"));
after(() => {
  resetPaths();
  fs.rmSync(tmp, { recursive: true, force: true });
});
const root = zarr.root(new LocalStore(tmp));
const DATA = content();

interface Fixture {
  format: Format;
  file: string;
  clean: Uint8Array;
  roles: Role[];
  /** Key of the stored object, as error messages name it. */
  key: string;
}

const fixtures = new Map<string, Fixture>();
before(async () => {
  resetPaths();
  for (const f of FORMATS) {
    const dir = path.join(tmp, f.name);
    const w = await createZarrArray(dir, {
      zarrFormat: f.zarrFormat,
      shape: SHAPE,
      chunks: f.shards ? INNER : SHAPE,
      shards: f.shards ? SHAPE : undefined,
      dtype: "uint16",
      compressor: f.compressor,
    });
    await w.writeAll(DATA);
    const rel = f.zarrFormat === 2 ? "0.0.0" : "c/0/0/0";
    const file = path.join(dir, ...rel.split("/"));
    const clean = new Uint8Array(fs.readFileSync(file));
    fixtures.set(f.name, { format: f, file, clean, roles: f.roles(clean), key: `${f.name}/${rel}` });
  }
});

// ---------------------------------------------------------------------------------------------
// Damage

type Damage = { kind: "flip"; at: number; bit: number } | { kind: "invert"; at: number; len: number } | { kind: "truncate"; by: number };

function describeDamage(d: Damage): string {
  if (d.kind === "flip") return `bit ${d.bit} of byte ${d.at} flipped`;
  if (d.kind === "invert") return `bytes ${d.at}..${d.at + d.len - 1} inverted`;
  return `truncated by ${d.by} bytes`;
}

function applyDamage(clean: Uint8Array, d: Damage): Uint8Array {
  if (d.kind === "truncate") return clean.slice(0, clean.length - d.by);
  const b = clean.slice();
  if (d.kind === "flip") b[d.at] ^= 1 << d.bit;
  else for (let i = d.at; i < d.at + d.len && i < b.length; i++) b[i] = ~b[i] & 255;
  return b;
}

/**
 * What the rules demand of this damage: `raise` if it touches a structural or checksum byte,
 * else the weakest demand among the bytes it touches.
 */
function expectation(fx: Fixture, d: Damage): Role {
  if (d.kind === "truncate") return "raise";
  const touched = d.kind === "flip" ? [fx.roles[d.at]] : fx.roles.slice(d.at, d.at + d.len);
  for (const r of ["raise", "lenient", "free"] as const) if (touched.includes(r)) return r;
  return "checked";
}

/** Seeded damages: a third each of bit flips, inverted ranges and truncations, biased towards headers and trailers. */
function damagesFor(fx: Fixture, seed: number): Damage[] {
  const r = rng(seed);
  const len = fx.clean.length;
  const pos = () => {
    const u = r();
    if (u < 0.35) return Math.floor(r() * Math.min(len, 48)); // headers, block starts, split sizes
    if (u < 0.5) return len - 1 - Math.floor(r() * Math.min(len, fx.format.shards ? 16 * N_INNER + 4 : 12)); // trailers, checksums, shard index
    return Math.floor(r() * len);
  };
  const out: Damage[] = [];
  for (let i = 0; i < CASES; i++) {
    if (i % 3 === 0) out.push({ kind: "flip", at: pos(), bit: Math.floor(r() * 8) });
    else if (i % 3 === 1) out.push({ kind: "invert", at: pos(), len: 1 + Math.floor(r() * 16) });
    else out.push({ kind: "truncate", by: r() < 0.5 ? 1 + Math.floor(r() * 16) : 1 + Math.floor(r() * (len - 1)) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

type Outcome = { ok: true; data: Float32Array } | { ok: false; err: unknown };

/**
 * Runs `read` on decode path `p` with an empty cache: its values, or the error it raised (an
 * assertion inside `read` fails the test instead).
 */
async function onPath(p: DecodePath, read: () => Promise<Float32Array>): Promise<Outcome> {
  p.set();
  chunkCache.clear();
  try {
    return { ok: true, data: await read() };
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return { ok: false, err };
  } finally {
    // A failed read leaves the loads of its other chunks running: let them land before the
    // file changes (the cache would hand their result to the next read).
    while (chunkCache.getStats().inflight > 0) await new Promise((r) => setImmediate(r));
    resetPaths();
  }
}

function readThrough(fx: Fixture, p: DecodePath): Promise<Outcome> {
  return onPath(p, async () => {
    const za: ZarrArray = await openZarrArray(root, fx.format.name, `${tmp}/${fx.format.name}`);
    if (p.name === "wasm") assert.equal(za.direct, null, "with zarrita's WASM codecs registered, zarrita's codecs decode (no direct decode)");
    return (await readRegion(za, [0, 0, 0], SHAPE)).data;
  });
}

function sameData(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const EXPECTED = Float32Array.from(DATA);

/** Checks one damaged chunk on every path; returns whether the paths raised. */
function check(fx: Fixture, d: Damage, want: Role = expectation(fx, d)): Promise<"raised" | "decoded" | "mixed"> {
  return checkBytes(fx, applyDamage(fx.clean, d), describeDamage(d), want);
}

/** Stores `bytes` as the fixture's chunk and checks it on every path against the demand `want`. */
async function checkBytes(fx: Fixture, bytes: Uint8Array, what: string, want: Role, expected = EXPECTED): Promise<"raised" | "decoded" | "mixed"> {
  fs.writeFileSync(fx.file, bytes);
  const label = `${fx.format.name}, ${what} (${want})`;
  const outcomes: [string, Outcome][] = [];
  for (const p of PATHS) if (p.applies(fx.format)) outcomes.push([p.name, await readThrough(fx, p)]);
  fs.writeFileSync(fx.file, fx.clean);
  const show = () =>
    outcomes
      .map(([n, o]) => `  ${n}: ${o.ok ? (sameData(o.data, expected) ? "decoded, intact" : "decoded, different bytes") : String((o.err as Error)?.message ?? o.err)}`)
      .join("\n");
  for (const [name, o] of outcomes) {
    if (o.ok) continue;
    const e = o.err;
    assert.ok(e instanceof CellMapError, `${label}: ${name} threw a ${(e as Error)?.name}, not a CellMapError: ${String(e)}\n${show()}`);
    const codes = want === "raise" ? ["CORRUPT_CHUNK"] : ["CORRUPT_CHUNK", "UNSUPPORTED"];
    assert.ok(codes.includes(e.code), `${label}: ${name} raised ${e.code}\n${show()}`);
    assert.ok(
      e.message.includes(`${tmp}/${fx.format.name}`) && e.message.includes(fx.key),
      `${label}: ${name}: the message must name the array and the chunk key ${fx.key}: ${e.message}`,
    );
    if (fx.format.shards) assert.match(e.message, /inner chunk \d+,\d+,\d+/, `${label}: ${name}: the message names the inner chunk`);
  }
  if (want === "raise") {
    for (const [name, o] of outcomes) assert.ok(!o.ok, `${label}: ${name} did not raise\n${show()}`);
    return "raised";
  }
  if (want === "checked") {
    for (const [name, o] of outcomes) assert.ok(!o.ok || sameData(o.data, expected), `${label}: ${name} decoded different bytes\n${show()}`);
  }
  const ok = outcomes.filter(([, o]) => o.ok);
  if (want === "free") assert.ok(ok.length === 0 || ok.length === outcomes.length, `${label}: the paths disagree (some raise, some decode)\n${show()}`);
  // free and lenient: every path that decodes gives the same bytes (of the right size: the read checks it)
  for (const [name, o] of ok)
    assert.ok(sameData((o as { data: Float32Array }).data, (ok[0][1] as { data: Float32Array }).data), `${label}: ${name} decoded other bytes than ${ok[0][0]}\n${show()}`);
  return ok.length === 0 ? "raised" : ok.length === outcomes.length ? "decoded" : "mixed";
}

// ---------------------------------------------------------------------------------------------

describe("corrupt chunks on every decode path", () => {
  it("clean chunks decode identically on every path", async () => {
    for (const fx of fixtures.values()) {
      for (const p of PATHS) {
        if (!p.applies(fx.format)) continue;
        const o = await readThrough(fx, p);
        assert.ok(o.ok, `${fx.format.name} on ${p.name}: ${o.ok ? "" : String(o.err)}`);
        assert.ok(sameData(o.data, EXPECTED), `${fx.format.name} on ${p.name}: wrong bytes`);
      }
    }
  });

  it("the reported cases: a blosc chunk with its payload inverted, a blosc-lz4 chunk cut short by 7 bytes", async () => {
    for (const name of ["v2-blosc-lz4", "v2-blosc-zstd", "v2-blosc-zlib", "v3-blosc-zstd"]) {
      const fx = fixtures.get(name)!;
      const dv = new DataView(fx.clean.buffer, fx.clean.byteOffset);
      const payload = 16 + 4 * Math.ceil(dv.getInt32(4, true) / dv.getInt32(8, true)); // header and block starts intact
      await check(fx, { kind: "invert", at: payload, len: fx.clean.length - payload }, "raise");
      await check(fx, { kind: "truncate", by: 7 }, "raise");
    }
  });

  it("a damaged shard index raises on every path, naming the shard and the inner chunk", async () => {
    for (const name of ["v3-sharded-blosc-lz4", "v3-sharded-gzip"]) {
      const fx = fixtures.get(name)!;
      const index = fx.clean.length - (16 * N_INNER + 4);
      await check(fx, { kind: "flip", at: index + 3, bit: 5 }, "raise"); // an offset
      await check(fx, { kind: "flip", at: index + 16 + 8, bit: 0 }, "raise"); // a length
      await check(fx, { kind: "flip", at: fx.clean.length - 2, bit: 1 }, "raise"); // the checksum itself
      await check(fx, { kind: "invert", at: index + 32, len: 16 }, "raise"); // a whole entry
      // an entry only half marked missing, under a valid checksum (a writer's bug, not damage)
      const bad = fx.clean.slice();
      const dv = new DataView(bad.buffer, index);
      dv.setBigUint64(16, 0xffffffffffffffffn, true);
      dv.setUint32(16 * N_INNER, crc32c(bad.subarray(index, index + 16 * N_INNER)), true);
      await checkBytes(fx, bad, "index entry 1 with only its offset marked missing", "raise");
      fs.writeFileSync(fx.file, fx.clean);
    }
  });

  it("LZ4 blocks breaking the format's end-of-block rules raise on every path (a valid one decodes the same everywhere)", async () => {
    const n = 2 * SHAPE.reduce((a, b) => a * b, 1);
    // `lit` literals (0, 1, 2, ...), a match of `len` bytes at offset 1, then `last` literals.
    const block = (lit: number, len: number, last: number): { block: Uint8Array; bytes: Uint8Array } => {
      assert.equal(lit + len + last, n);
      const out: number[] = [];
      const ext = (v: number) => {
        for (; v >= 255; v -= 255) out.push(255);
        out.push(v);
      };
      out.push((Math.min(lit, 15) << 4) | Math.min(len - 4, 15));
      if (lit >= 15) ext(lit - 15);
      for (let i = 0; i < lit; i++) out.push(i & 255);
      out.push(1, 0);
      if (len - 4 >= 15) ext(len - 4 - 15);
      out.push(last << 4);
      for (let i = 0; i < last; i++) out.push((200 + i) & 255);
      const bytes = new Uint8Array(n);
      for (let i = 0; i < lit; i++) bytes[i] = i & 255;
      bytes.fill((lit - 1) & 255, lit, lit + len);
      for (let i = 0; i < last; i++) bytes[lit + len + i] = (200 + i) & 255;
      return { block: Uint8Array.from(out), bytes };
    };
    const asLz4 = (b: Uint8Array) => {
      const out = new Uint8Array(4 + b.length);
      new DataView(out.buffer).setInt32(0, n, true);
      out.set(b, 4);
      return out;
    };
    // one block, one split (DONT_SPLIT), no shuffle
    const asBlosc = (b: Uint8Array) => {
      const out = new Uint8Array(24 + b.length);
      const dv = new DataView(out.buffer);
      out.set([2, 1, (1 << 5) | 0x10, 2]);
      dv.setInt32(4, n, true);
      dv.setInt32(8, n, true);
      dv.setInt32(12, out.length, true);
      dv.setInt32(16, 20, true);
      dv.setInt32(20, b.length, true);
      out.set(b, 24);
      return out;
    };
    const cases: [string, ReturnType<typeof block>, Role][] = [
      ["valid: the last match ends 5 bytes before the end", block(64, n - 64 - 5, 5), "checked"],
      ["the last match ends 4 bytes before the end", block(64, n - 64 - 4, 4), "raise"],
      ["a match follows literals ending 11 bytes before the end", block(n - 11, 4, 7), "raise"],
    ];
    for (const [what, b, want] of cases) {
      const expected = Float32Array.from(new Uint16Array(b.bytes.buffer));
      const results = [
        await checkBytes(fixtures.get("v2-lz4")!, asLz4(b.block), what, want, expected),
        await checkBytes(fixtures.get("v2-blosc-lz4")!, asBlosc(b.block), what, want, expected),
        await checkBytes(fixtures.get("v3-blosc-zstd")!, asBlosc(b.block), `${what} (a blosc-lz4 frame in a blosc array)`, want, expected),
      ];
      if (want === "checked") assert.deepEqual(results, ["decoded", "decoded", "decoded"], what);
    }
    for (const fx of fixtures.values()) fs.writeFileSync(fx.file, fx.clean);
  });

  it("bytes after a complete blosc frame are not damage: every path decodes the clean values (a frame cut short still raises)", async () => {
    for (const name of ["v2-blosc-lz4", "v2-blosc-zstd", "v2-blosc-zlib", "v3-blosc-zstd"]) {
      const fx = fixtures.get(name)!;
      const r = rng(7);
      for (const extra of [1, 16, 200]) {
        const padded = new Uint8Array(fx.clean.length + extra);
        padded.set(fx.clean);
        for (let i = fx.clean.length; i < padded.length; i++) padded[i] = Math.floor(r() * 256);
        assert.equal(await checkBytes(fx, padded, `${extra} random bytes after the frame`, "checked"), "decoded", `${name} + ${extra} bytes`);
        // A frame cut short is still damage, padding or not (the padding cannot complete it).
        const cut = new Uint8Array(fx.clean.length - 5 + extra);
        cut.set(fx.clean.subarray(0, fx.clean.length - 5));
        if (extra < 5) await checkBytes(fx, cut, `cut by 5 bytes, then ${extra} bytes appended`, "raise");
      }
      // cbytes no longer has to equal the chunk's length, yet every change of it is still caught:
      // larger, the chunk is too short; smaller, the blocks no longer fit in the frame.
      for (let bit = 0; bit < 32; bit++) await check(fx, { kind: "flip", at: 12 + (bit >> 3), bit: bit & 7 }, "raise");
    }
  });

  for (const f of FORMATS) {
    it(`seeded damage: ${f.name}`, async (t) => {
      const fx = fixtures.get(f.name)!;
      const seed = [...f.name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261);
      const tally: Record<string, number> = {};
      for (const d of damagesFor(fx, seed)) {
        const want = expectation(fx, d);
        const k = `${want}: ${await check(fx, d, want)}`;
        tally[k] = (tally[k] ?? 0) + 1;
      }
      t.diagnostic(`${f.name} (${fx.clean.length} bytes): ${JSON.stringify(tally)}`);
      assert.ok(
        Object.keys(tally).some((k) => k.endsWith("raised")),
        `${f.name}: some damage raised (${JSON.stringify(tally)})`,
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Blosc chunks with trailing bytes (issue #20): z5py writes 16 bytes after every blosc frame.

describe("blosc chunks with trailing bytes (as z5py writes them)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-trailing-"));
  after(() => {
    resetPaths();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const shape = [8, 32, 64];
  const chunks = [4, 16, 32]; // 8 chunks per array
  const voxel = [8, 4, 4];
  const center = shape.map((n, d) => ((n - 1) * voxel[d]) / 2); // the whole array
  const cases: { name: string; compressor: CompressorSpec; lz4?: boolean; zstd?: boolean }[] = [
    { name: "blosc-lz4-shuffle", compressor: blosc("lz4", 1, 0), lz4: true },
    { name: "blosc-zstd-shuffle", compressor: blosc("zstd", 1, 0), zstd: true },
    { name: "blosc-zstd-bitshuffle", compressor: blosc("zstd", 2, 4096), zstd: true },
    // blosclz splits are decoded by numcodecs' WASM blosc on every path
    { name: "blosc-blosclz-shuffle", compressor: { id: "blosc", cname: "blosclz", clevel: 5, shuffle: 1, blocksize: 0 } },
  ];
  const chunkFiles = (arr: string) => fs.readdirSync(arr).filter((f) => /^\d+\.\d+\.\d+$/.test(f));

  function readImage(arr: string, p: DecodePath): Promise<Outcome> {
    return onPath(p, async () => {
      const img = await CellMapImage.open({ path: arr, voxelSize: voxel, targetScale: voxel, targetVoxelShape: shape });
      if (p.name === "fast+direct") assert.notEqual(img.array.direct, null, "the fast path decodes straight into cache slots");
      if (p.name === "wasm" || p.name === "fast, no direct") assert.equal(img.array.direct, null, `${p.name}: zarrita's pipeline decodes`);
      return (await img.read(center)).data as Float32Array;
    });
  }

  it("a v2 array whose every chunk has 16 bytes after its frame reads the clean values on every decode path; a chunk cut short raises naming it", async () => {
    resetPaths();
    for (const c of cases) {
      const arr = path.join(dir, c.name);
      const w = await createZarrArray(arr, { zarrFormat: 2, shape, chunks, dtype: "uint16", compressor: c.compressor });
      await w.writeAll(DATA);
      const files = chunkFiles(arr);
      assert.equal(files.length, 8, `${c.name}: every chunk is stored`);
      const clean = new Map(files.map((f) => [f, new Uint8Array(fs.readFileSync(path.join(arr, f)))]));
      const format: Format = { name: c.name, zarrFormat: 2, compressor: c.compressor, roles: () => [], lz4: c.lz4, zstd: c.zstd };
      const paths = PATHS.filter((p) => p.applies(format));

      // 16 bytes after every frame, as z5py writes them.
      for (const [f, b] of clean) {
        assert.equal(new DataView(b.buffer, b.byteOffset).getInt32(12, true), b.length, `${c.name}/${f}: the frame fills the file before padding`);
        fs.appendFileSync(
          path.join(arr, f),
          Uint8Array.from({ length: 16 }, (_, i) => 0xf0 ^ i),
        );
      }
      for (const p of paths) {
        const o = await readImage(arr, p);
        assert.ok(o.ok, `${c.name} with 16 trailing bytes on ${p.name}: ${o.ok ? "" : String((o.err as Error)?.message ?? o.err)}`);
        assert.ok(sameData(o.data, EXPECTED), `${c.name} with 16 trailing bytes on ${p.name}: values differ from the un-padded array`);
      }

      // A frame cut short by a few bytes is still damage.
      const key = "1.0.1";
      fs.writeFileSync(path.join(arr, key), clean.get(key)!.subarray(0, clean.get(key)!.length - 3));
      for (const p of paths) {
        const o = await readImage(arr, p);
        assert.ok(!o.ok, `${c.name} with chunk ${key} cut by 3 bytes on ${p.name}: decoded`);
        const e = o.err;
        assert.ok(e instanceof CellMapError && e.code === "CORRUPT_CHUNK", `${c.name} cut on ${p.name}: ${String(e)}`);
        assert.ok(e.message.includes(arr) && e.message.includes(key), `${c.name} cut on ${p.name}: the message names the array and chunk ${key}: ${e.message}`);
        assert.match(e.message, /header says the frame is \d+ bytes but the chunk has only \d+/, `${c.name} cut on ${p.name}`);
      }
    }
  });
});
