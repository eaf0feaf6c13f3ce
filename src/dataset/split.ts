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
import { CellMapError } from "../errors.js";
import { Limiter } from "../store/limit.js";
import { isRemote, joinLocation, readLocation } from "../store/open.js";
import type { HttpStoreOptions } from "../store/http.js";
import { Compose } from "../transforms/augment/compose.js";
import { Normalize } from "../transforms/augment/normalize.js";
import { Binarize, NaNtoNum } from "../transforms/augment/threshold.js";
import type { SpatialConfig } from "../transforms/spatial.js";
import type { ClassCounts } from "./counts.js";
import { parseCsv } from "./csv.js";
import { CellMapDataset, validateDatasetOptions, type TargetTransformInput, type TransformInput } from "./dataset.js";
import { CellMapMultiDataset } from "./multi.js";
import { CellMapSubset } from "./subset.js";
import type { ArraySpecs, DatasetLike } from "./types.js";

/** One (raw, ground truth) pair. `gt` may be omitted in raw-only mode. */
export interface DataSplitEntry {
  raw: string;
  gt?: string | null;
  /** CSV line the entry came from (set by {@link parseDataSplitCsv}). */
  line?: number;
}

/** The object form of a datasplit. */
export interface DataSplitDict {
  train: DataSplitEntry[];
  validate?: DataSplitEntry[];
}

/** A row or dataset that was skipped, and why. */
export interface SplitProblem {
  usage: string;
  /** CSV line, when the problem comes from a CSV file. */
  line?: number;
  raw?: string;
  gt?: string | null;
  reason: string;
}

/** Options of {@link CellMapDataSplit.open}. Exactly one source: `datasets` > `datasetDict` > `csvPath`/`csvText`. */
export interface CellMapDataSplitOptions {
  inputArrays: ArraySpecs;
  targetArrays?: ArraySpecs | null;
  /** Output classes; omitted: raw-only (self-supervised) datasets. */
  classes?: string[] | null;
  emptyValue?: number;
  /** Pad both splits (`true`), neither (`false`, default), or only `"train"` / `"validate"`. */
  pad?: boolean | "train" | "validate";
  datasets?: { train: DatasetLike[]; validate?: DatasetLike[] };
  datasetDict?: DataSplitDict;
  /** Datasplit CSV: a local path, or a `http(s)://` / `s3://` URL read with the `http` options. */
  csvPath?: string;
  /** CSV content (instead of `csvPath`; relative paths stay relative to the working directory). */
  csvText?: string;
  /** Spatial augmentation of the training datasets. */
  spatialTransforms?: SpatialConfig | null;
  /** Default: normalise integer raw to [0, 1] by its dtype maximum, then NaN → 0. `null`: none. */
  trainRawValueTransforms?: TransformInput | null;
  /** Default as for training. */
  valRawValueTransforms?: TransformInput | null;
  /** Default: `Binarize(0)` (raw-only mode: the raw default). `null`: none. */
  targetValueTransforms?: TargetTransformInput | null;
  classRelationDict?: Record<string, string[]> | null;
  forceHasData?: boolean;
  /** Base seed; the k-th entry's dataset gets `seed + k` (train entries first). Default 0. */
  seed?: number;
  http?: HttpStoreOptions;
  /** Datasets opened at once (default 16). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Default raw transform: `Normalize()` then `NaNtoNum({ nan: 0 })`. */
export function defaultRawTransform(): Compose {
  return new Compose([new Normalize(), new NaNtoNum({ nan: 0 })]);
}

/** Default target transform: `Binarize({ threshold: 0 })` (NaN stays NaN). */
export function defaultTargetTransform(): Binarize {
  return new Binarize({ threshold: 0 });
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
  if (first && first.fields.some((f) => HEADER_NAMES.has(f.toLowerCase())) && usageOf(first.fields[0]) === null) {
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
  if (pad === undefined || typeof pad === "boolean") return pad ?? false;
  if (typeof pad === "string") {
    const p = pad.toLowerCase();
    if (p === "train" || p === "validate") return p === usage;
  }
  throw new CellMapError("INVALID_ARGUMENT", `pad must be a boolean, "train" or "validate", got ${JSON.stringify(pad)}`, "pad");
}

/** Why a dataset has no sample. */
function emptyReason(ds: DatasetLike): string {
  if (ds instanceof CellMapDataset) {
    if (!ds.hasData) return "no annotated class has foreground voxels";
    if (!ds.samplingBox) return "no valid patch centre (crop smaller than the patch without padding, or sources that do not overlap)";
  }
  return "dataset has no samples";
}

/** Training and validation datasets. Open with {@link CellMapDataSplit.open}. */
export class CellMapDataSplit {
  private trainCombined: CellMapMultiDataset | null = null;
  private valCombined: CellMapMultiDataset | null = null;
  private blocks: CellMapSubset | null = null;

  private constructor(
    readonly trainDatasets: readonly DatasetLike[],
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
   * go to `problems`. Throws `INVALID_ARGUMENT` when no training dataset remains.
   */
  static async open(opts: CellMapDataSplitOptions): Promise<CellMapDataSplit> {
    const problems: SplitProblem[] = [];
    const seed = opts.seed ?? 0;
    const classes = opts.classes ?? null;
    let train: DatasetLike[] = [];
    let validate: DatasetLike[] = [];
    if (opts.datasets) {
      if (!Array.isArray(opts.datasets.train)) throw new CellMapError("INVALID_ARGUMENT", "datasets.train must be a list", "datasets.train");
      train = [...opts.datasets.train];
      validate = [...(opts.datasets.validate ?? [])];
    } else {
      let dict: DataSplitDict;
      if (opts.datasetDict) dict = opts.datasetDict;
      else if (opts.csvPath !== undefined || opts.csvText !== undefined) {
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
        dict = parsed.dict;
        problems.push(...parsed.problems);
      } else {
        throw new CellMapError("INVALID_ARGUMENT", "one of datasets, datasetDict, csvPath or csvText must be given", "CellMapDataSplit");
      }
      if (!Array.isArray(dict.train)) throw new CellMapError("INVALID_ARGUMENT", "datasetDict.train must be a list", "datasetDict.train");
      // Options shared by all rows are checked once: a bad option is an error, not a problem per row.
      validateDatasetOptions({
        classes,
        inputArrays: opts.inputArrays,
        targetArrays: opts.targetArrays,
        spatialTransforms: opts.spatialTransforms,
        classRelationDict: opts.classRelationDict,
        emptyValue: opts.emptyValue,
        seed,
      });
      const padTrain = padFor(opts.pad, "train");
      const padVal = padFor(opts.pad, "validate");
      const rawOnly = classes === null;
      const trainRaw = opts.trainRawValueTransforms === undefined ? defaultRawTransform() : opts.trainRawValueTransforms;
      const valRaw = opts.valRawValueTransforms === undefined ? defaultRawTransform() : opts.valRawValueTransforms;
      const target = opts.targetValueTransforms === undefined ? (rawOnly ? defaultRawTransform() : defaultTargetTransform()) : opts.targetValueTransforms;
      const limiter = new Limiter(Math.max(1, opts.concurrency ?? 16));
      const entries = [
        ...dict.train.map((e) => ({ e, usage: "train" as const })),
        ...(dict.validate ?? []).map((e) => ({ e, usage: "validate" as const })),
      ];
      const opened = await Promise.all(
        entries.map(({ e, usage }, k) =>
          limiter.run(async (): Promise<DatasetLike | null> => {
            const line = e?.line;
            const base = { usage, raw: e?.raw, gt: e?.gt ?? null, ...(line !== undefined ? { line } : {}) };
            if (typeof e?.raw !== "string" || e.raw.length === 0) {
              problems.push({ ...base, reason: "entry has no raw path" });
              return null;
            }
            if (!rawOnly && opts.targetArrays && Object.keys(opts.targetArrays).length > 0 && !e.gt) {
              problems.push({ ...base, reason: "entry has no gt path but classes were given" });
              return null;
            }
            try {
              return await CellMapDataset.open({
                rawPath: e.raw,
                targetPath: e.gt ?? null,
                classes,
                inputArrays: opts.inputArrays,
                targetArrays: opts.targetArrays,
                spatialTransforms: usage === "train" ? opts.spatialTransforms : null,
                rawValueTransforms: usage === "train" ? trainRaw : valRaw,
                targetValueTransforms: target,
                classRelationDict: opts.classRelationDict,
                isTrain: usage === "train",
                forceHasData: opts.forceHasData,
                emptyValue: opts.emptyValue,
                pad: usage === "train" ? padTrain : padVal,
                seed: seed + k,
                http: opts.http,
                signal: opts.signal,
              });
            } catch (err) {
              if (err instanceof CellMapError && err.code === "ABORTED") throw err;
              problems.push({ ...base, reason: (err as Error).message });
              return null;
            }
          }),
        ),
      );
      entries.forEach(({ usage }, k) => {
        const d = opened[k];
        if (d) (usage === "train" ? train : validate).push(d);
      });
    }
    const keep = (list: DatasetLike[], usage: string): DatasetLike[] =>
      list.filter((d) => {
        if (opts.forceHasData || d.verify()) return true;
        const raw = (d as { rawPath?: string }).rawPath;
        const gt = (d as { targetPath?: string | null }).targetPath;
        problems.push({ usage, raw, gt, reason: emptyReason(d) });
        return false;
      });
    train = keep(train, "train");
    validate = keep(validate, "validate");
    if (train.length === 0) {
      const detail = problems.map((p) => `\n  ${p.usage} ${p.raw ?? ""} ${p.gt ?? ""}: ${p.reason}`).join("");
      throw new CellMapError("INVALID_ARGUMENT", `no valid training dataset${detail}`, opts.csvPath ?? "datasplit");
    }
    const first = train[0];
    return new CellMapDataSplit(
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
  get trainDatasetsCombined(): CellMapMultiDataset {
    this.trainCombined ??= new CellMapMultiDataset(this.trainDatasets, this.multiOptions());
    return this.trainCombined;
  }

  /** All validation datasets as one multi-dataset (empty when there are none). */
  get validationDatasetsCombined(): CellMapMultiDataset {
    this.valCombined ??= new CellMapMultiDataset(this.validationDatasets, this.multiOptions());
    return this.valCombined;
  }

  /** Non-overlapping tiles of the validation datasets (deterministic validation). */
  get validationBlocks(): CellMapSubset {
    const v = this.validationDatasetsCombined;
    this.blocks ??= new CellMapSubset(v, v.validationIndices());
    return this.blocks;
  }

  /** Class counts of both splits. */
  async classCounts(signal?: AbortSignal): Promise<{ train: ClassCounts; validate: ClassCounts }> {
    const [train, validate] = await Promise.all([this.trainDatasetsCombined.classCounts(signal), this.validationDatasetsCombined.classCounts(signal)]);
    return { train, validate };
  }

  private multiOptions() {
    return { classes: this.classes, inputArrays: this.inputArrays, targetArrays: this.targetArrays, seed: this.seed };
  }

  toString(): string {
    return `CellMapDataSplit(train=${this.trainDatasets.length}, validate=${this.validationDatasets.length}, problems=${this.problems.length}, classes=[${this.classes.join(",")}])`;
  }
}
