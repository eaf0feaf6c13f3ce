/**
 * Config files for the CLI (`verify`, `demo`, `bench`, `preview`) and for programs: JSON or YAML
 * holding a datasplit's and a loader's options ({@link configSchema}), in camelCase or in the
 * Python library's snake_case. A config is checked completely when it is loaded — keys, values,
 * and everything `CellMapDataSplit.open` checks once before opening rows (array specs against
 * each other, spatial axes, classes and relations) — so a config mistake is one error naming
 * the field, never a problem on every row. {@link splitOptionsFromConfig} and
 * {@link loaderOptionsFromConfig} turn it into the options training uses, leaving out what the
 * config leaves out (the library's defaults then apply, see `defaults.ts`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import type { z } from "zod";
import { validateSplitOptions, type CellMapDataSplitOptions } from "../dataset/split.js";
import type { ArraySpecs } from "../dataset/types.js";
import { CellMapError } from "../errors.js";
import type { CellMapDataLoaderOptions } from "../loader/loader.js";
import { isRemote } from "../store/open.js";
import type { SpatialConfig } from "../transforms/spatial.js";
import { checked, normaliseKeys, parseOptions } from "../options/options.js";
import { configSchema } from "./schema.js";

export { configSchema };

/** A validated configuration (API key names). */
export type CellMapConfig = z.output<typeof configSchema>;

/** The datasplit options a config describes (without its source unless it names `csvPath`). */
export function splitOptionsFromConfig(c: CellMapConfig): CellMapDataSplitOptions {
  const o: Record<string, unknown> = {
    csvPath: c.csvPath,
    inputArrays: c.inputArrays as ArraySpecs,
    targetArrays: c.targetArrays as ArraySpecs | null | undefined,
    classes: c.classes,
    classRelationDict: c.classRelationDict,
    spatialTransforms: c.spatialTransforms as SpatialConfig | null | undefined,
    trainRawValueTransforms: c.trainRawValueTransforms !== undefined ? c.trainRawValueTransforms : c.rawValueTransforms,
    valRawValueTransforms: c.valRawValueTransforms !== undefined ? c.valRawValueTransforms : c.rawValueTransforms,
    targetValueTransforms: c.targetValueTransforms,
    pad: c.pad,
    emptyValue: c.emptyValue,
    forceHasData: c.forceHasData,
    seed: c.seed,
    foreground: c.foreground,
    http: c.http,
    concurrency: c.concurrency,
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o as unknown as CellMapDataSplitOptions;
}

/** The loader options a config sets (its `seed` is the loader's too). */
export function loaderOptionsFromConfig(c: CellMapConfig): CellMapDataLoaderOptions {
  const o: Record<string, unknown> = {
    batchSize: c.batchSize,
    numWorkers: c.numWorkers,
    prefetchFactor: c.prefetchFactor,
    iterationsPerEpoch: c.iterationsPerEpoch,
    weightedSampler: c.weightedSampler,
    chunkCacheBytes: c.chunkCacheBytes,
    dropLast: c.dropLast,
    sampleConcurrency: c.sampleConcurrency,
    memoryBudgetBytes: c.memoryBudgetBytes,
    seed: c.seed,
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o as CellMapDataLoaderOptions;
}

/** The library's error, reworded to name the config it came from (same code and field path). */
function fromConfig(err: unknown, source: string): unknown {
  if (!(err instanceof CellMapError)) return err;
  const msg = err.detail.replace(/^options: /, "");
  return new CellMapError(err.code, `${source}: ${msg}`, err.path, { cause: err });
}

/**
 * Parses and checks a config object (see the module comment). Throws `INVALID_ARGUMENT` naming
 * `source` and the field (`spatialTransforms.mirror.axes.q`).
 */
export function parseConfig(raw: unknown, source = "config"): CellMapConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `${source}: a config must be a mapping of options, got ${raw === null ? "null" : Array.isArray(raw) ? "a list" : typeof raw}`,
      source,
    );
  }
  const c = parseOptions(configSchema, raw as CellMapConfig, source);
  if (c.rawValueTransforms !== undefined && (c.trainRawValueTransforms !== undefined || c.valRawValueTransforms !== undefined)) {
    const other = c.trainRawValueTransforms !== undefined ? "trainRawValueTransforms" : "valRawValueTransforms";
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `${source}: rawValueTransforms sets the training and validation raw transforms, and ${other} sets one of them again; give one or the other`,
      "rawValueTransforms",
    );
  }
  try {
    const { csvPath: _csv, ...shared } = splitOptionsFromConfig(c);
    // The config schema has checked each field: only the checks spanning fields remain.
    validateSplitOptions(checked(shared));
  } catch (err) {
    throw fromConfig(err, source);
  }
  return c;
}

/**
 * Reads a `.json`, `.yaml` or `.yml` config file. A relative `csvPath` is taken relative to the
 * config file's folder.
 */
export function loadConfig(file: string): CellMapConfig {
  return parseConfigFile(file, readConfigFile(file));
}

/**
 * A config from a file (optional) and option overrides (`serve --options`, Python's
 * `serve(**options)`): each is respelt to the API's names, the overrides win key by key, and the
 * result is checked as one config. Errors name the file, or `options` for an override.
 */
export function loadConfigWith(file: string | undefined, overrides: Record<string, unknown>): CellMapConfig {
  if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
    throw new CellMapError("INVALID_ARGUMENT", "options must be a mapping of config options", "options");
  }
  const base = file === undefined ? {} : (normaliseKeys(configSchema, readConfigFile(file), file) as Record<string, unknown>);
  const extra = normaliseKeys(configSchema, overrides, "options") as Record<string, unknown>;
  return parseConfigFile(file ?? "options", { ...base, ...extra });
}

/** Checks a config read from `file` (a relative `csvPath` is taken relative to its folder). */
function parseConfigFile(file: string, raw: unknown): CellMapConfig {
  const c = parseConfig(raw, file);
  if (c.csvPath && !isRemote(c.csvPath) && !c.csvPath.startsWith("file:") && !path.isAbsolute(c.csvPath)) {
    c.csvPath = path.join(path.dirname(path.resolve(file)), c.csvPath);
  }
  return c;
}

/** The parsed YAML or JSON of a config file. */
function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new CellMapError("NOT_FOUND", `cannot read config: ${(err as Error).message}`, file);
  }
  const yaml = /\.ya?ml$/i.test(path.extname(file));
  let raw: unknown;
  try {
    raw = yaml ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new CellMapError("INVALID_ARGUMENT", `config is not valid ${yaml ? "YAML" : "JSON"}: ${(err as Error).message}`, file);
  }
  return raw;
}
