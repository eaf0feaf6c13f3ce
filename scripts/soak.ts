/**
 * Soak test (opt-in: `npm run soak`; not part of `npm test`).
 *
 * Serves a generated OME-NGFF dataset (sharded Zarr v3 raw + label crop) from nginx on
 * 127.0.0.1 (installed and started by test/helpers/nginx.ts) and trains on it through
 * `CellMapDataLoader` with worker threads and augmentation for many epochs, printing per epoch:
 * time, samples/s, RSS at the end of the epoch (after a full GC of this thread) and its median
 * over the epoch (sampled every 10 batches), heap, open file descriptors (/proc/self/fd) and
 * threads (/proc/self/status). RSS counts the worker threads too; their heaps and glibc's malloc
 * arenas are not collected on demand, so a single reading swings by ±15% between epochs without
 * any leak. The check therefore compares the epoch medians: it fails (exit 1) when the median RSS
 * of the last epoch is not within 10% of epoch 2's, when RSS at the end of the last epoch grew by
 * more than 10% over epoch 2's, or when descriptors or threads grew.
 *
 * Environment: SOAK_EPOCHS (10), SOAK_BATCHES (200 per epoch), SOAK_BATCH_SIZE (4),
 * SOAK_WORKERS (2), SOAK_CACHE_MB (16: small on purpose, so chunks are evicted and fetched
 * again all the time), SOAK_KEEP=1 keeps the data directory.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";
import { makeLabelPyramid, makeRawEM } from "../test/fixtures/builder.js";
import { startNginx, nginxVersion, ensureNginx } from "../test/helpers/nginx.js";

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const EPOCHS = env("SOAK_EPOCHS", 10);
const BATCHES = env("SOAK_BATCHES", 200);
const BATCH_SIZE = env("SOAK_BATCH_SIZE", 4);
const WORKERS = env("SOAK_WORKERS", 2);
const CACHE_MB = env("SOAK_CACHE_MB", 16);

// A full GC before each measurement makes RSS comparable between epochs.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function fdCount(): number {
  try {
    return fs.readdirSync("/proc/self/fd").length;
  } catch {
    return NaN; // not Linux
  }
}

function threadCount(): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

const MB = 1024 * 1024;
const fmt = (b: number) => `${(b / MB).toFixed(1)} MB`;

async function main(): Promise<number> {
  registerFastCodecs();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "cm-soak-"));
  let t0 = performance.now();
  // 128³ voxels at 4 nm, 3 levels, sharded v3 (shard index + inner-chunk range reads), zstd inner chunks.
  const container = path.join(root, "soak.zarr");
  const storage = { format: 3 as const, chunks: [16, 16, 16], chunksPerShard: [2, 2, 2], codec: { id: "zstd" as const, level: 3 }, root: container };
  await makeRawEM(path.join(container, "raw"), { shape: [128, 128, 128], s0Scale: [4, 4, 4], levels: 3, seed: 3, ...storage });
  const crop = { shape: [48, 48, 48], s0Scale: [8, 8, 8], translation: [68, 68, 68], levels: 2, ...storage, chunks: [8, 8, 8] };
  await makeLabelPyramid(path.join(container, "gt", "mito"), { ...crop, shapes: [{ kind: "sphere", center: [256, 256, 256], radius: 120 }] });
  await makeLabelPyramid(path.join(container, "gt", "er"), { ...crop, shapes: [{ kind: "box", min: [64, 200, 64], max: [460, 300, 460] }] });
  console.log(`data written in ${((performance.now() - t0) / 1000).toFixed(1)} s under ${root}`);

  const server = await startNginx(root);
  console.log(`${nginxVersion(await ensureNginx())} serving at ${server.url}`);
  let loader: CellMapDataLoader | null = null;
  try {
    const dataset = await CellMapDataset.open({
      rawPath: `${server.url}/soak.zarr/raw`,
      targetPath: `${server.url}/soak.zarr/gt/[mito,er]`,
      classes: ["mito", "er"],
      inputArrays: { raw: { shape: [32, 32, 32], scale: [8, 8, 8] } },
      targetArrays: { gt: { shape: [32, 32, 32], scale: [8, 8, 8] } },
      isTrain: true,
      spatialTransforms: { mirror: { axes: { x: 0.5, y: 0.5 } }, transpose: { axes: ["y", "x"] }, rotate: { axes: { z: [-180, 180] } } },
      rawValueTransforms: { type: "Compose", params: { transforms: [{ type: "Normalize" }, { type: "GaussianNoise", params: { std: 0.05 } }, { type: "RandomContrast" }] } },
      targetValueTransforms: { type: "Binarize" },
      pad: true,
      seed: 1,
      http: { timeoutMs: 10_000 },
    });
    loader = new CellMapDataLoader(dataset, { batchSize: BATCH_SIZE, numWorkers: WORKERS, iterationsPerEpoch: BATCHES, seed: 1, chunkCacheBytes: CACHE_MB * MB });
    console.log(`${dataset.length} samples; ${EPOCHS} epochs x ${BATCHES} batches of ${BATCH_SIZE}, ${WORKERS} workers, chunk cache ${CACHE_MB} MB`);
    console.log("epoch  batches  seconds  samples/s  RSS(end)  RSS(median)     heap  buffers  fds  threads");
    const rows: { rss: number; median: number; fds: number; threads: number }[] = [];
    for (let epoch = 1; epoch <= EPOCHS; epoch++) {
      t0 = performance.now();
      let n = 0;
      const samples: number[] = [];
      for await (const batch of loader) {
        n++;
        if ((batch.raw as { shape: number[] }).shape[0] !== BATCH_SIZE) throw new Error(`batch ${n} has the wrong size`);
        if (n % 10 === 0) samples.push(process.memoryUsage.rss());
      }
      samples.sort((a, b) => a - b);
      const secs = (performance.now() - t0) / 1000;
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
      const mem = process.memoryUsage();
      const row = { rss: mem.rss, median: samples[samples.length >> 1] ?? mem.rss, fds: fdCount(), threads: threadCount() };
      rows.push(row);
      console.log(
        `${String(epoch).padStart(5)}  ${String(n).padStart(7)}  ${secs.toFixed(1).padStart(7)}  ${((n * BATCH_SIZE) / secs).toFixed(0).padStart(9)}  ${fmt(row.rss).padStart(8)}  ${fmt(row.median).padStart(11)}  ${fmt(mem.heapUsed).padStart(7)}  ${fmt(mem.arrayBuffers).padStart(7)}  ${String(row.fds).padStart(3)}  ${String(row.threads).padStart(7)}`,
      );
      if (n !== BATCHES) throw new Error(`epoch ${epoch} gave ${n} batches, expected ${BATCHES}`);
    }
    await loader.close();
    loader = null;

    const failures: string[] = [];
    if (rows.length >= 3) {
      const ref = rows[1];
      const last = rows[rows.length - 1];
      const pct = (a: number, b: number) => `${(((b - a) / a) * 100).toFixed(1)}%`;
      console.log(`RSS at the end of epoch 2 -> ${rows.length}: ${fmt(ref.rss)} -> ${fmt(last.rss)} (${pct(ref.rss, last.rss)})`);
      console.log(`median RSS of epoch 2 -> ${rows.length}: ${fmt(ref.median)} -> ${fmt(last.median)} (${pct(ref.median, last.median)})`);
      if (Math.abs(last.median - ref.median) > 0.1 * ref.median) failures.push(`median RSS of epoch ${rows.length} is not within 10% of epoch 2 (${pct(ref.median, last.median)})`);
      if (last.rss > 1.1 * ref.rss) failures.push(`RSS at the end of epoch ${rows.length} grew by more than 10% over epoch 2 (${pct(ref.rss, last.rss)})`);
      if (last.fds > ref.fds) failures.push(`open file descriptors grew: ${ref.fds} -> ${last.fds}`);
      if (last.threads > ref.threads) failures.push(`threads grew: ${ref.threads} -> ${last.threads}`);
    }
    console.log(`after close: ${threadCount()} threads, ${fdCount()} fds`);
    if (failures.length) {
      console.error(`SOAK FAILED:\n  ${failures.join("\n  ")}`);
      return 1;
    }
    console.log("soak OK");
    return 0;
  } finally {
    await loader?.close();
    await server.stop();
    if (process.env.SOAK_KEEP !== "1") fs.rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = await main();
