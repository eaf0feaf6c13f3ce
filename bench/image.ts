/**
 * Patch-read benchmark of the foundation: 64^3 uint8 patches from a blosc-compressed 512^3
 * volume with 64^3 chunks, at native scale and at 2x resampling (8 nm from the 4 nm level),
 * cold cache (budget 0: every patch decodes its chunks) and warm cache, fast vs WASM codecs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CellMapImage } from "../src/image/image.js";
import { Rng } from "../src/util/rng.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { chunkCache } from "../src/zarr/cache.js";
import { registerFastCodecs, registerWasmCodecs } from "../src/zarr/codecs/register.js";

/** One benchmark row. */
export interface ImageRow {
  codecs: string;
  scale: string;
  cache: string;
  patches: number;
  patchesPerS: number;
  mbPerS: number;
}

/** Writes (once) the 512^3 EM-like uint8 volume the benchmark reads. */
async function benchVolume(dir: string, size = 512): Promise<string> {
  const p = path.join(dir, `bench-${size}.zarr`, "raw");
  const stamp = path.join(dir, `bench-${size}.done`);
  if (fs.existsSync(stamp)) return p;
  const data = new Uint8Array(size ** 3);
  let o = 0;
  let h = 12345;
  for (let z = 0; z < size; z++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        h = (Math.imul(h, 1103515245) + 12345) >>> 0;
        const smooth = 35 * Math.sin(z / 23) * Math.cos(y / 17) + 20 * Math.sin(x / 11 + z / 31);
        const v = 122 + smooth + 30 * (z / size - 0.5) + ((h >>> 16) % 24) - 12;
        data[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
  await writeOmePyramid(p, {
    format: 2,
    dtype: "uint8",
    codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 },
    levels: [{ shape: [size, size, size], scale: [4, 4, 4], translation: [2, 2, 2], chunks: [64, 64, 64], data }],
  });
  fs.writeFileSync(stamp, "ok");
  return p;
}

/** Runs the patch-read rows. */
export async function benchImage(dataDir: string, patches = 200): Promise<ImageRow[]> {
  const vol = await benchVolume(dataDir);
  const rows: ImageRow[] = [];
  for (const codecs of ["fast", "wasm"] as const) {
    if (codecs === "fast") registerFastCodecs();
    else registerWasmCodecs();
    for (const scale of [4, 8]) {
      const img = await CellMapImage.open({ path: vol, targetScale: [scale, scale, scale], targetVoxelShape: [64, 64, 64], interpolation: "linear" });
      const box = img.samplingBox!;
      const rng = new Rng(42, scale);
      // Native scale: centres on the voxel grid (exact copies); 2x: arbitrary centres.
      const centers = Array.from({ length: patches }, () =>
        box.lo.map((lo, a) => {
          const c = lo + rng.random() * (box.hi[a] - lo);
          return scale === 4 ? lo + Math.round((c - lo) / 4) * 4 : c;
        }),
      );
      for (const cache of ["cold", "warm"] as const) {
        chunkCache.clear();
        chunkCache.setCapacity(cache === "cold" ? 0 : 1024 ** 3);
        if (cache === "warm") for (const c of centers) await img.read(c);
        const t0 = performance.now();
        for (const c of centers) await img.read(c);
        const s = (performance.now() - t0) / 1000;
        rows.push({ codecs, scale: scale === 4 ? "native 4 nm" : "2x (8 nm from 4 nm)", cache, patches, patchesPerS: patches / s, mbPerS: (patches * 64 ** 3) / 1e6 / s });
      }
    }
  }
  registerFastCodecs();
  chunkCache.setCapacity(1024 ** 3);
  return rows;
}
