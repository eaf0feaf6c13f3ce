/**
 * `npm run bench`: throughput figures, all variants of a section measured in the same run.
 * Usage: `npm run bench [-- image kernels loader serve codecs writer transforms]` (default: all). Data is generated once
 * under `.tmp/bench` (gitignored).
 */
import * as os from "node:os";
import * as path from "node:path";
import { benchImage } from "./image.js";

const args = process.argv.slice(2);
/** `--name value` options (removed from the section list). */
function option(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
const fixtures = option("fixtures");
const workloads = option("workloads")?.split(",");
const workers = option("workers")?.split(",").map(Number);
const caches = option("caches")?.split(",");
const latency = option("latency-ms");
const latencyMs = latency === undefined ? undefined : Number(latency);
if (latencyMs !== undefined && !(Number.isFinite(latencyMs) && latencyMs >= 0)) throw new Error(`--latency-ms must be a number of milliseconds >= 0, got ${latency}`);
const python = option("python");
const sections = args;
const want = (s: string) => sections.length === 0 || sections.includes(s);
const dataDir = path.resolve(process.env.CELLMAP_BENCH_DIR ?? ".tmp/bench");

function table(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const fmt = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : String(v));
  const keys = Object.keys(rows[0]);
  const w = keys.map((k) => Math.max(k.length, ...rows.map((r) => fmt(r[k]).length)));
  console.log(keys.map((k, i) => k.padEnd(w[i])).join("  "));
  for (const r of rows) console.log(keys.map((k, i) => fmt(r[k]).padEnd(w[i])).join("  "));
  console.log();
}

console.log(`machine: ${os.cpus()[0]?.model ?? "?"} x ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
if (want("image")) {
  console.log("## patch reads: 64^3 uint8 from 512^3 blosc-lz4 volume, 64^3 chunks (MB/s of uint8 voxels delivered)");
  table((await benchImage(dataDir)) as unknown as Record<string, unknown>[]);
}
if (want("kernels")) {
  const { benchKernels } = await import("./kernels.js");
  console.log("## sampling kernels: ns per output voxel, 64^3 float32 patch from a uint8 level, one thread, region and output in a data plane");
  table(benchKernels() as unknown as Record<string, unknown>[]);
}
if (want("loader")) {
  const { benchLoader } = await import("./loader.js");
  const run = await benchLoader(dataDir, { fixtures, workloads, workers, caches, latencyMs });
  const { fixture, rows } = run;
  console.log(
    `## loader on ${fixture}: std = raw 64^3 @ 8 nm + 3 classes 64^3 @ 8 nm; aug = std + mirror y/x + rotate z ±30°; aug-elastic = aug + elastic (control points 64 nm, sigma 0/4/4 nm); aug3d = std + mirror z/y/x + rotate z ±180°, y/x ±20°; resample = std @ 6 nm; raw4nm = raw 96^3 @ 4 nm + classes 48^3 @ 8 nm; batch 8, shuffled; a for-await loop that drops each batch (recycle = true: it calls loader.recycle)`,
  );
  table(rows as unknown as Record<string, unknown>[]);
  if (python) {
    const { benchPython, ratioRows } = await import("./python.js");
    // The Python library has no elastic deformation: no Python row, no ratio for aug-elastic.
    const wls = (workloads ?? ["std", "aug", "aug3d", "resample", "raw4nm"]).filter((w) => w !== "aug-elastic");
    const local = fixtures ?? process.env.CELLMAP_BENCH_FIXTURES ?? "";
    console.log(`## Python CellMap-Data on the same fixture, right after (${python}/bench.py; median samples/s, no chunk cache)`);
    const py = await benchPython(python, local, wls, [0, 2]);
    if (run.httpBase) {
      // Its fsspec HTTP store is not fork-safe: 0 workers only over HTTP.
      const source = rows.find((r) => r.source.startsWith("http"))?.source ?? "http";
      const over = await benchPython(python, run.httpBase, wls.includes("std") ? ["std"] : wls.slice(0, 1), [0]);
      py.push(...over.map((r) => ({ ...r, source })));
    }
    table(py as unknown as Record<string, unknown>[]);
    console.log("## ratio: ours (2 workers, batches dropped unless recycle) / Python's best (0 or 2 workers) on the same source");
    table(ratioRows(rows, py) as unknown as Record<string, unknown>[]);
  }
  await run.close();
}
if (want("serve")) {
  const { benchServe } = await import("./serve.js");
  const { fixture, rows } = await benchServe(dataDir, { fixtures, workers });
  console.log(`## serve on ${fixture}: the std workload in process and through \`cellmap-data serve\` + the Python client over loopback (warm cache, batch 8)`);
  table(rows as unknown as Record<string, unknown>[]);
}
if (want("codecs")) {
  const { benchCodecs } = await import("./codecs.js");
  console.log("## codec decode throughput (64^3 uint8 EM-like chunks)");
  table((await benchCodecs()) as unknown as Record<string, unknown>[]);
  const fx = fixtures ?? process.env.CELLMAP_BENCH_FIXTURES;
  if (fx) {
    const { benchFixtureChunks } = await import("./codecs.js");
    console.log("## decode of jrc_synth-bench.zarr chunks, ours vs zarrita's WASM vs Python c-blosc (1 thread)");
    table((await benchFixtureChunks(fx)) as unknown as Record<string, unknown>[]);
  }
}
if (want("writer")) {
  const { benchWriter } = await import("./writer.js");
  console.log("## prediction writes: 64^3 float32 tiles");
  table((await benchWriter(dataDir)) as unknown as Record<string, unknown>[]);
}
if (want("transforms")) {
  const { benchTransforms } = await import("./transforms.js");
  console.log("## transforms on a 64^3 float32 patch");
  table((await benchTransforms()) as unknown as Record<string, unknown>[]);
}
