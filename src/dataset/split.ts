/**
 * `CellMapDataSplit`: training and validation datasets from a datasplit CSV, an object
 * `{ train: [{ raw, gt }], validate: [...] }`, or ready datasets.
 *
 * CSV rows (header optional, `#` comment lines and blank lines skipped):
 * - 5 columns `usage,raw_container,raw_dataset,gt_container,gt_dataset` (the CellMap challenge
 *   form; the bracket field must be quoted: `"recon-1/labels/groundtruth/crop155/[mito,er]"`);
 * - 3 columns `usage,raw_path,gt_path`; 2 columns `usage,raw_path` (raw-only);
 * - with a header row, columns are matched by name (`usage`/`split`, `raw_container`,
 *   `raw_dataset`, `raw_path`/`raw`, `gt_container`, `gt_dataset`, `gt_path`/`gt`).
 * Usage is `train`/`training` or `validate`/`validation`/`val` (any case). Relative paths in a
 * CSV file are resolved against the CSV file's directory (its parent URL for a CSV read from
 * `http(s)://` or `s3://`). Rows that cannot be parsed or opened, and datasets without a valid
 * sample, are listed in `problems` (path + reason) and skipped — never silently.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultRawTransform, defaultTargetTransform, SPLIT_DEFAULTS } from "./defaults.js";
import { checked, parseOptions } from "../options/options.js";
import { splitOptionsSchema, type CellMapDataSplitOptions, type DataSplitDict, type DataSplitEntry } from "./split-options.js";

export type { CellMapDataSplitOptions, DataSplitDict, DataSplitEntry } from "./split-options.js";
import { didYouMean } from "../options/suggest.js";
import { CellMapError } from "../errors.js";
import { Limiter } from "../util/limit.js";
import { isRemote, joinLocation, readLocation } from "../store/open.js";
import type { ClassCounts } from "./counts.js";
import { parseCsv } from "./csv.js";
import { CellMapDataset } from "./dataset.js";
import { checkOptions, resolveTargetTransforms, resolveTransform } from "./options.js";
import { CellMapMultiDataset } from "./multi.js";
import { CellMapSubset } from "./subset.js";
import { splitTargetPath } from "./target-path.js";
import type { AnyDatasetItem, ArraySpecs, DatasetItem, DatasetLike, SampleBase } from "./types.js";

export { defaultRawTransform, defaultTargetTransform };

/** A row or dataset that was skipped, and why. */
export interface SplitProblem {
  usage: string;
  /** CSV line, when the problem comes from a CSV file. */
  line?: number;
  raw?: string;
  gt?: string | null;
  reason: string;
}

const HEADER_NAMES = new Set(["usage", "split", "raw_container", "raw_dataset", "raw_path", "raw", "gt_container", "gt_dataset", "gt_path", "gt"]);

function usageOf(v: string): "train" | "validate" | null {
  const u = v.trim().toLowerCase();
  if (u === "train" || u === "training") return "train";
  if (u === "validate" || u === "validation" || u === "val") return "validate";
  return null;
}

/**
 * Reads datasplit CSV text into the object form. `baseDir` resolves relative local paths.
 * Unusable rows are returned as problems.
 */
export function parseDataSplitCsv(text: string, opts: { baseDir?: string; source?: string } = {}): { dict: Required<DataSplitDict>; problems: SplitProblem[] } {
  const { records, errors } = parseCsv(text);
  const problems: SplitProblem[] = errors.map((e) => ({ usage: "?", line: e.line, reason: `${opts.source ?? "CSV"}: ${e.reason}` }));
  const dict: Required<DataSplitDict> = { train: [], validate: [] };
  let header: string[] | null = null;
  const first = records[0];
  if (first?.fields.some((f) => HEADER_NAMES.has(f.toLowerCase())) && usageOf(first.fields[0]) === null) {
    header = first.fields.map((f) => f.toLowerCase());
    records.shift();
  }
  const resolve = (p: string): string =>
    opts.baseDir && !isRemote(p) && !p.startsWith("file://") && !path.isAbsolute(p) ? (isRemote(opts.baseDir) ? joinLocation(opts.baseDir, p) : path.join(opts.baseDir, p)) : p;
  const join = (a: string | undefined, b: string | undefined): string | null => {
    if (a && b) return joinLocation(resolve(a), b);
    return a ? resolve(a) : b ? resolve(b) : null;
  };
  for (const { line, fields } of records) {
    const where = `${opts.source ?? "CSV"} line ${line}`;
    let usage: string;
    let raw: string | null;
    let gt: string | null;
    if (header) {
      const col = (...names: string[]): string | undefined => {
        for (const n of names) {
          const k = header!.indexOf(n);
          if (k >= 0 && fields[k]) return fields[k];
        }
        return undefined;
      };
      if (fields.length !== header.length) {
        problems.push({ usage: fields[0] ?? "?", line, reason: `${where}: ${fields.length} fields but the header has ${header.length}` });
        continue;
      }
      usage = col("usage", "split") ?? "";
      raw = col("raw_path", "raw") ? resolve(col("raw_path", "raw")!) : join(col("raw_container"), col("raw_dataset"));
      gt = col("gt_path", "gt") ? resolve(col("gt_path", "gt")!) : join(col("gt_container"), col("gt_dataset"));
    } else if (fields.length === 5) {
      [usage] = fields;
      raw = join(fields[1], fields[2]);
      gt = join(fields[3], fields[4]);
    } else if (fields.length === 3 || fields.length === 2) {
      usage = fields[0];
      raw = fields[1] ? resolve(fields[1]) : null;
      gt = fields[2] ? resolve(fields[2]) : null;
    } else {
      const hint = fields.some((f) => f.includes("[") !== f.includes("]")) ? ' (a bracket class list must be quoted: "…/[mito,er]")' : "";
      problems.push({ usage: fields[0] ?? "?", line, reason: `${where}: expected 2, 3 or 5 fields, got ${fields.length}${hint}` });
      continue;
    }
    const u = usageOf(usage);
    if (!u) {
      problems.push({ usage, line, raw: raw ?? undefined, gt, reason: `${where}: usage must be train or validate, got ${JSON.stringify(usage)}` });
      continue;
    }
    if (!raw) {
      problems.push({ usage: u, line, gt, reason: `${where}: no raw path` });
      continue;
    }
    dict[u].push({ raw, gt, line });
  }
  return { dict, problems };
}

function padFor(pad: CellMapDataSplitOptions["pad"], usage: "train" | "validate"): boolean {
  if (pad === undefined || typeof pad === "boolean") return pad ?? SPLIT_DEFAULTS.pad;
  if (typeof pad === "string") {
    const p = pad.toLowerCase();
    if (p === "train" || p === "validate") return p === usage;
  }
  throw new CellMapError("INVALID_ARGUMENT", `pad must be a boolean, "train" or "validate", got ${JSON.stringify(pad)}`, "pad");
}

/** Why a dataset has no sample. */
function emptyReason(ds: DatasetLike): string {
  if (ds instanceof CellMapDataset) {
    if (!ds.hasData) return "no foreground: no annotated class has foreground voxels";
    if (!ds.samplingBox) return `too small: no valid patch centre (crop smaller than the patch${ds.pad ? "" : " without padding"}, or sources that do not overlap)`;
  }
  return "dataset has no samples";
}

/** One entry of a datasplit as {@link CellMapDataSplit.open} opened it. */
export interface DataSplitRow {
  usage: "train" | "validate";
  /** CSV line, when the entry comes from a CSV file. */
  line?: number;
  raw?: string;
  gt?: string | null;
  /** The dataset (also one without samples), or null when the entry could not be opened. */
  dataset: DatasetLike | null;
  /** Why the split does not use the row (could not be opened, no sample); undefined when used. */
  problem?: string;
}

/** Every entry of a datasplit, opened (see {@link openDataSplitRows}). */
export interface DataSplitRows {
  /** Entries in order (train first, then validate, each in file order). */
  rows: DataSplitRow[];
  /** CSV lines that are not entries (parse errors, unknown usage, no raw path). */
  problems: SplitProblem[];
}

/**
 * Reads a datasplit (`datasetDict`, `csvPath` or `csvText`) and opens every entry exactly as
 * {@link CellMapDataSplit.open} does — same options, defaults, checks and transforms — but keeps
 * every row, with its dataset or the reason it is not used. `cellmap-data verify` reports
 * these rows, so it says what training will get.
 */
export async function openDataSplitRows(opts: CellMapDataSplitOptions): Promise<DataSplitRows> {
  opts = parseOptions(splitOptionsSchema, opts, "openDataSplitRows");
  if (opts.datasets) throw new CellMapError("INVALID_ARGUMENT", "openDataSplitRows reads datasetDict, csvPath or csvText, not datasets", "datasets");
  return openRows(opts);
}

/**
 * Checks the options every row of a split shares, as {@link CellMapDataSplit.open} does before
 * opening any row: array specs, classes, relations, spatial config, pad, seed. Throws
 * `INVALID_ARGUMENT` naming the field. Config files are checked with it when they are loaded.
 */
export function validateSplitOptions(opts: Omit<CellMapDataSplitOptions, "datasets" | "datasetDict" | "csvPath" | "csvText">): void {
  checkSplitOptions(parseOptions(splitOptionsSchema.partial({ inputArrays: true }), opts, "options"));
}

/** {@link validateSplitOptions} of options their schema has checked: the checks spanning fields. */
function checkSplitOptions(opts: Omit<CellMapDataSplitOptions, "datasets" | "datasetDict" | "csvPath" | "csvText">): void {
  checkOptions({
    classes: opts.classes ?? null,
    inputArrays: opts.inputArrays,
    targetArrays: opts.targetArrays,
    spatialTransforms: opts.spatialTransforms,
    classRelationDict: opts.classRelationDict,
    emptyValue: opts.emptyValue,
    seed: opts.seed ?? SPLIT_DEFAULTS.seed,
    foreground: opts.foreground,
  });
  padFor(opts.pad, "train");
}

/** The datasplit entries of the options (CSV read and parsed), with the CSV's problems. */
async function readEntries(opts: CellMapDataSplitOptions): Promise<{ dict: DataSplitDict; problems: SplitProblem[] }> {
  if (opts.datasetDict) return { dict: opts.datasetDict, problems: [] };
  if (opts.csvPath === undefined && opts.csvText === undefined) {
    throw new CellMapError("INVALID_ARGUMENT", "one of datasets, datasetDict, csvPath or csvText must be given", "CellMapDataSplit");
  }
  let text: string;
  let baseDir: string | undefined;
  if (opts.csvText !== undefined) text = opts.csvText;
  else if (isRemote(opts.csvPath!)) {
    // FORBIDDEN, NOT_FOUND and IO errors name the URL.
    text = new TextDecoder().decode(await readLocation(opts.csvPath!, opts.http, opts.signal));
    baseDir = opts.csvPath!.replace(/\/+[^/]*$/, "");
  } else {
    try {
      text = fs.readFileSync(opts.csvPath!, "utf8");
    } catch (err) {
      throw new CellMapError("NOT_FOUND", `cannot read datasplit CSV: ${(err as Error).message}`, opts.csvPath, { cause: err });
    }
    baseDir = path.dirname(path.resolve(opts.csvPath!));
  }
  const parsed = parseDataSplitCsv(text, { baseDir, source: opts.csvPath ?? "csvText" });
  return { dict: parsed.dict, problems: parsed.problems };
}

/**
 * Every output class must be annotated by some row, or inferred from an annotated class through
 * `classRelationDict`: a class no row has is a misspelling or the wrong datasplit, and would
 * train on nothing but unknown voxels.
 */
function checkClassesAnnotated(classes: string[], relations: Record<string, string[]>, entries: readonly DataSplitEntry[], source: string): void {
  const annotated = new Set<string>();
  let withTargets = 0;
  for (const e of entries) {
    if (typeof e?.gt !== "string" || e.gt.length === 0) continue;
    try {
      for (const c of splitTargetPath(e.gt).classes) annotated.add(c);
      withTargets++;
    } catch {
      // a malformed target path is that row's problem
    }
  }
  if (withTargets === 0) return;
  for (const c of classes) {
    if (annotated.has(c) || (relations[c] ?? []).some((r) => annotated.has(r))) continue;
    const known = [...annotated].sort();
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `class ${JSON.stringify(c)} is annotated in no row of ${source} (the rows annotate ${known.join(", ")})${didYouMean(c, known)}`,
      "classes",
    );
  }
}

/** Opens every entry of a parsed-options datasplit (the shared path of `open` and `openDataSplitRows`). */
async function openRows(opts: CellMapDataSplitOptions): Promise<DataSplitRows> {
  const seed = opts.seed ?? SPLIT_DEFAULTS.seed;
  const classes = opts.classes ?? null;
  const { dict, problems } = await readEntries(opts);
  if (!Array.isArray(dict.train)) throw new CellMapError("INVALID_ARGUMENT", "datasetDict.train must be a list", "datasetDict.train");
  const entries = [...dict.train.map((e) => ({ e, usage: "train" as const })), ...(dict.validate ?? []).map((e) => ({ e, usage: "validate" as const }))];
  // Options shared by all rows are checked once: a bad option is an error, not a problem per row.
  checkSplitOptions(opts);
  const padTrain = padFor(opts.pad, "train");
  const padVal = padFor(opts.pad, "validate");
  const hasTargets = !!opts.targetArrays && Object.keys(opts.targetArrays).length > 0;
  if (classes && hasTargets)
    checkClassesAnnotated(
      classes,
      opts.classRelationDict ?? {},
      entries.map((x) => x.e),
      opts.csvPath ?? (opts.csvText !== undefined ? "csvText" : "datasetDict"),
    );
  const rawOnly = classes === null;
  // Transforms are built once (module transforms imported once) and shared by every row.
  const trainRaw = await resolveTransform(opts.trainRawValueTransforms === undefined ? defaultRawTransform() : opts.trainRawValueTransforms, "trainRawValueTransforms");
  const valRaw = await resolveTransform(opts.valRawValueTransforms === undefined ? defaultRawTransform() : opts.valRawValueTransforms, "valRawValueTransforms");
  const target = await resolveTargetTransforms(
    opts.targetValueTransforms === undefined ? (rawOnly ? defaultRawTransform() : defaultTargetTransform()) : opts.targetValueTransforms,
    classes,
  );
  const forceHasData = opts.forceHasData ?? SPLIT_DEFAULTS.forceHasData;
  const limiter = new Limiter(Math.max(1, opts.concurrency ?? SPLIT_DEFAULTS.concurrency));
  const rows = await Promise.all(
    entries.map(({ e, usage }, k) =>
      limiter.run(async (): Promise<DataSplitRow> => {
        const line = e?.line;
        const base = { usage, raw: typeof e?.raw === "string" ? e.raw : undefined, gt: typeof e?.gt === "string" ? e.gt : null, ...(line !== undefined ? { line } : {}) };
        if (typeof e?.raw !== "string" || e.raw.length === 0) return { ...base, dataset: null, problem: "entry has no raw path" };
        if (!rawOnly && hasTargets && !e.gt) return { ...base, dataset: null, problem: "entry has no gt path but classes were given" };
        try {
          // Built from the checked split options and row: the dataset does not parse them again.
          const dataset = await CellMapDataset.open(
            checked({
              rawPath: e.raw,
              targetPath: e.gt ?? null,
              classes,
              inputArrays: opts.inputArrays,
              targetArrays: opts.targetArrays,
              spatialTransforms: usage === "train" ? opts.spatialTransforms : null,
              foreground: usage === "train" ? (opts.foreground ?? null) : null,
              rawValueTransforms: usage === "train" ? trainRaw : valRaw,
              targetValueTransforms: target,
              classRelationDict: opts.classRelationDict,
              isTrain: usage === "train",
              forceHasData,
              emptyValue: opts.emptyValue,
              pad: usage === "train" ? padTrain : padVal,
              seed: seed + k,
              http: opts.http,
              signal: opts.signal,
            }),
          );
          return { ...base, dataset, ...(forceHasData || dataset.verify() ? {} : { problem: emptyReason(dataset) }) };
        } catch (err) {
          if (err instanceof CellMapError && err.code === "ABORTED") throw err;
          return { ...base, dataset: null, problem: (err as Error).message };
        }
      }),
    ),
  );
  return { rows, problems };
}

/**
 * Training and validation datasets. Open with {@link CellMapDataSplit.open}. `S` is the sample
 * type of its datasets, inferred from the array specs given to `open`.
 */
export class CellMapDataSplit<S extends SampleBase = AnyDatasetItem> {
  private trainCombined: CellMapMultiDataset<S> | null = null;
  private valCombined: CellMapMultiDataset<S> | null = null;
  private blocks: CellMapSubset<S> | null = null;

  private constructor(
    /** The training datasets, one per usable row (untyped: downcast them, e.g. `as CellMapDataset`). */
    readonly trainDatasets: readonly DatasetLike[],
    /** The validation datasets, one per usable row. */
    readonly validationDatasets: readonly DatasetLike[],
    /** Rows / datasets that were skipped, with the reason. */
    readonly problems: readonly SplitProblem[],
    readonly classes: readonly string[],
    readonly inputArrays: ArraySpecs,
    readonly targetArrays: ArraySpecs,
    private readonly seed: number,
  ) {}

  /**
   * Builds the split. Entries are opened concurrently; failures and datasets without samples
   * go to `problems` (with their CSV line). Options shared by every row (array specs, classes,
   * relations, spatial config, transforms) are checked once, before any row is opened: a bad
   * option is one `INVALID_ARGUMENT`, not a problem per row; so is a class that no row
   * annotates and no relation infers. Throws `INVALID_ARGUMENT` when no training dataset remains.
   */
  static async open<I extends ArraySpecs, T extends ArraySpecs = {}>(opts: CellMapDataSplitOptions<I, T>): Promise<CellMapDataSplit<DatasetItem<I, T>>> {
    opts = parseOptions(splitOptionsSchema, opts, "CellMapDataSplit.open");
    const seed = opts.seed ?? SPLIT_DEFAULTS.seed;
    const classes = opts.classes ?? null;
    let train: DatasetLike[] = [];
    let validate: DatasetLike[] = [];
    const problems: SplitProblem[] = [];
    if (opts.datasets) {
      train = [...opts.datasets.train];
      validate = [...(opts.datasets.validate ?? [])];
    } else {
      const opened = await openRows(opts);
      problems.push(...opened.problems);
      for (const row of opened.rows) {
        const { dataset, problem, ...where } = row;
        if (dataset && problem === undefined) (row.usage === "train" ? train : validate).push(dataset);
        else problems.push({ ...where, reason: problem ?? "not opened" });
      }
    }
    if (opts.datasets && !opts.forceHasData) {
      const keep = (list: DatasetLike[], usage: string): DatasetLike[] =>
        list.filter((d) => {
          if (d.verify()) return true;
          problems.push({ usage, raw: (d as { rawPath?: string }).rawPath, gt: (d as { targetPath?: string | null }).targetPath, reason: emptyReason(d) });
          return false;
        });
      train = keep(train, "train");
      validate = keep(validate, "validate");
    }
    if (train.length === 0) {
      const detail = problems.map((p) => `\n  ${p.usage}${p.line !== undefined ? ` line ${p.line}` : ""} ${p.raw ?? ""} ${p.gt ?? ""}: ${p.reason}`).join("");
      throw new CellMapError("INVALID_ARGUMENT", `no valid training dataset${detail}`, opts.csvPath ?? "datasplit");
    }
    const first = train[0];
    // Every dataset was opened with (or, given as `datasets`, stands for) these array specs.
    return new CellMapDataSplit<DatasetItem<I, T>>(
      train,
      validate,
      problems,
      classes ?? (opts.datasets ? first.classes : []),
      opts.inputArrays,
      opts.targetArrays ?? (opts.datasets ? first.targetArrays : {}),
      seed,
    );
  }

  /** All training datasets as one multi-dataset (cached). */
  get trainDatasetsCombined(): CellMapMultiDataset<S> {
    this.trainCombined ??= new CellMapMultiDataset(this.typed(this.trainDatasets), this.multiOptions());
    return this.trainCombined;
  }

  /** All validation datasets as one multi-dataset (empty when there are none). */
  get validationDatasetsCombined(): CellMapMultiDataset<S> {
    this.valCombined ??= new CellMapMultiDataset(this.typed(this.validationDatasets), this.multiOptions());
    return this.valCombined;
  }

  /** Non-overlapping tiles of the validation datasets (deterministic validation). */
  get validationBlocks(): CellMapSubset<S> {
    const v = this.validationDatasetsCombined;
    this.blocks ??= new CellMapSubset(v, v.validationIndices());
    return this.blocks;
  }

  /** Class counts of both splits. */
  async classCounts(signal?: AbortSignal): Promise<{ train: ClassCounts; validate: ClassCounts }> {
    const [train, validate] = await Promise.all([this.trainDatasetsCombined.classCounts(signal), this.validationDatasetsCombined.classCounts(signal)]);
    return { train, validate };
  }

  /** The datasets as what they are: datasets of samples `S` (opened with the split's array specs). */
  private typed(list: readonly DatasetLike[]): readonly DatasetLike<S>[] {
    return list as readonly DatasetLike<SampleBase>[] as readonly DatasetLike<S>[];
  }

  private multiOptions() {
    return { classes: this.classes, inputArrays: this.inputArrays, targetArrays: this.targetArrays, seed: this.seed };
  }

  toString(): string {
    return `CellMapDataSplit(train=${this.trainDatasets.length}, validate=${this.validationDatasets.length}, problems=${this.problems.length}, classes=[${this.classes.join(",")}])`;
  }
}
