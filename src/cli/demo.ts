/**
 * `cellmap-data demo`: builds the synthetic dataset, then streams augmented training patches
 * (raw at 8 nm from the 4 nm pyramid, labels at 8 nm) and prints throughput and class balance.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SingleBar, Presets } from "cli-progress";
import { PNG } from "pngjs";
import { CellMapImage } from "../image/image.js";
import { EmptyImage } from "../image/empty.js";
import { intersectBoxes } from "../geometry/level.js";
import { Rng } from "../sampling/rng.js";
import { chunkCache } from "../zarr/cache.js";
import { writeSyntheticDataset } from "../demo/synthetic.js";
import { classPath, splitTargetPath } from "../dataset/target-path.js";

/** Options of {@link runDemo}. */
export interface DemoOptions {
  dir: string;
  samples: number;
  patch: number;
  size: number;
  seed: number;
  json: boolean;
  progress: boolean;
}

/** Summary printed at the end of the demo. */
export interface DemoSummary {
  samples: number;
  seconds: number;
  samplesPerSecond: number;
  megabytesPerSecond: number;
  classForegroundFraction: Record<string, number>;
  cacheHitRate: number;
  preview: string;
  dataDir: string;
}

function rotationZ(deg: number, mirrorX: boolean): number[][] {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a), s = Math.sin(a);
  const m = mirrorX ? -1 : 1;
  // world = R · M · offset, zyx order; rotation about z turns x toward y.
  return [[1, 0, 0], [0, c, s * m], [0, -s, c * m]];
}

/** Runs the demo and returns its summary. */
export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const ds = await writeSyntheticDataset(o.dir, { size: o.size, seed: o.seed });
  const n = o.patch;
  const shape = [n, n, n];
  const scale = [8, 8, 8];
  const crops = await Promise.all(
    ds.crops.map(async (cp) => {
      const target = splitTargetPath(cp);
      const raw = await CellMapImage.open({ path: ds.rawPath, targetScale: scale, targetVoxelShape: shape, interpolation: "linear" });
      const labels = await Promise.all(
        ds.classes.map((c) =>
          target.classes.includes(c)
            ? CellMapImage.open({ path: classPath(target, c), targetClass: c, targetScale: scale, targetVoxelShape: shape, pad: true })
            : new EmptyImage({ targetClass: c, targetScale: scale, targetVoxelShape: shape }),
        ),
      );
      const box = intersectBoxes([raw.samplingBox, ...labels.filter((l) => l instanceof CellMapImage).map((l) => (l as CellMapImage).boundingBox)]);
      return { raw, labels, box };
    }),
  );
  const usable = crops.filter((c) => c.box);
  if (usable.length === 0) throw new Error("no crop overlaps the raw volume");
  chunkCache.clear();
  const bar = o.progress && !o.json ? new SingleBar({ format: "demo |{bar}| {value}/{total} patches | {rate}/s" }, Presets.shades_classic) : null;
  bar?.start(o.samples, 0, { rate: "0" });
  const fg: Record<string, [number, number]> = Object.fromEntries(ds.classes.map((c) => [c, [0, 0]]));
  const t0 = performance.now();
  let bytes = 0;
  let last: { raw: Float32Array; labels: Float32Array[] } | null = null;
  for (let i = 0; i < o.samples; i++) {
    const rng = new Rng(o.seed, 0, i);
    const crop = usable[rng.int(usable.length)];
    const center = crop.box!.lo.map((lo, a) => lo + rng.random() * (crop.box!.hi[a] - lo));
    const matrix = rotationZ(rng.uniform(-30, 30), rng.chance(0.5));
    const [raw, ...labels] = await Promise.all([crop.raw.read(center, { spatialTransform: matrix }), ...crop.labels.map((l) => l.read(center, { spatialTransform: matrix }))]);
    bytes += raw.data.byteLength + labels.reduce((s, l) => s + l.data.byteLength, 0);
    labels.forEach((l, k) => {
      const acc = fg[ds.classes[k]];
      for (const v of l.data) if (v === v) { acc[0] += v > 0 ? 1 : 0; acc[1]++; }
    });
    last = { raw: raw.data, labels: labels.map((l) => l.data) };
    bar?.update(i + 1, { rate: ((i + 1) / ((performance.now() - t0) / 1000)).toFixed(1) });
  }
  bar?.stop();
  const seconds = (performance.now() - t0) / 1000;
  const preview = path.join(o.dir, "preview.png");
  if (last) fs.writeFileSync(preview, renderSlices(last.raw, last.labels, n));
  const st = chunkCache.getStats();
  return {
    samples: o.samples,
    seconds,
    samplesPerSecond: o.samples / seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
    classForegroundFraction: Object.fromEntries(Object.entries(fg).map(([c, [f, t]]) => [c, t ? f / t : NaN])),
    cacheHitRate: st.hits / Math.max(1, st.hits + st.misses),
    preview,
    dataDir: o.dir,
  };
}

/** Mid-z slices side by side: raw in grey, then each class (NaN = unknown shown in magenta). */
function renderSlices(raw: Float32Array, labels: Float32Array[], n: number): Buffer {
  const tiles = 1 + labels.length;
  const png = new PNG({ width: tiles * n + (tiles - 1) * 2, height: n });
  png.data.fill(255);
  const z = Math.floor(n / 2);
  const put = (tile: number, y: number, x: number, rgb: [number, number, number]) => {
    const p = (y * png.width + tile * (n + 2) + x) * 4;
    png.data[p] = rgb[0]; png.data[p + 1] = rgb[1]; png.data[p + 2] = rgb[2]; png.data[p + 3] = 255;
  };
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const i = (z * n + y) * n + x;
      const g = Math.max(0, Math.min(255, raw[i]));
      put(0, y, x, [g, g, g]);
      labels.forEach((l, k) => put(k + 1, y, x, Number.isNaN(l[i]) ? [200, 0, 200] : l[i] > 0 ? [255, 220, 0] : [20, 20, 60]));
    }
  return PNG.sync.write(png);
}
