/**
 * `cellmap-data demo`: builds the synthetic CellMap-style dataset (or takes the user's datasplit
 * and config), then streams augmented training batches through `CellMapDataLoader` with worker
 * threads and summarises throughput, class balance and cache behaviour, plus a preview PNG.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { loaderOptionsFromConfig, splitOptionsFromConfig } from "../config/load.js";
import { CellMapDataSplit } from "../dataset/split.js";
import { writeSyntheticDataset } from "../demo/synthetic.js";
import { CellMapError } from "../errors.js";
import { CellMapDataLoader } from "../loader/loader.js";
import type { Batch } from "../loader/collate.js";
import type { Tensor } from "../tensor.js";
import { renderBatchGrid } from "../viz/grid.js";
import type { CellMapConfig } from "../config/load.js";

/**
 * Options of {@link runDemo}. A value left out comes from the config (`iterationsPerEpoch`,
 * `batchSize`, `numWorkers`, `seed`), else from {@link DEMO_DEFAULTS}: flags override the
 * config, the config overrides the demo's defaults.
 */
export interface DemoOptions {
  /** Where the synthetic data goes. */
  dir: string;
  /** Folder of the preview: default `dir` for the synthetic data, the current folder for a user's datasplit. */
  out?: string;
  /** Batches to stream. */
  batches?: number;
  batchSize?: number;
  workers?: number;
  /** Patch edge in voxels at 8 nm (synthetic data only). */
  patch?: number;
  /** Raw s0 edge in voxels at 4 nm (synthetic data only). */
  size?: number;
  seed?: number;
  /** The user's datasplit CSV (default: the config's `csvPath`, else the synthetic data). */
  datasplit?: string;
  config?: CellMapConfig;
  progress: boolean;
}

/** What the demo uses when neither a flag nor the config says. */
export const DEMO_DEFAULTS = { batches: 40, batchSize: 8, workers: 2, seed: 1, patch: 64, size: 256 } as const;
/** What `--short` sets (flags still override it). */
export const DEMO_SHORT = { batches: 6, batchSize: 4, patch: 32, size: 128 } as const;

/** What the demo prints at the end. */
export interface DemoSummary {
  batches: number;
  samples: number;
  seconds: number;
  firstBatchSeconds: number;
  samplesPerSecond: number;
  megabytesPerSecond: number;
  /** Per class: foreground fraction of annotated voxels, and fraction of unknown (NaN) voxels. */
  classBalance: Record<string, { foreground: number; unknown: number }>;
  cacheHitRate: number;
  workers: number;
  batchSize: number;
  seed: number;
  preview: string;
  /** The synthetic data's folder, or the folder of the user's datasplit. */
  dataDir: string;
  /** The datasplit CSV streamed from. */
  datasplit: string;
}

/** The demo's default training setup on the synthetic data. */
export function demoConfig(patch: number): CellMapConfig {
  return {
    inputArrays: { raw: { shape: [patch, patch, patch], scale: [8, 8, 8] } },
    targetArrays: { gt: { shape: [patch, patch, patch], scale: [8, 8, 8] } },
    classes: ["mito", "er", "nuc"],
    spatialTransforms: {
      mirror: { axes: { x: 0.5, y: 0.5, z: 0.5 } },
      transpose: { axes: ["x", "y"] },
      rotate: { axes: { z: [-30, 30] } },
    },
    pad: true,
  };
}

/** Runs the demo and returns its summary. */
export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const patch = o.patch ?? DEMO_DEFAULTS.patch;
  const config = o.config ?? demoConfig(patch);
  if (!config.classes || !config.targetArrays) {
    throw new CellMapError("INVALID_ARGUMENT", "the demo needs classes and targetArrays in its config", config.classes ? "targetArrays" : "classes");
  }
  const seed = o.seed ?? config.seed ?? DEMO_DEFAULTS.seed;
  const batchSize = o.batchSize ?? config.batchSize ?? DEMO_DEFAULTS.batchSize;
  const workers = o.workers ?? config.numWorkers ?? DEMO_DEFAULTS.workers;
  const batches = o.batches ?? config.iterationsPerEpoch ?? DEMO_DEFAULTS.batches;
  let csvPath = o.datasplit ?? config.csvPath;
  const synthetic = csvPath === undefined;
  if (csvPath === undefined) {
    fs.mkdirSync(o.dir, { recursive: true });
    csvPath = (await writeSyntheticDataset(o.dir, { size: o.size ?? DEMO_DEFAULTS.size, seed })).csvPath;
  }
  const outDir = o.out ?? (synthetic ? o.dir : process.cwd());
  const split = await CellMapDataSplit.open({ ...splitOptionsFromConfig(config), csvPath, seed });
  const train = split.trainDatasetsCombined;
  const t0 = performance.now();
  const loader = new CellMapDataLoader(train, {
    ...loaderOptionsFromConfig(config),
    batchSize,
    numWorkers: workers,
    iterationsPerEpoch: batches,
    seed,
    isTrain: true,
  });
  const bar = o.progress ? new SingleBar({ format: "streaming |{bar}| {value}/{total} batches | {rate} samples/s" }, Presets.shades_classic) : null;
  bar?.start(loader.length, 0, { rate: "-" });
  const classes = config.classes;
  const fg = classes.map(() => ({ fg: 0, known: 0, all: 0 }));
  const inputKey = Object.keys(config.inputArrays)[0];
  const targetKey = Object.keys(config.targetArrays)[0];
  let bytes = 0;
  let samples = 0;
  let first = 0;
  let last: Batch | null = null;
  try {
    for await (const batch of loader) {
      if (!first) first = (performance.now() - t0) / 1000;
      samples += batch.idx.length;
      const gt = batch[targetKey] as Tensor;
      for (const key of Object.keys(batch)) {
        const t = batch[key] as Tensor;
        if (t?.data instanceof Float32Array) bytes += t.data.byteLength;
      }
      const per = gt.data.length / (gt.shape[0] * gt.shape[1]);
      for (let n = 0; n < gt.shape[0]; n++) {
        for (let c = 0; c < gt.shape[1]; c++) {
          const acc = fg[c];
          const base = (n * gt.shape[1] + c) * per;
          for (let i = 0; i < per; i++) {
            const v = gt.data[base + i];
            if (v === v) {
              acc.known++;
              if (v > 0) acc.fg++;
            }
          }
          acc.all += per;
        }
      }
      last = batch;
      bar?.increment(1, { rate: (samples / ((performance.now() - t0) / 1000)).toFixed(1) });
    }
  } finally {
    bar?.stop();
    await loader.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  fs.mkdirSync(outDir, { recursive: true });
  const preview = path.join(outDir, "preview.png");
  if (last) {
    fs.writeFileSync(
      preview,
      renderBatchGrid(last, {
        inputKey,
        targetKey,
        classes,
        maxSamples: 4,
        inputArray: config.inputArrays[inputKey],
        targetArray: config.targetArrays[targetKey],
      }),
    );
  }
  const st = loader.cacheStats();
  return {
    batches: loader.length,
    samples,
    seconds,
    firstBatchSeconds: first,
    samplesPerSecond: samples / seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
    classBalance: Object.fromEntries(classes.map((c, k) => [c, { foreground: fg[k].known ? fg[k].fg / fg[k].known : 0, unknown: fg[k].all ? 1 - fg[k].known / fg[k].all : 0 }])),
    cacheHitRate: st.hits / Math.max(1, st.hits + st.misses),
    workers,
    batchSize,
    seed,
    preview,
    dataDir: synthetic ? o.dir : path.dirname(csvPath),
    datasplit: csvPath,
  };
}

/** Human-readable summary. */
export function formatDemoSummary(s: DemoSummary): string {
  return [
    `data:          ${s.datasplit}`,
    `streamed:      ${s.batches} batches of ${s.batchSize}, ${s.samples} samples in ${s.seconds.toFixed(2)} s with ${s.workers} worker(s), seed ${s.seed} (first batch after ${s.firstBatchSeconds.toFixed(2)} s)`,
    `throughput:    ${s.samplesPerSecond.toFixed(1)} samples/s, ${s.megabytesPerSecond.toFixed(1)} MB/s of float32 tensors`,
    `class balance: ${Object.entries(s.classBalance)
      .map(([c, b]) => `${c} ${(100 * b.foreground).toFixed(1)}% fg (${(100 * b.unknown).toFixed(0)}% unknown)`)
      .join(", ")}`,
    `chunk cache:   ${(100 * s.cacheHitRate).toFixed(1)}% hits`,
    `preview:       ${s.preview}  (rows: samples; columns: raw mid-slice, then each class; magenta = unknown, red = target field of view)`,
  ].join("\n");
}
