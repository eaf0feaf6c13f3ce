/**
 * Loader benchmark, the standard workload: raw 64^3 at 8 nm read from a 4 nm pyramid
 * (blosc-lz4, 64^3 chunks, 512^3 at s0, 256^3 at s1) plus three label classes 64^3 at 8 nm
 * (same pyramid layout, uint8), batch 8, shuffled, no augmentation. Samples/s for 0, 1 and 2
 * workers, cold (chunk cache budget 0: every sample decodes its chunks) and warm (a 512 MiB
 * budget, split across workers, after a warm-up that fills every worker's cache), time to first
 * batch (from the start of iteration, pool start-up included) and peak RSS.
 *
 * Each configuration runs in a fresh child process, so peak RSS and first-batch times are not
 * polluted by earlier rows.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";

/** One benchmark row. */
export interface LoaderRow {
  workers: number;
  cache: "cold" | "warm";
  /** Whether the consumer hands batches back with `loader.recycle(batch)`. */
  recycle: boolean;
  samples: number;
  samplesPerS: number;
  firstBatchMs: number;
  peakRssMB: number;
  /** Share of the measured wall time the main thread's event loop was busy (lower = freer training thread). */
  mainBusy: number;
  /**
   * CPU time (all threads of the process) per sample in the measured window: robust to other
   * load on the machine; `cores · 1000 / cpuMsPerSample` bounds samples/s on idle cores.
   */
  cpuMsPerSample: number;
}

const SIZE = 512;
const CLASSES = ["mito", "er", "nuc"];
const BATCH = 8;
const WARM_CACHE = 512 * 2 ** 20;
const BLOSC = { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } as const;

/** 2x mean downsampling of a cubic uint8 volume. */
function downsample(src: Uint8Array, n: number): Uint8Array {
  const m = n / 2;
  const out = new Uint8Array(m * m * m);
  let o = 0;
  for (let z = 0; z < m; z++)
    for (let y = 0; y < m; y++)
      for (let x = 0; x < m; x++) {
        let s = 0;
        for (let dz = 0; dz < 2; dz++)
          for (let dy = 0; dy < 2; dy++) {
            const base = ((2 * z + dz) * n + 2 * y + dy) * n + 2 * x;
            s += src[base] + src[base + 1];
          }
        out[o++] = (s + 4) >> 3;
      }
  return out;
}

/** Label of class k at world position (nm): spheres on a class-specific lattice. */
function labelVolume(k: number, n: number, scale: number): { data: Uint8Array; foreground: number } {
  const period = [160, 224, 400][k];
  const radius = [56, 40, 120][k];
  const shift = [0, 70, 150][k];
  const out = new Uint8Array(n * n * n);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const w = scale / 2 + i * scale + shift;
    const r = w - Math.floor(w / period) * period - period / 2;
    d[i] = r * r;
  }
  const r2 = radius * radius;
  let fg = 0;
  let o = 0;
  for (let z = 0; z < n; z++)
    for (let y = 0; y < n; y++) {
      const zy = d[z] + d[y];
      for (let x = 0; x < n; x++) {
        const v = zy + d[x] <= r2 ? 1 : 0;
        out[o++] = v;
        fg += v;
      }
    }
  return { data: out, foreground: fg };
}

/** Writes (once) the raw and label pyramids; returns their paths. */
export async function loaderVolume(dataDir: string): Promise<{ raw: string; gt: string }> {
  const root = path.join(dataDir, `loader-${SIZE}.zarr`);
  const raw = path.join(root, "raw");
  const gt = path.join(root, "gt");
  const stamp = path.join(dataDir, `loader-${SIZE}.done`);
  if (fs.existsSync(stamp)) return { raw, gt };
  fs.rmSync(root, { recursive: true, force: true });
  const n = SIZE;
  const s0 = new Uint8Array(n ** 3);
  const sx = new Float64Array(n * n); // sin(x/11 + z/31) per (z, x)
  for (let z = 0; z < n; z++) for (let x = 0; x < n; x++) sx[z * n + x] = 20 * Math.sin(x / 11 + z / 31);
  let o = 0;
  let h = 12345;
  for (let z = 0; z < n; z++)
    for (let y = 0; y < n; y++) {
      const a = 35 * Math.sin(z / 23) * Math.cos(y / 17) + 30 * (z / n - 0.5) + 122;
      for (let x = 0; x < n; x++) {
        h = (Math.imul(h, 1103515245) + 12345) >>> 0;
        const v = a + sx[z * n + x] + ((h >>> 16) % 24) - 12;
        s0[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  const level = (shape: number, scale: number, data: Uint8Array) => ({
    shape: [shape, shape, shape], scale: [scale, scale, scale], translation: [scale / 2, scale / 2, scale / 2], chunks: [64, 64, 64], data,
  });
  await writeOmePyramid(raw, { format: 2, dtype: "uint8", codec: BLOSC, levels: [level(n, 4, s0), level(n / 2, 8, downsample(s0, n))] });
  for (const [k, c] of CLASSES.entries()) {
    const l0 = labelVolume(k, n, 4);
    const l1 = labelVolume(k, n / 2, 8);
    await writeOmePyramid(path.join(gt, c), {
      format: 2, dtype: "uint8", codec: BLOSC, levels: [level(n, 4, l0.data), level(n / 2, 8, l1.data)],
      attrs: { cellmap: { annotation: { complement_counts: { absent: n ** 3 - l0.foreground } } } },
    });
  }
  fs.writeFileSync(stamp, "ok");
  return { raw, gt };
}

interface ChildConfig {
  raw: string;
  gt: string;
  workers: number;
  cache: "cold" | "warm";
  recycle: boolean;
  warmupBatches: number;
  batches: number;
}

/** Runs one configuration (in the child process) and returns its row. */
async function runConfig(cfg: ChildConfig): Promise<LoaderRow> {
  registerFastCodecs();
  const spec = { shape: [64, 64, 64], scale: [8, 8, 8] };
  const dataset = await CellMapDataset.open({
    rawPath: cfg.raw, targetPath: `${cfg.gt}/[${CLASSES.join(",")}]`, classes: CLASSES, inputArrays: { raw: spec }, targetArrays: { labels: spec },
  });
  const t0 = performance.now(); // first batch: from construction (worker start-up included)
  const loader = new CellMapDataLoader(dataset, { batchSize: BATCH, numWorkers: cfg.workers, seed: 1, chunkCacheBytes: cfg.cache === "cold" ? 0 : WARM_CACHE });
  let firstBatchMs = 0;
  let k = 0;
  let tStart = 0;
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.cpuUsage();
  const start = cfg.cache === "cold" ? 1 : cfg.warmupBatches; // cold: everything after the first batch
  for await (const b of loader) {
    if (k === 0) firstBatchMs = performance.now() - t0;
    if (!b.labels) throw new Error("batch without labels");
    if (cfg.recycle) loader.recycle(b);
    k++;
    if (k === start) {
      tStart = performance.now();
      elu0 = performance.eventLoopUtilization();
      cpu0 = process.cpuUsage();
    }
    if (k === start + cfg.batches) break;
  }
  const s = (performance.now() - tStart) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  await loader.close();
  return {
    workers: cfg.workers,
    cache: cfg.cache,
    recycle: cfg.recycle,
    samples: cfg.batches * BATCH,
    samplesPerS: (cfg.batches * BATCH) / s,
    firstBatchMs,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / 2 ** 20,
    mainBusy: elu.utilization,
    cpuMsPerSample: (cpu.user + cpu.system) / 1000 / (cfg.batches * BATCH),
  };
}

function runChild(cfg: ChildConfig): Promise<LoaderRow> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self, "--child", JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`loader bench child exited with ${code}: ${out}`));
      else resolve(JSON.parse(line) as LoaderRow);
    });
  });
}

/** Runs every row (data generated once under `dataDir`). */
export async function benchLoader(dataDir: string, opts: { batches?: number } = {}): Promise<LoaderRow[]> {
  fs.mkdirSync(dataDir, { recursive: true });
  const { raw, gt } = await loaderVolume(dataDir);
  const rows: LoaderRow[] = [];
  const configs: { workers: number; cache: "cold" | "warm"; recycle: boolean }[] = [];
  for (const workers of [0, 1, 2]) for (const cache of ["cold", "warm"] as const) configs.push({ workers, cache, recycle: false });
  configs.push({ workers: 2, cache: "warm", recycle: true });
  for (const c of configs) {
    const batches = opts.batches ?? (c.cache === "cold" ? 40 : 100);
    rows.push(await runChild({ raw, gt, ...c, warmupBatches: 40 * Math.max(1, c.workers), batches }));
  }
  return rows;
}

if (process.argv[2] === "--child" && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const row = await runConfig(JSON.parse(process.argv[3]) as ChildConfig);
  console.log(JSON.stringify(row));
}
