/**
 * The Python library's loader speed on the same fixture, for a side-by-side figure in one run:
 * runs `bench.py` of the Python reference (`--python DIR`, e.g. `../shared/python-reference`)
 * with Debian's `/usr/bin/python3` and reads its JSON.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LoaderRow } from "./loader.js";

/** One Python row. */
export interface PythonRow {
  workload: string;
  /** `local`, or the source label of the HTTP rows. */
  source: string;
  workers: number;
  samplesPerS: number;
}

/** Runs the Python loader bench (3 windows of 15 batches, as ours); `fixtures` may be a URL. */
export async function benchPython(dir: string, fixtures: string, workloads: string[], workers: number[]): Promise<PythonRow[]> {
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "cm-py-")), "py.json");
  const args = [
    path.join(dir, "bench.py"),
    "--fixtures",
    fixtures,
    "--workloads",
    workloads.join(","),
    "--workers",
    workers.join(","),
    "--runs",
    "3",
    "--batches",
    "15",
    "--breakdown",
    "0",
    "--json",
    json,
  ];
  // Asynchronous: the latency server the Python side may read lives in this process.
  const status = await new Promise<number | null>((resolve, reject) => {
    const child = spawn("/usr/bin/python3", args, { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) => resolve(code));
  });
  if (status !== 0 || !fs.existsSync(json)) throw new Error(`python bench failed (exit ${status}); see ${dir}/README.md for its setup`);
  const res = JSON.parse(fs.readFileSync(json, "utf8")) as { results: Record<string, { loader: { num_workers: number; samples_per_s_median: number }[] }> };
  const rows: PythonRow[] = [];
  for (const [workload, info] of Object.entries(res.results)) {
    for (const l of info.loader) rows.push({ workload, source: "local", workers: l.num_workers, samplesPerS: l.samples_per_s_median });
  }
  return rows;
}

/** Ours with 2 workers against Python's best on the same workload and source, per cache and recycle mode. */
export function ratioRows(
  ours: LoaderRow[],
  py: PythonRow[],
): { workload: string; source: string; cache: string; recycle: boolean; ours: number; python: number; ratio: number }[] {
  const out: { workload: string; source: string; cache: string; recycle: boolean; ours: number; python: number; ratio: number }[] = [];
  for (const o of ours) {
    if (o.workers !== 2) continue;
    const best = Math.max(...py.filter((p) => p.workload === o.workload && p.source === o.source).map((p) => p.samplesPerS));
    if (!Number.isFinite(best)) continue;
    out.push({ workload: o.workload, source: o.source, cache: o.cache, recycle: o.recycle, ours: o.samplesPerS, python: best, ratio: o.samplesPerS / best });
  }
  return out;
}
