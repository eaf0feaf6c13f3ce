/**
 * `serve`: batches over HTTP equal the in-process loader's byte for byte (1 and 2 ranks, across
 * a resume), read by the reference Python client with Debian's /usr/bin/python3 + numpy;
 * bad requests, tokens and the binding rule; backpressure and clients that go away.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CellMapDataset, CellMapSubset } from "../src/dataset/index.js";
import type { DatasetDescription, DatasetItem, DatasetLike } from "../src/dataset/types.js";
import { CellMapError } from "../src/errors.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { MutableSubsetRandomSampler } from "../src/sampling/samplers.js";
import { decodeBlob } from "../src/serve/safetensors.js";
import { serve, type BatchServer } from "../src/serve/server.js";
import type { AnyTensor } from "../src/tensor.js";
import { makeLabelPyramid, makeRawEM } from "./fixtures/builder.js";
import { writeSyntheticDataset } from "../src/demo/synthetic.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_DIR = path.resolve(here, "../clients/python");
const PYTHON = "/usr/bin/python3";
const pythonOk = spawnSync(PYTHON, ["-c", "import numpy"], { encoding: "utf8" }).status === 0;
const noPython = pythonOk ? false : `${PYTHON} with numpy is missing (scripts/setup-system.sh installs python3-numpy)`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-serve-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SPEC = { shape: [8, 8, 8], scale: [8, 8, 8] };
const LOADER = { batchSize: 4, seed: 11, isTrain: true };
let data: CellMapSubset;

before(async () => {
  const dir = path.join(tmp, "crop");
  await makeRawEM(path.join(dir, "raw"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8], codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 } });
  await makeLabelPyramid(path.join(dir, "gt", "a"), { shape: [32, 32, 32], levels: 2, chunks: [8, 8, 8], shapes: [{ kind: "sphere", center: [40, 40, 40], radius: 30 }] });
  const ds = await CellMapDataset.open({
    rawPath: path.join(dir, "raw"),
    targetPath: path.join(dir, "gt", "[a]"),
    classes: ["a"],
    inputArrays: { raw: SPEC },
    targetArrays: { gt: SPEC },
    isTrain: true,
    spatialTransforms: { mirror: { axes: { x: 0.5 } } },
  });
  data = new CellMapSubset(
    ds,
    Array.from({ length: 22 }, (_, i) => 3 * i),
  );
});

interface Rec {
  position: number;
  idx: number[];
  tensors: Record<string, [string, number[], string]>;
}

const DTYPE_NAMES: Record<string, string> = { Float32Array: "float32", Int32Array: "int32", Uint32Array: "uint32", Float64Array: "float64" };

/** The in-process loader's batches of `epoch` from `start`, digested like the Python driver does. */
async function reference(rank: number, worldSize: number, epoch = 0, start = 0): Promise<Rec[]> {
  const loader = new CellMapDataLoader(data, { ...LOADER, rank, worldSize });
  loader.setState({ ...loader.state(), epoch, position: start });
  const out: Rec[] = [];
  let p = start;
  for await (const b of loader) {
    const tensors: Rec["tensors"] = {};
    for (const k of Object.keys(b)) {
      const t = b[k] as AnyTensor;
      if (k === "idx" || k === "metadata") continue;
      tensors[k] = [
        DTYPE_NAMES[t.data.constructor.name],
        t.shape,
        createHash("sha256")
          .update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
          .digest("hex"),
      ];
    }
    out.push({ position: p++, idx: b.idx, tensors });
  }
  await loader.close();
  return out;
}

const DRIVER = `
import sys, json, hashlib
sys.path.insert(0, ${JSON.stringify(CLIENT_DIR)})
from cellmap_data_client import CellMapDataClient
a = json.loads(sys.argv[1])
c = CellMapDataClient(a["url"], as_torch=False, token=a.get("token"), reuse_buffers=a.get("reuse", 0), transport=a.get("transport", "auto"), **a["state"])
n = 0
for b in c:
    t = {k: [str(v.dtype), list(v.shape), hashlib.sha256(v.tobytes()).hexdigest()] for k, v in b.items() if hasattr(v, "dtype")}
    print(json.dumps({"position": b["position"], "idx": b["idx"], "tensors": t}))
    n += 1
    if a.get("limit") and n >= a["limit"]:
        break
print(json.dumps({"state": c.state(), "transport": c.used_transport}))
`;

/** Runs the Python client (asynchronously: the server answers from this process's event loop). */
async function runClient(
  url: string,
  state: Record<string, number>,
  extra: Record<string, unknown> = {},
): Promise<{ recs: Rec[]; state: Record<string, number>; transport: string }> {
  const child = spawn(PYTHON, ["-c", DRIVER, JSON.stringify({ url, state, ...extra })], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `python client failed:\n${err}`);
  const lines = out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  return { recs: lines.slice(0, -1) as Rec[], state: lines[lines.length - 1].state, transport: lines[lines.length - 1].transport };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = "";
        res.setEncoding("latin1");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      })
      .on("error", reject);
  });
}

describe("serve", () => {
  let server: BatchServer;
  before(async () => {
    server = await serve(new CellMapDataLoader(data, { ...LOADER, numWorkers: 2 }));
  });
  after(() => server.close());

  it("/health and /info describe the stream", async () => {
    assert.deepEqual(JSON.parse((await get(`${server.url}/health`)).body), { ok: true });
    const info = JSON.parse((await get(`${server.url}/info`)).body);
    assert.deepEqual(info.arrays, { raw: { shape: [1, 8, 8, 8], dtype: "float32" }, gt: { shape: [1, 8, 8, 8], dtype: "float32" } });
    assert.deepEqual([info.classes, info.batchSize, info.samplesPerEpoch, info.batchesPerEpoch], [["a"], 4, 22, 6]);
  });

  it("a JavaScript client decodes frames: metadata carries epoch, position and each sample's index", async () => {
    const r = await new Promise<Buffer>((resolve, reject) => {
      http
        .get(`${server.url}/batches?epoch=1&start=4`, (res) => {
          const parts: Buffer[] = [];
          res.on("data", (c: Buffer) => parts.push(c));
          res.on("end", () => resolve(Buffer.concat(parts)));
        })
        .on("error", reject);
    });
    const want = await reference(0, 1, 1, 4);
    let off = 0;
    const got: { position: string; idx: number[] }[] = [];
    while (off < r.length) {
      const n = Number(r.readBigUInt64LE(off));
      const blob = decodeBlob(r.subarray(off + 8, off + 8 + n));
      assert.equal(blob.metadata.epoch, "1");
      assert.deepEqual(Object.keys(blob.tensors), ["raw", "gt"]);
      assert.equal(blob.tensors.raw.dtype, "F32");
      got.push({ position: blob.metadata.position, idx: JSON.parse(blob.metadata.samples).map((s: { idx: number }) => s.idx) });
      off += 8 + n;
    }
    assert.deepEqual(
      got,
      want.map((w) => ({ position: String(w.position), idx: w.idx })),
    );
  });

  for (const transport of ["http", "shm", "auto"]) {
    it(`the Python client gets the in-process loader's batches byte for byte, for 1 and 2 ranks (transport ${transport})`, { skip: noPython }, async () => {
      const one = await runClient(server.url, { epoch: 0, start: 0, rank: 0, worldSize: 1 }, { transport });
      assert.equal(one.transport, transport === "http" ? "http" : "shm", "on one host, auto takes shared memory");
      assert.deepEqual(one.recs, await reference(0, 1));
      assert.deepEqual(one.state, { epoch: 1, start: 0, rank: 0, worldSize: 1 }, "a finished epoch moves the state to the next");
      const shares: number[][] = [];
      for (const rank of [0, 1]) {
        const r = await runClient(server.url, { epoch: 2, start: 0, rank, worldSize: 2 }, { transport });
        assert.deepEqual(r.recs, await reference(rank, 2, 2));
        shares.push(r.recs.flatMap((x) => x.idx));
      }
      assert.deepEqual(
        shares[0].filter((i) => shares[1].includes(i)),
        [],
        "ranks are disjoint",
      );
    });
  }

  it("a client that resumes from its state() continues exactly where it left off", { skip: noPython }, async () => {
    const first = await runClient(server.url, { epoch: 3, start: 0, rank: 1, worldSize: 2 }, { limit: 2, transport: "shm" });
    assert.equal(first.recs.length, 2);
    assert.deepEqual(first.state, { epoch: 3, start: 2, rank: 1, worldSize: 2 });
    const rest = await runClient(server.url, first.state, { reuse: 1, transport: "http" });
    assert.deepEqual([...first.recs, ...rest.recs], await reference(1, 2, 3), "also with reused receive buffers, across transports");
  });

  it("bad requests get a 4xx with a one-line JSON error", async () => {
    const cases: [string, number, RegExp][] = [
      ["/nothing", 404, /unknown endpoint "\/nothing"/],
      ["/batches?rank=2&worldSize=2", 400, /rank must be in \[0, 2\)/],
      ["/batches?epoch=-1", 400, /epoch must be an integer >= 0/],
      ["/batches?start=99", 400, /start 99 is past the end of epoch 0 \(6 batches/],
      ["/batches?worldSize=0", 400, /worldSize must be an integer >= 1/],
    ];
    for (const [p, status, re] of cases) {
      const r = await get(`${server.url}${p}`);
      assert.equal(r.status, status, p);
      assert.equal(r.body.trim().split("\n").length, 1);
      assert.match(JSON.parse(r.body).error.message, re);
    }
    const end = await get(`${server.url}/batches?start=6`);
    assert.deepEqual([end.status, end.body], [200, ""], "start at the end: an empty stream");
    const head = await new Promise<http.IncomingMessage>((resolve, reject) => http.request(`${server.url}/batches?epoch=1`, { method: "HEAD" }, resolve).on("error", reject).end());
    assert.deepEqual([head.statusCode, head.headers["x-cellmap-batches"]], [200, "6"], "HEAD: the headers, no batches read");
  });
});

describe("serve: security", () => {
  it("loopback by default; another address needs a token; with a token every request needs it", async () => {
    const loader = new CellMapDataLoader(data, LOADER);
    await assert.rejects(serve(loader, { host: "0.0.0.0" }), (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && /requires --token/.test(e.message));
    const s = await serve(loader, { token: "s3cret-token" });
    try {
      assert.equal(s.host, "127.0.0.1");
      assert.equal((await get(`${s.url}/info`)).status, 401);
      assert.equal((await get(`${s.url}/info`, { Authorization: "Bearer wrong-token" })).status, 401);
      assert.equal((await get(`${s.url}/info`, { Authorization: "Bearer s3cret-token" })).status, 200);
      assert.equal((await get(`${s.url}/health?token=s3cret-token`)).status, 200);
    } finally {
      await s.close();
    }
  });
});

/** Samples of `bytes` float32 values each; counts the reads. */
function bigDataset(length: number, floats: number, reads: { n: number }): DatasetLike {
  return {
    kind: "Big",
    length,
    classes: [],
    inputArrays: { x: { shape: [floats], scale: [1] } as never },
    targetArrays: {},
    async get(i: number): Promise<DatasetItem> {
      reads.n++;
      return {
        idx: i,
        metadata: { rawPath: "big", targetPath: null, center: [0], index: i, epoch: 0, spatialTransform: null, levels: {} },
        x: { data: new Float32Array(floats).fill(i), shape: [1, floats], sourceDtype: "float32" },
      };
    },
    classCounts: async () => ({}),
    classWeights: async () => ({}),
    validationIndices: () => [],
    verify: () => true,
    subsetRandomSampler: async (k: number) => MutableSubsetRandomSampler.uniform(length, k, 0),
    describe: (): DatasetDescription => ({ kind: "Big" }),
  } as DatasetLike;
}

describe("serve: backpressure and clients that go away", () => {
  it("a client that does not read holds back its own stream only; one that leaves mid-batch frees it and the server stays up", async () => {
    const reads = { n: 0 };
    const floats = 1 << 20; // 4 MiB per sample, 8 MiB per batch
    const s = await serve(new CellMapDataLoader(bigDataset(64, floats, reads), { batchSize: 2 }), { prefetch: 2 });
    try {
      const stalled = await new Promise<http.IncomingMessage>((resolve) => http.get(`${s.url}/batches`, resolve));
      stalled.pause();
      await new Promise((r) => setTimeout(r, 400));
      // Read ahead: prefetch batches, the one being written, and what the socket buffers hold.
      assert.ok(reads.n <= 2 * (2 + 1 + 3), `${reads.n} samples read for a client that reads nothing`);
      assert.equal(s.streams, 1);
      // Take part of one frame, then hang up.
      const partial = await new Promise<number>((resolve) => {
        let got = 0;
        stalled.on("data", (c: Buffer) => {
          got += c.length;
          if (got > 1 << 20) {
            stalled.destroy();
            resolve(got);
          }
        });
        stalled.resume();
      });
      assert.ok(partial > 0);
      for (let k = 0; k < 50 && s.streams > 0; k++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(s.streams, 0, "the stream ended with its client");
      const before = reads.n;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(reads.n, before, "no reads for a client that left");
      const r = await get(`${s.url}/info`);
      assert.equal(r.status, 200, "the server is still up");
    } finally {
      await s.close();
    }
  });
});

describe("cellmap-data serve (CLI)", () => {
  it("prints its address, serves the config's datasplit, refuses a public bind without a token, stops on SIGTERM", async () => {
    const dir = path.join(tmp, "cli");
    const { csvPath } = await writeSyntheticDataset(dir, { size: 64, seed: 1 });
    const config = path.join(dir, "config.json");
    fs.writeFileSync(
      config,
      JSON.stringify({
        input_arrays: { raw: { shape: [16, 16, 16], scale: [8, 8, 8] } },
        target_arrays: { gt: { shape: [16, 16, 16], scale: [8, 8, 8] } },
        classes: ["mito", "er", "nuc"],
        batch_size: 3,
        num_workers: 0,
      }),
    );
    const cli = path.resolve(here, "../src/cli/main.ts");
    const bad = spawnSync(process.execPath, ["--import", "tsx", cli, "serve", "--datasplit", csvPath, "--config", config, "--host", "0.0.0.0"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /requires --token/);
    const child = spawn(process.execPath, ["--import", "tsx", cli, "serve", "--datasplit", csvPath, "--config", config, "--seed", "4"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.setEncoding("utf8").on("data", (c: string) => {
          out += c;
          const m = /cellmap-data serve: (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.on("exit", (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const info = JSON.parse((await get(`${url}/info`)).body);
      assert.deepEqual([info.batchSize, info.seed, info.classes], [3, 4, ["mito", "er", "nuc"]], "config values apply, flags override them");
      assert.deepEqual(info.arrays.gt, { shape: [3, 16, 16, 16], dtype: "float32" });
      const code = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      assert.equal(await code, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
