#!/usr/bin/env node
/** The `cellmap-data` command line. User mistakes print one clear line (no stack trace) and exit 1. */
import * as os from "node:os";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { Presets, SingleBar } from "cli-progress";
import { CellMapError } from "../errors.js";
import { registerFastCodecs } from "../zarr/codecs/register.js";
import { describeImage, formatImageInfo } from "./info.js";
import { formatDemoSummary, runDemo } from "./demo.js";
import { loadConfig } from "./config.js";
import { formatVerifyReport, verifyDataSplit } from "./verify.js";
import { neuroglancerLink, neuroglancerState, type NeuroglancerLayer } from "../viz/neuroglancer.js";

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

async function main(argv: string[]): Promise<void> {
  registerFastCodecs();
  const program = new Command()
    .name("cellmap-data")
    .description("Stream training patches out of OME-NGFF / Zarr microscopy volumes.")
    .showHelpAfterError();

  program
    .command("info")
    .description("describe a multiscale image: levels, voxel sizes, translations, shapes, chunks, codecs, problems")
    .argument("<path>", "local path, http(s):// or s3:// URL of a multiscale image group")
    .option("--json", "print JSON")
    .action(async (p: string, o: { json?: boolean }) => {
      const info = await describeImage(p);
      console.log(o.json ? JSON.stringify(info, null, 2) : formatImageInfo(info));
    });

  program
    .command("demo")
    .description("build a synthetic CellMap-style dataset and stream augmented training batches from it with worker threads")
    .option("--dir <dir>", "where to write the demo data and preview", path.join(os.tmpdir(), "cellmap-demo"))
    .option("--batches <n>", "batches to stream", int("--batches"), 40)
    .option("--batch-size <n>", "samples per batch", int("--batch-size"), 8)
    .option("--workers <n>", "worker threads (0 = read on the main thread)", nonNegative("--workers"), 2)
    .option("--patch <n>", "patch edge in voxels at 8 nm (synthetic data)", int("--patch"), 64)
    .option("--size <n>", "raw s0 edge in voxels at 4 nm (synthetic data)", int("--size"), 256)
    .option("--seed <n>", "random seed", nonNegative("--seed"), 1)
    .option("--datasplit <csv>", "stream from your own datasplit CSV instead of the synthetic data")
    .option("--config <file>", "array specs, classes and transforms for --datasplit (.json/.yaml)")
    .option("--short", "quick run (CI): small volume, few small batches")
    .option("--json", "print the summary as JSON")
    .action(async (o: { dir: string; batches: number; batchSize: number; workers: number; patch: number; size: number; seed: number; datasplit?: string; config?: string; short?: boolean; json?: boolean }) => {
      if (o.datasplit && !o.config) throw new InvalidArgumentError("--datasplit needs --config (array specs and classes)");
      const short = o.short ? { batches: 6, batchSize: 4, patch: 32, size: 128 } : {};
      const s = await runDemo({
        ...o, ...short,
        config: o.config ? loadConfig(o.config) : undefined,
        progress: !o.json && (process.stderr.isTTY ?? false),
      });
      console.log(o.json ? JSON.stringify(s, null, 2) : formatDemoSummary(s));
    });

  program
    .command("verify")
    .description("open every row of a datasplit and report samples, annotated classes, class counts and problems")
    .argument("<datasplit.csv>", "datasplit CSV (usage,raw_container,raw_dataset,gt_container,gt_dataset)")
    .requiredOption("--config <file>", "config with inputArrays/targetArrays/classes (.json or .yaml, camelCase or snake_case)")
    .option("--json", "print JSON")
    .action(async (csv: string, o: { config: string; json?: boolean }) => {
      const config = loadConfig(o.config);
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
    .description("print a Neuroglancer link (or state JSON) showing raw and label layers at a centre")
    .argument("<raw>", "raw multiscale image (path or URL)")
    .argument("[labels...]", "label images (path or URL)")
    .option("--center <z,y,x>", "centre in nm (default: the raw image's centre)")
    .option("--json", "print the state JSON instead of a link")
    .action(async (raw: string, labels: string[], o: { center?: string; json?: boolean }) => {
      const info = await describeImage(raw);
      let center: number[];
      if (o.center) {
        center = o.center.split(",").map(Number);
        if (center.length !== 3 || center.some((v) => !Number.isFinite(v))) throw new InvalidArgumentError("--center must be three numbers z,y,x in nm");
      } else {
        const s0 = info.levels[0];
        if (!s0) throw new CellMapError("INVALID_METADATA", "image has no readable level", raw);
        center = s0.translation.map((t, a) => t + ((s0.shape[a] - 1) * s0.scale[a]) / 2);
      }
      const layers: NeuroglancerLayer[] = [
        { name: "raw", path: info.location, kind: "image" },
        ...labels.map((l) => ({ name: l.split(/[\\/]/).filter(Boolean).pop() ?? l, path: l, kind: "segmentation" as const })),
      ];
      const state = neuroglancerState(layers, center, info.levels[0]?.scale[0] ?? 8, info.levels[0]?.zarrFormat ?? 2);
      console.log(o.json ? JSON.stringify(state, null, 2) : neuroglancerLink(state));
    });

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
