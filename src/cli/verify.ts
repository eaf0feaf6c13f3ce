/**
 * `cellmap-data verify`: opens every row of a datasplit with a config and reports, per row, the
 * number of samples, annotated classes, class counts and problems (unreadable, resampled scale,
 * too small), so users find bad rows before a training job starts.
 */
import { CellMapDataset } from "../dataset/dataset.js";
import { parseDataSplitCsv } from "../dataset/split.js";
import { splitTargetPath } from "../dataset/target-path.js";
import { CellMapError } from "../errors.js";
import * as fs from "node:fs";
import * as path from "node:path";
import type { CellMapConfig } from "./config.js";

/** One row of the report. */
export interface VerifyRow {
  usage: string;
  line?: number;
  raw?: string;
  gt?: string | null;
  usable: boolean;
  length: number;
  annotated: string[];
  classCounts: Record<string, { foreground: number; background: number }>;
  problems: string[];
}

/** The whole report. */
export interface VerifyReport {
  rows: VerifyRow[];
  usableTrainRows: number;
  usableValidationRows: number;
}

/** Verifies every row of `csvPath` against `config` (`onRow` reports progress). */
export async function verifyDataSplit(csvPath: string, config: CellMapConfig, onRow?: (done: number, total: number) => void): Promise<VerifyReport> {
  let text: string;
  try {
    text = fs.readFileSync(csvPath, "utf8");
  } catch (err) {
    throw new CellMapError("NOT_FOUND", `cannot read datasplit CSV: ${(err as Error).message}`, csvPath);
  }
  const { dict, problems } = parseDataSplitCsv(text, { baseDir: path.dirname(path.resolve(csvPath)), source: csvPath });
  const rows: VerifyRow[] = problems.map((p) => ({
    usage: p.usage, line: p.line, raw: p.raw, gt: p.gt, usable: false, length: 0, annotated: [], classCounts: {}, problems: [p.reason],
  }));
  const entries = [...dict.train.map((e) => ({ usage: "train", e })), ...(dict.validate ?? []).map((e) => ({ usage: "validate", e }))];
  let done = 0;
  for (const { usage, e } of entries) {
    const row: VerifyRow = { usage, line: e.line, raw: e.raw, gt: e.gt, usable: false, length: 0, annotated: [], classCounts: {}, problems: [] };
    try {
      if (e.gt) row.annotated = splitTargetPath(e.gt).classes;
      const ds = await CellMapDataset.open({
        rawPath: e.raw,
        targetPath: e.gt ?? null,
        classes: config.classes ?? null,
        inputArrays: config.inputArrays,
        targetArrays: config.targetArrays ?? null,
        classRelationDict: config.classRelationDict ?? null,
        pad: config.pad === undefined ? undefined : config.pad === true || config.pad === usage,
        forceHasData: config.forceHasData,
      });
      row.length = ds.length;
      const counts = await ds.classCounts();
      row.classCounts = Object.fromEntries(Object.entries(counts).map(([c, v]) => [c, { foreground: v.foreground, background: v.background }]));
      for (const [name, spec] of Object.entries({ ...config.inputArrays, ...(config.targetArrays ?? {}) })) {
        for (const [key, lv] of Object.entries(ds.sourceLevels())) {
          if (key !== name && !key.startsWith(`${name}/`)) continue;
          const want = spec.scale.length === 3 ? spec.scale : [spec.scale[0], ...spec.scale].slice(-3);
          const shape = spec.shape.length === 3 ? spec.shape : [1, ...spec.shape];
          // Only axes with more than one voxel are resampled (a single section has no z step).
          if (lv.scale.some((s, a) => shape[a] > 1 && Math.abs(s - want[a]) > 1e-3 * want[a])) {
            row.problems.push(`scale mismatch: ${key} is read from ${lv.path} at [${lv.scale}] nm and resampled to [${want}] nm`);
          }
        }
      }
      if (ds.length === 0) row.problems.push("too small: no patch centre fits inside all sources (or no annotated foreground)");
      row.usable = ds.length > 0;
    } catch (err) {
      row.problems.push(`unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
    rows.push(row);
    onRow?.(++done, entries.length);
  }
  rows.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return {
    rows,
    usableTrainRows: rows.filter((r) => r.usage === "train" && r.usable).length,
    usableValidationRows: rows.filter((r) => r.usage === "validate" && r.usable).length,
  };
}

/** Text rendering of a {@link VerifyReport}. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  for (const row of r.rows) {
    lines.push(`${row.usable ? "ok  " : "FAIL"} ${row.usage.padEnd(8)} line ${row.line ?? "?"}  ${row.gt ?? row.raw ?? ""}`);
    lines.push(`       samples ${row.length}, annotated [${row.annotated.join(", ")}]`);
    const counts = Object.entries(row.classCounts).map(([c, v]) => `${c} ${v.foreground.toFixed(0)}/${(v.foreground + v.background).toFixed(0)}`);
    if (counts.length) lines.push(`       foreground voxels: ${counts.join(", ")}`);
    for (const p of row.problems) lines.push(`       - ${p}`);
  }
  lines.push(`${r.usableTrainRows} usable training rows, ${r.usableValidationRows} usable validation rows`);
  return lines.join("\n");
}
