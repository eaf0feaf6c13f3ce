/**
 * Private object storage: the remote fixture (Zarr v2 and sharded Zarr v3, `fixtures/remote.ts`)
 * is uploaded to a private bucket of a real S3-compatible server on 127.0.0.1 (s3rver behind a
 * gateway that checks Signature V4 signatures, `helpers/s3-server.ts`). Reads of `s3://` paths
 * through `CellMapDataset`, `CellMapDataLoader` (2 worker threads) and `CellMapDataSplit` (CSV
 * read from the bucket) must equal the local reads byte for byte, with credentials from the
 * environment, from `AWS_PROFILE` + the shared credentials file, or from options. Wrong or
 * missing credentials are `FORBIDDEN` naming bucket and key; a 403 chunk is `FORBIDDEN` unless
 * `forbiddenAsMissing`; a 404 chunk is the fill value. Predictions written by
 * `CellMapDatasetWriter` to `s3://` (signed PUTs, one object per chunk) equal a local write
 * byte for byte, and resume and overwrite work on the bucket.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CellMapDataset, CellMapDataSplit, CellMapMultiDataset, type CellMapDataSplitOptions, type DatasetLike } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import type { HttpStoreOptions } from "../src/store/http.js";
import { openStore } from "../src/store/open.js";
import { resolveS3 } from "../src/store/s3.js";
import { chunkCache } from "../src/zarr/cache.js";
import { registerFastCodecs } from "../src/zarr/codecs/register.js";
import { crop1Options, makeRemoteFixture, REMOTE_SPATIAL, type RemoteContainer, type RemoteFixture } from "./fixtures/remote.js";
import { tensorDigest } from "./helpers/digest.js";
import { deserializeError, serializeError } from "../src/loader/collate.js";
import { S3_KEY, S3_KEY2, startS3, type S3TestServer } from "./helpers/s3-server.js";
import type { Tensor } from "../src/tensor.js";
import { CellMapDatasetWriter, type CellMapDatasetWriterOptions } from "../src/writer/index.js";
import { TEMP_PREFIX } from "../src/util/atomic.js";

registerFastCodecs();

const AWS_VARS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_S3",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONFIG_FILE",
];
const savedEnv = Object.fromEntries(AWS_VARS.map((k) => [k, process.env[k]]));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-s3-"));
const NO_FILE = path.join(tmp, "no-such-aws-file");

/** Sets exactly these AWS variables (the shared files point nowhere unless given): nothing from the machine leaks in. */
function setEnv(vars: Record<string, string> = {}): void {
  for (const k of AWS_VARS) delete process.env[k];
  Object.assign(process.env, { AWS_SHARED_CREDENTIALS_FILE: NO_FILE, AWS_CONFIG_FILE: NO_FILE }, vars);
}

/** Runs `fn` with these AWS variables, then back to none. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  setEnv(vars);
  try {
    return await fn();
  } finally {
    setEnv();
  }
}

let s3: S3TestServer;
let fx: RemoteFixture;
/** Skipped at upload: reads as the fill value (404). */
const MISSING_CHUNK = "v2.zarr/recon-1/em/raw/s2/0.0.0";
const BUCKET = "private";

before(async () => {
  setEnv();
  fx = await makeRemoteFixture(tmp);
  s3 = await startS3([BUCKET]);
  // crop2 of v2 (77 small files) is not used here.
  await s3.upload(tmp, BUCKET, "", (rel) => rel === MISSING_CHUNK || rel.startsWith("v2.zarr/recon-1/labels/groundtruth/crop2/"));
});
after(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await s3?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const HTTP: HttpStoreOptions = { backoffMs: 5, timeoutMs: 5000, retries: 2 };
const envKeys = () => ({ AWS_ACCESS_KEY_ID: S3_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_KEY.secretAccessKey, AWS_ENDPOINT_URL: s3.url });
const crop1 = (base: string, c: RemoteContainer, http: HttpStoreOptions = HTTP) => crop1Options(base, c, { http });

async function digests(ds: DatasetLike, indices: number[], epoch = 0): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < indices.length; k += 8) {
    const items = await Promise.all(indices.slice(k, k + 8).map((i) => ds.get(i, { epoch })));
    out.push(...items.map((x) => tensorDigest(x as Parameters<typeof tensorDigest>[0])));
  }
  return out;
}

async function loaderDigests(ds: DatasetLike, numWorkers: number): Promise<string[]> {
  const loader = new CellMapDataLoader(ds, { batchSize: 4, seed: 5, iterationsPerEpoch: 4, numWorkers });
  const got: string[] = [];
  try {
    for await (const b of loader) got.push(tensorDigest(b));
  } finally {
    await loader.close();
  }
  assert.equal(loader.threads, 0);
  return got;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const isCode =
  (code: string, ...parts: string[]) =>
  (e: unknown) => {
    assert.ok(e instanceof CellMapError, `expected a CellMapError, got ${e}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should name ${p}`);
    return true;
  };
/** Requests since `from`, checked: all signed by the test key, none refused. */
function assertSigned(from: number): void {
  const reqs = s3.requests.slice(from);
  assert.ok(reqs.length > 0, "requests reached the server");
  for (const r of reqs) {
    assert.equal(r.signedBy, S3_KEY.accessKeyId, `${r.path} signed`);
    assert.ok(r.status < 400 || r.status === 404, `${r.path}: HTTP ${r.status}`);
    assert.ok(r.path.startsWith(`/${BUCKET}/`), `path-style request ${r.path}`);
  }
}

describe("s3:// on a private S3-compatible bucket", () => {
  it("v2 and sharded v3 datasets read with credentials from the environment equal the local read", async () => {
    await withEnv(envKeys(), async () => {
      for (const c of [fx.v2, fx.v3]) {
        const local = await CellMapDataset.open(crop1(tmp, c));
        const remote = await CellMapDataset.open(crop1(`s3://${BUCKET}`, c));
        assert.equal(remote.length, local.length);
        chunkCache.clear();
        const from = s3.requests.length;
        const idx = range(local.length).filter((i) => i % 3 === 0);
        assert.deepEqual(await digests(remote, idx), await digests(local, idx), c.name);
        assertSigned(from);
        if (c === fx.v3)
          assert.ok(
            s3.requests.slice(from).some((r) => r.range?.startsWith("bytes=-")),
            "shard indexes read with suffix ranges",
          );
      }
    });
  });

  it("a loader with 2 worker threads gives the local batches: credentials re-resolved from the environment there, or passed as options in the description", async () => {
    const multi = async (base: string, http2: HttpStoreOptions) =>
      new CellMapMultiDataset([await CellMapDataset.open(crop1(base, fx.v3)), await CellMapDataset.open(crop1(base, fx.v2, http2))], {});
    const ref = await loaderDigests(await multi(tmp, HTTP), 0);
    await withEnv(envKeys(), async () => {
      // v3 signs with the environment's key, v2 with the key given in its options.
      const remote = await multi(`s3://${BUCKET}`, { ...HTTP, s3: { credentials: { ...S3_KEY2 } } });
      const desc = JSON.stringify(remote.describe());
      assert.ok(desc.includes(S3_KEY2.secretAccessKey) && !desc.includes(S3_KEY.secretAccessKey), "explicit credentials travel in the description, the environment's do not");
      chunkCache.clear();
      const from = s3.requests.length;
      assert.deepEqual(await loaderDigests(remote, 2), ref);
      const reqs = s3.requests.slice(from);
      assert.ok(
        reqs.every((r) => (r.status < 400 || r.status === 404) && r.path.startsWith(`/${BUCKET}/`)),
        "all requests accepted",
      );
      // The workers re-open both datasets: metadata requests after the main thread's open come from them.
      const meta = (key: string, c: RemoteContainer) =>
        reqs.filter((r) => r.signedBy === key && r.path.startsWith(`/${BUCKET}/${c.name}/`) && /(zarr\.json|\.zattrs|\.zarray)$/.test(r.path));
      assert.ok(meta(S3_KEY.accessKeyId, fx.v3).length >= 2, "v3 metadata read in the workers with the environment's key");
      assert.ok(meta(S3_KEY2.accessKeyId, fx.v2).length >= 2, "v2 metadata read in the workers with the key from the description");
      assert.ok(reqs.every((r) => r.signedBy === (r.path.startsWith(`/${BUCKET}/v3.zarr/`) ? S3_KEY.accessKeyId : S3_KEY2.accessKeyId)));
    });
  });

  it("AWS_PROFILE + shared credentials file (region from the config file); the datasplit CSV itself is read from s3://", async () => {
    const credFile = path.join(tmp, "credentials");
    const confFile = path.join(tmp, "config");
    fs.writeFileSync(
      credFile,
      `[default]\naws_access_key_id = ${S3_KEY.accessKeyId}\naws_secret_access_key = wrong\n\n[cellmap]\naws_access_key_id = ${S3_KEY.accessKeyId}\naws_secret_access_key = ${S3_KEY.secretAccessKey}\naws_session_token = tok123\n`,
    );
    fs.writeFileSync(confFile, `[profile cellmap]\nregion = eu-west-3\nendpoint_url = ${s3.url}\n`);
    const rows = (base: string, rel: string) =>
      [
        "usage,raw_container,raw_dataset,gt_container,gt_dataset",
        `train,${base}/v2.zarr,recon-1/em/raw,${base}/v2.zarr,"recon-1/labels/groundtruth/crop1/[mito,er]"`,
        `validate,${rel}v3.zarr,recon-1/em/raw,${rel}v3.zarr,"recon-1/labels/groundtruth/crop1/[mito,er]"`,
      ].join("\n");
    const csv = rows(`s3://${BUCKET}`, ""); // the validation row is relative to the CSV's bucket
    const put = await fetch(`${s3.backend}/${BUCKET}/split.csv`, { method: "PUT", body: csv });
    assert.ok(put.ok);
    await put.arrayBuffer();
    const opts: Omit<CellMapDataSplitOptions, "csvPath" | "csvText"> = {
      inputArrays: { raw: { shape: [6, 6, 6], scale: [4, 4, 4] } },
      targetArrays: { gt: { shape: [4, 4, 4], scale: [8, 8, 8] } },
      classes: ["mito", "er"],
      spatialTransforms: REMOTE_SPATIAL,
      seed: 3,
      http: HTTP,
    };
    const local = await CellMapDataSplit.open({ ...opts, csvText: rows(tmp, `${tmp}/`) });
    await withEnv({ AWS_PROFILE: "cellmap", AWS_SHARED_CREDENTIALS_FILE: credFile, AWS_CONFIG_FILE: confFile }, async () => {
      const from = s3.requests.length;
      const split = await CellMapDataSplit.open({ ...opts, csvPath: `s3://${BUCKET}/split.csv` });
      assert.deepEqual(split.problems, []);
      assert.equal(split.trainDatasets.length, 1);
      assert.equal(split.validationDatasets.length, 1);
      assert.equal((split.validationDatasets[0] as CellMapDataset).rawPath, `s3://${BUCKET}/v3.zarr/recon-1/em/raw`);
      chunkCache.clear();
      for (const [a, b] of [
        [split.trainDatasets[0], local.trainDatasets[0]],
        [split.validationDatasets[0], local.validationDatasets[0]],
      ]) {
        const idx = range(b.length).filter((i) => i % 5 === 0);
        assert.deepEqual(await digests(a, idx), await digests(b, idx));
      }
      assertSigned(from);
      const reqs = s3.requests.slice(from);
      assert.ok(
        reqs.every((r) => r.region === "eu-west-3" && r.token === "tok123"),
        "region from the config file, session token from the credentials file",
      );
      assert.equal(reqs[0].path, `/${BUCKET}/split.csv`);
    });
    // The same CSV without credentials: FORBIDDEN naming the CSV object.
    await withEnv({ AWS_ENDPOINT_URL: s3.url }, () =>
      assert.rejects(CellMapDataSplit.open({ ...opts, csvPath: `s3://${BUCKET}/split.csv` }), isCode("FORBIDDEN", `s3://${BUCKET}/split.csv`, "unsigned")),
    );
    await withEnv(envKeys(), () => assert.rejects(CellMapDataSplit.open({ ...opts, csvPath: `s3://${BUCKET}/nothing.csv` }), isCode("NOT_FOUND", "nothing.csv")));
  });

  it("a wrong secret is FORBIDDEN naming bucket and key (never the secret)", async () => {
    const secret = "not-the-secret-4f9a";
    await withEnv({ ...envKeys(), AWS_SECRET_ACCESS_KEY: secret }, async () => {
      const err = await CellMapDataset.open(crop1(`s3://${BUCKET}`, fx.v2)).then(
        () => assert.fail("opened with a wrong secret"),
        (e: unknown) => e,
      );
      // Raw and label groups open concurrently: whichever metadata key is refused first is named.
      isCode("FORBIDDEN", `access denied to s3://${BUCKET}/${fx.v2.name}/`, "zarr.json", "SignatureDoesNotMatch", S3_KEY.accessKeyId, "environment")(err);
      assert.ok(!(err as Error).message.includes(secret) && !JSON.stringify(err).includes(secret));
    });
    await assert.rejects(
      CellMapImage.open({
        path: `s3://${BUCKET}/${fx.v2.raw}`,
        targetScale: [4, 4, 4],
        targetVoxelShape: [2, 2, 2],
        http: { ...HTTP, s3: { endpoint: s3.url, credentials: { accessKeyId: "UNKNOWN", secretAccessKey: "x" } } },
      }),
      isCode("FORBIDDEN", `s3://${BUCKET}/${fx.v2.raw}/`, "InvalidAccessKeyId"),
    );
  });

  it("a signature for the wrong region is an IO error carrying S3's code and message", async () => {
    s3.configure({ region: "eu-west-3" });
    try {
      await withEnv({ ...envKeys(), AWS_REGION: "us-east-1" }, () =>
        assert.rejects(
          CellMapImage.open({ path: `s3://${BUCKET}/${fx.v2.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2], http: HTTP }),
          isCode("IO", "HTTP 400", "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-3'"),
        ),
      );
    } finally {
      s3.configure({});
    }
  });

  it("no credentials on a private bucket: FORBIDDEN saying the request was unsigned", async () => {
    await withEnv({ AWS_ENDPOINT_URL: s3.url }, async () => {
      await assert.rejects(CellMapDataset.open(crop1(`s3://${BUCKET}`, fx.v3)), isCode("FORBIDDEN", `access denied to s3://${BUCKET}/${fx.v3.raw}/zarr.json`, "unsigned"));
      const from = s3.requests.length;
      await assert.rejects(
        CellMapImage.open({ path: `s3://${BUCKET}/${fx.v2.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2], http: HTTP }),
        isCode("FORBIDDEN", `s3://${BUCKET}/${fx.v2.raw}/zarr.json`),
      );
      assert.equal(s3.requests.length - from, 1, "a 403 is not retried");
    });
  });

  it("403 on a chunk is FORBIDDEN naming the chunk key; forbiddenAsMissing reads it as the fill value, never metadata", async () => {
    const chunkKey = `${fx.v2.raw}/s0/1.1.1`;
    // An 8³ box at 4 nm around 96 nm lies inside chunk (1,1,1) (16³ voxels).
    const image = (http: HttpStoreOptions, base = `s3://${BUCKET}`) =>
      CellMapImage.open({ path: `${base}/${fx.v2.raw}`, targetScale: [4, 4, 4], targetVoxelShape: [8, 8, 8], http });
    const localData = (await (await image({}, tmp)).read([96, 96, 96])).data;
    assert.ok(localData.some((v) => v !== 0));
    s3.configure({ deny: [/\/s0\/1\.1\.1$/] });
    try {
      await withEnv(envKeys(), async () => {
        chunkCache.clear();
        await assert.rejects((await image(HTTP)).read([96, 96, 96]), isCode("FORBIDDEN", `access denied to s3://${BUCKET}/${chunkKey}`, "AccessDenied"));
        chunkCache.clear();
        const data = (await (await image({ ...HTTP, forbiddenAsMissing: true })).read([96, 96, 96])).data;
        assert.deepEqual(Array.from(data), new Array(512).fill(0));
        // The code survives the hop from a loader's worker thread.
        const back = deserializeError(serializeError(new CellMapError("FORBIDDEN", "access denied to s3://b/k", "http://h/b/k")));
        assert.ok(back instanceof CellMapError && back.code === "FORBIDDEN");
      });
      s3.configure({ deny: [/\/s0\/\.zarray$/] });
      await withEnv(envKeys(), () => assert.rejects(image({ ...HTTP, forbiddenAsMissing: true }), isCode("FORBIDDEN", `s3://${BUCKET}/${fx.v2.raw}/s0/.zarray`)));
    } finally {
      s3.configure({});
    }
  });

  it("404 on a chunk is the fill value; 404 on metadata is NOT_FOUND", async () => {
    await withEnv(envKeys(), async () => {
      chunkCache.clear();
      const img = await CellMapImage.open({ path: `s3://${BUCKET}/${fx.v2.raw}`, targetScale: [16, 16, 16], targetVoxelShape: [2, 2, 2], http: HTTP });
      assert.deepEqual(Array.from((await img.read([24, 24, 24])).data), new Array(8).fill(0));
      await assert.rejects(
        CellMapImage.open({ path: `s3://${BUCKET}/v2.zarr/nothing/here`, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2], http: HTTP }),
        isCode("NOT_FOUND", "v2.zarr/nothing/here"),
      );
    });
  });

  it("public bucket: no credentials (or anonymous: true) sends unsigned requests and reads the data", async () => {
    s3.configure({ private: false });
    try {
      const opts = (base: string, http: HttpStoreOptions) => ({ path: `${base}/${fx.v3.raw}`, targetScale: [8, 8, 8], targetVoxelShape: [6, 6, 6], http });
      const want = (await (await CellMapImage.open(opts(tmp, {}))).read([90, 100, 80])).data;
      for (const [env, http] of [
        [{ AWS_ENDPOINT_URL: s3.url }, HTTP],
        [envKeys(), { ...HTTP, s3: { anonymous: true } }],
      ] as const) {
        await withEnv(env, async () => {
          chunkCache.clear();
          const from = s3.requests.length;
          const got = (await (await CellMapImage.open(opts(`s3://${BUCKET}`, http))).read([90, 100, 80])).data;
          assert.deepEqual(got, want);
          assert.ok(s3.requests.length > from && s3.requests.slice(from).every((r) => r.signedBy === null && r.status < 400));
        });
      }
    } finally {
      s3.configure({});
    }
  });
});

describe("writing predictions to s3://", () => {
  const SPEC = { shape: [12, 12, 12], scale: [4, 4, 4] };
  const options = (targetPath: string): CellMapDatasetWriterOptions => ({
    rawPath: `${tmp}/${fx.v2.raw}`,
    targetPath,
    classes: ["mito", "er"],
    inputArrays: { raw: SPEC },
    targetArrays: { pred: SPEC },
    targetBounds: { pred: { z: [40, 136], y: [48, 144], x: [44, 140] } },
    overlap: 2,
    blend: "linear",
    pyramid: 1,
    http: HTTP,
  });
  /** "Model": mito = the input, er = 1 - input / 2, per tile. */
  const step = async (w: CellMapDatasetWriter, i: number) => {
    const x = (await w.get(i)).raw as Tensor;
    const er = x.data.map((v) => 1 - v / 2);
    await w.write(i, { mito: x.data, er });
  };
  /** Objects below `prefix` in the bucket, read from s3rver directly: key (relative) -> bytes. */
  async function bucketTree(prefix: string): Promise<Map<string, Buffer>> {
    const list = await (await fetch(`${s3.backend}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(prefix + "/")}`)).text();
    const keys = [...list.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    assert.ok(!/<IsTruncated>true/.test(list));
    const out = new Map<string, Buffer>();
    for (const k of keys) out.set(k.slice(prefix.length + 1), Buffer.from(await (await fetch(`${s3.backend}/${BUCKET}/${k}`)).arrayBuffer()));
    return out;
  }
  function localTree(dir: string): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
      if (fs.statSync(path.join(dir, f)).isFile()) out.set(f.split(path.sep).join("/"), fs.readFileSync(path.join(dir, f)));
    }
    return out;
  }
  function assertSameTree(got: Map<string, Buffer>, want: Map<string, Buffer>, what: string): void {
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: the same objects`);
    for (const [k, v] of want) assert.ok(got.get(k)!.equals(v), `${what}: ${k} differs`);
  }

  it("CellMapDatasetWriter writes to the bucket byte for byte what it writes locally (blended, with a pyramid); signed PUTs; reads back through s3://", async () => {
    const local = path.join(tmp, "pred-local.zarr");
    const lw = await CellMapDatasetWriter.open(options(local));
    for (let i = 0; i < lw.length; i++) await step(lw, i);
    await lw.finalize();
    const want = localTree(local);
    assert.ok([...want.keys()].some((k) => k.startsWith("mito/s1/")) && ![...want.keys()].some((k) => k.includes(".cm-partial") || k.includes(TEMP_PREFIX)));

    await withEnv(envKeys(), async () => {
      const from = s3.requests.length;
      const rw = await CellMapDatasetWriter.open(options(`s3://${BUCKET}/pred.zarr`));
      assert.equal(rw.length, lw.length);
      for (let i = 0; i < rw.length; i++) await step(rw, i);
      await rw.finalize();
      const reqs = s3.requests.slice(from);
      const writes = reqs.filter((r) => r.method === "PUT" || r.method === "DELETE");
      // Every write signed and never refused; a 5xx (s3rver under load) is retried, so the last attempt per key must succeed.
      const refused = writes.filter((r) => r.signedBy !== S3_KEY.accessKeyId || (r.status >= 300 && r.status < 500));
      assert.ok(writes.length > 0 && refused.length === 0, `PUTs and DELETEs signed and accepted: ${JSON.stringify(refused.slice(0, 3))}`);
      const last = new Map(writes.map((r) => [`${r.method} ${r.path}`, r.status]));
      assert.deepEqual(
        [...last].filter(([, st]) => st >= 300),
        [],
        "the last attempt of every write succeeded",
      );
      const deletes = writes.filter((r) => r.method === "DELETE" && r.status < 300).map((r) => r.path);
      assert.equal(new Set(deletes).size, deletes.length, "each partial deleted once");
      assert.ok(
        writes.some((r) => r.method === "PUT" && r.path.includes("/.cm-partial/")),
        "partial windows went to the bucket",
      );
      // 4xx other than 404 is a refusal; a 5xx is s3rver under load, retried (checked above).
      assert.ok(
        reqs.every((r) => r.status < 400 || r.status === 404 || r.status >= 500),
        `no request refused: ${JSON.stringify(reqs.filter((r) => r.status >= 400 && r.status < 500 && r.status !== 404).slice(0, 3))}`,
      );
      assertSameTree(await bucketTree("pred.zarr"), want, "s3 vs local");

      // The project's reader reads the bucket's predictions as the local ones.
      chunkCache.clear();
      for (const cls of ["mito", "er"]) {
        const read = async (base: string) =>
          (await (await CellMapImage.open({ path: `${base}/${cls}`, targetScale: [4, 4, 4], targetVoxelShape: [24, 24, 24], http: HTTP })).read([88, 96, 92])).data;
        assert.deepEqual(await read(`s3://${BUCKET}/pred.zarr`), await read(local), cls);
      }
    });
  });

  it("resume on s3:// serves only the missing tiles (a listing of the prefix) and ends byte-identical; existing output is a WRITE_CONFLICT; overwrite replaces it", async () => {
    const local = path.join(tmp, "pred-resume-local.zarr");
    const lw = await CellMapDatasetWriter.open(options(local));
    for (let i = 0; i < lw.length; i++) await step(lw, i);
    await lw.finalize();
    await withEnv(envKeys(), async () => {
      const target = `s3://${BUCKET}/resume.zarr`;
      const first = await CellMapDatasetWriter.open(options(target));
      const half = Math.floor(first.length / 2);
      for (let i = 0; i < half; i++) await step(first, i);
      await assert.rejects(CellMapDatasetWriter.open(options(target)), isCode("WRITE_CONFLICT", target));
      const resumed = await CellMapDatasetWriter.open({ ...options(target), resume: true });
      assert.ok(resumed.length < first.length && resumed.length >= first.length - half, `resumed ${resumed.length} of ${first.length}`);
      assert.equal(resumed.tileOf(0) >= half - 1, true);
      for (let i = 0; i < resumed.length; i++) await step(resumed, i);
      await resumed.finalize();
      assertSameTree(await bucketTree("resume.zarr"), localTree(local), "resumed s3 vs local");

      const stray = await fetch(`${s3.backend}/${BUCKET}/resume.zarr/mito/s0/9.9.9`, { method: "PUT", body: "stale" });
      await stray.arrayBuffer();
      const again = await CellMapDatasetWriter.open({ ...options(target), overwrite: true });
      const tree = await bucketTree("resume.zarr");
      assert.ok(
        !tree.has("mito/s0/9.9.9") && ![...tree.keys()].some((k) => k.includes("/s0/") && !k.endsWith(".zarray") && !k.endsWith(".zattrs")),
        "overwrite deleted the old chunks",
      );
      assert.equal(again.length, first.length);
    });
  });
});

describe("s3:// resolution (credential chain, region, endpoint, URL style)", () => {
  const files = (creds: string, conf = "") => {
    const dir = fs.mkdtempSync(path.join(tmp, "aws-"));
    fs.writeFileSync(path.join(dir, "credentials"), creds);
    fs.writeFileSync(path.join(dir, "config"), conf);
    return { AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "credentials"), AWS_CONFIG_FILE: path.join(dir, "config") };
  };
  const none = { AWS_SHARED_CREDENTIALS_FILE: NO_FILE, AWS_CONFIG_FILE: NO_FILE };

  it("maps to AWS virtual-host URLs by default and to path-style URLs on custom endpoints", () => {
    assert.equal(resolveS3("s3://bucket/a/b.zarr/", {}, none).url, "https://bucket.s3.amazonaws.com/a/b.zarr");
    assert.equal(resolveS3("s3://bucket", {}, none).url, "https://bucket.s3.amazonaws.com");
    assert.equal(resolveS3("s3://bucket/k", { forcePathStyle: true, region: "eu-west-1" }, none).url, "https://s3.eu-west-1.amazonaws.com/bucket/k");
    assert.equal(resolveS3("s3://bucket/k", {}, { ...none, AWS_ENDPOINT_URL: "http://127.0.0.1:9000/" }).url, "http://127.0.0.1:9000/bucket/k");
    assert.equal(resolveS3("s3://bucket/k", { endpoint: "https://minio.lab:9000" }, { ...none, AWS_ENDPOINT_URL: "http://ignored" }).url, "https://minio.lab:9000/bucket/k");
    assert.equal(resolveS3("s3://bucket/k", {}, { ...none, AWS_ENDPOINT_URL: "http://a", AWS_ENDPOINT_URL_S3: "http://b" }).url, "http://b/bucket/k");
    assert.throws(() => resolveS3("s3://bucket/k", { endpoint: "ftp://x" }, none), isCode("INVALID_ARGUMENT"));
    assert.equal(openStore("s3://bucket/a/b.zarr/").location, "https://bucket.s3.amazonaws.com/a/b.zarr");
  });

  it("credential precedence: anonymous > options > profile option > environment > AWS_PROFILE / default profile; nothing: unsigned", () => {
    const f = files(
      "[default]\naws_access_key_id = DEF\naws_secret_access_key = d\n[p1]\naws_access_key_id=P1\naws_secret_access_key=s1\n",
      "[profile p2]\naws_access_key_id = P2\naws_secret_access_key = s2\nregion = ap-south-1\n[default]\nregion = eu-north-1\n",
    );
    const env = { ...f, AWS_ACCESS_KEY_ID: "ENV", AWS_SECRET_ACCESS_KEY: "e", AWS_SESSION_TOKEN: "t" };
    const id = (o: Parameters<typeof resolveS3>[1], e: Record<string, string>) => resolveS3("s3://b/k", o, e).credentials?.accessKeyId ?? null;
    assert.equal(id({ anonymous: true, credentials: { accessKeyId: "O", secretAccessKey: "o" } }, env), null);
    assert.equal(id({ credentials: { accessKeyId: "O", secretAccessKey: "o" } }, env), "O");
    assert.equal(id({ profile: "p1" }, env), "P1");
    assert.deepEqual(resolveS3("s3://b/k", {}, env).credentials, { accessKeyId: "ENV", secretAccessKey: "e", sessionToken: "t" });
    assert.equal(id({}, { ...f, AWS_PROFILE: "p1" }), "P1");
    assert.equal(id({}, { ...f, AWS_PROFILE: "p2" }), "P2", "credentials in the config file");
    assert.equal(id({}, f), "DEF");
    assert.equal(id({}, none), null);
    assert.equal(id({}, { ...none, AWS_ACCESS_KEY_ID: "only-half" }), null);
    // region: option > AWS_REGION > AWS_DEFAULT_REGION > profile > us-east-1
    assert.equal(resolveS3("s3://b/k", {}, { ...f, AWS_PROFILE: "p2" }).region, "ap-south-1");
    assert.equal(resolveS3("s3://b/k", {}, f).region, "eu-north-1");
    assert.equal(resolveS3("s3://b/k", {}, { ...f, AWS_DEFAULT_REGION: "us-west-1" }).region, "us-west-1");
    assert.equal(resolveS3("s3://b/k", {}, { ...f, AWS_DEFAULT_REGION: "us-west-1", AWS_REGION: "us-west-2" }).region, "us-west-2");
    assert.equal(resolveS3("s3://b/k", { region: "sa-east-1" }, { ...f, AWS_REGION: "us-west-2" }).region, "sa-east-1");
    assert.equal(resolveS3("s3://b/k", {}, none).region, "us-east-1");
    // a profile named explicitly must exist
    assert.throws(() => resolveS3("s3://b/k", {}, { ...f, AWS_PROFILE: "nope" }), isCode("INVALID_ARGUMENT", '"nope"'));
    assert.throws(() => resolveS3("s3://b/k", { profile: "nope" }, f), isCode("INVALID_ARGUMENT", '"nope"'));
    assert.throws(() => resolveS3("s3://b/k", { credentials: { accessKeyId: "x", secretAccessKey: "" } }, none), isCode("INVALID_ARGUMENT"));
  });
});
