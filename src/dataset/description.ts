/**
 * The JSON form of a `CellMapDataset` (what `describe()` returns and `fromDescription` reads,
 * e.g. in a loader's worker threads): {@link CellMapDatasetDescription}, and the encoding both
 * ways. Transforms travel as their `toJSON()` specs, non-finite numbers (a NaN `emptyValue`) as
 * strings, HTTP options without their `fetch`, and the result of the class-count check as
 * `hasData`, so a re-opened dataset reads no counts.
 */
import type { ForegroundOptions } from "./fields.js";
import { CellMapError, invalid } from "../errors.js";
import type { HttpStoreOptions } from "../store/http.js";
import type { SpatialConfig } from "../transforms/spatial.js";
import type { TransformSpec, ValueTransform } from "../transforms/types.js";
import type { CellMapDatasetOptions } from "./options.js";
import type { ArraySpecs, DatasetDescription } from "./types.js";

/** Serialised form of a dataset (`describe()`). */
export interface CellMapDatasetDescription extends DatasetDescription {
  kind: "CellMapDataset";
  version: 1;
  rawPath: string;
  targetPath: string | null;
  classes: string[] | null;
  inputArrays: ArraySpecs;
  targetArrays: ArraySpecs;
  spatialTransforms: SpatialConfig | null;
  rawValueTransforms: TransformSpec | null;
  targetValueTransforms: TransformSpec | null;
  classRelationDict: Record<string, string[]> | null;
  isTrain: boolean;
  axisOrder: "zyx";
  forceHasData: boolean;
  emptyValue: number | string;
  pad: boolean;
  seed: number;
  http: Omit<HttpStoreOptions, "fetch"> | null;
  hasData: boolean;
  /** Foreground-seeking samples (absent: none). */
  foreground?: ForegroundOptions | null;
}

/** What {@link describeDataset} reads off an open dataset. */
export interface DescribedDataset {
  /** The options it was opened with (spatial config, class relations and HTTP options are taken from here). */
  opts: CellMapDatasetOptions;
  rawPath: string;
  targetPath: string | null;
  /** Output classes; null in raw-only mode. */
  classes: string[] | null;
  inputArrays: ArraySpecs;
  targetArrays: ArraySpecs;
  rawTransform: ValueTransform | null;
  targetTransform: ValueTransform | null;
  isTrain: boolean;
  forceHasData: boolean;
  emptyValue: number;
  pad: boolean;
  seed: number;
  hasData: boolean;
}

/** The description of a dataset; transforms are stored as their `toJSON()` specs. */
export function describeDataset(d: DescribedDataset): CellMapDatasetDescription {
  const o = d.opts;
  return {
    kind: "CellMapDataset",
    version: 1,
    rawPath: d.rawPath,
    targetPath: d.targetPath,
    classes: d.classes,
    inputArrays: structuredClone(d.inputArrays),
    targetArrays: structuredClone(d.targetArrays),
    spatialTransforms: o.spatialTransforms ? structuredClone(o.spatialTransforms) : null,
    rawValueTransforms: specOf(d.rawTransform, "rawValueTransforms"),
    targetValueTransforms: specOf(d.targetTransform, "targetValueTransforms"),
    classRelationDict: o.classRelationDict ? structuredClone(o.classRelationDict) : null,
    isTrain: d.isTrain,
    axisOrder: "zyx",
    forceHasData: d.forceHasData,
    emptyValue: encodeNumber(d.emptyValue),
    pad: d.pad,
    seed: d.seed,
    http: plainHttp(o.http),
    hasData: d.hasData,
    foreground: o.foreground ? structuredClone(o.foreground) : null,
  };
}

/**
 * The options that re-open the dataset a description was made from (`knownHasData` set, so no
 * class counts are read). @throws `INVALID_ARGUMENT` unless it is a version-1 description.
 */
export function optionsFromDescription(desc: CellMapDatasetDescription, signal?: AbortSignal): CellMapDatasetOptions {
  if (desc?.kind !== "CellMapDataset" || desc.version !== 1) {
    throw invalid("description", `not a version-1 CellMapDataset description (kind ${JSON.stringify(desc?.kind)}, version ${JSON.stringify(desc?.version)})`);
  }
  return {
    rawPath: desc.rawPath,
    targetPath: desc.targetPath,
    classes: desc.classes,
    inputArrays: desc.inputArrays,
    targetArrays: desc.targetArrays,
    spatialTransforms: desc.spatialTransforms,
    rawValueTransforms: desc.rawValueTransforms,
    targetValueTransforms: desc.targetValueTransforms,
    classRelationDict: desc.classRelationDict,
    isTrain: desc.isTrain,
    axisOrder: desc.axisOrder,
    forceHasData: desc.forceHasData,
    emptyValue: decodeNumber(desc.emptyValue, "description.emptyValue"),
    pad: desc.pad,
    seed: desc.seed,
    http: desc.http ?? undefined,
    signal,
    knownHasData: desc.hasData,
    foreground: desc.foreground ?? null,
  };
}

/** A transform's JSON spec. @throws `UNSUPPORTED` when it has no `toJSON()`. */
function specOf(t: ValueTransform | null, where: string): TransformSpec | null {
  if (!t) return null;
  if (typeof t.toJSON !== "function") {
    throw new CellMapError("UNSUPPORTED", "transform has no toJSON(), so the dataset cannot be described for workers", where);
  }
  return t.toJSON();
}

/** A number as JSON can carry it: NaN and ±Infinity as strings. */
function encodeNumber(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** Reverses {@link encodeNumber}. @throws `INVALID_ARGUMENT` for anything else. */
function decodeNumber(v: unknown, where: string): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || (typeof v === "string" && !["NaN", "Infinity", "-Infinity"].includes(v))) {
    throw invalid(where, `expected a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** HTTP options as plain data (no `fetch`). */
function plainHttp(h: HttpStoreOptions | undefined): Omit<HttpStoreOptions, "fetch"> | null {
  if (!h) return null;
  const { fetch: _f, ...rest } = h;
  return JSON.parse(JSON.stringify(rest)) as Omit<HttpStoreOptions, "fetch">;
}
