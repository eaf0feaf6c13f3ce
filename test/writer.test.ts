import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { CellMapError } from "../src/errors.js";
import { TEMP_PREFIX, writeFileAtomic, writeFileAtomicSync } from "../src/util/atomic.js";
import { crc32c } from "@aws-crypto/crc32c";
import { allocArray, createZarrArray, DATA_TYPES, writeArray, type ArrayData, type CompressorSpec, type DataType } from "../src/zarr/write/index.js";
import { multiscalesAttrs, writeGroup, ZYX_NM } from "../src/writer/ome-metadata.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { parseMultiscales } from "../src/ome/parse.js";
import { chunkEncoder, normalizeArraySpec } from "../src/zarr/write/index.js";
import { registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";
import { useNativeZstd } from "../src/zarr/codecs/zstd.js";
import { openZarrArray } from "../src/zarr/array.js";
import { readRegion } from "../src/zarr/read.js";
import { LocalStore } from "../src/store/local.js";
import { readMultiscale } from "../src/ome/read.js";
import { makeCoordPyramid, makeLabelPyramid, makeRawEM, labelAt, encodeZYX, decodeZYX } from "./fixtures/builder.js";

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "cm-"));

/** Reads a whole array through zarrita and returns a C-order accessor (stride-aware). */
async function readAll(dir: string): Promise<{ shape: number[]; at: (i: number) => unknown }> {
  const arr = await zarr.open(new FileSystemStore(dir), { kind: "array" });
  const res = await zarr.get(arr);
  const { shape, stride } = res;
  const data = res.data as unknown as { get?: (i: number) => unknown; [i: number]: unknown };
  const cs = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    cs[i] = step;
    step *= shape[i];
  }
  const at = (i: number): unknown => {
    let off = 0;
    for (let k = 0; k < shape.length; k++) off += (Math.floor(i / cs[k]) % shape[k]) * stride[k];
    return typeof data.get === "function" ? data.get(off) : data[off];
  };
  return { shape, at };
}

function sample(dtype: DataType, n: number): ArrayData {
  const a = allocArray(dtype, n);
  const o = a as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "bool":
        o[i] = (i * 7) % 3 === 0 ? 1 : 0;
        break;
      case "int8":
        o[i] = (i % 256) - 128;
        break;
      case "uint8":
        o[i] = (i * 13) % 256;
        break;
      case "int16":
        o[i] = i * 97 - 20000;
        break;
      case "uint16":
        o[i] = (i * 251) % 65536;
        break;
      case "int32":
        o[i] = i * 1_000_003 - 150_000_000;
        break;
      case "uint32":
        o[i] = (i * 2_654_435_761) % 4294967296;
        break;
      case "int64":
        o[i] = BigInt(i) * (1n << 40n) - (1n << 45n) + 3n;
        break;
      case "uint64":
        o[i] = (1n << 63n) + BigInt(i) * 1234567891011n;
        break;
      case "float32":
        o[i] = i * 0.375 - 50.125;
        break;
      case "float64":
        o[i] = i * 1e-3 - Math.PI;
        break;
    }
  }
  return a;
}

function expectValue(dtype: DataType, a: ArrayData, i: number): unknown {
  const v = (a as unknown as { [i: number]: unknown })[i];
  return dtype === "bool" ? v === 1 : v;
}

const CODECS: [string, CompressorSpec | null][] = [
  ["raw", null],
  ["blosc-lz4", { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }],
  ["blosc-zstd-bitshuffle", { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2 }],
  ["zstd", { id: "zstd", level: 3 }],
  ["gzip", { id: "gzip", level: 5 }],
  ["zlib", { id: "zlib", level: 5 }],
];

const SHAPE = [5, 7, 9];
const CHUNKS = [5, 4, 5]; // 4 chunks, ragged along y and x (other tests use SMALL_CHUNKS: ragged on every axis)
const SMALL_CHUNKS = [2, 3, 4];
const N = SHAPE[0] * SHAPE[1] * SHAPE[2];

test("crc32c matches the Castagnoli check value", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test("every dtype x format x order x codec x endian round-trips through zarrita", async () => {
  const root = tmp();
  let count = 0;
  const jobs: Promise<void>[] = [];
  for (const dtype of DATA_TYPES) {
    const data = sample(dtype, N);
    const endians: ("little" | "big")[] = dtype === "bool" || dtype.endsWith("int8") ? ["little"] : ["little", "big"];
    for (const format of [2, 3] as const) {
      for (const order of ["C", "F"] as const) {
        for (const [cname, compressor] of CODECS) {
          for (const endian of endians) {
            const label = `${dtype}/v${format}/${order}/${cname}/${endian}`;
            const dir = path.join(root, label.replaceAll("/", "_"));
            count++;
            jobs.push(
              (async () => {
                await writeArray(dir, { zarrFormat: format, shape: SHAPE, chunks: CHUNKS, dtype, compressor, order, endian }, data);
                const got = await readAll(dir);
                assert.deepEqual(got.shape, SHAPE, label);
                for (let i = 0; i < N; i++) {
                  const v = got.at(i);
                  const e = expectValue(dtype, data, i);
                  if (v !== e) assert.fail(`${label}: element ${i} is ${String(v)}, expected ${String(e)}`);
                }
              })(),
            );
          }
        }
      }
    }
    await Promise.all(jobs.splice(0));
  }
  assert.equal(count, 19 * 24);
});

test("chunks through zarrita's set and through the codec pipeline directly are the same bytes", async () => {
  const specs = [
    { zarrFormat: 2 as const, dtype: "uint16" as const, order: "F" as const, endian: "big" as const, compressor: { id: "blosc" as const, cname: "lz4" as const } },
    { zarrFormat: 2 as const, dtype: "float32" as const, compressor: null },
    { zarrFormat: 3 as const, dtype: "int64" as const, order: [2, 0, 1], compressor: { id: "gzip" as const } },
    { zarrFormat: 3 as const, dtype: "bool" as const, compressor: { id: "zstd" as const, level: 2 } },
  ];
  for (const extra of specs) {
    const spec = normalizeArraySpec({ shape: SHAPE, chunks: SMALL_CHUNKS, ...extra });
    const data = sample(spec.dtype, 2 * 3 * 4);
    const direct = await (await chunkEncoder(spec, "direct")).encode(data);
    const viaSet = await (await chunkEncoder(spec, "set", { viaSet: true })).encode(data);
    assert.deepEqual(Buffer.from(direct), Buffer.from(viaSet), JSON.stringify(extra));
  }
});

test("zstd chunks carry the frame checksum by default (native and fallback), so damage is detected on read", async () => {
  const root = tmp();
  const data = sample("uint16", N);
  for (const native of [true, false]) {
    useNativeZstd(native);
    try {
      for (const [format, checksum] of [
        [2, undefined],
        [3, undefined],
        [2, false],
      ] as const) {
        const dir = path.join(root, `${native}-${format}-${checksum}`);
        await writeArray(
          dir,
          { zarrFormat: format, shape: SHAPE, chunks: SHAPE, dtype: "uint16", compressor: { id: "zstd", level: 3, ...(checksum === false && { checksum }) } },
          data,
        );
        const meta = JSON.parse(fs.readFileSync(path.join(dir, format === 2 ? ".zarray" : "zarr.json"), "utf8"));
        const config = format === 2 ? meta.compressor : meta.codecs.find((c: { name: string }) => c.name === "zstd").configuration;
        assert.equal(config.checksum, checksum ?? true);
        const file = path.join(dir, format === 2 ? "0.0.0" : path.join("c", "0", "0", "0"));
        const frame = fs.readFileSync(file);
        assert.equal((frame[4] & 0x04) !== 0, checksum ?? true, `native ${native}, v${format}: Content_Checksum_flag`);
        if (checksum === false) continue;
        assert.equal((await readAll(dir)).at(17), data[17]);
        const bad = Buffer.from(frame);
        bad[bad.length - 8] ^= 0x10; // inside the last block's payload
        fs.writeFileSync(file, bad);
        const za = await openZarrArray(zarr.root(new LocalStore(dir)), "", `${dir}`);
        await assert.rejects(readRegion(za, [0, 0, 0], SHAPE), (e: unknown) => e instanceof CellMapError && e.code === "CORRUPT_CHUNK");
      }
    } finally {
      useNativeZstd(true);
    }
  }
});

test("writes use the fast encoders while zarrita's WASM decoders are registered (zarrita cannot encode gzip)", async () => {
  registerWasmCodecs();
  try {
    const dir = path.join(tmp(), "wasm");
    const data = sample("int32", N);
    await writeArray(dir, { zarrFormat: 2, shape: SHAPE, chunks: SMALL_CHUNKS, dtype: "int32", compressor: { id: "gzip", level: 5 } }, data);
    const got = await readAll(dir);
    for (let i = 0; i < N; i++) assert.equal(got.at(i), data[i]);
  } finally {
    registerFastCodecs();
  }
});

test("v3 transpose with a general permutation round-trips", async () => {
  for (const order of [
    [1, 2, 0],
    [2, 0, 1],
    [0, 2, 1],
  ]) {
    const dir = path.join(tmp(), "p");
    const data = sample("int16", N);
    await writeArray(dir, { zarrFormat: 3, shape: SHAPE, chunks: SMALL_CHUNKS, dtype: "int16", order, compressor: { id: "lz4" } }, data);
    const got = await readAll(dir);
    for (let i = 0; i < N; i++) assert.equal(got.at(i), data[i], `order ${order} element ${i}`);
  }
});

test("v2 metadata has the expected shape; nested separator and F order", async () => {
  const dir = path.join(tmp(), "a");
  await writeArray(
    dir,
    {
      zarrFormat: 2,
      shape: SHAPE,
      chunks: SMALL_CHUNKS,
      dtype: "uint16",
      endian: "big",
      order: "F",
      compressor: { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2 },
      fillValue: 7,
      dimensionSeparator: "/",
      attributes: { foo: 1 },
      dimensionNames: ["z", "y", "x"],
    },
    sample("uint16", N),
  );
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, ".zarray"), "utf8")), {
    zarr_format: 2,
    shape: SHAPE,
    chunks: SMALL_CHUNKS,
    dtype: ">u2",
    compressor: { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2, blocksize: 0 },
    fill_value: 7,
    order: "F",
    filters: null,
    dimension_separator: "/",
  });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, ".zattrs"), "utf8")), { foo: 1, _ARRAY_DIMENSIONS: ["z", "y", "x"] });
  assert.ok(fs.existsSync(path.join(dir, "2", "2", "2")));
  const nan = path.join(tmp(), "nan");
  await createZarrArray(nan, { zarrFormat: 2, shape: [2], chunks: [2], dtype: "float32", fillValue: NaN });
  assert.equal(JSON.parse(fs.readFileSync(path.join(nan, ".zarray"), "utf8")).fill_value, "NaN");
});

test("skipEmptyChunks leaves fill-only chunks missing and they read back as the fill value", async () => {
  for (const format of [2, 3] as const) {
    for (const fillValue of [0, 5, NaN]) {
      const dir = path.join(tmp(), "a");
      const data = new Float32Array(N).fill(fillValue);
      data[0] = 1; // only chunk (0,0,0) holds data
      data[N - 1] = 2; // and the last (ragged) chunk
      await writeArray(dir, { zarrFormat: format, shape: SHAPE, chunks: SMALL_CHUNKS, dtype: "float32", fillValue, compressor: { id: "zstd" } }, data, { skipEmptyChunks: true });
      const chunkFiles = fs
        .readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => fs.statSync(path.join(dir, f)).isFile() && ![".zarray", "zarr.json"].includes(f));
      assert.equal(chunkFiles.length, 2, `v${format} fill ${fillValue}: ${chunkFiles}`);
      const got = await readAll(dir);
      for (let i = 0; i < N; i++) assert.ok(Object.is(got.at(i), data[i]), `v${format} fill ${fillValue} element ${i}`);
    }
  }
});

test("sharded v3 arrays round-trip, with missing inner chunks as fill value", async () => {
  const root = tmp();
  for (const dtype of ["uint16", "float32", "uint64"] as DataType[]) {
    for (const order of ["C", "F"] as const) {
      for (const [cname, compressor] of [CODECS[0], CODECS[1], CODECS[4]]) {
        const label = `${dtype}/${order}/${cname}`;
        const dir = path.join(root, label.replaceAll("/", "_"));
        const data = sample(dtype, N);
        await writeArray(dir, { zarrFormat: 3, shape: SHAPE, chunks: SMALL_CHUNKS, shards: [4, 6, 8], dtype, compressor, order, endian: "big" }, data);
        const got = await readAll(dir);
        for (let i = 0; i < N; i++) assert.equal(got.at(i), expectValue(dtype, data, i), `${label} element ${i}`);
      }
    }
  }

  // Explicitly missing inner chunk + index layout checks.
  const dir = path.join(root, "missing");
  const w = await createZarrArray(dir, { zarrFormat: 3, shape: [4, 6], chunks: [2, 3], shards: [4, 6], dtype: "int32", fillValue: -1, compressor: { id: "gzip" } });
  const shard = new Int32Array(24).map((_, i) => i);
  await w.writeShard([0, 0], shard, { omitChunks: [[1, 0]] });
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, "c", "0", "0")));
  const index = bytes.subarray(bytes.length - 4 * 16 - 4, bytes.length - 4);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(dv.getUint32(bytes.length - 4, true), crc32c(index));
  const idx = new DataView(index.buffer, index.byteOffset, index.byteLength);
  assert.equal(idx.getBigUint64(0, true), 0n);
  assert.equal(idx.getBigUint64(2 * 16, true), 0xffffffffffffffffn); // inner chunk (1,0)
  assert.equal(idx.getBigUint64(2 * 16 + 8, true), 0xffffffffffffffffn);
  const got = await readAll(dir);
  for (let i = 0; i < 24; i++) {
    const [r, c] = [Math.floor(i / 6), i % 6];
    assert.equal(got.at(i), r >= 2 && c < 3 ? -1 : i, `element ${i}`);
  }
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "zarr.json"), "utf8"));
  assert.deepEqual(meta.codecs, [
    {
      name: "sharding_indexed",
      configuration: {
        chunk_shape: [2, 3],
        codecs: [
          { name: "bytes", configuration: { endian: "little" } },
          { name: "gzip", configuration: { level: 1 } },
        ],
        index_codecs: [{ name: "bytes", configuration: { endian: "little" } }, { name: "crc32c" }],
        index_location: "end",
      },
    },
  ]);
  assert.deepEqual(meta.chunk_grid, { name: "regular", configuration: { chunk_shape: [4, 6] } });

  // skipEmptyChunks on shards: an all-fill shard is not written at all.
  const dir2 = path.join(root, "empty-shards");
  const data = new Uint8Array(8 * 8);
  data[0] = 9;
  await writeArray(dir2, { zarrFormat: 3, shape: [8, 8], chunks: [2, 2], shards: [4, 4], dtype: "uint8" }, data, { skipEmptyChunks: true });
  assert.deepEqual(fs.readdirSync(path.join(dir2, "c")), ["0"]);
  assert.deepEqual(fs.readdirSync(path.join(dir2, "c", "0")), ["0"]);
  const got2 = await readAll(dir2);
  for (let i = 0; i < 64; i++) assert.equal(got2.at(i), data[i]);
});

test("writeRegion writes aligned blocks and rejects unaligned ones", async () => {
  const dir = path.join(tmp(), "r");
  const w = await createZarrArray(dir, { zarrFormat: 2, shape: [5, 7], chunks: [2, 3], dtype: "uint8", fillValue: 0 });
  await w.writeRegion([2, 3], [3, 4], new Uint8Array(12).fill(4)); // ends at the array edge
  const got = await readAll(dir);
  for (let i = 0; i < 35; i++) assert.equal(got.at(i), Math.floor(i / 7) >= 2 && i % 7 >= 3 ? 4 : 0);
  await assert.rejects(w.writeRegion([1, 0], [2, 3], new Uint8Array(6)), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
  await assert.rejects(w.writeRegion([0, 0], [2, 3], new Uint16Array(6)), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
});

test("bad specs fail with CellMapError naming the problem", async () => {
  const dir = path.join(tmp(), "x");
  const base = { zarrFormat: 3 as const, shape: [4], chunks: [2], dtype: "uint8" as const };
  await createZarrArray(dir, base);
  await assert.rejects(createZarrArray(dir, base), (e: unknown) => e instanceof CellMapError && e.code === "WRITE_CONFLICT");
  await createZarrArray(dir, { ...base, zarrFormat: 2, overwrite: true });
  assert.ok(!fs.existsSync(path.join(dir, "zarr.json")) && fs.existsSync(path.join(dir, ".zarray")));
  const bad = async (spec: object, code: string, re: RegExp): Promise<void> =>
    assert.rejects(createZarrArray(path.join(tmp(), "y"), { ...base, ...spec }), (e: unknown) => e instanceof CellMapError && e.code === code && re.test(e.message));
  await bad({ zarrFormat: 2, shards: [4] }, "UNSUPPORTED", /v3/);
  await bad({ shards: [3] }, "INVALID_ARGUMENT", /multiple of chunks/);
  await bad({ chunks: [0] }, "INVALID_ARGUMENT", /chunks/);
  await bad({ dtype: "float16" }, "UNSUPPORTED", /dtype/);
  await bad({ fillValue: 300 }, "INVALID_ARGUMENT", /out of range/);
  await bad({ compressor: { id: "blosc", cname: "nope" } }, "UNSUPPORTED", /cname/);
  await bad({ shape: [2, 2, 2], chunks: [1, 1, 1], zarrFormat: 2, order: [1, 0, 2] }, "UNSUPPORTED", /order/);
  await bad({ order: [1] }, "INVALID_ARGUMENT", /permutation/);
});

test("atomic writes leave no temp files and clean up on failure", async () => {
  const dir = tmp();
  await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(path.join(dir, "deep", "er", `f${i}`), new Uint8Array([i]))));
  writeFileAtomicSync(path.join(dir, "sync", "g"), "hello");
  // A chunk overwritten many times concurrently still ends as one complete version.
  await Promise.all(Array.from({ length: 10 }, (_, i) => writeFileAtomic(path.join(dir, "same"), new Uint8Array(1000).fill(i))));
  const same = fs.readFileSync(path.join(dir, "same"));
  assert.ok(same.every((b) => b === same[0]));
  fs.mkdirSync(path.join(dir, "isdir"));
  await assert.rejects(writeFileAtomic(path.join(dir, "isdir"), new Uint8Array(1)), (e: unknown) => e instanceof CellMapError && e.code === "IO");
  const all = fs.readdirSync(dir, { recursive: true }).map(String);
  assert.deepEqual(
    all.filter((f) => path.basename(f).startsWith(TEMP_PREFIX)),
    [],
  );
  assert.equal(fs.readdirSync(path.join(dir, "deep", "er")).length, 20);
  assert.equal(fs.readFileSync(path.join(dir, "sync", "g"), "utf8"), "hello");
});

const LEVELS = [
  { path: "s0", scale: [4, 4, 4], translation: [2, 2, 2] },
  { path: "s1", scale: [8, 8, 8], translation: [4, 4, 4] },
];

test("multiscalesAttrs builds NGFF 0.4 and 0.5 shapes", () => {
  const ds = LEVELS.map((l) => ({
    path: l.path,
    coordinateTransformations: [
      { type: "scale", scale: l.scale },
      { type: "translation", translation: l.translation },
    ],
  }));
  assert.deepEqual(multiscalesAttrs({ version: "0.4", name: "raw", axes: ZYX_NM, levels: LEVELS }), {
    multiscales: [{ version: "0.4", name: "raw", axes: ZYX_NM, datasets: ds }],
  });
  assert.deepEqual(multiscalesAttrs({ version: "0.5", axes: ZYX_NM, levels: LEVELS, topLevelTransforms: [{ type: "scale", scale: [1, 1, 1] }] }), {
    ome: { version: "0.5", multiscales: [{ axes: ZYX_NM, datasets: ds, coordinateTransformations: [{ type: "scale", scale: [1, 1, 1] }] }] },
  });
  assert.throws(() => multiscalesAttrs({ version: "0.4", axes: ZYX_NM, levels: [{ path: "s0", scale: [1, 1] }] }), CellMapError);
});

test("writeGroup and writeOmePyramid write v2/0.4 and v3/0.5 hierarchies", async () => {
  const root = tmp();
  await writeGroup(path.join(root, "g2"), 2, { a: 1 });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(root, "g2", ".zgroup"), "utf8")), { zarr_format: 2 });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(root, "g2", ".zattrs"), "utf8")), { a: 1 });
  await writeGroup(path.join(root, "g3"), 3, { a: 1 });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(root, "g3", "zarr.json"), "utf8")), { zarr_format: 3, node_type: "group", attributes: { a: 1 } });

  for (const format of [2, 3] as const) {
    const dir = path.join(root, `data${format}.zarr`, "recon-1", "em", "fibsem-uint8");
    const out = await writeOmePyramid(dir, {
      format,
      dtype: "uint8",
      levels: LEVELS.map((l, i) => ({ ...l, shape: [4 >> i, 6 >> i, 8 >> i], chunks: [2, 2, 2], data: (idx: number[]) => idx[0] + idx[1] + idx[2] })),
      codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 },
      attrs: { cellmap: { annotation: { complement_counts: { absent: 3 } } } },
      root: path.join(root, `data${format}.zarr`),
    });
    const metaName = format === 2 ? ".zgroup" : "zarr.json";
    for (const p of ["", "recon-1", "recon-1/em"]) assert.ok(fs.existsSync(path.join(root, `data${format}.zarr`, p, metaName)), `${p} group`);
    const attrs: { multiscales: { version: string }[]; ome: { version: string } } =
      format === 2 ? JSON.parse(fs.readFileSync(path.join(dir, ".zattrs"), "utf8")) : JSON.parse(fs.readFileSync(path.join(dir, "zarr.json"), "utf8")).attributes;
    assert.deepEqual(attrs, JSON.parse(JSON.stringify(out.groupAttrs)));
    if (format === 2) assert.equal(attrs.multiscales[0].version, "0.4");
    else assert.equal(attrs.ome.version, "0.5");
    const s0Attrs =
      format === 2 ? JSON.parse(fs.readFileSync(path.join(dir, "s0", ".zattrs"), "utf8")) : JSON.parse(fs.readFileSync(path.join(dir, "s0", "zarr.json"), "utf8")).attributes;
    assert.deepEqual(s0Attrs.cellmap, { annotation: { complement_counts: { absent: 3 } } });
    const s1 = await readAll(path.join(dir, "s1"));
    assert.deepEqual(s1.shape, [2, 3, 4]);
    assert.equal(s1.at(23), 1 + 2 + 3);
    for (const m of [parseMultiscales(attrs, { path: dir, zarrFormat: format }), await readMultiscale(zarr.root(new FileSystemStore(root)), path.relative(root, dir))]) {
      assert.equal(m.zarrFormat, format);
      assert.equal(m.version, format === 2 ? "0.4" : "0.5");
      assert.deepEqual(m.spatialAxes, ["z", "y", "x"]);
      assert.deepEqual(
        m.levels.map((l) => [l.path, l.scale, l.translation]),
        LEVELS.map((l) => [l.path, l.scale, l.translation]),
      );
    }
  }
});

test("fixture builders: coordinate pyramid is exact, labels follow shapes, EM is deterministic", async () => {
  const root = tmp();
  for (const format of [2, 3] as const) {
    const dir = path.join(root, `coord${format}`);
    const p = await makeCoordPyramid(dir, {
      format,
      levels: 3,
      shape: [8, 12, 16],
      s0Scale: [4, 4, 2],
      translation: [10, -6, 1],
      chunks: [4, 4, 4],
      codec: { id: "zstd" },
      order: "F",
    });
    assert.deepEqual(p.levels[1].translation, [12, -4, 2]); // t0 + (s1 - s0) / 2
    assert.deepEqual(p.levels[2].shape, [2, 3, 4]);
    for (const level of p.levels) {
      const got = await readAll(path.join(dir, level.path));
      const [, ny, nx] = level.shape;
      for (let i = 0; i < got.shape.reduce((a, b) => a * b, 1); i++) {
        const idx = [Math.floor(i / (ny * nx)), Math.floor(i / nx) % ny, i % nx];
        const world = idx.map((v, k) => level.translation[k] + v * level.scale[k]);
        assert.equal(got.at(i), p.value(world), `${level.path} ${idx}`);
      }
    }
    // Level 0 holds its own C-order index.
    const s0 = await readAll(path.join(dir, "s0"));
    for (let i = 0; i < 8 * 12 * 16; i += 37) assert.equal(s0.at(i), i);
  }

  const shapes = [
    { kind: "sphere" as const, center: [16, 16, 16], radius: 9 },
    { kind: "box" as const, min: [0, 0, 24], max: [8, 8, 32], value: 2 },
  ];
  const lp = await makeLabelPyramid(path.join(root, "labels"), {
    format: 3,
    levels: 2,
    shape: [8, 8, 8],
    shapes,
    chunksPerShard: [2, 2, 2],
    chunks: [2, 2, 2],
    skipEmptyChunks: true,
  });
  for (const level of lp.levels) {
    const got = await readAll(path.join(root, "labels", level.path));
    const n = level.shape[0];
    let ones = 0;
    for (let i = 0; i < n ** 3; i++) {
      const idx = [Math.floor(i / (n * n)), Math.floor(i / n) % n, i % n];
      const world = idx.map((v, k) => level.translation[k] + v * level.scale[k]);
      assert.equal(got.at(i), labelAt(shapes, world));
      if (got.at(i) === 1) ones++;
    }
    assert.ok(ones > 0);
  }

  const a = await makeRawEM(path.join(root, "em1"), { levels: 2, shape: [8, 8, 8], seed: 7 });
  const b = await makeRawEM(path.join(root, "em2"), { levels: 2, shape: [8, 8, 8], seed: 7 });
  const c = await makeRawEM(path.join(root, "em3"), { levels: 1, shape: [8, 8, 8], seed: 8 });
  assert.deepEqual(a.data[0], b.data[0]);
  assert.notDeepEqual(a.data[0], c.data[0]);
  const mean = a.data[0].reduce((s, v) => s + v, 0) / a.data[0].length;
  assert.ok(mean > 90 && mean < 165, `mean ${mean}`);
  const s1 = await readAll(path.join(root, "em1", "s1"));
  const d0 = a.data[0];
  let sum = 0;
  for (const [z, y, x] of [
    [0, 0, 0],
    [0, 0, 1],
    [0, 1, 0],
    [0, 1, 1],
    [1, 0, 0],
    [1, 0, 1],
    [1, 1, 0],
    [1, 1, 1],
  ])
    sum += d0[z * 64 + y * 8 + x];
  assert.equal(s1.at(0), Math.round(sum / 8));

  assert.deepEqual(decodeZYX(encodeZYX(3, 1000, 7)), [3, 1000, 7]);
});
