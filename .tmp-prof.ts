import { CellMapDataset } from "./src/dataset/index.js";
import { CellMapDataLoader } from "./src/loader/index.js";
const root = "/tmp/cellmap-bench/jrc_synth-bench.zarr/recon-1";
const wl = process.env.W ?? "std";
const raw = wl === "std" ? { shape: [64, 64, 64], scale: [8, 8, 8] } : wl === "resample" ? { shape: [64, 64, 64], scale: [6, 6, 6] } : { shape: [96, 96, 96], scale: [4, 4, 4] };
const lab = wl === "std" ? raw : wl === "resample" ? raw : { shape: [48, 48, 48], scale: [8, 8, 8] };
const ds = await CellMapDataset.open({ rawPath: `${root}/em/fibsem-uint8`, targetPath: `${root}/labels/groundtruth/crop1/[mito,er,nuc]`, classes: ["mito","er","nuc"], inputArrays: { raw }, targetArrays: { labels: lab }, pad: false });
const cache = Number(process.env.C ?? 512 * 2 ** 20);
const loader = new CellMapDataLoader(ds, { batchSize: 8, numWorkers: Number(process.env.NW ?? 0), seed: 1, chunkCacheBytes: cache });
let k = 0; let t = 0; const N = Number(process.env.N ?? 100);
for await (const b of loader) { loader.recycle(b); if (++k === 40) t = performance.now(); if (k === 40 + N) break; }
console.log(wl, "samples/s", (N*8)/((performance.now()-t)/1000));
await loader.close();
