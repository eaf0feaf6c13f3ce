import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CellMapImage } from "../src/image/image.js";
import { CellMapError } from "../src/errors.js";
import { HttpStore } from "../src/store/http.js";
import { openStore, s3ToHttps } from "../src/store/open.js";
import { chunkCache } from "../src/zarr/cache.js";
import { makeCoordPyramid } from "./fixtures/builder.js";
import { startRangeServer, type Fault, type RangeServer } from "./helpers/range-server.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-http-"));
let server: RangeServer;
let faultFn: ((url: string, n: number) => Fault) | undefined;

before(async () => {
  await makeCoordPyramid(path.join(tmp, "v2.zarr", "raw"), {
    shape: [16, 16, 16],
    levels: 2,
    s0Scale: [4, 4, 4],
    format: 2,
    chunks: [8, 8, 8],
    codec: { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2 },
  });
  await makeCoordPyramid(path.join(tmp, "v3.zarr", "raw"), {
    shape: [16, 16, 16],
    levels: 2,
    s0Scale: [4, 4, 4],
    format: 3,
    chunks: [4, 4, 4],
    chunksPerShard: [2, 2, 2],
    codec: { id: "gzip" },
  });
  server = await startRangeServer(tmp, (u, n) => faultFn?.(u, n));
});
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function readBoth(sub: string) {
  const opts = { targetScale: [4, 4, 4], targetVoxelShape: [6, 7, 5], interpolation: "linear" as const };
  const local = await CellMapImage.open({ ...opts, path: path.join(tmp, sub) });
  const remote = await CellMapImage.open({ ...opts, path: `${server.url}/${sub}`, http: { backoffMs: 1, timeoutMs: 2000 } });
  const c = [30.5, 33, 28];
  chunkCache.clear();
  return { local: await local.read(c), remote: await remote.read(c), remoteImg: remote };
}

describe("HTTP store", () => {
  it("reads v2 and sharded v3 images over HTTP exactly like the local copy", async () => {
    for (const sub of ["v2.zarr/raw", "v3.zarr/raw"]) {
      faultFn = undefined;
      const { local, remote } = await readBoth(sub);
      assert.deepEqual(Array.from(remote.data), Array.from(local.data), sub);
    }
    assert.ok(
      server.requests.some((r) => r.range?.startsWith("bytes=")),
      "shards are read with range requests",
    );
  });

  it("retries 5xx, 429, resets and truncated bodies", async () => {
    const seen = new Map<string, number>();
    faultFn = (u) => {
      const k = (seen.get(u) ?? 0) + 1;
      seen.set(u, k);
      if (k === 1) return (["503", "500", "429", "reset", "truncate"] as const)[u.length % 5];
      return undefined;
    };
    const { local, remote } = await readBoth("v2.zarr/raw");
    assert.deepEqual(Array.from(remote.data), Array.from(local.data));
  });

  it("does not retry other 4xx and names the URL; 403 is FORBIDDEN", async () => {
    let n = 0;
    faultFn = () => (n++, "403");
    const store = new HttpStore(`${server.url}/v2.zarr`, { backoffMs: 1 });
    await assert.rejects(
      store.get("/raw/.zattrs"),
      (e: unknown) => e instanceof CellMapError && e.code === "FORBIDDEN" && /access denied \(HTTP 403/.test(e.message) && e.message.includes("/raw/.zattrs"),
    );
    assert.equal(n, 1);
  });

  it("forbiddenAsMissing: 403 on a chunk key reads as missing, on a metadata key still FORBIDDEN", async () => {
    faultFn = () => "403";
    const store = new HttpStore(`${server.url}/v2.zarr`, { backoffMs: 1, forbiddenAsMissing: true });
    assert.equal(await store.get("/raw/s0/0.0.0"), undefined);
    assert.equal(await store.getRange("/raw/s0/0.0.0", { offset: 0, length: 4 }), undefined);
    for (const key of ["/raw/.zattrs", "/raw/.zgroup", "/raw/s0/.zarray", "/raw/zarr.json"] as const) {
      await assert.rejects(store.get(key), (e: unknown) => e instanceof CellMapError && e.code === "FORBIDDEN" && e.message.includes(key));
    }
    faultFn = undefined;
  });

  it("gives up after the retry budget with an IO error naming the URL", async () => {
    faultFn = () => "503";
    const store = new HttpStore(`${server.url}/v2.zarr`, { backoffMs: 1, retries: 2 });
    await assert.rejects(store.get("/raw/.zattrs"), (e: unknown) => e instanceof CellMapError && e.code === "IO" && /3 attempts/.test(e.message));
  });

  it("times out slow responses and aborts on signal", async () => {
    faultFn = () => "delay";
    const store = new HttpStore(`${server.url}/v2.zarr`, { backoffMs: 1, retries: 0, timeoutMs: 50 });
    await assert.rejects(store.get("/raw/.zattrs"), (e: unknown) => e instanceof CellMapError && e.code === "IO");
    const ac = new AbortController();
    const p = new HttpStore(`${server.url}/v2.zarr`, { timeoutMs: 5000 }).get("/raw/.zattrs", { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof CellMapError && e.code === "ABORTED");
  });

  it("404 on metadata is NOT_FOUND; 404 on a chunk is the fill value", async () => {
    faultFn = undefined;
    await assert.rejects(
      CellMapImage.open({ path: `${server.url}/missing.zarr/raw`, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }),
      (e: unknown) => e instanceof CellMapError && e.code === "NOT_FOUND" && e.message.includes("missing.zarr"),
    );
    fs.renameSync(path.join(tmp, "v2.zarr/raw/s0/0.0.0"), path.join(tmp, "v2.zarr/raw/s0/0.0.0.bak"));
    try {
      chunkCache.clear();
      const img = await CellMapImage.open({ path: `${server.url}/v2.zarr/raw`, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] });
      assert.equal((await img.read([2, 2, 2])).data[0], 0);
    } finally {
      fs.renameSync(path.join(tmp, "v2.zarr/raw/s0/0.0.0.bak"), path.join(tmp, "v2.zarr/raw/s0/0.0.0"));
    }
  });

  it("maps s3:// to the bucket's HTTPS endpoint", () => {
    assert.equal(s3ToHttps("s3://janelia-cosem-datasets/jrc_hela-2/jrc_hela-2.zarr"), "https://janelia-cosem-datasets.s3.amazonaws.com/jrc_hela-2/jrc_hela-2.zarr");
    const o = openStore("s3://bucket/a/b.zarr/");
    assert.equal(o.location, "https://bucket.s3.amazonaws.com/a/b.zarr");
    assert.equal(o.remote, true);
  });
});
