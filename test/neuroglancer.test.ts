/**
 * `cellmap-data neuroglancer`: coordinate space and position of 3-D and 2-D+channel images,
 * the shared HTTP server (binding rule, token, CORS, JSON errors), safe static files (ranges,
 * 404, traversal), and `--serve` as a child process.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { makeCoordPyramid } from "./fixtures/builder.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";
import { describeImage } from "../src/cli/info.js";
import { neuroglancerPlan, planState } from "../src/cli/neuroglancer.js";
import { neuroglancerView } from "../src/viz/neuroglancer.js";
import { checkBind, isLoopbackHost, startHttpServer, type RunningHttpServer } from "../src/net/http-server.js";
import { parseRange, staticFileHandler } from "../src/net/static-files.js";
import { CellMapError } from "../src/errors.js";

const main = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-ng-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const zyx = path.join(tmp, "zyx.zarr");
const cyx = path.join(tmp, "cyx.zarr");
before(async () => {
  await makeCoordPyramid(zyx, { shape: [8, 16, 32], s0Scale: [8, 4, 2], translation: [100, 200, 300], levels: 2 });
  await writeOmePyramid(cyx, {
    format: 2,
    axes: [
      { name: "c", type: "channel" },
      { name: "y", type: "space", unit: "nanometer" },
      { name: "x", type: "space", unit: "nanometer" },
    ],
    dtype: "uint8",
    levels: [{ path: "s0", shape: [3, 10, 20], scale: [1, 4, 2], translation: [0, 1000, 2000], chunks: [3, 10, 20], data: () => 1 }],
  });
});

/** A raw GET (the path is sent exactly as given: no dot-segment removal). */
function request(url: string, rawPath: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (b: Buffer) => parts.push(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("neuroglancer view", () => {
  it("a 3-D image: z,y,x in nm, centred on the image (translation per spatial axis)", async () => {
    const v = neuroglancerView(await describeImage(zyx));
    assert.deepEqual(v.space, { axes: ["z", "y", "x"], units: ["nm", "nm", "nm"] });
    assert.deepEqual(v.center, [100 + (7 * 8) / 2, 200 + (15 * 4) / 2, 300 + (31 * 2) / 2]);
    assert.equal(v.voxelNm, 2);
    const st = planState(await neuroglancerPlan(zyx, []));
    assert.deepEqual(st.dimensions, { z: [1e-9, "m"], y: [1e-9, "m"], x: [1e-9, "m"] });
    assert.deepEqual(st.displayDimensions, ["x", "y", "z"]);
    assert.deepEqual(st.position, v.center);
    assert.equal(st.layout, "4panel");
  });

  it("a c,y,x image: the channel axis is not spatial; dimensions y,x only, translation mapped onto them", async () => {
    const v = neuroglancerView(await describeImage(cyx));
    assert.deepEqual(v.space.axes, ["y", "x"]);
    assert.deepEqual(v.center, [1000 + (9 * 4) / 2, 2000 + (19 * 2) / 2]);
    const st = planState(await neuroglancerPlan(cyx, []));
    assert.deepEqual(Object.keys(st.dimensions as object), ["y", "x"], "no z for a 2-D image, no channel (Neuroglancer makes it the local c')");
    assert.equal((st.position as number[]).length, 2);
    assert.equal(st.layout, "xy");
    assert.throws(
      () =>
        neuroglancerView(
          {
            axes: [{ name: "c", type: "channel" }, { name: "y" }, { name: "x" }],
            spatialAxes: ["y", "x"],
            levels: [{ shape: [3, 4, 4], scale: [1, 1], translation: [0, 0], zarrFormat: 2 }],
          },
          [1, 2, 3],
        ),
      /2 numbers y,x/,
    );
  });

  it("label layers keep their own zarr format and name", async () => {
    const st = planState(await neuroglancerPlan(zyx, [cyx]));
    const layers = st.layers as Array<{ name: string; type: string; source: string }>;
    assert.deepEqual(
      layers.map((l) => [l.name, l.type]),
      [
        ["raw", "image"],
        ["cyx.zarr", "segmentation"],
      ],
    );
  });
});

describe("binding rule", () => {
  it("loopback needs nothing; anything else needs a token", async () => {
    for (const h of ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]) assert.ok(isLoopbackHost(h), h);
    for (const h of ["0.0.0.0", "::", "192.168.1.5", "example.org"]) assert.ok(!isLoopbackHost(h), h);
    assert.equal(checkBind({}).host, "127.0.0.1");
    assert.equal(checkBind({}).port, 0);
    assert.throws(
      () => checkBind({ host: "0.0.0.0" }),
      (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT" && /requires --token/.test(e.message),
    );
    assert.equal(checkBind({ host: "0.0.0.0", token: "long-enough-secret" }).loopback, false);
    assert.throws(() => checkBind({ host: "0.0.0.0", token: "short" }), /at least 8/);
    assert.throws(() => checkBind({ port: 70000 }), /--port/);
    await assert.rejects(startHttpServer({ host: "0.0.0.0", handler: () => {} }), /requires --token/);
  });

  it("with a token, requests without it get 401 (JSON, CORS); header or ?token= pass; preflight needs none", async () => {
    const token = "s3cret-token-123";
    const s = await startHttpServer({ token, handler: (_req, res) => void res.end("ok") });
    try {
      const none = await request(s.url, "/x");
      assert.equal(none.status, 401);
      assert.equal(none.headers["access-control-allow-origin"], "*");
      const err = JSON.parse(none.body.toString());
      assert.equal(err.error.code, "UNAUTHORIZED");
      assert.equal(none.body.toString().trim().split("\n").length, 1, "one-line JSON");
      assert.equal((await request(s.url, "/x?token=wrong-token")).status, 401);
      assert.equal((await request(s.url, "/x", { Authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await request(s.url, `/x?token=${token}`)).status, 200);
      assert.equal(s.urlFor("/a/b"), `${s.url}/a/b?token=${token}`);
      const pre = await request(
        s.url,
        "/x",
        { Origin: "https://neuroglancer-demo.appspot.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range" },
        "OPTIONS",
      );
      assert.equal(pre.status, 204);
      assert.match(String(pre.headers["access-control-allow-headers"]), /Range/);
      const custom = await request(s.url, "/x", { Origin: "https://x", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-custom" }, "OPTIONS");
      assert.match(String(custom.headers["access-control-allow-headers"]), /x-custom/);
      assert.equal((await request(s.url, `/x?token=${token}`, {}, "POST")).status, 405);
    } finally {
      await s.close();
    }
  });
});

describe("static files", () => {
  let s: RunningHttpServer;
  const root = path.join(tmp, "served");
  const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  before(async () => {
    fs.mkdirSync(path.join(root, "sub"), { recursive: true });
    fs.writeFileSync(path.join(root, "sub", "data.bin"), body);
    fs.writeFileSync(path.join(root, ".zattrs"), "{}");
    fs.writeFileSync(path.join(tmp, "secret.txt"), "secret");
    fs.symlinkSync(path.join(tmp, "secret.txt"), path.join(root, "link.txt"));
    s = await startHttpServer({ handler: staticFileHandler([{ prefix: "/0/served", root }]) });
  });
  after(() => s.close());

  it("parses single byte ranges", () => {
    assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange("bytes=50-500", 100), { start: 50, end: 99 });
    assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=0-1,5-6", 100), undefined);
    assert.equal(parseRange(undefined, 100), undefined);
  });

  it("serves whole files and ranges with exact lengths, and CORS headers", async () => {
    const full = await request(s.url, "/0/served/sub/data.bin");
    assert.equal(full.status, 200);
    assert.equal(full.headers["content-length"], "1000");
    assert.deepEqual(full.body, body);
    assert.equal(full.headers["access-control-allow-origin"], "*");
    assert.equal(full.headers["accept-ranges"], "bytes");
    const part = await request(s.url, "/0/served/sub/data.bin", { Range: "bytes=10-19" });
    assert.equal(part.status, 206);
    assert.equal(part.headers["content-range"], "bytes 10-19/1000");
    assert.equal(part.headers["content-length"], "10");
    assert.deepEqual(part.body, body.subarray(10, 20));
    const tail = await request(s.url, "/0/served/sub/data.bin", { Range: "bytes=-5" });
    assert.deepEqual(tail.body, body.subarray(995));
    const past = await request(s.url, "/0/served/sub/data.bin", { Range: "bytes=2000-" });
    assert.equal(past.status, 416);
    assert.equal(past.headers["content-range"], "bytes */1000");
    const head = await request(s.url, "/0/served/sub/data.bin", {}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "1000");
    assert.equal(head.body.length, 0);
    const meta = await request(s.url, "/0/served/.zattrs");
    assert.match(String(meta.headers["content-type"]), /json/);
    const pre = await request(s.url, "/0/served/sub/data.bin", { Origin: "https://x", "Access-Control-Request-Method": "GET" }, "OPTIONS");
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "*");
    assert.match(String(pre.headers["access-control-allow-methods"]), /GET.*HEAD/);
  });

  it("404 for missing files, folders and unknown prefixes (one-line JSON)", async () => {
    for (const p of ["/0/served/nope", "/0/served/sub", "/1/other/x", "/"]) {
      const r = await request(s.url, p);
      assert.equal(r.status, 404, p);
      assert.equal(JSON.parse(r.body.toString()).error.code, "NOT_FOUND");
    }
  });

  it("refuses traversal: /../, encoded dots and slashes, symlinks out of the root", async () => {
    for (const p of ["/0/served/../../secret.txt", "/0/served/%2e%2e/%2e%2e/secret.txt", "/0/served/sub/..%2f..%2f..%2fsecret.txt", "/0/served/..", "/0/served/link.txt"]) {
      const r = await request(s.url, p);
      assert.equal(r.status, 403, p);
      assert.doesNotMatch(r.body.toString(), /secret$/);
    }
  });
});

describe("cellmap-data neuroglancer (CLI)", () => {
  function cli(...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8", timeout: 60_000 });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  it("a local image: the link plus one stderr line suggesting --serve", () => {
    const r = cli("neuroglancer", zyx);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^https:\/\/.*#!/);
    const lines = r.err.trim().split("\n");
    assert.equal(lines.length, 1);
    assert.match(lines[0], /--serve/);
  });

  it("--serve on a non-loopback address without --token is one clear error line", () => {
    const r = cli("neuroglancer", zyx, "--serve", "--host", "0.0.0.0");
    assert.equal(r.code, 1);
    assert.equal(r.err.trim().split("\n").length, 1);
    assert.match(r.err, /^cellmap-data: .*requires --token/);
  });

  it("--serve prints a link to the served data, serves it, and stops on SIGTERM", async () => {
    const token = "loopback-token-1";
    const child = spawn(process.execPath, ["--import", "tsx", main, "neuroglancer", zyx, cyx, "--serve", "--token", token], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      let err = "";
      child.stderr.on("data", (b: Buffer) => (err += b));
      const link = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no link in time; stderr: ${err}`)), 30_000);
        child.stdout.on("data", (b: Buffer) => {
          out += b;
          const line = out.split("\n").find((l) => l.includes("#!"));
          if (line) {
            clearTimeout(timer);
            resolve(line.trim());
          }
        });
        child.once("exit", (c) => reject(new Error(`exited ${c}: ${err}`)));
      });
      const state = JSON.parse(decodeURIComponent(link.split("#!")[1]));
      const sources = state.layers.map((l: { source: string }) => l.source as string);
      assert.equal(sources.length, 2);
      for (const src of sources) {
        assert.match(src, /^zarr2:\/\/http:\/\/127\.0\.0\.1:\d+\/\d\/[^?]+\?token=/);
        // What Neuroglancer does: append the key to the path, keep the query.
        const u = new URL(src.slice("zarr2://".length));
        u.pathname += "/.zattrs";
        const r = await fetch(u, { headers: { Range: "bytes=0-9" } });
        assert.equal(r.status, 206);
        assert.equal(r.headers.get("access-control-allow-origin"), "*");
        assert.equal((await r.arrayBuffer()).byteLength, 10);
        u.search = "";
        assert.equal((await fetch(u)).status, 401);
      }
      const t0 = Date.now();
      const code = await new Promise<number | null>((resolve) => {
        child.once("exit", (c) => resolve(c));
        child.kill("SIGTERM");
      });
      assert.equal(code, 0, err);
      assert.ok(Date.now() - t0 < 5000, "stops promptly");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
