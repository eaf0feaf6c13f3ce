/** End-to-end tests of the `cellmap-data` command (run from source through tsx). */
import { before, after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";

const main = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-cli-"));
const dir = path.join(tmp, "demo");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]): { code: number; out: string; err: string } {
  return cliIn(process.cwd(), ...args);
}

function cliIn(cwd: string, ...args: string[]): { code: number; out: string; err: string } {
  // tsx by its location, so that the command runs from any folder.
  const r = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), main, ...args], { cwd, encoding: "utf8", timeout: 120_000, env: { ...process.env, CI: "1" } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Writes a config file under the test folder. */
function config(name: string, body: Record<string, unknown>): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(body));
  return file;
}

/** A user mistake: exit code 1 and one clear line, no stack trace. */
function assertUserError(r: { code: number; err: string }, re: RegExp): void {
  assert.equal(r.code, 1, r.err);
  const lines = r.err.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${r.err}`);
  assert.match(lines[0], /^cellmap-data: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.err, /\n\s+at /);
}

function pixel(png: PNG, x: number, y: number): number[] {
  const p = (y * png.width + x) * 4;
  return [png.data[p], png.data[p + 1], png.data[p + 2]];
}

describe("cellmap-data CLI", () => {
  let summary: Record<string, any>;
  before(() => {
    const r = cli("demo", "--short", "--json", "--dir", dir);
    assert.equal(r.code, 0, r.err);
    summary = JSON.parse(r.out);
  });

  it("demo --short streams batches with workers and prints a complete summary", () => {
    assert.equal(summary.batches, 6);
    assert.equal(summary.batchSize, 4);
    assert.equal(summary.samples, summary.batches * summary.batchSize, "every batch full");
    assert.equal(summary.workers, 2);
    // The rates are counts over the measured time: samples / s, and bytes of the float32
    // tensors / s, where a --short sample is raw 32^3 plus gt 3 classes x 32^3, 4 bytes each.
    assert.ok(summary.seconds > 0 && summary.firstBatchSeconds > 0 && summary.firstBatchSeconds <= summary.seconds);
    assert.ok(Math.abs(summary.samplesPerSecond * summary.seconds - summary.samples) < 1e-6 * summary.samples);
    const bytesPerSample = 4 * (32 ** 3 + 3 * 32 ** 3);
    const bytes = summary.megabytesPerSecond * 1e6 * summary.seconds;
    assert.ok(Math.abs(bytes - summary.samples * bytesPerSample) < 1e-6 * bytes, `${bytes} bytes streamed, expected ${summary.samples} x ${bytesPerSample}`);
    assert.deepEqual(Object.keys(summary.classBalance), ["mito", "er", "nuc"]);
    for (const b of Object.values(summary.classBalance) as { foreground: number; unknown: number }[]) {
      assert.ok(b.foreground >= 0 && b.foreground <= 1 && b.unknown >= 0 && b.unknown <= 1);
    }
    assert.ok(summary.classBalance.mito.foreground > 0, "mitochondria seen");
    assert.ok(summary.cacheHitRate > 0 && summary.cacheHitRate <= 1);
  });

  it("demo preview is a non-trivial picture: grey raw, coloured labels", () => {
    const png = PNG.sync.read(fs.readFileSync(summary.preview));
    // 4 rows x (raw + 3 classes) tiles of 128 px (32-voxel patches enlarged 4x), a 4 px margin,
    // column titles above (tiles start at y = 24) and a two-line legend below
    assert.equal(png.width, 4 * 128 + 3 * 2 + 2 * 4);
    assert.equal(png.height, 24 + 4 * 128 + 3 * 2 + 46);
    const greys = new Set<number>();
    for (let y = 28; y < 148; y++) for (let x = 8; x < 128; x++) greys.add(pixel(png, x, y)[0]);
    assert.ok(greys.size > 20, `raw tile has texture (${greys.size} grey levels)`);
    let yellow = 0;
    for (let y = 24; y < 152; y++) for (let x = 134; x < png.width; x++) if (pixel(png, x, y).join() === "255,220,0") yellow++;
    assert.ok(yellow > 0, "some foreground drawn");
  });

  it("info describes the pyramid, as text and JSON", () => {
    const raw = path.join(dir, "jrc_synthetic.zarr", "recon-1", "em", "fibsem-uint8");
    const text = cli("info", raw);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /s0 +voxel 4x4x4 nm/);
    assert.match(text.out, /s1 +voxel 8x8x8 nm/);
    assert.match(text.out, /problems: none/);
    const json = JSON.parse(cli("info", raw, "--json").out);
    assert.deepEqual(
      json.levels.map((l: { shape: number[] }) => l.shape),
      [
        [128, 128, 128],
        [64, 64, 64],
      ],
    );
    assert.deepEqual(json.levels[1].translation, [4, 4, 4]);
  });

  it("info on a bad path is one clear line with exit code 1", () => {
    assertUserError(cli("info", path.join(tmp, "missing.zarr")), /no zarr group here.*missing\.zarr/);
  });

  it("verify reports every row and exits non-zero when nothing is usable", () => {
    const good = path.join(tmp, "good.yaml");
    fs.writeFileSync(
      good,
      "input_arrays:\n  raw: {shape: [16, 16, 16], scale: [8, 8, 8]}\ntarget_arrays:\n  gt: {shape: [16, 16, 16], scale: [8, 8, 8]}\nclasses: [mito, er, nuc]\n",
    );
    const csv = path.join(dir, "datasplit.csv");
    const ok = cli("verify", csv, "--config", good, "--json");
    assert.equal(ok.code, 0, ok.err);
    const report = JSON.parse(ok.out);
    assert.equal(report.rows.length, 3);
    assert.equal(report.usableTrainRows, 2);
    assert.ok(report.rows.every((r: { length: number }) => r.length > 0));
    const big = path.join(tmp, "big.json");
    fs.writeFileSync(
      big,
      JSON.stringify({
        inputArrays: { raw: { shape: [512, 512, 512], scale: [8, 8, 8] } },
        targetArrays: { gt: { shape: [512, 512, 512], scale: [8, 8, 8] } },
        classes: ["mito"],
        pad: false,
      }),
    );
    const none = cli("verify", csv, "--config", big);
    assert.equal(none.code, 2);
    assert.match(none.out, /too small/);
    assert.match(none.err, /no usable training data/);
  });

  it("bad configs and options are one clear line", () => {
    const bad = path.join(tmp, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ inputArrays: { raw: { shape: [16, 0, 16], scale: [8, 8, 8] } } }));
    assertUserError(cli("verify", path.join(dir, "datasplit.csv"), "--config", bad), /inputArrays\.raw\.shape must be/);
    assertUserError(cli("verify", path.join(dir, "datasplit.csv"), "--config", path.join(tmp, "nope.yaml")), /cannot read config/);
    assertUserError(cli("neuroglancer", path.join(dir, "jrc_synthetic.zarr/recon-1/em/fibsem-uint8"), "--center", "1,2"), /--center/);
    const r = cli("demo", "--batches", "-3");
    assert.equal(r.code, 1);
    assert.match(r.err, /--batches must be a positive integer/);
  });

  it("verify builds what training builds: config mistakes are one line (exit 1), the split's pad default applies", () => {
    const csv = path.join(dir, "datasplit.csv");
    const base = {
      input_arrays: { raw: { shape: [16, 16, 16], scale: [8, 8, 8] } },
      target_arrays: { gt: { shape: [16, 16, 16], scale: [8, 8, 8] } },
      classes: ["mito", "er", "nuc"],
    };
    const mistakes: [Record<string, unknown>, RegExp][] = [
      [{ spatial_transforms: { mirorr: { axes: { x: 0.5 } } } }, /unknown option "mirorr" in spatialTransforms \(did you mean "mirror"\?\).*\[spatialTransforms\.mirorr\]/],
      [{ spatial_transforms: { mirror: { axes: { q: 0.5 } } } }, /unknown axis "q".*\[spatialTransforms\.mirror\.axes\.q\]/],
      [{ spatial_transforms: { mirror: { axes: { x: 5 } } } }, /spatialTransforms\.mirror\.axes\.x must be a probability/],
      [{ spatial_transforms: { rotate: { axes: { z: [30, -30] } } } }, /spatialTransforms\.rotate\.axes\.z must be an angle range/],
      [{ input_arrays: { raw: { shape: [16, 16, 16], scale: [8, 8] } } }, /3-D shape needs a 3-entry.*\[inputArrays\.raw\.scale\]/],
      [{ classes: ["mito", "mitoo"] }, /class "mitoo" is annotated in no row .*did you mean "mito"/],
      [{ class_relation_dict: { er: ["mitochondria"] } }, /classRelationDict\.er names class "mitochondria".*did you mean "mito"/],
      [{ clases: ["mito"] }, /unknown option "clases" \(did you mean "classes"\?\)/],
    ];
    for (const [extra, re] of mistakes) assertUserError(cli("verify", csv, "--config", config("mistake.json", { ...base, ...extra })), re);
    // No pad in the config: the split does not pad, so rows smaller than the patch fail in verify as in training.
    const noPad = cli(
      "verify",
      csv,
      "--config",
      config("nopad.json", { ...base, input_arrays: { raw: { shape: [48, 48, 48], scale: [8, 8, 8] } }, target_arrays: { gt: { shape: [48, 48, 48], scale: [8, 8, 8] } } }),
      "--json",
    );
    assert.equal(noPad.code, 2, noPad.err);
    const rows = JSON.parse(noPad.out).rows as { usable: boolean; problems: string[]; line: number }[];
    assert.ok(
      rows.every((r) => !r.usable && r.problems.some((p) => /too small/.test(p)) && r.line > 0),
      noPad.out,
    );
  });

  it("verify: a target-path class missing on disk is a problem of its row, with its line", () => {
    const lines = fs.readFileSync(path.join(dir, "datasplit.csv"), "utf8").trim().split("\n");
    lines[1] = lines[1].replace(/\[[^\]]*\]/, "[mito,err]");
    const csv = path.join(tmp, "err.csv");
    fs.writeFileSync(csv, lines.join("\n") + "\n");
    const r = cli(
      "verify",
      csv,
      "--config",
      config("ok.json", {
        inputArrays: { raw: { shape: [16, 16, 16], scale: [8, 8, 8] } },
        targetArrays: { gt: { shape: [16, 16, 16], scale: [8, 8, 8] } },
        classes: ["mito", "er"],
      }),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /warn train +line 2 .*\n(.*\n)*? +- class "err" of the target path is not on disk .*did you mean "er"\?/);
  });

  it("demo --datasplit --config: the config's batch_size, num_workers, seed apply unless a flag says otherwise; output goes to --out or the current folder", () => {
    const cwd = fs.mkdtempSync(path.join(tmp, "run-"));
    const cfg = config("train.yaml.json", {
      input_arrays: { raw: { shape: [16, 16, 16], scale: [8, 8, 8] } },
      target_arrays: { gt: { shape: [16, 16, 16], scale: [8, 8, 8] } },
      classes: ["mito", "er", "nuc"],
      pad: true,
      batch_size: 3,
      num_workers: 0,
      seed: 5,
      iterations_per_epoch: 2,
    });
    const r = cliIn(cwd, "demo", "--datasplit", path.join(dir, "datasplit.csv"), "--config", cfg, "--json");
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual([s.batchSize, s.workers, s.seed, s.batches, s.samples], [3, 0, 5, 2, 6]);
    assert.equal(s.preview, path.join(cwd, "preview.png"), "not the demo's folder");
    assert.ok(fs.existsSync(s.preview));
    const out = path.join(tmp, "out-dir");
    const flags = JSON.parse(cliIn(cwd, "demo", "--datasplit", path.join(dir, "datasplit.csv"), "--config", cfg, "--batch-size", "2", "--seed", "9", "--out", out, "--json").out);
    assert.deepEqual([flags.batchSize, flags.seed, flags.workers], [2, 9, 0]);
    assert.equal(flags.preview, path.join(out, "preview.png"));
    // preview: one training batch of the config's batch size.
    const png = path.join(tmp, "config-preview.png");
    const p = cliIn(cwd, "preview", "--datasplit", path.join(dir, "datasplit.csv"), "--config", cfg, "--out", png, "--no-augment", "--json");
    assert.equal(p.code, 0, p.err);
    assert.equal(JSON.parse(p.out).samples, 3);
  });

  it("preview writes a PNG grid of a batch (golden dimensions and content)", () => {
    const out = path.join(tmp, "preview.png");
    const r = cli("preview", "--dir", dir, "--size", "128", "--patch", "32", "--out", out, "--batch-size", "3", "--no-augment", "--json");
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual(s.columns, ["raw", "mito", "er", "nuc"]);
    assert.equal(s.samples, 3);
    assert.equal(s.axis, "z");
    const png = PNG.sync.read(fs.readFileSync(out));
    // every sample a row of 128 px tiles (32-voxel patches enlarged), titles above, legend below
    assert.equal(png.width, 4 * 128 + 3 * 2 + 2 * 4);
    assert.equal(png.height, 24 + 3 * 128 + 2 * 2 + 46);
    assert.deepEqual([s.width, s.height], [png.width, png.height]);
    assert.deepEqual(pixel(png, 4, 24), [255, 0, 0], "field of view outlined");
    assert.deepEqual(pixel(png, 4, 24 + 3 * 128 + 2 * 2 + 8 + 4), [200, 0, 200], "legend: unknown swatch");
    assert.ok(
      [0, 1, 2, 3].some((c) => Array.from({ length: 60 }, (_, x) => pixel(png, 4 + c * 130 + x, 8)).some((p) => p.join() === "0,0,0")),
      "column titles",
    );
    const across = cli("preview", "--dir", dir, "--size", "128", "--patch", "32", "--out", path.join(tmp, "px.png"), "--batch-size", "3", "--no-augment", "--axis", "x", "--json");
    assert.equal(across.code, 0, across.err);
    assert.equal(JSON.parse(across.out).axis, "x");
    assert.notDeepEqual(fs.readFileSync(path.join(tmp, "px.png")), fs.readFileSync(out));
    const bad = cli("preview", "--dir", dir, "--axis", "w");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--axis/);
  });

  it("neuroglancer prints a link centred on the requested position", () => {
    const r = cli("neuroglancer", path.join(dir, "jrc_synthetic.zarr/recon-1/em/fibsem-uint8"), "--center", "100,200,300", "--json");
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).position, [100, 200, 300]);
    assert.match(cli("neuroglancer", path.join(dir, "jrc_synthetic.zarr/recon-1/em/fibsem-uint8")).out, /^https:\/\/.*#!/);
  });

  it("bench reports samples/s per worker count and cache state", () => {
    const r = cli("bench", "--dir", dir, "--size", "128", "--patch", "32", "--batches", "2", "--batch-size", "2", "--workers", "0", "--json");
    assert.equal(r.code, 0, r.err);
    const rows = JSON.parse(r.out).rows;
    assert.deepEqual(
      rows.map((x: { workers: number; cache: string }) => [x.workers, x.cache]),
      [
        [0, "cold"],
        [0, "warm"],
      ],
    );
    // Each row streams 2 batches of 2 samples (patch 32: raw 32^3 + 3 classes x 32^3 float32 =
    // 512 KiB a sample); the rates are printed to 0.1, so MB/s / samples/s gives the bytes per
    // sample up to that rounding, and the first batch (to the ms) comes within the 4 samples' time.
    const bytesPerSample = 4 * (32 ** 3 + 3 * 32 ** 3);
    for (const x of rows as { samplesPerS: number; mbPerS: number; firstBatchS: number }[]) {
      assert.ok(x.samplesPerS > 0, JSON.stringify(x));
      const expected = (x.samplesPerS * bytesPerSample) / 1e6;
      const rounding = 0.05 + (0.05 * bytesPerSample) / 1e6;
      assert.ok(
        Math.abs(x.mbPerS - expected) <= rounding + 1e-9,
        `${x.mbPerS} MB/s at ${x.samplesPerS} samples/s: ${(x.mbPerS * 1e6) / x.samplesPerS} bytes a sample, expected ${bytesPerSample}`,
      );
      assert.ok(x.firstBatchS >= 0 && x.firstBatchS <= 4 / Math.max(0.05, x.samplesPerS - 0.05) + 0.0005, JSON.stringify(x));
    }
  });

  it("--help works for every command", () => {
    for (const c of ["demo", "info", "verify", "preview", "bench", "neuroglancer"]) {
      const r = cli(c, "--help");
      assert.equal(r.code, 0, `${c}: ${r.err}`);
      assert.match(r.out, /Usage: cellmap-data/);
    }
  });
});

describe("cellmap-data info on data other tools write", () => {
  /** Writes JSON documents (and raw files) under a fresh folder of the test dir. */
  function tree(name: string, files: Record<string, unknown>): string {
    const root = path.join(tmp, name);
    for (const [rel, body] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), body instanceof Uint8Array ? body : JSON.stringify(body));
    }
    return root;
  }

  it("a bare array whose codec is not supported (bz2): described, the codec under problems, exit 0", () => {
    const bare = tree("bz2.zarr", {
      ".zarray": { zarr_format: 2, shape: [4, 6], chunks: [2, 3], dtype: "<u2", compressor: { id: "bz2", level: 1 }, fill_value: 0, filters: null, order: "C" },
      "0.0": new Uint8Array([66, 90, 104, 49]), // the bytes do not matter: info reads no chunk
    });
    const text = cli("info", bare);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /bare zarr array/);
    assert.match(text.out, /shape \[4,6\] +chunks \[2,3\] +uint16 +zarr v2 +bz2/);
    assert.match(text.out, /problems:\n(.*\n)*\s+- unknown codec "numcodecs\.bz2": the array cannot be read/);
    const json = JSON.parse(cli("info", bare, "--json").out);
    assert.deepEqual([json.kind, json.levels[0].shape, json.levels[0].codecs], ["array", [4, 6], ["bz2", "bytes/little"]]);
    const sized = cli("info", bare, "--voxel-size", "8,4");
    assert.equal(sized.code, 0, sized.err);
    assert.match(sized.out, /voxel 8x4 nm/);
    assert.match(sized.out, /- unknown codec "numcodecs\.bz2"/);
  });

  it("an NGFF 0.2 group: one line naming the version, the supported ones and --voxel-size, exit 1", () => {
    const group = tree("ngff02.zarr", {
      ".zgroup": { zarr_format: 2 },
      ".zattrs": { multiscales: [{ version: "0.2", datasets: [{ path: "0" }, { path: "1" }] }] },
    });
    assertUserError(cli("info", group), new RegExp(`unsupported NGFF version "0\\.2".*0\\.4 and 0\\.5.*info ${group.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/0 --voxel-size`));
  });
});
