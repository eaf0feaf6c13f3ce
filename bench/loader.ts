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
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { SpatialConfig } from "../src/transforms/spatial.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { startLatencyServer, type LatencyServer } from "./latency.js";

/** One benchmark row. */
export interface LoaderRow {
  workload: string;
  /** Where the chunks come from: `local` files, or `http+Nms` (the latency server). */
  source: string;
  workers: number;
  /** Chunk cache: `warm` (512 MiB, filled by a warm-up), `cold` (budget 0) or a budget such as `64MiB`. */
  cache: string;
  /** Whether the consumer hands batches back with `loader.recycle(batch)` (the default drops them). */
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
  /** Batches that got memory outside the loader's pool in the measured window (0 in steady state). */
  freshBatches: number;
  /** Chunk decodes per distinct chunk over the run (1 = each chunk decoded once per process). */
  decodesPerChunk?: number;
}

const SIZE = 512;
export const CLASSES = ["mito", "er", "nuc"];
export const BATCH = 8;
export const WARM_CACHE = 512 * 2 ** 20;

/** A workload: array specs (z y x) and the spatial augmentation of training (none: unaugmented). */
export interface Workload {
  raw: { shape: number[]; scale: number[] };
  labels: { shape: number[]; scale: number[] };
  spatial?: SpatialConfig;
}

const STD = { raw: { shape: [64, 64, 64], scale: [8, 8, 8] }, labels: { shape: [64, 64, 64], scale: [8, 8, 8] } };
/** The workloads of `../shared/python-reference/bench.py`, defined exactly as there. */
export const WORKLOADS: Record<string, Workload> = {
  std: STD,
  resample: { raw: { shape: [64, 64, 64], scale: [6, 6, 6] }, labels: { shape: [64, 64, 64], scale: [6, 6, 6] } },
  raw4nm: { raw: { shape: [96, 96, 96], scale: [4, 4, 4] }, labels: { shape: [48, 48, 48], scale: [8, 8, 8] } },
  // std with the augmentation a training run uses: mirror y/x, rotate about z by up to 30 degrees
  aug: { ...STD, spatial: { mirror: { axes: { x: 0.5, y: 0.5 } }, rotate: { axes: { z: [-30, 30] } } } },
  /** `aug` plus an elastic deformation: control points every 64 nm, sigma 4 nm in y and x (issue #23). */
  "aug-elastic": {
    ...STD,
    spatial: { mirror: { axes: { x: 0.5, y: 0.5 } }, rotate: { axes: { z: [-30, 30] } }, elastic: { controlPointSpacing: [64, 64, 64], sigma: [0, 4, 4] } },
  },
  // rotation about every axis (no plane stays aligned with the storage grid)
  aug3d: { ...STD, spatial: { mirror: { axes: { x: 0.5, y: 0.5, z: 0.5 } }, rotate: { axes: { z: [-180, 180], y: [-20, 20], x: [-20, 20] } } } },
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
    shape: [shape, shape, shape],
    scale: [scale, scale, scale],
    translation: [scale / 2, scale / 2, scale / 2],
    chunks: [64, 64, 64],
    data,
  });
  await writeOmePyramid(raw, { format: 2, dtype: "uint8", codec: BLOSC, levels: [level(n, 4, s0), level(n / 2, 8, downsample(s0, n))] });
  for (const [k, c] of CLASSES.entries()) {
    const l0 = labelVolume(k, n, 4);
    const l1 = labelVolume(k, n / 2, 8);
    await writeOmePyramid(path.join(gt, c), {
      format: 2,
      dtype: "uint8",
      codec: BLOSC,
      levels: [level(n, 4, l0.data), level(n / 2, 8, l1.data)],
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
  /** Column `source` of the row. */
  source: string;
  workers: number;
  cache: string;
  recycle: boolean;
  warmupBatches: number;
  batches: number;
  windows: number;
}

/** Chunk cache bytes of a cache label (`warm`, `cold`, `64MiB`). */
function cacheBytesOf(label: string): number {
  if (label === "warm") return WARM_CACHE;
  if (label === "cold") return 0;
  const m = /^(\d+)MiB$/.exec(label);
  if (!m) throw new Error(`cache must be warm, cold or <N>MiB, got ${label}`);
  return Number(m[1]) * 2 ** 20;
}

/**
 * Runs one configuration in a fresh process (`loader-child.mjs`): plain Node on the built
 * package (`dist/`, what users run; {@link ensureBuilt} first), so no TypeScript loader sits in
 * its memory or its worker threads.
 */
export function runChild(cfg: ChildConfig): Promise<LoaderRow> {
  const childFile = fileURLToPath(new URL("./loader-child.mjs", import.meta.url));
  const spec = WORKLOADS[cfg.workload];
  if (!spec) throw new Error(`unknown workload ${cfg.workload} (known: ${Object.keys(WORKLOADS).join(", ")})`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childFile, JSON.stringify({ ...cfg, spec, batchSize: BATCH, classes: CLASSES, cacheBytes: cacheBytesOf(cfg.cache) })], {
      stdio: ["ignore", "pipe", "inherit"],
    });
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
  /** Cache labels (`warm`, `cold`, `<N>MiB`; default warm and cold). */
  caches?: string[];
  /** Also time the consumer handing batches back with `recycle()` (rows with 2 workers; default true). */
  recycleRows?: boolean;
  /**
   * Also read the fixture through the latency server ({@link startLatencyServer}) answering
   * every request after this many ms: cold rows over HTTP beside the local ones.
   */
  latencyMs?: number;
}

/** Runs every row (data generated once under `dataDir`). */
export async function benchLoader(dataDir: string, opts: LoaderBenchOptions = {}): Promise<{ fixture: string; rows: LoaderRow[]; httpBase?: string; close(): Promise<void> }> {
  fs.mkdirSync(dataDir, { recursive: true });
  const jrc = jrcFixture(opts.fixtures ?? process.env.CELLMAP_BENCH_FIXTURES);
  const { raw, gt } = jrc ?? (await loaderVolume(dataDir));
  const rows: LoaderRow[] = [];
  ensureBuilt();
  const batches = opts.batches ?? 15;
  const workloads = opts.workloads ?? ["std", "aug", "aug-elastic", "aug3d", "resample", "raw4nm"];
  const caches = opts.caches ?? ["warm", "cold"];
  const workerCounts = opts.workers ?? [0, 1, 2];
  const run = async (workload: string, source: string, paths: { raw: string; gt: string }, cache: string, workers: number, recycle: boolean) => {
    // Warm: enough batches to touch most chunks of the crop once, so the windows read a full cache.
    const warmupBatches = cache === "warm" ? 40 : 4;
    rows.push(await runChild({ ...paths, workload, source, workers, cache, recycle, warmupBatches, batches, windows: 3 }));
  };
  for (const workload of workloads) {
    for (const cache of caches) {
      for (const workers of workerCounts) await run(workload, "local", { raw, gt }, cache, workers, false);
      if ((opts.recycleRows ?? true) && workerCounts.includes(2)) await run(workload, "local", { raw, gt }, cache, 2, true);
    }
    // Memory with a small chunk budget (the "64 MiB" row), unless caches were chosen.
    if (workload === "std" && !opts.caches && workerCounts.includes(2)) {
      await run(workload, "local", { raw, gt }, "64MiB", 2, false);
      if (opts.recycleRows ?? true) await run(workload, "local", { raw, gt }, "64MiB", 2, true);
    }
  }
  let server: LatencyServer | null = null;
  let httpBase: string | undefined;
  if (opts.latencyMs !== undefined) {
    // Serve the folder holding the fixture; the same paths below it, as URLs.
    const root = jrc ? path.resolve(opts.fixtures ?? process.env.CELLMAP_BENCH_FIXTURES!) : dataDir;
    server = await startLatencyServer(root, opts.latencyMs);
    httpBase = server.url;
    const url = (p: string) => `${server!.url}/${path.relative(root, p).split(path.sep).map(encodeURIComponent).join("/")}`;
    const source = `http+${opts.latencyMs}ms`;
    for (const workload of workloads.includes("std") ? ["std"] : workloads.slice(0, 1)) {
      for (const workers of workerCounts) await run(workload, source, { raw: url(raw), gt: url(gt) }, "cold", workers, false);
      if (!caches.includes("cold")) for (const workers of workerCounts) await run(workload, "local", { raw, gt }, "cold", workers, false);
    }
  }
  return { fixture: jrc ? "jrc_synth-bench.zarr" : "built-in loader-512.zarr", rows, httpBase, close: async () => void (await server?.close()) };
}

let built = false;
/** Builds `dist/` (tsc, incremental) once per bench run, so the children run the current sources. */
export function ensureBuilt(): void {
  if (built) return;
  const root = fileURLToPath(new URL("..", import.meta.url));
  const r = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run build failed: the loader bench runs the built package");
  built = true;
}
