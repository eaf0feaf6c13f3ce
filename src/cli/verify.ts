/**
 * `cellmap-data verify`: opens every row of a datasplit with a config — through the same code
 * path, options and defaults as `CellMapDataSplit.open` ({@link openDataSplitRows}), so a row is
 * `ok` exactly when training uses it — and reports, per row, the number of samples, annotated
 * classes, class counts and problems (unreadable, no sample, resampled scale, target-path
 * classes missing on disk), so users find bad rows before a training job starts. Config
 * mistakes (bad options, classes no row annotates) throw before any row is opened.
 */
import * as zarr from "zarrita";
import { splitOptionsFromConfig, type CellMapConfig } from "../config/load.js";
import { didYouMean } from "../options/suggest.js";
import { CellMapDataset } from "../dataset/dataset.js";
import { openDataSplitRows, type DataSplitRow } from "../dataset/split.js";
import { classPath, splitTargetPath } from "../dataset/target-path.js";
import { CellMapError } from "../errors.js";
import { readMultiscale } from "../ome/read.js";
import { openStore } from "../store/open.js";

/** One row of the report. */
interface VerifyRow {
  usage: string;
  line?: number;
  raw?: string;
  gt?: string | null;
  /** Whether training uses the row (`CellMapDataSplit.open` keeps it). */
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

/** Problems of a row training uses: resampled scales, target-path classes not on disk. */
async function inspect(row: DataSplitRow, ds: CellMapDataset, config: CellMapConfig, out: VerifyRow): Promise<void> {
  const counts = await ds.classCounts();
  out.classCounts = Object.fromEntries(Object.entries(counts).map(([c, v]) => [c, { foreground: v.foreground, background: v.background }]));
  for (const [name, spec] of Object.entries({ ...config.inputArrays, ...(config.targetArrays ?? {}) })) {
    for (const [key, lv] of Object.entries(ds.sourceLevels())) {
      if (key !== name && !key.startsWith(`${name}/`)) continue;
      const want = spec.scale.length === 3 ? spec.scale : [spec.scale[0], ...spec.scale].slice(-3);
      const shape = spec.shape.length === 3 ? spec.shape : [1, ...spec.shape];
      // Only axes with more than one voxel are resampled (a single section has no z step).
      if (lv.scale.some((s, a) => shape[a] > 1 && Math.abs(s - want[a]) > 1e-3 * want[a])) {
        out.problems.push(`scale mismatch: ${key} is read from ${lv.path} at [${lv.scale}] nm and resampled to [${want}] nm`);
      }
    }
  }
  // Classes of the target path that training does not read: still, each should be on disk.
  const classes = config.classes ?? [];
  if (row.gt && classes.length > 0) {
    const target = splitTargetPath(row.gt);
    for (const c of target.classes.filter((x) => !classes.includes(x))) {
      const where = classPath(target, c);
      try {
        await readMultiscale(zarr.root(openStore(where, config.http).store), "", { id: where });
      } catch (err) {
        if (!(err instanceof CellMapError) || err.code !== "NOT_FOUND") throw err;
        out.problems.push(`class ${JSON.stringify(c)} of the target path is not on disk (${err.message})${didYouMean(c, classes)}`);
      }
    }
  }
}

/**
 * Verifies every row of `csvPath` (local path or URL) against `config`. `onRow` reports
 * progress. Throws `INVALID_ARGUMENT` for config mistakes, before any row is read.
 */
export async function verifyDataSplit(csvPath: string, config: CellMapConfig, onRow?: (done: number, total: number) => void): Promise<VerifyReport> {
  const { rows: opened, problems } = await openDataSplitRows({ ...splitOptionsFromConfig(config), csvPath });
  const rows: VerifyRow[] = problems.map((p) => ({
    usage: p.usage,
    line: p.line,
    raw: p.raw,
    gt: p.gt,
    usable: false,
    length: 0,
    annotated: [],
    classCounts: {},
    problems: [p.reason],
  }));
  let done = 0;
  for (const row of opened) {
    const out: VerifyRow = {
      usage: row.usage,
      line: row.line,
      raw: row.raw,
      gt: row.gt,
      usable: row.dataset !== null && row.problem === undefined,
      length: row.dataset?.length ?? 0,
      annotated: [],
      classCounts: {},
      problems: [],
    };
    try {
      if (row.gt) out.annotated = splitTargetPath(row.gt).classes;
    } catch {
      // the row's problem says why its target path is unusable
    }
    if (row.problem !== undefined) out.problems.push(row.dataset ? row.problem : `unreadable: ${row.problem}`);
    if (row.dataset instanceof CellMapDataset) {
      try {
        await inspect(row, row.dataset, config, out);
      } catch (err) {
        out.usable = false;
        out.problems.push(`unreadable: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    rows.push(out);
    onRow?.(++done, opened.length);
  }
  rows.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return {
    rows,
    usableTrainRows: rows.filter((r) => r.usage === "train" && r.usable).length,
    usableValidationRows: rows.filter((r) => r.usage === "validate" && r.usable).length,
  };
}

/** Text rendering of a {@link VerifyReport}: `ok`, `warn` (used, with problems) or `FAIL` per row. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  for (const row of r.rows) {
    const status = !row.usable ? "FAIL" : row.problems.length ? "warn" : "ok  ";
    lines.push(`${status} ${row.usage.padEnd(8)} line ${row.line ?? "?"}  ${row.gt ?? row.raw ?? ""}`);
    lines.push(`       samples ${row.length}, annotated [${row.annotated.join(", ")}]`);
    const counts = Object.entries(row.classCounts).map(([c, v]) => `${c} ${v.foreground.toFixed(0)}/${(v.foreground + v.background).toFixed(0)}`);
    if (counts.length) lines.push(`       foreground voxels: ${counts.join(", ")}`);
    for (const p of row.problems) lines.push(`       - ${p}`);
  }
  lines.push(`${r.usableTrainRows} usable training rows, ${r.usableValidationRows} usable validation rows`);
  return lines.join("\n");
}
