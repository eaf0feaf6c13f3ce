/**
 * Prediction-write benchmark: 64^3 float32 tiles (probability-like values: smooth field plus a
 * little noise) written through `ImageWriter` into a 256^3 Zarr v2 image (64 tiles, 64 MiB of
 * predictions per row), raw / blosc-lz4 / blosc-zstd / zstd, plus one blended row (halo 8,
 * linear weights). MB/s counts the float32 bytes handed to `writeTile` (for the blended row:
 * window bytes, i.e. the model output), timed including `finalize()`.
 * Run alone: `node --import tsx bench/writer.ts`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { ImageWriter, type ImageWriterOptions } from "../src/writer/image-writer.js";
import type { BlendMode } from "../src/writer/blend.js";
import type { CompressorSpec } from "../src/zarr/write/index.js";

/** One benchmark row. */
export interface WriterRow {
  variant: string;
  tiles: number;
  /** Stored bytes / raw float32 bytes of s0. */
  ratio: number;
  seconds: number;
  mbPerS: number;
}

const T = 64;

/** A probability-like 64^3 tile whose values depend on the tile (so chunks differ). */
function tileValues(seed: number): Float32Array {
  const out = new Float32Array(T ** 3);
  let h = 2166136261 ^ seed;
  let o = 0;
  for (let z = 0; z < T; z++)
    for (let y = 0; y < T; y++)
      for (let x = 0; x < T; x++) {
        h = (Math.imul(h, 1103515245) + 12345) >>> 0;
        const s = Math.sin((z + seed) / 9) * Math.cos(y / 7) + Math.sin(x / 5 + seed);
        out[o++] = 1 / (1 + Math.exp(-3 * s)) + ((h >>> 16) / 65536 - 0.5) * 0.01;
      }
  return out;
}

function dirSize(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(dir, e));
    if (st.isFile()) n += st.size;
  }
  return n;
}

/** Runs the write rows (output under `dataDir/writer`, removed afterwards). */
export async function benchWriter(dataDir: string, size = 256): Promise<WriterRow[]> {
  const base = path.join(dataDir, "writer");
  fs.rmSync(base, { recursive: true, force: true });
  const tiles = Array.from({ length: 8 }, (_, i) => tileValues(i)); // reused round-robin: generation is not timed
  const variants: { variant: string; compressor: CompressorSpec | null; overlap?: number; blend?: BlendMode }[] = [
    { variant: "v2 raw", compressor: null },
    { variant: "v2 blosc-lz4 (default)", compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } },
    { variant: "v2 blosc-zstd-3", compressor: { id: "blosc", cname: "zstd", clevel: 3, shuffle: 1 } },
    { variant: "v2 zstd-3", compressor: { id: "zstd", level: 3 } },
    { variant: "v2 blosc-lz4, halo 8 linear blend", compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 }, overlap: 8, blend: "linear" },
  ];
  const rows: WriterRow[] = [];
  for (const [k, v] of variants.entries()) {
    const dir = path.join(base, `v${k}`);
    const opts: ImageWriterOptions = {
      path: dir,
      scale: [4, 4, 4],
      bounds: { z: [0, 4 * size], y: [0, 4 * size], x: [0, 4 * size] },
      writeShape: [T, T, T],
      compressor: v.compressor,
      overlap: v.overlap,
      blend: v.blend,
    };
    const w = await ImageWriter.open(opts);
    const t0 = performance.now();
    for (let id = 0; id < w.tileCount; id++) await w.writeTile(id, tiles[id % tiles.length]);
    await w.finalize();
    const seconds = (performance.now() - t0) / 1000;
    const bytes = w.tileCount * T ** 3 * 4;
    rows.push({ variant: v.variant, tiles: w.tileCount, ratio: dirSize(path.join(dir, "s0")) / (size ** 3 * 4), seconds, mbPerS: bytes / 1e6 / seconds });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.rmSync(base, { recursive: true, force: true });
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const dataDir = path.resolve(process.env.CELLMAP_BENCH_DIR ?? ".tmp/bench");
  const rows = await benchWriter(dataDir);
  console.log("## prediction writes: 64^3 float32 tiles into a 256^3 image (MB/s of float32 predictions)");
  for (const r of rows) console.log(`${r.variant.padEnd(36)} tiles ${r.tiles}  ratio ${r.ratio.toFixed(3)}  ${r.seconds.toFixed(2)} s  ${r.mbPerS.toFixed(1)} MB/s`);
}
