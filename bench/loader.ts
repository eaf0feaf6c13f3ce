/**
 * Loader benchmark. Workloads (the Python reference's, `../shared/python-reference/bench.py`):
 * - `std`: raw 64^3 at 8 nm from a 4 nm pyramid (level s1, no resampling) plus three label
 *   classes 64^3 at 8 nm, batch 8, shuffled, no augmentation;
 * - `resample`: the same at 6 nm (raw from s0 with trilinear, labels nearest from 8 nm);
 * - `raw4nm`: raw 96^3 at 4 nm, labels 48^3 at 8 nm.
 * On `jrc_synth-bench.zarr` when `CELLMAP_BENCH_FIXTURES` (or `--fixtures DIR`) names the
 * folder `make_fixtures.py --bench` wrote, else on a built-in fixture of the same layout.
 *
 * For 0, 1 and 2 workers, warm (a 512 MiB shared cache, filled by a warm-up) and cold (budget 0:
 * no chunk kept between reads): samples/s (median of 3 windows, as the Python bench), MB/s of
 * float32 delivered, CPU ms per sample (all threads), time to first batch from
 * `new CellMapDataLoader` (pool start-up included), peak RSS, and `ofCopyLimit`: samples/s as a
 * fraction of the copy-bound limit, bytes written per sample ÷ this machine's memcpy bandwidth
 * measured with as many threads copying at once as read samples (they share the memory bus).
 *
 * Each configuration runs in a fresh child process, so peak RSS and first-batch times are not
 * polluted by earlier rows.
 */
import { spawn } from "node:child_process";
import * as os from "node:os";
import { Worker } from "node:worker_threads";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";

/** One benchmark row. */
export interface LoaderRow {
  workload: string;
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
  /** Float32 bytes delivered per second (MB/s). */
  mbPerS: number;
  /** samples/s ÷ copy-bound limit (memcpy bandwidth × reading cores ÷ bytes per sample). */
  ofCopyLimit: number;
  /** Chunk decodes per distinct chunk over the run (1 = each chunk decoded once per process). */
  decodesPerChunk?: number;
}

const SIZE = 512;
export const CLASSES = ["mito", "er", "nuc"];
export const BATCH = 8;
export const WARM_CACHE = 512 * 2 ** 20;

/** A workload: array specs (z y x). */
export const WORKLOADS: Record<string, { raw: { shape: number[]; scale: number[] }; labels: { shape: number[]; scale: number[] } }> = {
  std: { raw: { shape: [64, 64, 64], scale: [8, 8, 8] }, labels: { shape: [64, 64, 64], scale: [8, 8, 8] } },
  resample: { raw: { shape: [64, 64, 64], scale: [6, 6, 6] }, labels: { shape: [64, 64, 64], scale: [6, 6, 6] } },
  raw4nm: { raw: { shape: [96, 96, 96], scale: [4, 4, 4] }, labels: { shape: [48, 48, 48], scale: [8, 8, 8] } },
};
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

export interface ChildConfig {
  raw: string;
  gt: string;
  workload: string;
  workers: number;
  cache: "cold" | "warm";
  recycle: boolean;
  warmupBatches: number;
  batches: number;
  windows: number;
}

/**
 * memcpy bandwidth of this machine (bytes/s) with `threads` threads copying at once (they share
 * the memory bus): each copies 64 MiB of float32 with `TypedArray#set`, best of 5, summed.
 */
async function memcpyBandwidth(threads: number): Promise<number> {
  const code = `
    const { parentPort } = require("node:worker_threads");
    const a = new Float32Array(16 * 2 ** 20).fill(1), b = new Float32Array(16 * 2 ** 20);
    b.set(a);
    let best = Infinity;
    for (let r = 0; r < 5; r++) { const t = performance.now(); b.set(a); best = Math.min(best, performance.now() - t); }
    parentPort.postMessage(a.byteLength / (best / 1000));`;
  const rates = await Promise.all(
    Array.from({ length: threads }, () => new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.once("message", (v: number) => (resolve(v), void w.terminate()));
      w.once("error", reject);
    })),
  );
  return rates.reduce((x, y) => x + y, 0);
}

/** Runs one configuration (in the child process) and returns its row. */
async function runConfig(cfg: ChildConfig): Promise<LoaderRow> {
  const wl = WORKLOADS[cfg.workload];
  const dataset = await CellMapDataset.open({
    rawPath: cfg.raw, targetPath: `${cfg.gt}/[${CLASSES.join(",")}]`, classes: CLASSES,
    inputArrays: { raw: wl.raw }, targetArrays: { labels: wl.labels }, pad: false,
  });
  const bytesPerSample = 4 * (wl.raw.shape.reduce((a, b) => a * b, 1) + CLASSES.length * wl.labels.shape.reduce((a, b) => a * b, 1));
  const t0 = performance.now(); // first batch: from construction (worker start-up included)
  const loader = new CellMapDataLoader(dataset, { batchSize: BATCH, numWorkers: cfg.workers, seed: 1, chunkCacheBytes: cfg.cache === "cold" ? 0 : WARM_CACHE });
  let firstBatchMs = 0;
  let k = 0;
  const rates: number[] = [];
  let tWin = 0;
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.cpuUsage();
  const start = cfg.warmupBatches;
  const end = start + cfg.windows * cfg.batches;
  let stats = loader.cacheStats();
  for await (const b of loader) {
    if (k === 0) firstBatchMs = performance.now() - t0;
    if (!b.labels) throw new Error("batch without labels");
    if (cfg.recycle) loader.recycle(b);
    k++;
    if (k === start) {
      tWin = performance.now();
      elu0 = performance.eventLoopUtilization();
      cpu0 = process.cpuUsage();
    } else if (k > start && (k - start) % cfg.batches === 0) {
      const now = performance.now();
      rates.push((cfg.batches * BATCH) / ((now - tWin) / 1000));
      tWin = now;
    }
    if (k === end) {
      stats = loader.cacheStats(); // before break ends the workers (and retires the plane)
      break;
    }
  }
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  await loader.close();
  rates.sort((a, b) => a - b);
  const samplesPerS = rates[Math.floor(rates.length / 2)];
  const samples = cfg.windows * cfg.batches * BATCH;
  const peakRssMB = (process.resourceUsage().maxRSS * 1024) / 2 ** 20; // before the memcpy probe's buffers
  const readers = Math.min(os.cpus().length, Math.max(1, cfg.workers));
  const limit = (await memcpyBandwidth(readers)) / bytesPerSample;
  return {
    workload: cfg.workload,
    workers: cfg.workers,
    cache: cfg.cache,
    recycle: cfg.recycle,
    samples,
    samplesPerS,
    mbPerS: (samplesPerS * bytesPerSample) / 1e6,
    cpuMsPerSample: (cpu.user + cpu.system) / 1000 / samples,
    ofCopyLimit: samplesPerS / limit,
    firstBatchMs,
    peakRssMB,
    mainBusy: elu.utilization,
    ...(cfg.cache === "warm" && stats.entries > 0 ? { decodesPerChunk: stats.misses / stats.entries } : {}),
  };
}

export function runChild(cfg: ChildConfig): Promise<LoaderRow> {
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

/** The jrc_synth-bench paths under `dir`, or null when it is not there. */
export function jrcFixture(dir: string | undefined): { raw: string; gt: string } | null {
  if (!dir) return null;
  const root = path.join(dir, "jrc_synth-bench.zarr", "recon-1");
  const raw = path.join(root, "em", "fibsem-uint8");
  const gt = path.join(root, "labels", "groundtruth", "crop1");
  return fs.existsSync(raw) && fs.existsSync(gt) ? { raw, gt } : null;
}

/** Options of {@link benchLoader}. */
export interface LoaderBenchOptions {
  /** Batches per timed window (default 15, as the Python comparison). */
  batches?: number;
  /** Folder holding `jrc_synth-bench.zarr`. */
  fixtures?: string;
  workloads?: string[];
  workers?: number[];
  caches?: ("warm" | "cold")[];
}

/** Runs every row (data generated once under `dataDir`). */
export async function benchLoader(dataDir: string, opts: LoaderBenchOptions = {}): Promise<{ fixture: string; rows: LoaderRow[] }> {
  fs.mkdirSync(dataDir, { recursive: true });
  const jrc = jrcFixture(opts.fixtures ?? process.env.CELLMAP_BENCH_FIXTURES);
  const { raw, gt } = jrc ?? (await loaderVolume(dataDir));
  const rows: LoaderRow[] = [];
  for (const workload of opts.workloads ?? ["std", "resample", "raw4nm"]) {
    for (const cache of opts.caches ?? (["warm", "cold"] as const)) {
      for (const workers of opts.workers ?? [0, 1, 2]) {
        const batches = opts.batches ?? 15;
        // Warm: enough batches to touch most chunks of the crop once, so the windows read a full cache.
        const warmupBatches = cache === "warm" ? 40 : 2;
        rows.push(await runChild({ raw, gt, workload, workers, cache, recycle: true, warmupBatches, batches, windows: 3 }));
      }
    }
  }
  return { fixture: jrc ? "jrc_synth-bench.zarr" : "built-in loader-512.zarr", rows };
}

if (process.argv[2] === "--child" && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const row = await runConfig(JSON.parse(process.argv[3]) as ChildConfig);
  console.log(JSON.stringify(row));
}
