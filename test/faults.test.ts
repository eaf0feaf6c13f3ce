/**
 * Reliability over HTTP: a seeded fault-injecting proxy (helpers/fault-proxy.ts) in front of nginx
 * delays, stalls, drops connections, answers 500/503 and truncates bodies. With 10% faults a full
 * pass (dataset, `info`, a loader epoch with workers) must equal the fault-free result; a chunk
 * that always fails must fail the read with an error naming its URL, within the configured
 * timeout, leaving nothing running; aborting stops network work at once.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describeImage } from "../src/cli/info.js";
import { CellMapDataset, CellMapDataSplit, type CellMapDatasetOptions } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import type { HttpStore, HttpStoreOptions } from "../src/store/http.js";
import { chunkCache, setChunkCacheBytes } from "../src/zarr/cache.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";
import { pendingChunkReads } from "../src/zarr/read.js";
import { crop1Options, type RemoteContainer } from "./fixtures/remote.js";
import { tensorDigest } from "./helpers/digest.js";
import type { FaultKind, FaultProxy } from "./helpers/fault-proxy.js";
import { serveRemoteFixture } from "./helpers/served.js";

registerFastCodecs();
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const defaultCache = chunkCache.capacityBytes;
const { tmp, fx, ng, proxy } = await serveRemoteFixture("cm-faults-", () => setChunkCacheBytes(defaultCache));

const ALL_FAULTS: FaultKind[] = ["delay", "stall", "reset", "500", "503", "truncate"];
/** Short timeouts so that stalls cost little; enough retries that 10% faults never exhaust them. */
const HTTP: HttpStoreOptions = { backoffMs: 5, timeoutMs: 600, retries: 6 };

/** crop1 with its own augmentation and seed (the digests below were taken with these). */
function crop1(base: string, c: RemoteContainer, extra: Partial<CellMapDatasetOptions> = {}): CellMapDatasetOptions {
  return crop1Options(base, c, {
    classes: ["mito", "er"],
    spatialTransforms: { mirror: { axes: { z: 0.5 } }, rotate: { axes: { z: [0, 45] } } },
    seed: 2,
    http: HTTP,
    ...extra,
  });
}

async function allDigests(ds: CellMapDataset): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < ds.length; k += 16) {
    const part = Array.from({ length: Math.min(16, ds.length - k) }, (_, j) => k + j);
    out.push(...(await Promise.all(part.map((i) => ds.get(i)))).map(tensorDigest));
  }
  return out;
}

function faultCounts(p: FaultProxy): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of p.requests) if (r.fault) c[r.fault] = (c[r.fault] ?? 0) + 1;
  return c;
}

/** Waits until `cond` holds (polling), failing after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Nothing left running in this thread: chunk loads, cache loads, the store's requests, the proxy's open requests. */
async function assertIdle(store?: HttpStore): Promise<void> {
  assert.equal(pendingChunkReads(), 0, "chunk reads pending");
  assert.equal(chunkCache.getStats().inflight, 0, "chunk cache loads in flight");
  if (store) assert.equal(store.inFlight, 0, "HTTP requests in flight");
  await until(() => proxy!.open === 0, 2000, "the server to see every request closed");
}

const isCode = (code: string, text?: string) => (e: unknown) => {
  assert.ok(e instanceof CellMapError, `expected a CellMapError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (text) assert.ok(e.message.includes(text), `message should name ${text}: ${e.message}`);
  return true;
};

describe("fault injection (10% of requests)", { skip: ng.skip ?? false }, () => {
  for (const which of ["v2", "v3"] as const) {
    it(`${which}: a full pass over a dataset equals the fault-free run`, async (t) => {
      const c = fx[which];
      const ref = await allDigests(await CellMapDataset.open(crop1(tmp, c)));
      setChunkCacheBytes(0); // every sample fetches its chunks again: many requests, many faults
      proxy!.configure({ rate: 0.1, seed: which === "v2" ? 1 : 2, kinds: ALL_FAULTS, delayMs: 40 });
      proxy!.resetStats();
      try {
        const remote = await CellMapDataset.open(crop1(proxy!.url, c));
        assert.deepEqual(await allDigests(remote), ref);
        const info = await describeImage(`${proxy!.url}/${c.raw}`, undefined, HTTP);
        assert.deepEqual({ ...info, location: "" }, { ...(await describeImage(`${tmp}/${c.raw}`)), location: "" });
      } finally {
        proxy!.configure({});
        setChunkCacheBytes(defaultCache);
      }
      const faults = faultCounts(proxy!);
      t.diagnostic(`${proxy!.requests.length} requests, faults ${JSON.stringify(faults)}`);
      const n = Object.values(faults).reduce((a, b) => a + b, 0);
      assert.ok(n >= 10 && n <= proxy!.requests.length * 0.25, `${n} faults in ${proxy!.requests.length} requests`);
      await assertIdle();
    });
  }

  it("a loader epoch with 2 worker threads equals the fault-free batches", async (t) => {
    const opts = { batchSize: 4, seed: 9, iterationsPerEpoch: 8 };
    const ref: string[] = [];
    for await (const b of new CellMapDataLoader(await CellMapDataset.open(crop1(tmp, fx.v3)), { ...opts, numWorkers: 0 })) ref.push(tensorDigest(b));
    proxy!.configure({ rate: 0.1, seed: 3, kinds: ALL_FAULTS, delayMs: 40 });
    proxy!.resetStats();
    const loader = new CellMapDataLoader(await CellMapDataset.open(crop1(proxy!.url, fx.v3)), { ...opts, numWorkers: 2, chunkCacheBytes: 0 });
    const got: string[] = [];
    try {
      for await (const b of loader) got.push(tensorDigest(b));
    } finally {
      await loader.close();
      proxy!.configure({});
    }
    t.diagnostic(`${proxy!.requests.length} requests, faults ${JSON.stringify(faultCounts(proxy!))}`);
    assert.deepEqual(got, ref);
    assert.equal(loader.threads, 0);
  });
});

describe("a permanently failing chunk", { skip: ng.skip ?? false }, () => {
  const chunkPath = `/${fx.v2.raw}/s0/1.1.1`;
  const chunkUrl = () => `${proxy!.url}${chunkPath}`;
  const imageOpts = (http: HttpStoreOptions) => ({ path: `${proxy!.url}/${fx.v2.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [8, 8, 8], http });
  const centre = [64, 64, 64]; // the 8³ patch around it touches chunk (1,1,1) of s0

  it("503 on every attempt: IO error naming the URL after the retry budget, nothing left running", async () => {
    chunkCache.clear();
    const img = await CellMapImage.open(imageOpts({ backoffMs: 5, retries: 3, timeoutMs: 1000 }));
    proxy!.configure({ fail: [{ match: /\/s0\/1\.1\.1$/, kind: "503" }] });
    proxy!.resetStats();
    try {
      await assert.rejects(img.read(centre), (e: unknown) => isCode("IO", chunkUrl())(e) && /4 attempts/.test((e as Error).message));
    } finally {
      proxy!.configure({});
    }
    assert.equal(proxy!.requests.filter((r) => r.path === chunkPath).length, 4);
    await assertIdle(img.array.array.store as unknown as HttpStore);
  });

  it("a stalled chunk fails within retries x timeout, naming the URL", async () => {
    chunkCache.clear();
    const http = { backoffMs: 5, retries: 2, timeoutMs: 300 };
    const img = await CellMapImage.open(imageOpts(http));
    proxy!.configure({ fail: [{ match: /\/s0\/1\.1\.1$/, kind: "stall" }] });
    proxy!.resetStats();
    const t0 = performance.now();
    try {
      await assert.rejects(img.read(centre), isCode("IO", chunkUrl()));
    } finally {
      proxy!.configure({});
    }
    // Count-based, so a loaded machine cannot make it flake: exactly retries + 1 attempts, each
    // given its full timeout (a lower bound only: load makes it slower, never faster).
    const elapsed = performance.now() - t0;
    assert.equal(proxy!.requests.filter((r) => /\/s0\/1\.1\.1$/.test(r.path)).length, http.retries + 1, "one request per attempt");
    assert.ok(elapsed >= (http.retries + 1) * http.timeoutMs * 0.9, `gave up too early (${elapsed.toFixed(0)} ms)`);
    await assertIdle(img.array.array.store as unknown as HttpStore);
  });

  it("dataset.get and a loader with 2 workers fail naming the URL; the workers end", async () => {
    const failing = { fail: [{ match: /\/s0\/1\.1\.1$/, kind: "500" as const }] };
    const ds = await CellMapDataset.open({
      rawPath: `${proxy!.url}/${fx.v2.raw}`,
      inputArrays: { raw: { shape: [8, 8, 8], scale: [4, 4, 4] } },
      http: { backoffMs: 2, retries: 2 },
    });
    const hit = Array.from({ length: ds.length }, (_, i) => i).filter((i) => ds.center(i).every((v) => v > 64 && v < 96));
    assert.ok(hit.length > 0);
    chunkCache.clear();
    proxy!.configure(failing);
    try {
      await assert.rejects(ds.get(hit[0]), isCode("IO", chunkUrl()));
      await assertIdle();
      const loader = new CellMapDataLoader(ds, { batchSize: 2, numWorkers: 2, sampler: [0, 1, hit[0], 2] });
      await assert.rejects(
        (async () => {
          for await (const _ of loader) {
            // read until the failing batch
          }
        })(),
        isCode("IO", chunkUrl()),
      );
      assert.equal(loader.threads, 0, "worker threads ended");
      await loader.close();
    } finally {
      proxy!.configure({});
    }
  });

  it("the process exits by itself after the failure (no open handles)", async () => {
    const script = path.join(tmp, "fail-and-exit.mjs");
    fs.writeFileSync(
      script,
      `import { CellMapImage } from ${JSON.stringify(pathToFileURL(path.join(repo, "src/image/image.ts")).href)};
const img = await CellMapImage.open(${JSON.stringify(imageOpts({ backoffMs: 5, retries: 1, timeoutMs: 300 }))});
try { await img.read(${JSON.stringify(centre)}); console.log("no error"); }
catch (e) { console.log(e.code, e.message); }
`,
    );
    proxy!.configure({ fail: [{ match: /\/s0\/1\.1\.1$/, kind: "stall" }] });
    try {
      const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const code = await new Promise<number | string>((resolve) => {
        const kill = setTimeout(() => (child.kill("SIGKILL"), resolve("killed: the process did not exit by itself")), 20_000);
        child.on("exit", (c) => (clearTimeout(kill), resolve(c ?? "signal")));
      });
      assert.equal(code, 0, out);
      assert.match(out, /^IO giving up after 2 attempts/m);
      assert.ok(out.includes(chunkUrl()), out);
    } finally {
      proxy!.configure({});
    }
  });
});

describe("AbortSignal stops network work promptly", { skip: ng.skip ?? false }, () => {
  const LATENCY = 300;

  /** Runs `start(signal)` against a slow server, aborts once the first request arrived, checks the aftermath. */
  async function abortMidway(start: (signal: AbortSignal) => Promise<unknown>, store?: () => HttpStore | undefined): Promise<void> {
    proxy!.configure({ latencyMs: LATENCY });
    proxy!.resetStats();
    const ac = new AbortController();
    try {
      const p = start(ac.signal);
      p.catch(() => {});
      await until(() => proxy!.requests.length > 0, 5000, "a first request");
      const tAbort = performance.now();
      const servedAtAbort = proxy!.served;
      ac.abort();
      await assert.rejects(p, isCode("ABORTED"));
      // Prompt means before the delayed responses in flight arrive: counted, not timed.
      assert.equal(proxy!.served, servedAtAbort, "rejected before any in-flight response was served");
      await new Promise((r) => setTimeout(r, LATENCY + 100));
      const late = proxy!.requests.filter((r) => r.t > tAbort + 50); // 50 ms: requests already on the wire
      assert.deepEqual(
        late.map((r) => r.path),
        [],
        "no request is issued after the abort",
      );
      await assertIdle(store?.());
    } finally {
      proxy!.configure({});
    }
  }

  it("CellMapImage.open and read", async () => {
    const opts = { path: `${proxy!.url}/${fx.v3.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [40, 40, 40], http: { maxConcurrency: 2 } };
    await abortMidway((signal) => CellMapImage.open({ ...opts, signal }));
    chunkCache.clear();
    const img = await CellMapImage.open(opts);
    // 40³ at 4 nm touches many shards; 2 connections at most, so most work is still queued at abort time
    await abortMidway(
      (signal) => img.read([96, 96, 96], { signal }),
      () => img.array.array.store as unknown as HttpStore,
    );
  });

  it("CellMapDataset.open and get, DataSplit.open, describeImage", async () => {
    await abortMidway((signal) => CellMapDataset.open({ ...crop1(proxy!.url, fx.v2), signal }));
    await abortMidway((signal) =>
      CellMapDataSplit.open({
        datasetDict: { train: [{ raw: `${proxy!.url}/${fx.v2.raw}`, gt: `${proxy!.url}/${fx.v2.gt("crop1")}` }] },
        classes: ["mito", "er"],
        inputArrays: { raw: { shape: [6, 6, 6], scale: [4, 4, 4] } },
        targetArrays: { gt: { shape: [4, 4, 4], scale: [8, 8, 8] } },
        signal,
      }),
    );
    await abortMidway((signal) => describeImage(`${proxy!.url}/${fx.v3.raw}`, signal));
    chunkCache.clear();
    const ds = await CellMapDataset.open(crop1(proxy!.url, fx.v3));
    await abortMidway((signal) => ds.get(0, { signal }));
    // an aborted reader does not spoil a concurrent reader of the same chunks
    chunkCache.clear();
    proxy!.configure({ latencyMs: 50 });
    const ac = new AbortController();
    const a = ds.get(5, { signal: ac.signal });
    const b = ds.get(5);
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(a, isCode("ABORTED"));
    assert.equal(tensorDigest(await b), tensorDigest(await (await CellMapDataset.open(crop1(tmp, fx.v3))).get(5)));
    proxy!.configure({});
    await assertIdle();
  });

  it("breaking out of a loader with workers stops its requests", async () => {
    const ds = await CellMapDataset.open(crop1(proxy!.url, fx.v3));
    proxy!.configure({ latencyMs: 100 });
    try {
      const loader = new CellMapDataLoader(ds, { batchSize: 4, numWorkers: 2, chunkCacheBytes: 0, iterationsPerEpoch: 20 });
      let n = 0;
      for await (const _ of loader) if (++n === 1) break;
      const tClose = performance.now();
      assert.equal(loader.threads, 0);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        proxy!.requests.filter((r) => r.t > tClose + 50).map((r) => r.path),
        [],
      );
    } finally {
      proxy!.configure({});
    }
    await until(() => proxy!.open === 0, 2000, "the server to see every request closed");
  });
});
