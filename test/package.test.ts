/**
 * The package as published: its declarations compile on their own for a strict consumer (the
 * README's TypeScript examples, taken from README.md verbatim, plus type-level checks of typed
 * batches), `npm pack` would ship what the README links to, and the CLI reports its version.
 *
 * The consumer is compiled with the repository's TypeScript under `strict`, `skipLibCheck:
 * false`, `module`/`moduleResolution: nodenext` and no DOM lib, against declarations built from
 * `src` the way `npm run build` builds them (into a cache keyed by the sources, so an unchanged
 * tree reuses them), resolved through the package's `exports`. Nothing needs the network.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSC = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  version: string;
  files: string[];
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  repository?: { type?: string; url?: string };
};

/** The ```ts blocks of a Markdown text (also indented ones, in list items), dedented. */
function typescriptBlocks(markdown: string): { line: number; code: string }[] {
  const lines = markdown.split(/\r?\n/);
  const out: { line: number; code: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) body.push(lines[j++]);
    assert.ok(j < lines.length, `README.md line ${i + 1}: unclosed code block`);
    out.push({ line: i + 1, code: body.map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join("\n") + "\n" });
    i = j;
  }
  return out;
}

function run(cmd: string, args: string[], cwd: string, timeout = 240_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: r.stdout ?? "", output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** Every file the declaration build reads (sources, configs, the lockfile), for the cache key. */
function buildKey(): string {
  const h = crypto.createHash("sha256");
  const add = (p: string) => h.update(path.relative(ROOT, p)).update("\0").update(fs.readFileSync(p)).update("\0");
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) add(p);
    }
  };
  walk(path.join(ROOT, "src"));
  for (const f of ["tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json", "node_modules/typescript/package.json"]) add(path.join(ROOT, f));
  return h.digest("hex").slice(0, 16);
}

/**
 * A package directory holding this tree's package.json and declarations as `npm run build`
 * emits them (`dist/**\/*.d.ts`), its dependencies reachable through a `node_modules` link.
 * Built once per source tree: the directory is renamed into place when complete.
 */
function builtPackage(): string {
  const cache = path.join(os.tmpdir(), "cellmap-data-package-types");
  const key = buildKey();
  const dir = path.join(cache, key);
  if (fs.existsSync(path.join(dir, "dist", "index.d.ts"))) return dir;
  fs.mkdirSync(cache, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cache, `${key}.tmp-`));
  const r = run(
    process.execPath,
    [TSC, "-p", path.join(ROOT, "tsconfig.build.json"), "--outDir", path.join(tmp, "dist"), "--declaration", "--emitDeclarationOnly", "--sourceMap", "false"],
    ROOT,
  );
  if (r.status !== 0) {
    removeBuild(tmp);
    assert.fail(`the declaration build (tsc -p tsconfig.build.json) failed:\n${r.output}`);
  }
  fs.copyFileSync(path.join(ROOT, "package.json"), path.join(tmp, "package.json"));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(tmp, "node_modules"), "dir");
  try {
    fs.renameSync(tmp, dir);
  } catch {
    removeBuild(tmp); // another run put the same build in place first
  }
  // Builds of older trees (untouched for a day) go.
  for (const name of fs.readdirSync(cache)) {
    const p = path.join(cache, name);
    const age = Date.now() - (fs.statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (name !== key && age > 86_400_000) removeBuild(p);
  }
  return dir;
}

/** Removes a build directory (its node_modules link first, so nothing behind it is touched). */
function removeBuild(dir: string): void {
  try {
    fs.unlinkSync(path.join(dir, "node_modules"));
  } catch {
    // no link
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Packages whose declarations do not compile under nodenext without skipLibCheck (or need the DOM lib). */
const UNCHECKABLE = ["zarrita", "@zarrita/storage", "numcodecs", "unzipit"];

/** The bare module specifiers each declaration file reachable from `dist/index.d.ts` imports. */
function declarationImports(pkg: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const todo = [path.join(pkg, "dist", "index.d.ts")];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (out.has(file)) continue;
    const text = fs.readFileSync(file, "utf8");
    const specs = [...text.matchAll(/(?:from\s+|import\(\s*)"([^"]+)"/g)].map((m) => m[1]);
    out.set(
      file,
      specs.filter((x) => !x.startsWith(".")),
    );
    for (const x of specs.filter((y) => y.startsWith("."))) todo.push(path.resolve(path.dirname(file), x.replace(/\.js$/, ".d.ts")));
  }
  return out;
}

/** Type-level checks of the published typings beyond the README's examples. */
const CHECKS = `
import {
  CellMapDataset, CellMapDataSplit, CellMapDataLoader, CellMapDatasetWriter, CellMapMultiDataset, CellMapSubset,
  batchTensor, renderBatchGrid, toTfjs, tensorKeys,
  type AnyBatch, type AnyDatasetItem, type ArraySpec, type Batch, type DatasetItem, type Tensor, type AnyTensor,
} from "cellmap-data";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T>(_: T): void {}

const ds = await CellMapDataset.open({
  rawPath: "crop.zarr/raw",
  targetPath: "crop.zarr/labels/[mito,ids]",
  classes: ["mito"],
  inputArrays: { raw: { shape: [64, 64, 64], scale: [8, 8, 8] } },
  targetArrays: { gt: { shape: [64, 64, 64], scale: [8, 8, 8] }, ids: { shape: [64, 64, 64], scale: [8, 8, 8], outputDtype: "uint32" } },
  emptyValue: 0,
});
const item = await ds.get(0);
expectType<Float32Array>(item.raw.data);
expectType<Float32Array>(item.gt.data);
expectType<Uint32Array>(item.ids.data);
expectType<number>(item.idx);
// @ts-expect-error: no such array
item.labels;

const loader = new CellMapDataLoader(ds, { batchSize: 4 });
for await (const batch of loader) {
  expectType<true>(true as Equal<typeof batch.raw, Tensor>);
  expectType<true>(true as Equal<typeof batch.ids, Tensor<Uint32Array>>);
  expectType<number[]>(batch.idx);
  expectType<number[]>(batch.raw.shape);
  // @ts-expect-error: misspelt
  batch.rwa;
  // @ts-expect-error: a uint32 tensor is not a float32 one
  const wrong: Float32Array = batch.ids.data;
  await toTfjs(batch.raw);
  batchTensor(batch, "gt");
  tensorKeys(batch);
  renderBatchGrid(batch);
  const untyped: AnyBatch = batch; // a typed batch fits where an untyped one is expected
  expectType<AnyTensor>(untyped.raw as AnyTensor);
  loader.recycle(batch);
}
const rawOnly = await CellMapDataset.open({ rawPath: "r.zarr", inputArrays: { raw: { shape: [1, 64, 64], scale: [8, 8, 8] } } });
const one: Batch<DatasetItem<{ raw: { shape: number[]; scale: number[] } }, {}>> = await new CellMapDataLoader(rawOnly).get(0);
expectType<Float32Array>(one.raw.data);
// @ts-expect-error: raw-only datasets without targetArrays have no target key
one.gt;

// Splits, concatenations and subsets carry the names on.
const split = await CellMapDataSplit.open({
  csvPath: "datasplit.csv",
  classes: ["mito"],
  inputArrays: { raw: { shape: [32, 32], scale: [8, 8] } },
  targetArrays: { gt: { shape: [32, 32], scale: [8, 8] } },
});
const multi = new CellMapMultiDataset([split.trainDatasetsCombined, split.trainDatasetsCombined]);
const sub = new CellMapSubset(multi, [0, 1]);
expectType<Float32Array>((await sub.get(0)).gt.data);
expectType<Float32Array>((await split.validationBlocks.get(0)).raw.data);
for await (const b of new CellMapDataLoader(split.validationDatasetsCombined)) expectType<Float32Array>(b.gt.data);

// The writer serves its inputs (float32).
const writer = await CellMapDatasetWriter.open({
  rawPath: "r.zarr", targetPath: "out.zarr", classes: ["mito"],
  inputArrays: { em: { shape: [64, 64, 64], scale: [8, 8, 8] } },
  targetArrays: { pred: { shape: [32, 32, 32], scale: [8, 8, 8] } },
  targetBounds: { pred: { z: [0, 256], y: [0, 256], x: [0, 256] } },
});
for await (const b of new CellMapDataLoader(writer, { batchSize: 2 })) {
  expectType<Float32Array>(b.em.data);
  await writer.write(b.idx, { pred: b.em });
}

// Names not known statically: the string-keyed forms, as before.
const specs: Record<string, ArraySpec> = JSON.parse("{}");
const dyn = await CellMapDataset.open({ rawPath: "r.zarr", inputArrays: specs });
expectType<true>(true as Equal<Awaited<ReturnType<typeof dyn.get>>, AnyDatasetItem>);
const dynLoader: CellMapDataLoader = new CellMapDataLoader(dyn);
const dynBatch = await dynLoader.get(0);
const narrowed = dynBatch.raw as Tensor;
expectType<Float32Array>(narrowed.data);
const asUntyped: CellMapDataset = ds; // typed objects fit untyped annotations
const again: CellMapDataLoader = loader;
export { asUntyped, again, one };
`;

describe("package", () => {
  it("the README's TypeScript examples compile against the built declarations (strict, skipLibCheck false, nodenext)", { timeout: 600_000 }, () => {
    const blocks = typescriptBlocks(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"));
    assert.ok(blocks.length >= 4, `expected the README's TypeScript examples, found ${blocks.length} blocks`);
    assert.ok(
      blocks.some((b) => /for await \(const batch of loader\)/.test(b.code) && /batch\.raw\.shape/.test(b.code)),
      "the tour reads batch.raw.shape",
    );
    const pkg = builtPackage();
    const leaks = [...declarationImports(pkg)].flatMap(([file, specs]) =>
      specs.filter((x) => UNCHECKABLE.some((u) => x === u || x.startsWith(`${u}/`))).map((x) => `${path.relative(pkg, file)} imports ${x}`),
    );
    assert.deepEqual(leaks, [], "the public declarations must not load these packages' types (declare the types in src/store/types.ts instead)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellmap-consumer-"));
    try {
      fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
      fs.mkdirSync(path.join(dir, "node_modules"));
      fs.symlinkSync(pkg, path.join(dir, "node_modules", "cellmap-data"), "dir");
      fs.symlinkSync(path.join(ROOT, "node_modules", "@types"), path.join(dir, "node_modules", "@types"), "dir");
      const files = blocks.map((b) => {
        const name = `readme-line-${b.line}.ts`;
        fs.writeFileSync(path.join(dir, name), b.code);
        return name;
      });
      fs.writeFileSync(path.join(dir, "checks.ts"), CHECKS);
      files.push("checks.ts");
      const compilerOptions = {
        target: "ES2022",
        lib: ["ES2023"],
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        types: ["node"],
      };
      fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files }, null, 2));
      const r = run(process.execPath, [TSC, "-p", "tsconfig.json"], dir);
      // Name README blocks by their line in README.md.
      const output = r.output.replace(/readme-line-(\d+)\.ts\((\d+),(\d+)\)/g, (_, l: string, a: string, c: string) => `README.md:${Number(l) + Number(a)}:${c}`);
      assert.equal(r.status, 0, `the consumer does not compile:\n${output}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("npm pack ships the build, the docs the README links to, LICENSE and CHANGELOG, and no source maps", { timeout: 120_000 }, () => {
    const r = run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], ROOT);
    assert.equal(r.status, 0, r.output);
    const files = new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
    for (const f of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"]) assert.ok(files.has(f), `${f} is not in the package`);
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const links = [...readme.matchAll(/\]\(((?:docs|examples)\/[^)#\s]+)/g)].map((m) => m[1]);
    assert.ok(links.length > 0, "the README links to docs/");
    for (const l of links.filter((l) => l.startsWith("docs/"))) assert.ok(files.has(l), `README links to ${l}, which is not in the package`);
    for (const f of fs.readdirSync(path.join(ROOT, "docs"), { recursive: true }) as string[]) {
      if (fs.statSync(path.join(ROOT, "docs", f)).isFile()) assert.ok(files.has(`docs/${f}`), `docs/${f} is not in the package`);
    }
    assert.deepEqual(
      [...files].filter((f) => f.endsWith(".map")),
      [],
      "no source maps are shipped (their sources are not)",
    );
    assert.ok(![...files].some((f) => f.startsWith("src/") || f.startsWith("test/")), "sources and tests stay out");
    if (fs.existsSync(path.join(ROOT, "dist", "index.js"))) {
      for (const f of ["dist/index.js", "dist/index.d.ts", "dist/cli/main.js", "dist/loader/worker.js"]) assert.ok(files.has(f), `${f} is not in the package`);
    }
  });

  it("package.json: optional peer dependencies for every adapter runtime, a repository, a license file", () => {
    const adapters = fs.readFileSync(path.join(ROOT, "src", "loader", "adapters.ts"), "utf8");
    const runtimes = [...adapters.matchAll(/"((?:@tensorflow\/tfjs|onnxruntime-)[\w-]*)"/g)].map((m) => m[1]);
    assert.ok(runtimes.length >= 4, `adapter runtimes found: ${runtimes}`);
    for (const name of runtimes) {
      assert.ok(PKG.peerDependencies?.[name], `${name} (imported by adapters.ts) is not a peer dependency`);
      assert.equal(PKG.peerDependenciesMeta?.[name]?.optional, true, `${name} is not an optional peer dependency`);
    }
    assert.match(PKG.repository?.url ?? "", /^git\+https:\/\/github\.com\/.+\.git$/);
    assert.match(fs.readFileSync(path.join(ROOT, "LICENSE"), "utf8"), /BSD 3-Clause License[\s\S]*the cellmap-data authors/);
  });

  it("cellmap-data --version prints the package version", { timeout: 120_000 }, () => {
    const r = run(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "cli", "main.ts"), "--version"], ROOT);
    assert.equal(r.status, 0, r.output);
    assert.equal(r.output.trim(), PKG.version);
  });
});
