// @ts-check
/**
 * One row of the loader bench (`bench/loader.ts` spawns this file once per configuration).
 * Plain JavaScript on the built package (`dist/`), run by plain `node`: what a user's training
 * process runs, with no TypeScript loader in its memory or in its worker threads (under tsx each
 * worker thread carried ~35 MB more and the main thread ~40 MB).
 *
 * argv[2]: the configuration as JSON (`ChildConfig` of loader.ts plus the workload `spec`,
 * `batchSize`, `classes` and `cacheBytes`). Prints one JSON row (`LoaderRow`).
 */
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { CellMapDataLoader, CellMapDataset } from "../dist/index.js";

/**
 * memcpy bandwidth of this machine (bytes/s) with `threads` threads copying at once (they share
 * the memory bus): each copies 64 MiB of float32 with `TypedArray#set`, best of 5, summed.
 * @param {number} threads
 * @returns {Promise<number>}
 */
async function memcpyBandwidth(threads) {
  const code = `
    const { parentPort } = require("node:worker_threads");
    const a = new Float32Array(16 * 2 ** 20).fill(1), b = new Float32Array(16 * 2 ** 20);
    b.set(a);
    let best = Infinity;
    for (let r = 0; r < 5; r++) { const t = performance.now(); b.set(a); best = Math.min(best, performance.now() - t); }
    parentPort.postMessage(a.byteLength / (best / 1000));`;
  const rates = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true });
          w.once("message", (v) => (resolve(v), void w.terminate()));
          w.once("error", reject);
        }),
    ),
  );
  return rates.reduce((x, y) => x + y, 0);
}

/** @param {number[]} s */
const product = (s) => s.reduce((a, b) => a * b, 1);

/** @param {any} cfg */
async function runConfig(cfg) {
  const wl = cfg.spec;
  const dataset = await CellMapDataset.open({
    rawPath: cfg.raw,
    targetPath: `${cfg.gt}/[${cfg.classes.join(",")}]`,
    classes: cfg.classes,
    inputArrays: { raw: wl.raw },
    targetArrays: { labels: wl.labels },
    pad: false,
    ...(wl.spatial && { spatialTransforms: wl.spatial, isTrain: true }),
  });
  const bytesPerSample = 4 * (product(wl.raw.shape) + cfg.classes.length * product(wl.labels.shape));
  const t0 = performance.now(); // first batch: from construction (worker start-up included)
  const loader = new CellMapDataLoader(dataset, {
    batchSize: cfg.batchSize,
    numWorkers: cfg.workers,
    seed: 1,
    chunkCacheBytes: cfg.cacheBytes,
    ...(process.env.PF && { prefetchFactor: +process.env.PF }),
  });
  let firstBatchMs = 0;
  let k = 0;
  /** @type {number[]} */
  const rates = [];
  let tWin = 0;
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.cpuUsage();
  const start = cfg.warmupBatches;
  const end = start + cfg.windows * cfg.batches;
  let stats = loader.cacheStats();
  let fresh = 0;
  // What a training loop does: take each batch, use it, drop it (or hand it back with recycle).
  for await (const b of loader) {
    if (k === 0) firstBatchMs = performance.now() - t0;
    if (!b.labels) throw new Error("batch without labels");
    if (k >= start && !(b.raw.data.buffer instanceof SharedArrayBuffer)) fresh++;
    if (cfg.recycle) loader.recycle(b);
    k++;
    if (k === start) {
      tWin = performance.now();
      elu0 = performance.eventLoopUtilization();
      cpu0 = process.cpuUsage();
    } else if (k > start && (k - start) % cfg.batches === 0) {
      const now = performance.now();
      rates.push((cfg.batches * cfg.batchSize) / ((now - tWin) / 1000));
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
  const samples = cfg.windows * cfg.batches * cfg.batchSize;
  const peakRssMB = (process.resourceUsage().maxRSS * 1024) / 2 ** 20; // before the memcpy probe's buffers
  const readers = Math.min(os.cpus().length, Math.max(1, cfg.workers));
  const limit = (await memcpyBandwidth(readers)) / bytesPerSample;
  return {
    workload: cfg.workload,
    source: cfg.source,
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
    freshBatches: fresh,
    ...(cfg.cacheBytes > 0 && stats.entries > 0 ? { decodesPerChunk: stats.misses / stats.entries } : {}),
  };
}

console.log(JSON.stringify(await runConfig(JSON.parse(process.argv[2]))));
