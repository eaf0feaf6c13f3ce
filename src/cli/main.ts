#!/usr/bin/env node
/** The `cellmap-data` command line. User mistakes print one clear line (no stack trace) and exit 1. */
import * as os from "node:os";
import * as path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { Presets, SingleBar } from "cli-progress";
import { CellMapError } from "../errors.js";
import { registerFastCodecs } from "../zarr/codecs/register.js";
import { describeImage, formatImageInfo } from "./info.js";
import { DEMO_DEFAULTS, DEMO_SHORT, formatDemoSummary, runDemo } from "./demo.js";
import { loaderOptionsFromConfig } from "../config/load.js";
import { openTrainingSource } from "./stream.js";
import { CellMapDataLoader } from "../loader/loader.js";
import type { SliceAxis } from "../viz/grid.js";
import { formatPreviewSummary, runPreview } from "./preview.js";
import * as fs from "node:fs";
import { loadConfig, loadConfigWith } from "../config/load.js";
import { formatVerifyReport, verifyDataSplit } from "./verify.js";
import { neuroglancerCommand, type NeuroglancerCommandOptions } from "./neuroglancer.js";
import { runServe } from "./serve.js";

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function nonNegative(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function numbers(name: string) {
  return (v: string) => {
    const xs = v.split(",").map((x) => Number(x.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new InvalidArgumentError(`${name} must be comma-separated numbers, got "${v}"`);
    return xs;
  };
}

async function main(argv: string[]): Promise<void> {
  registerFastCodecs();
  const program = new Command()
    .name("cellmap-data")
    .description("Stream training patches out of OME-NGFF / Zarr microscopy volumes.")
    .version((JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version)
    .showHelpAfterError();

  program
    .command("info")
    .description("describe a multiscale image: levels, voxel sizes, translations, shapes, chunks, codecs, problems")
    .argument("<path>", "local path, http(s):// or s3:// URL of a multiscale image group (or a bare zarr array)")
    .option("--voxel-size <nm>", "voxel size of a bare array, z,y,x or y,x in nm", numbers("--voxel-size"))
    .option("--translation <nm>", "position of voxel 0 of a bare array, like --voxel-size", numbers("--translation"))
    .option("--series <n>", "which series of a bioformats2raw root to describe (default 0)", nonNegative("--series"))
    .option("--json", "print JSON")
    .action(async (p: string, o: { json?: boolean; voxelSize?: number[]; translation?: number[]; series?: number }) => {
      if (o.translation && !o.voxelSize) throw new InvalidArgumentError("--translation needs --voxel-size (it is for bare arrays)");
      const info = await describeImage(p, undefined, undefined, o.voxelSize ? { voxelSize: o.voxelSize, translation: o.translation } : undefined, o.series);
      console.log(o.json ? JSON.stringify(info, null, 2) : formatImageInfo(info));
    });

  program
    .command("demo")
    .description("build a synthetic CellMap-style dataset and stream augmented training batches from it with worker threads")
    .option("--dir <dir>", "where to write the synthetic demo data (and its preview)", path.join(os.tmpdir(), "cellmap-demo"))
    .option("--out <dir>", "folder of the preview PNG (default: --dir for the demo data, the current folder for --datasplit)")
    .option("--batches <n>", `batches to stream (default: the config's iterationsPerEpoch, else ${DEMO_DEFAULTS.batches})`, int("--batches"))
    .option("--batch-size <n>", `samples per batch (default: the config's batchSize, else ${DEMO_DEFAULTS.batchSize})`, int("--batch-size"))
    .option("--workers <n>", `worker threads, 0 = read on the main thread (default: the config's numWorkers, else ${DEMO_DEFAULTS.workers})`, nonNegative("--workers"))
    .option("--patch <n>", `patch edge in voxels at 8 nm (synthetic data; default ${DEMO_DEFAULTS.patch})`, int("--patch"))
    .option("--size <n>", `raw s0 edge in voxels at 4 nm (synthetic data; default ${DEMO_DEFAULTS.size})`, int("--size"))
    .option("--seed <n>", `random seed (default: the config's seed, else ${DEMO_DEFAULTS.seed})`, nonNegative("--seed"))
    .option("--datasplit <csv>", "stream from your own datasplit CSV (default: the config's csvPath, else the synthetic data)")
    .option("--config <file>", "array specs, classes, transforms and loader options (.json/.yaml, camelCase or snake_case)")
    .option("--short", "quick run (CI): small volume, few small batches (flags still override)")
    .option("--json", "print the summary as JSON")
    .action(
      async (o: {
        dir: string;
        out?: string;
        batches?: number;
        batchSize?: number;
        workers?: number;
        patch?: number;
        size?: number;
        seed?: number;
        datasplit?: string;
        config?: string;
        short?: boolean;
        json?: boolean;
      }) => {
        if (o.datasplit && !o.config) throw new InvalidArgumentError("--datasplit needs --config (array specs and classes)");
        // Flags win, then --short, then the config, then the demo's defaults (runDemo).
        const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
        const s = await runDemo({
          ...(o.short ? DEMO_SHORT : {}),
          ...given,
          config: o.config ? loadConfig(o.config) : undefined,
          progress: !o.json && (process.stderr.isTTY ?? false),
        } as Parameters<typeof runDemo>[0]);
        console.log(o.json ? JSON.stringify(s, null, 2) : formatDemoSummary(s));
      },
    );

  program
    .command("preview")
    .description(
      "write a PNG grid of one training batch: a row per sample, columns raw and each class (mid-slices; titles and legend in the picture: magenta = unknown, red = target field of view)",
    )
    .option("--out <file>", "PNG to write", "preview.png")
    .option("--datasplit <csv>", "your datasplit CSV (default: the synthetic demo data)")
    .option("--config <file>", "array specs and classes for --datasplit")
    .option("--dir <dir>", "demo data folder", path.join(os.tmpdir(), "cellmap-demo"))
    .option("--size <n>", "raw s0 edge of the demo data (as given to demo)", int("--size"), 256)
    .option("--patch <n>", "patch edge of the demo config", int("--patch"), 64)
    .option("--batch-size <n>", "samples in the grid (default: the config's batchSize, else 4)", int("--batch-size"))
    .option("--seed <n>", "seed of the sample order and augmentation (default: the config's seed, else 1)", nonNegative("--seed"))
    .option("--no-augment", "show samples without spatial augmentation")
    .option("--augment <n>", "draw one sample under n augmentation draws, a row each (the draws of epochs 0 … n-1)", int("--augment"))
    .addOption(new Option("--axis <axis>", "slice across this axis, through the middle (2-D patches: z only)").choices(["z", "y", "x"]).default("z"))
    .option("--json", "print a JSON summary")
    .action(
      async (o: {
        out: string;
        datasplit?: string;
        config?: string;
        dir: string;
        size: number;
        patch: number;
        batchSize?: number;
        seed?: number;
        augment: boolean | number;
        axis: SliceAxis;
        json?: boolean;
      }) => {
        if (o.datasplit && !o.config) throw new InvalidArgumentError("--datasplit needs --config (array specs and classes)");
        const draws = typeof o.augment === "number" ? o.augment : undefined;
        const summary = await runPreview({ ...o, augment: o.augment !== false, draws, config: o.config ? loadConfig(o.config) : undefined });
        console.log(o.json ? JSON.stringify(summary, null, 2) : formatPreviewSummary(summary));
      },
    );

  program
    .command("bench")
    .description("loader throughput on the demo data or your datasplit: samples/s and MB/s per worker count, cold and warm cache")
    .option("--datasplit <csv>", "your datasplit CSV (default: the synthetic demo data)")
    .option("--config <file>", "array specs and classes for --datasplit")
    .option("--dir <dir>", "demo data folder", path.join(os.tmpdir(), "cellmap-demo"))
    .option("--size <n>", "raw s0 edge of the demo data (as given to demo)", int("--size"), 256)
    .option("--patch <n>", "patch edge of the demo config", int("--patch"), 64)
    .option("--batches <n>", "batches per measurement (default: the config's iterationsPerEpoch, else 20)", int("--batches"))
    .option("--batch-size <n>", "samples per batch (default: the config's batchSize, else 8)", int("--batch-size"))
    .option("--workers <list>", "worker counts to compare (default 0,1,2 and the config's numWorkers)")
    .option("--augment", "include the config's spatial augmentation")
    .option("--json", "print JSON")
    .action(
      async (o: {
        datasplit?: string;
        config?: string;
        dir: string;
        size: number;
        patch: number;
        batches?: number;
        batchSize?: number;
        workers?: string;
        augment?: boolean;
        json?: boolean;
      }) => {
        if (o.datasplit && !o.config) throw new InvalidArgumentError("--datasplit needs --config (array specs and classes)");
        const config = o.config ? loadConfig(o.config) : undefined;
        const workers = o.workers !== undefined ? o.workers.split(",").map(Number) : [...new Set([0, 1, 2, config?.numWorkers ?? 0])].sort((a, b) => a - b);
        if (workers.some((w) => !Number.isInteger(w) || w < 0)) throw new InvalidArgumentError("--workers must be a comma-separated list of non-negative integers");
        const { train } = await openTrainingSource({ datasplit: o.datasplit, config, dir: o.dir, patch: o.patch, size: o.size, seed: 1, augment: !!o.augment });
        const fromConfig = config ? loaderOptionsFromConfig(config) : {};
        const rows = [];
        for (const numWorkers of workers) {
          for (const cache of ["cold", "warm"] as const) {
            const loader = new CellMapDataLoader(train, {
              ...fromConfig,
              batchSize: o.batchSize ?? config?.batchSize ?? 8,
              numWorkers,
              seed: config?.seed ?? 7,
              iterationsPerEpoch: o.batches ?? config?.iterationsPerEpoch ?? 20,
              chunkCacheBytes: cache === "cold" ? 0 : (config?.chunkCacheBytes ?? 1024 ** 3),
              isTrain: true,
            });
            try {
              if (cache === "warm") for await (const _ of loader) void _; // fill the cache with this epoch's chunks
              if (cache === "warm") loader.setEpoch(0);
              const t0 = performance.now();
              let first = 0,
                samples = 0,
                bytes = 0;
              for await (const batch of loader) {
                if (!first) first = performance.now() - t0;
                samples += batch.idx.length;
                for (const k of Object.keys(batch)) {
                  const t = batch[k] as { data?: unknown };
                  if (t?.data instanceof Float32Array) bytes += t.data.byteLength;
                }
              }
              const s = (performance.now() - t0) / 1000;
              rows.push({ workers: numWorkers, cache, samplesPerS: +(samples / s).toFixed(1), mbPerS: +(bytes / 1e6 / s).toFixed(1), firstBatchS: +(first / 1000).toFixed(3) });
            } finally {
              await loader.close();
            }
          }
        }
        if (o.json) console.log(JSON.stringify({ machine: `${os.cpus()[0]?.model} x ${os.cpus().length}`, rows }, null, 2));
        else {
          console.log(`machine: ${os.cpus()[0]?.model} x ${os.cpus().length} cores`);
          for (const r of rows)
            console.log(
              `workers ${r.workers}  ${r.cache.padEnd(4)}  ${String(r.samplesPerS).padStart(7)} samples/s  ${String(r.mbPerS).padStart(7)} MB/s  first batch ${r.firstBatchS} s`,
            );
        }
      },
    );

  program
    .command("verify")
    .description("open every row of a datasplit and report samples, annotated classes, class counts and problems")
    .argument("[datasplit.csv]", "datasplit CSV (usage,raw_container,raw_dataset,gt_container,gt_dataset; default: the config's csvPath)")
    .requiredOption("--config <file>", "config with inputArrays/targetArrays/classes (.json or .yaml, camelCase or snake_case): the rows are opened as training opens them")
    .option("--json", "print JSON")
    .action(async (arg: string | undefined, o: { config: string; json?: boolean }) => {
      const config = loadConfig(o.config);
      const csv = arg ?? config.csvPath;
      if (!csv) throw new InvalidArgumentError("give the datasplit CSV (or csvPath in the config)");
      const bar = !o.json && process.stderr.isTTY ? new SingleBar({ format: "verify |{bar}| {value}/{total} rows" }, Presets.shades_classic) : null;
      const report = await verifyDataSplit(csv, config, (done, total) => {
        if (done === 1) bar?.start(total, 0);
        bar?.update(done);
      });
      bar?.stop();
      console.log(o.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      if (report.usableTrainRows === 0) {
        console.error("cellmap-data: no usable training data");
        process.exitCode = 2;
      }
    });

  program
    .command("neuroglancer")
    .description("print a Neuroglancer link (or state JSON) showing raw and label layers at a centre; --serve serves local data for it")
    .argument("<raw>", "raw multiscale image (path or URL)")
    .argument("[labels...]", "label images (path or URL)")
    .option("--center <values>", "centre in nm, one value per spatial axis (z,y,x or y,x; default: the raw image's centre)", numbers("--center"))
    .option("--json", "print the state JSON instead of a link")
    .option("--serve", "serve the local images over HTTP (CORS, byte ranges) for the link, until Ctrl-C / SIGTERM")
    .option("--host <addr>", "with --serve: address to bind (default 127.0.0.1; any other needs --token)")
    .option("--port <n>", "with --serve: port (default 0 = any free port)", nonNegative("--port"))
    .addOption(new Option("--token <secret>", "with --serve: shared secret required on every request (Bearer header or ?token=; the link carries it)").env("CELLMAP_DATA_TOKEN"))
    .action(async (raw: string, labels: string[], o: NeuroglancerCommandOptions) => {
      await neuroglancerCommand(raw, labels, o);
    });

  program
    .command("serve")
    .description("serve a datasplit's batches over HTTP for a training loop in another process or machine (safetensors frames; docs/serve.md, clients/python)")
    .option("--datasplit <csv>", "datasplit CSV (default: the config's csvPath)")
    .option("--config <file>", "array specs, classes, transforms and loader options (.json/.yaml)")
    .option("--options <json>", "config options as a JSON object, over the config file's (the same schema; what Python's serve(**options) passes)")
    .option("--stop-on-stdin-close", "stop when stdin closes (a parent process holding the pipe has gone)")
    .option("--validate", "serve the validation datasets instead of the training ones")
    .option("--workers <n>", "worker threads (default: the config's numWorkers)", nonNegative("--workers"))
    .option("--batch-size <n>", "samples per batch (default: the config's batchSize)", int("--batch-size"))
    .option("--seed <n>", "random seed (default: the config's seed)", nonNegative("--seed"))
    .option("--prefetch <n>", "batches read ahead per client (default: the loader's prefetch depth)", int("--prefetch"))
    .option("--host <addr>", "address to bind (default 127.0.0.1; any other needs --token)")
    .option("--port <n>", "port (default 0 = any free port)", nonNegative("--port"))
    .addOption(new Option("--token <secret>", "shared secret required on every request (Authorization: Bearer or ?token=)").env("CELLMAP_DATA_TOKEN"))
    .action(
      async (o: {
        datasplit?: string;
        config?: string;
        options?: string;
        stopOnStdinClose?: boolean;
        validate?: boolean;
        workers?: number;
        batchSize?: number;
        seed?: number;
        prefetch?: number;
        host?: string;
        port?: number;
        token?: string;
      }) => {
        if (o.config === undefined && o.options === undefined) throw new CellMapError("INVALID_ARGUMENT", "serve needs --config <file> or --options <json>", "config");
        let overrides: Record<string, unknown> | undefined;
        if (o.options !== undefined) {
          try {
            overrides = JSON.parse(o.options) as Record<string, unknown>;
          } catch (err) {
            throw new CellMapError("INVALID_ARGUMENT", `--options is not valid JSON: ${(err as Error).message}`, "options");
          }
        }
        const config = overrides ? loadConfigWith(o.config, overrides) : loadConfig(o.config!);
        const server = await runServe({ ...o, config });
        console.log(`cellmap-data serve: ${server.url} (Ctrl-C to stop)`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            void server.close().then(resolve);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
          if (o.stopOnStdinClose) {
            process.stdin.on("end", stop);
            process.stdin.on("close", stop);
            process.stdin.on("error", stop);
            process.stdin.resume();
          }
        });
        process.exit(0);
      },
    );

  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof InvalidArgumentError) {
    console.error(`cellmap-data: ${err.message}`);
  } else if (err instanceof CellMapError) {
    console.error(`cellmap-data: ${err.message}`);
  } else {
    console.error(`cellmap-data: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.CELLMAP_DEBUG) console.error(err);
  }
  process.exit(1);
});
