/**
 * The Python package (`clients/python`, issue #22), driven from here with Debian's
 * /usr/bin/python3: shared-memory slot lifetimes, kept batches, exhausted slots, clients and
 * servers that die, `serve()` (start errors, no orphans), DDP with two gloo ranks against one
 * server, quiet normal ends, and an offline `pip install` into a venv.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CellMapDataset, CellMapSubset } from "../src/dataset/index.js";
import { writeSyntheticDataset } from "../src/demo/synthetic.js";
import { CellMapDataLoader } from "../src/loader/index.js";
import { serve, type BatchServer } from "../src/serve/server.js";
import type { AnyTensor } from "../src/tensor.js";
import { makeLabelPyramid, makeRawEM } from "./fixtures/builder.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, "..");
const CLIENT_DIR = path.join(REPO, "clients/python");
const PYTHON = "/usr/bin/python3";
const has = (mod: string) => spawnSync(PYTHON, ["-c", `import ${mod}`], { encoding: "utf8" }).status === 0;
const noPython = has("numpy") ? false : `${PYTHON} with numpy is missing (scripts/setup-system.sh installs python3-numpy)`;
const noTorch = noPython || (has("torch") ? false : `${PYTHON} without torch (scripts/setup-system.sh installs python3-torch)`);

/** Whether the native addon is built (then shared memory hands batches over without copies). */
const zeroCopy = process.platform === "linux" && fs.existsSync(path.join(REPO, "build/Release/cellmap_remap.node"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-pyclient-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SPEC = { shape: [8, 8, 8], scale: [8, 8, 8] };
const LOADER = { batchSize: 4, seed: 5, isTrain: true };
let data: CellMapSubset;
/** `CELLMAP_DATA_CLI` for `serve()`: the command line run from source. */
let cliWrapper: string;
let csvPath: string;
let config: string;

before(async () => {
  const dir = path.join(tmp, "crop");
  await makeRawEM(path.join(dir, "raw"), { shape: [32, 32, 32], levels: 1, chunks: [8, 8, 8] });
  await makeLabelPyramid(path.join(dir, "gt", "a"), { shape: [32, 32, 32], levels: 1, chunks: [8, 8, 8], shapes: [{ kind: "sphere", center: [40, 40, 40], radius: 30 }] });
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
    Array.from({ length: 30 }, (_, i) => 2 * i),
  );
  cliWrapper = path.join(tmp, "cellmap-data");
  const tsx = import.meta.resolve("tsx");
  fs.writeFileSync(cliWrapper, `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${path.join(REPO, "src/cli/main.ts")}" "$@"\n`, { mode: 0o755 });
  ({ csvPath } = await writeSyntheticDataset(path.join(tmp, "synthetic"), { size: 64, seed: 2 }));
  config = path.join(tmp, "config.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      input_arrays: { raw: { shape: [8, 8, 8], scale: [8, 8, 8] } },
      target_arrays: { gt: { shape: [8, 8, 8], scale: [8, 8, 8] } },
      classes: ["mito", "er", "nuc"],
      batch_size: 4,
      iterations_per_epoch: 40,
    }),
  );
});

/** Runs a Python script (file or `-c` code) with the package importable; its last stdout line is JSON. */
async function python(
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; onLine?: (line: string) => void } = {},
): Promise<{ code: number | null; json: unknown; stderr: string }> {
  const child = spawn(PYTHON, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYTHONPATH: CLIENT_DIR, CELLMAP_DATA_CLI: cliWrapper, ...opts.env },
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    out += c;
    if (opts.onLine) for (const l of c.split("\n").filter(Boolean)) opts.onLine(l);
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  const last = out.trim().split("\n").pop() ?? "";
  let json: unknown = null;
  try {
    json = JSON.parse(last);
  } catch {
    // not JSON: the caller looks at code and stderr
  }
  return { code, json, stderr: err };
}

/** Files this process's shared-memory streams left in /dev/shm. */
function leftovers(): string[] {
  try {
    return fs.readdirSync("/dev/shm").filter((f) => f.startsWith(`cellmap-data-${process.pid}-`));
  } catch {
    return [];
  }
}

async function until(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (test()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return test();
}

describe("Python client: shared memory", () => {
  let server: BatchServer;
  before(async () => {
    server = await serve(new CellMapDataLoader(data, { ...LOADER, numWorkers: 1 }));
  });
  after(() => server.close());

  it("a slot lives as long as any array of its batch; kept batches are never overwritten; holding every slot raises", { skip: noPython }, async () => {
    const r = await python([path.join(here, "python/shm_checks.py"), JSON.stringify({ url: server.url, torch: false })]);
    assert.equal(r.code, 0, r.stderr);
    const got = r.json as Record<string, unknown>;
    assert.equal(got.held_with_view, 1, "a view of one array keeps the batch's slot");
    assert.equal(got.held_after_view, 0, "the last reference frees the slot at once");
    assert.equal(got.zero_copy_True, zeroCopy, "batches arrive in place when the native addon is built");
    assert.equal(got.zero_copy_False, false);
    for (const z of ["True", "False"]) {
      assert.equal(got[`kept_${z}`], 4);
      assert.equal(got[`kept_intact_${z}`], true, `kept batches equal HTTP's copies after two epochs (zero copy ${z})`);
    }
    assert.match(String(got.exhausted), /all 3 shared-memory slots hold batches/);
    assert.equal(got.held_when_exhausted, 3);
    assert.deepEqual(leftovers(), [], "no slot file is left");
  });

  it("with torch: a tensor view keeps the slot, its release frees it", { skip: noTorch }, async () => {
    const r = await python([path.join(here, "python/shm_checks.py"), JSON.stringify({ url: server.url, torch: true })]);
    assert.equal(r.code, 0, r.stderr);
    const got = r.json as Record<string, unknown>;
    assert.deepEqual([got.held_with_view, got.held_after_view], [1, 0]);
  });

  it("CellMapIterableDataset: rank from RANK/WORLD_SIZE, exact resume from state_dict(), set_epoch, one process", { skip: noTorch }, async () => {
    const r = await python([path.join(here, "python/torch_checks.py"), server.url], { env: { PYTHONPATH: CLIENT_DIR } });
    assert.equal(r.code, 0, r.stderr);
    const got = r.json as Record<string, unknown>;
    assert.deepEqual(got.rank, [1, 2]);
    assert.equal(got.batches, 4, "rank 1 of 2: half of 8 batches");
    assert.deepEqual(got.after_epoch, { epoch: 5, position: 0, rank: 1, world_size: 2 });
    assert.deepEqual(got.state, { epoch: 4, position: 2, rank: 1, world_size: 2 });
    assert.equal(got.resume_exact, true, "two batches, a state_dict, then the rest in a new dataset: the whole epoch");
    assert.deepEqual(got.types, ["Tensor", "int", "list"]);
    assert.match(String(got.workers), /num_workers=0/);
  });

  it("a client killed while it holds batches frees its slots; the server serves the next client", { skip: noPython }, async () => {
    const code = `
import sys, json, time
from cellmap_data_client import CellMapDataClient
c = CellMapDataClient(sys.argv[1], transport="shm", as_torch=False)
it = iter(c)
held = [next(it), next(it)]
print(json.dumps({"held": c.held_slots}), flush=True)
time.sleep(600)
`;
    const child = spawn(PYTHON, ["-c", code, server.url], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, PYTHONPATH: CLIENT_DIR } });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    assert.equal(server.streams, 1);
    child.kill("SIGKILL");
    assert.ok(await until(() => server.streams === 0, 10_000), "the stream ends");
    assert.deepEqual(leftovers(), []);
    const r = await python([
      "-c",
      `import sys, json\nfrom cellmap_data_client import CellMapDataClient\nc = CellMapDataClient(sys.argv[1], transport="shm", as_torch=False)\nprint(json.dumps(sum(1 for _ in c)))`,
      server.url,
    ]);
    assert.equal(r.json, 8, r.stderr);
  });

  it("normal ends leave no warning on the server (HTTP and shared memory, whole epochs and early stops)", { skip: noPython }, async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const code = `
import sys, json
from cellmap_data_client import CellMapDataClient
for transport in ("http", "shm"):
    for limit in (None, 1):
        c = CellMapDataClient(sys.argv[1], transport=transport, as_torch=False, epoch=3)
        for k, b in enumerate(c):
            if limit and k + 1 >= limit:
                break
print(json.dumps("done"))
`;
      const r = await python(["-c", code, server.url]);
      assert.equal(r.json, "done", r.stderr);
      await until(() => server.streams === 0, 5000);
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(
        warnings.filter((w) => /serve:/.test(w)),
        [],
      );
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("Python serve()", () => {
  it("a server that cannot start raises with its one-line message, did-you-mean included", { skip: noPython }, async () => {
    const r = await python([path.join(here, "python/serve_checks.py"), JSON.stringify({ mode: "bad-config", datasplit: csvPath, config })]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(String((r.json as { error: string }).error), /unknown option "clases" \(did you mean "classes"\?\)/);
  });

  it("serves, works as a context manager and stops on close()", { skip: noPython }, async () => {
    const r = await python([path.join(here, "python/serve_checks.py"), JSON.stringify({ mode: "context", datasplit: csvPath, config })]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, { batchSize: 2, batches: 40, batchesPerEpoch: 40, aliveAfterClose: false });
  });

  it("no orphan: the server stops when the Python process is killed with SIGKILL", { skip: noPython }, async () => {
    let pid = 0;
    const code = `import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")`;
    const child = spawn(PYTHON, ["-c", code, path.join(here, "python/serve_checks.py"), JSON.stringify({ mode: "orphan", datasplit: csvPath, config })], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, PYTHONPATH: CLIENT_DIR, CELLMAP_DATA_CLI: cliWrapper },
    });
    await new Promise<void>((resolve) =>
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        const m = /"pid": (\d+)/.exec(c);
        if (m) {
          pid = Number(m[1]);
          resolve();
        }
      }),
    );
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(alive(), "the server runs");
    child.kill("SIGKILL");
    assert.ok(await until(() => !alive(), 15_000), `server ${pid} still runs after its parent was killed`);
  });

  for (const transport of ["shm", "http"]) {
    it(`a server that dies makes the client raise, not hang (${transport})`, { skip: noPython }, async () => {
      const r = await python([path.join(here, "python/serve_checks.py"), JSON.stringify({ mode: "server-dies", datasplit: csvPath, config, transport })]);
      assert.equal(r.code, 0, r.stderr);
      const got = r.json as { got: number; error: string | null; seconds: number };
      assert.ok(got.got >= 2 && got.got < 40, `stopped early (${got.got} batches)`);
      assert.match(String(got.error), /ConnectionError: .*(closed|ended)/);
      assert.ok(got.seconds < 60);
    });
  }
});

/** Digests of the in-process loader's batches of `epoch` on `rank` of `worldSize`. */
async function reference(rank: number, worldSize: number, epoch: number): Promise<unknown[]> {
  const loader = new CellMapDataLoader(data, { ...LOADER, rank, worldSize });
  loader.setState({ ...loader.state(), epoch, position: 0 });
  const out: unknown[] = [];
  let p = 0;
  for await (const b of loader) {
    const tensors: Record<string, unknown> = {};
    for (const k of Object.keys(b)) {
      if (k === "idx" || k === "metadata") continue;
      const t = b[k] as AnyTensor;
      tensors[k] = [
        "float32",
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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe("DDP", () => {
  it("two gloo ranks through DataLoader + CellMapIterableDataset get disjoint shares whose union is the in-process epoch", { skip: noTorch, timeout: 300_000 }, async () => {
    const server = await serve(new CellMapDataLoader(data, { ...LOADER, numWorkers: 2 }));
    try {
      const r = await python([path.join(here, "python/ddp_check.py"), JSON.stringify({ url: server.url, port: await freePort() })], { timeoutMs: 280_000 });
      assert.equal(r.code, 0, r.stderr);
      const ranks = r.json as { rank: number; world: number; transport: string; recs: { idx: number[] }[]; total: number }[];
      assert.deepEqual(
        ranks.map((x) => [x.rank, x.world, x.transport]),
        [
          [0, 2, "shm"],
          [1, 2, "shm"],
        ],
        "ranks come from torch.distributed; one host takes shared memory",
      );
      for (const x of ranks) assert.deepEqual(x.recs, await reference(x.rank, 2, 2), `rank ${x.rank}: the in-process loader's batches, batch for batch`);
      const all = ranks.flatMap((x) => x.recs.flatMap((b) => b.idx));
      assert.equal(new Set(all).size, all.length, "the shares are disjoint");
      assert.deepEqual(
        [...all].sort((p, q) => p - q),
        Array.from({ length: 30 }, (_, i) => i),
        "their union is the epoch",
      );
      assert.equal(ranks[0].total, ranks[0].recs.length + ranks[1].recs.length);
    } finally {
      await server.close();
    }
  });
});

describe("packaging", () => {
  it("installs offline into a venv with Debian's tools (the README's line) and imports", {
    skip: noPython || (has("venv") ? false : "python3-venv is missing"),
    timeout: 180_000,
  }, async () => {
    const venv = path.join(tmp, "venv");
    const mk = spawnSync(PYTHON, ["-m", "venv", "--system-site-packages", venv], { encoding: "utf8" });
    assert.equal(mk.status, 0, mk.stderr);
    const build = path.join(tmp, "pkg");
    fs.cpSync(CLIENT_DIR, build, { recursive: true });
    const pip = spawnSync(path.join(venv, "bin/pip"), ["install", "--no-build-isolation", "--no-index", build], { encoding: "utf8", timeout: 170_000 });
    assert.equal(pip.status, 0, `${pip.stdout}\n${pip.stderr}`);
    const run = spawnSync(
      path.join(venv, "bin/python"),
      ["-c", "import cellmap_data_client as c, importlib.resources as r; print(c.__version__, r.files('cellmap_data_client').joinpath('py.typed').is_file())"],
      {
        encoding: "utf8",
        cwd: tmp,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), "0.1.0 True");
  });
});
