/**
 * `cellmap-data demo`: builds the synthetic CellMap-style dataset (or takes the user's datasplit
 * and config), then streams augmented training batches through `CellMapDataLoader` with worker
 * threads and summarises throughput, class balance and cache behaviour, plus a preview PNG.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { CellMapDataSplit } from "../dataset/split.js";
import type { ArraySpecs } from "../dataset/types.js";
import { writeSyntheticDataset } from "../demo/synthetic.js";
import { CellMapDataLoader } from "../loader/loader.js";
import type { Batch } from "../loader/collate.js";
import type { Tensor } from "../tensor.js";
import { renderBatchGrid } from "../viz/grid.js";
import type { CellMapConfig } from "./config.js";

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Where the synthetic data and the preview go. */
  dir: string;
  /** Batches to stream. */
  batches: number;
  batchSize: number;
  workers: number;
  /** Patch edge in voxels at 8 nm (synthetic data only). */
  patch: number;
  /** Raw s0 edge in voxels at 4 nm (synthetic data only). */
  size: number;
  seed: number;
  /** The user's datasplit CSV and config (instead of the synthetic data). */
  datasplit?: string;
  config?: CellMapConfig;
  progress: boolean;
}

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
  preview: string;
  dataDir: string;
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
  fs.mkdirSync(o.dir, { recursive: true });
  let csvPath = o.datasplit;
  if (!csvPath) csvPath = (await writeSyntheticDataset(o.dir, { size: o.size, seed: o.seed })).csvPath;
  const config = o.config ?? demoConfig(o.patch);
  if (!config.classes || !config.targetArrays) throw new Error("the demo needs classes and targetArrays in its config");
  const split = await CellMapDataSplit.open({
    csvPath,
    classes: config.classes,
    inputArrays: config.inputArrays as ArraySpecs,
    targetArrays: config.targetArrays as ArraySpecs,
    spatialTransforms: config.spatialTransforms,
    classRelationDict: config.classRelationDict,
    pad: config.pad ?? true,
    seed: o.seed,
  } as Parameters<typeof CellMapDataSplit.open>[0]);
  const train = split.trainDatasetsCombined;
  const t0 = performance.now();
  const loader = new CellMapDataLoader(train, {
    batchSize: o.batchSize,
    numWorkers: o.workers,
    iterationsPerEpoch: o.batches,
    seed: o.seed,
    isTrain: true,
    chunkCacheBytes: config.chunkCacheBytes,
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
  const preview = path.join(o.dir, "preview.png");
  if (last) {
    fs.writeFileSync(preview, renderBatchGrid(last, {
      inputKey, targetKey, classes, maxSamples: 4,
      inputArray: config.inputArrays[inputKey], targetArray: config.targetArrays[targetKey],
    }));
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
    workers: o.workers,
    preview,
    dataDir: o.dir,
  };
}

/** Human-readable summary. */
export function formatDemoSummary(s: DemoSummary): string {
  return [
    `data:          ${s.dataDir}`,
    `streamed:      ${s.batches} batches, ${s.samples} samples in ${s.seconds.toFixed(2)} s with ${s.workers} worker(s) (first batch after ${s.firstBatchSeconds.toFixed(2)} s)`,
    `throughput:    ${s.samplesPerSecond.toFixed(1)} samples/s, ${s.megabytesPerSecond.toFixed(1)} MB/s of float32 tensors`,
    `class balance: ${Object.entries(s.classBalance).map(([c, b]) => `${c} ${(100 * b.foreground).toFixed(1)}% fg (${(100 * b.unknown).toFixed(0)}% unknown)`).join(", ")}`,
    `chunk cache:   ${(100 * s.cacheHitRate).toFixed(1)}% hits`,
    `preview:       ${s.preview}  (rows: samples; columns: raw mid-slice, then each class; magenta = unknown, red = target field of view)`,
  ].join("\n");
}
