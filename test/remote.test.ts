/**
 * Remote reads against a real HTTP object store: the fixture of `fixtures/remote.ts` (Zarr v2 and
 * sharded Zarr v3) is served by nginx on 127.0.0.1 (installed and started by the test itself, see
 * helpers/nginx.ts), with a pass-through proxy in front to count requests. Dataset samples,
 * `info` and loader batches read over HTTP must be byte-identical to local reads.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describeImage } from "../src/cli/info.js";
import { CellMapDataset, type CellMapDatasetOptions } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { HttpStore } from "../src/store/http.js";
import { chunkCache } from "../src/zarr/cache.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";
import { crop1Options, type RemoteContainer } from "./fixtures/remote.js";
import { tensorDigest } from "./helpers/digest.js";
import { serveRemoteFixture } from "./helpers/served.js";

registerFastCodecs();
const { tmp, fx, ng, proxy } = await serveRemoteFixture("cm-remote-");

const HTTP = { backoffMs: 5, timeoutMs: 5000 };
/** Dataset options over crop1 of a container, rooted at a local dir or a URL. */
const crop1 = (base: string, c: RemoteContainer, extra: Partial<CellMapDatasetOptions> = {}) => crop1Options(base, c, { http: HTTP, ...extra });

async function digests(ds: CellMapDataset, indices: number[], epoch = 0): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < indices.length; k += 8) {
    const items = await Promise.all(indices.slice(k, k + 8).map((i) => ds.get(i, { epoch })));
    out.push(...items.map(tensorDigest));
  }
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("remote data over nginx", { skip: ng.skip ?? false }, () => {
  const url = () => proxy!.url;

  it("nginx serves byte ranges (suffix and bounded); the store keeps connections alive", async () => {
    const file = `/${fx.v3.raw}/s0/zarr.json`;
    const whole = new Uint8Array(await (await fetch(ng.server!.url + file)).arrayBuffer());
    const r = await fetch(ng.server!.url + file, { headers: { Range: "bytes=3-9" } });
    assert.equal(r.status, 206);
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), whole.subarray(3, 10));
    const s = await fetch(ng.server!.url + file, { headers: { Range: "bytes=-5" } });
    assert.equal(s.status, 206);
    assert.deepEqual(new Uint8Array(await s.arrayBuffer()), whole.subarray(whole.length - 5));
    // The store reuses its connection (keep-alive) for sequential requests.
    const store = new HttpStore(url(), HTTP);
    proxy!.resetStats();
    for (let i = 0; i < 20; i++) await store.getRange(file as `/${string}`, { offset: i, length: 4 });
    assert.equal(proxy!.requests.length, 20);
    assert.ok(proxy!.connections <= 2, `${proxy!.connections} TCP connections for 20 sequential requests`);
  });

  for (const which of ["v2", "v3"] as const) {
    it(`${which}: every sample of a training dataset read over HTTP equals the local read`, async () => {
      const c = fx[which];
      const local = await CellMapDataset.open(crop1(tmp, c));
      const remote = await CellMapDataset.open(crop1(url(), c));
      assert.equal(remote.length, local.length);
      assert.ok(local.length >= 100, `crop1 gives ${local.length} samples`);
      chunkCache.clear();
      proxy!.resetStats();
      const idx = range(local.length);
      assert.deepEqual(await digests(remote, idx), await digests(local, idx));
      // a second epoch (other augmentation draws) on a subset
      const some = idx.filter((i) => i % 7 === 0);
      assert.deepEqual(await digests(remote, some, 3), await digests(local, some, 3));
      assert.ok(proxy!.requests.length > 0);
    });
  }

  it("v3: raw-only dataset over the whole volume at 8 nm equals the local read (random indices)", async () => {
    const opts = (base: string): CellMapDatasetOptions => ({ rawPath: `${base}/${fx.v3.raw}`, inputArrays: { raw: { shape: [8, 8, 8], scale: [8, 8, 8] } }, http: HTTP });
    const local = await CellMapDataset.open(opts(tmp));
    const remote = await CellMapDataset.open(opts(url()));
    assert.equal(remote.length, local.length);
    const idx = range(60).map((k) => (k * 7919) % local.length);
    assert.deepEqual(await digests(remote, idx), await digests(local, idx));
  });

  it("info (describeImage) over HTTP equals the local report", async () => {
    for (const c of [fx.v2, fx.v3]) {
      for (const p of [c.raw, c.gt("crop1").replace(/\/\[.*$/, "/mito")]) {
        const a = await describeImage(`${tmp}/${p}`);
        const b = await describeImage(`${url()}/${p}`, undefined, HTTP);
        assert.equal(b.location, `${url()}/${p}`);
        assert.deepEqual({ ...b, location: "" }, { ...a, location: "" });
        assert.deepEqual(b.problems, []);
      }
    }
  });

  it("sharded v3 is read with range requests: suffix reads for shard indexes, merged ranges for adjacent inner chunks", async () => {
    const opts = { path: `${url()}/${fx.v3.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [16, 16, 16] };
    const centre = [32, 32, 32]; // a 16³ box at 4 nm touches 2x2x2 inner chunks of one shard... or more
    const run = async (coalesceGapBytes: number | null) => {
      chunkCache.clear();
      const img = await CellMapImage.open({ ...opts, http: { ...HTTP, coalesceGapBytes } });
      proxy!.resetStats();
      const t = await img.read(centre);
      return { t, reqs: [...proxy!.requests] };
    };
    const merged = await run(0);
    const single = await run(null);
    assert.deepEqual(merged.t.data, single.t.data);
    for (const r of [...merged.reqs, ...single.reqs]) {
      assert.match(r.path, /\/s0\/c\/\d+\/\d+\/\d+$/, "only shard files are requested");
      assert.ok(r.range?.startsWith("bytes="), `range request expected, got ${r.range}`);
    }
    const suffix = (rs: typeof merged.reqs) => rs.filter((r) => r.range!.startsWith("bytes=-")).length;
    const bounded = (rs: typeof merged.reqs) => rs.filter((r) => !r.range!.startsWith("bytes=-")).length;
    const shards = new Set(single.reqs.map((r) => r.path)).size;
    assert.equal(suffix(single.reqs), shards, "one index read per shard");
    assert.ok(bounded(single.reqs) >= 8, `inner chunks read one by one without merging (${bounded(single.reqs)})`);
    assert.ok(bounded(merged.reqs) < bounded(single.reqs), `merging adjacent ranges: ${bounded(merged.reqs)} vs ${bounded(single.reqs)} requests`);
  });

  it("bounds concurrent requests per store (maxConcurrency)", async () => {
    proxy!.configure({ latencyMs: 20 });
    try {
      chunkCache.clear();
      const img = await CellMapImage.open({ path: `${url()}/${fx.v2.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [48, 48, 48], http: { ...HTTP, maxConcurrency: 3 } });
      proxy!.resetStats();
      await img.read([96, 96, 96]);
      assert.ok(proxy!.requests.length >= 27, `${proxy!.requests.length} chunk requests`);
      assert.ok(proxy!.maxOpen <= 3, `at most 3 requests at once, saw ${proxy!.maxOpen}`);
      assert.equal((img.array.array.store as unknown as HttpStore).inFlight, 0);
    } finally {
      proxy!.configure({});
    }
  });

  it("404 on a chunk reads the fill value; 404 on metadata is NOT_FOUND naming the URL", async () => {
    await assert.rejects(
      CellMapImage.open({ path: `${url()}/v2.zarr/nothing/here`, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2], http: HTTP }),
      (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND" && e.message.includes(`${url()}/v2.zarr/nothing/here`),
    );
    const chunk = path.join(tmp, fx.v2.raw, "s2", "0.0.0");
    fs.renameSync(chunk, `${chunk}.moved`);
    try {
      chunkCache.clear();
      const img = await CellMapImage.open({ path: `${url()}/${fx.v2.raw}`, targetScale: [16, 16, 16], targetVoxelShape: [2, 2, 2], http: HTTP });
      assert.deepEqual(Array.from((await img.read([24, 24, 24])).data), new Array(8).fill(0));
    } finally {
      fs.renameSync(`${chunk}.moved`, chunk);
    }
  });

  it("loader with 2 worker threads reading over HTTP gives the local batches", async () => {
    const local = await CellMapDataset.open(crop1(tmp, fx.v3));
    const remote = await CellMapDataset.open(crop1(url(), fx.v3));
    const opts = { batchSize: 4, seed: 5, iterationsPerEpoch: 6 };
    const ref: string[] = [];
    for await (const b of new CellMapDataLoader(local, { ...opts, numWorkers: 0 })) ref.push(tensorDigest(b));
    const loader = new CellMapDataLoader(remote, { ...opts, numWorkers: 2 });
    const got: string[] = [];
    try {
      for await (const b of loader) got.push(tensorDigest(b));
    } finally {
      await loader.close();
    }
    assert.equal(got.length, 6);
    assert.deepEqual(got, ref);
    assert.equal(loader.threads, 0);
  });
});
