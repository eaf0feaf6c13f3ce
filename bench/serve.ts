/**
 * `npm run bench -- serve`: the loader's `std` workload (bench/loader.ts) read in process and
 * through `cellmap-data serve` by the reference Python client (Debian's /usr/bin/python3 +
 * numpy) over loopback, at the same worker count and warm cache, in the same run.
 *
 * Rows: samples/s (median of 3 windows after a warm-up, as the loader bench), MB/s of tensor
 * bytes received, and CPU ms per sample on each side: the server process (all its threads) and
 * the client process. `ofInProcess` is the client's samples/s over the in-process loader's.
 * On 2 cores the socket path adds two copies per byte (server write, client read) and a client
 * process competing with the workers for the same cores; shared memory makes one copy (the
 * server's write into the slot file) and the client reads the slot in place. The CPU columns
 * show that bound.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { serve } from "../src/serve/server.js";
import { BATCH, CLASSES, type ChildConfig, ensureBuilt, jrcFixture, loaderVolume, runChild, WARM_CACHE, WORKLOADS } from "./loader.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_DIR = path.resolve(here, "../clients/python");
const PYTHON = "/usr/bin/python3";

/** One row of the serve bench. */
export interface ServeRow {
  path: string;
  workers: number;
  samplesPerS: number;
  mbPerS: number;
  serverCpuMsPerSample: number;
  clientCpuMsPerSample: number | string;
  ofInProcess: number | string;
}

const CLIENT = `
import sys, json, time, resource, os, signal
sys.path.insert(0, ${JSON.stringify(CLIENT_DIR)})
from cellmap_data_client import CellMapDataClient
a = json.loads(sys.argv[1])
c = CellMapDataClient(a["url"], as_torch=False, reuse_buffers=a["reuse"], transport=a["transport"], zero_copy=a["zeroCopy"])
warm, per, windows = a["warmup"], a["batches"], a["windows"]
end = warm + per * windows
k, nbytes, rates, t = 0, 0, [], None
r0 = None
while k < end:
    for b in c:
        k += 1
        if k > warm:
            nbytes += sum(v.nbytes for v in b.values() if hasattr(v, "nbytes"))
        if k == warm:
            os.kill(a["server"], signal.SIGUSR1)
            t = time.perf_counter(); r0 = resource.getrusage(resource.RUSAGE_SELF)
        elif k > warm and (k - warm) % per == 0:
            now = time.perf_counter(); rates.append(per * a["batch"] / (now - t)); t = now
        if k == end:
            break
r1 = resource.getrusage(resource.RUSAGE_SELF)
os.kill(a["server"], signal.SIGUSR2)
rates.sort()
cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
samples = per * windows * a["batch"]
print(json.dumps({"samplesPerS": rates[len(rates) // 2], "bytesPerSample": nbytes / samples, "cpuMsPerSample": cpu / samples, "transport": c.used_transport, "zeroCopy": c.zero_copy}))
`;

/** The server side (a child process): serve the workload until stdin closes, then print CPU use. */
async function serverChild(cfg: ChildConfig): Promise<void> {
  const wl = WORKLOADS[cfg.workload];
  const dataset = await CellMapDataset.open({
    rawPath: cfg.raw,
    targetPath: `${cfg.gt}/[${CLASSES.join(",")}]`,
    classes: CLASSES,
    inputArrays: { raw: wl.raw },
    targetArrays: { labels: wl.labels },
    pad: false,
  });
  const loader = new CellMapDataLoader(dataset, { batchSize: BATCH, numWorkers: cfg.workers, seed: 1, chunkCacheBytes: WARM_CACHE });
  const server = await serve(loader);
  // The client signals the start (SIGUSR1) and end (SIGUSR2) of its timed windows.
  let cpu0 = process.cpuUsage();
  let cpu = cpu0;
  process.on("SIGUSR1", () => (cpu0 = process.cpuUsage()));
  process.on("SIGUSR2", () => (cpu = process.cpuUsage(cpu0)));
  console.log(JSON.stringify({ url: server.url, pid: process.pid }));
  process.stdin.resume();
  await new Promise((r) => process.stdin.on("end", r));
  await server.close();
  console.log(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 }));
}

function lines(stream: NodeJS.ReadableStream, on: (line: string) => void): void {
  let buf = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      on(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** Serve + Python client for one configuration. */
async function servedRow(
  cfg: ChildConfig,
  reuse: number,
  transport: "http" | "shm",
  zeroCopy: boolean,
): Promise<{ samplesPerS: number; bytesPerSample: number; clientCpuMsPerSample: number; serverCpuMsPerSample: number }> {
  const self = fileURLToPath(import.meta.url);
  const srv = spawn(process.execPath, [...process.execArgv, self, "--server", JSON.stringify(cfg)], { stdio: ["pipe", "pipe", "inherit"] });
  const msgs: Record<string, unknown>[] = [];
  let wake: (() => void) | null = null;
  lines(srv.stdout!, (l) => {
    msgs.push(JSON.parse(l));
    wake?.();
  });
  const next = async () => {
    while (msgs.length === 0) await new Promise<void>((r) => (wake = r));
    return msgs.shift()!;
  };
  const { url, pid } = (await next()) as { url: string; pid: number };
  const client = spawn(
    PYTHON,
    ["-c", CLIENT, JSON.stringify({ url, warmup: cfg.warmupBatches, batches: cfg.batches, windows: cfg.windows, batch: BATCH, reuse, transport, zeroCopy, server: pid })],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  client.stdout!.on("data", (d) => (out += d));
  const code = await new Promise<number | null>((r) => client.on("close", r));
  srv.stdin!.end();
  const { cpuMs } = (await next()) as { cpuMs: number };
  await new Promise((r) => srv.on("close", r));
  if (code !== 0) throw new Error(`python client exited with ${code}`);
  const c = JSON.parse(out.trim().split("\n").pop()!) as { samplesPerS: number; bytesPerSample: number; cpuMsPerSample: number; transport: string; zeroCopy: boolean };
  if (c.transport !== transport) throw new Error(`the client used ${c.transport}, not ${transport}`);
  if (transport === "shm" && c.zeroCopy !== zeroCopy) throw new Error(`zero copy ${zeroCopy ? "is not available (build the native addon: npm install)" : "was used"}`);
  // Server CPU (all its threads) over the client's timed windows, per sample.
  const served = cfg.batches * cfg.windows * BATCH;
  return { samplesPerS: c.samplesPerS, bytesPerSample: c.bytesPerSample, clientCpuMsPerSample: c.cpuMsPerSample, serverCpuMsPerSample: cpuMs / served };
}

/** Whether the native addon that maps the batch pool to a file is built. */
function zeroCopyBuilt(): boolean {
  return process.platform === "linux" && fs.existsSync(path.resolve(here, "../build/Release/cellmap_remap.node"));
}

/** Runs the in-process and the served row for each worker count. */
export async function benchServe(dataDir: string, opts: { fixtures?: string; workers?: number[] } = {}): Promise<{ fixture: string; rows: ServeRow[] }> {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing (scripts/setup-system.sh installs it with numpy)`);
  fs.mkdirSync(dataDir, { recursive: true });
  const jrc = jrcFixture(opts.fixtures ?? process.env.CELLMAP_BENCH_FIXTURES);
  const { raw, gt } = jrc ?? (await loaderVolume(dataDir));
  const rows: ServeRow[] = [];
  for (const workers of opts.workers ?? [2]) {
    const cfg: ChildConfig = { raw, gt, workload: "std", source: "local", workers, cache: "warm", recycle: true, warmupBatches: 40, batches: 15, windows: 3 };
    ensureBuilt();
    const local = await runChild(cfg);
    rows.push({
      path: "in-process",
      workers,
      samplesPerS: local.samplesPerS,
      mbPerS: local.mbPerS,
      serverCpuMsPerSample: local.cpuMsPerSample,
      clientCpuMsPerSample: "-",
      ofInProcess: 1,
    });
    const shm: [string, number, boolean][] = zeroCopyBuilt()
      ? [
          ["shm", 0, true],
          ["shm", 0, false],
        ]
      : [["shm", 0, false]];
    for (const [transport, reuse, zeroCopy] of [["http", 0, false], ["http", 2, false], ...shm] as [string, number, boolean][]) {
      const served = await servedRow(cfg, reuse, transport as "http" | "shm", zeroCopy);
      rows.push({
        path:
          transport === "shm"
            ? `Python client, shared memory${zeroCopy ? " (in place)" : " (copied, zero_copy=False)"}`
            : reuse
              ? `Python client, HTTP, reuse_buffers=${reuse}`
              : "Python client, HTTP",
        workers,
        samplesPerS: served.samplesPerS,
        mbPerS: (served.samplesPerS * served.bytesPerSample) / 1e6,
        serverCpuMsPerSample: served.serverCpuMsPerSample,
        clientCpuMsPerSample: served.clientCpuMsPerSample,
        ofInProcess: served.samplesPerS / local.samplesPerS,
      });
    }
  }
  return { fixture: jrc ? "jrc_synth-bench.zarr" : "built-in loader-512.zarr", rows };
}

if (process.argv[2] === "--server" && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await serverChild(JSON.parse(process.argv[3]) as ChildConfig);
}
