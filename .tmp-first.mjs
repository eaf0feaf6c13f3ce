import { CellMapDataset, CellMapDataLoader } from "./dist/index.js";
const root = "/tmp/cellmap-bench/jrc_synth-bench.zarr/recon-1";
const spec = { shape: [64, 64, 64], scale: [8, 8, 8] };
const t00 = performance.now();
const ds = await CellMapDataset.open({ rawPath: `${root}/em/fibsem-uint8`, targetPath: `${root}/labels/groundtruth/crop1/[mito,er,nuc]`, classes: ["mito","er","nuc"], inputArrays: { raw: spec }, targetArrays: { labels: spec }, pad: false });
const t0 = performance.now();
const loader = new CellMapDataLoader(ds, { batchSize: 8, numWorkers: Number(process.env.NW ?? 2), seed: 1, chunkCacheBytes: 512 * 2 ** 20 });
const t1 = performance.now();
const plan = await loader.plan(); const t2 = performance.now();
let k = 0;
for await (const b of loader) { if (k++ === 0) console.log("open", (t0 - t00).toFixed(0), "ctor", (t1 - t0).toFixed(0), "plan", (t2 - t1).toFixed(0), "first batch", (performance.now() - t0).toFixed(0), "ms"); if (k === 3) break; }
await loader.close();
