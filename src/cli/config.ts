/**
 * Config files for `verify`, `bench` and `demo`: JSON or YAML with the same array specs and
 * transform configs as the API, in camelCase or in the Python library's snake_case (for users
 * migrating). Only option keys are renamed; user names (arrays, classes, axes) are kept.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { CellMapError } from "../errors.js";

const arraySpec = z.strictObject({
  shape: z.array(z.number().int().positive()).min(2).max(3),
  scale: z.array(z.number().positive()).min(1).max(3),
  nChannels: z.number().int().positive().optional(),
  scaleLevel: z.number().int().nonnegative().optional(),
});

/** A validated training/inference configuration. */
export const configSchema = z.strictObject({
  inputArrays: z.record(z.string(), arraySpec),
  targetArrays: z.record(z.string(), arraySpec).optional(),
  classes: z.array(z.string().min(1)).min(1).optional(),
  classRelationDict: z.record(z.string(), z.array(z.string())).optional(),
  spatialTransforms: z.record(z.string(), z.unknown()).optional(),
  rawValueTransforms: z.unknown().optional(),
  targetValueTransforms: z.unknown().optional(),
  pad: z.union([z.boolean(), z.enum(["train", "validate"])]).optional(),
  emptyValue: z.number().optional(),
  forceHasData: z.boolean().optional(),
  seed: z.number().int().nonnegative().optional(),
  batchSize: z.number().int().positive().optional(),
  numWorkers: z.number().int().nonnegative().optional(),
  prefetchFactor: z.number().int().positive().optional(),
  iterationsPerEpoch: z.number().int().positive().optional(),
  weightedSampler: z.boolean().optional(),
  chunkCacheBytes: z.number().int().nonnegative().optional(),
  datasplit: z.string().optional(),
});

/** Parsed configuration. */
export type CellMapConfig = z.infer<typeof configSchema>;

/** Python (snake_case) option names and their camelCase equivalents. */
const TOP_LEVEL: Record<string, string> = {
  input_arrays: "inputArrays",
  target_arrays: "targetArrays",
  class_relation_dict: "classRelationDict",
  spatial_transforms: "spatialTransforms",
  raw_value_transforms: "rawValueTransforms",
  target_value_transforms: "targetValueTransforms",
  empty_value: "emptyValue",
  force_has_data: "forceHasData",
  batch_size: "batchSize",
  num_workers: "numWorkers",
  prefetch_factor: "prefetchFactor",
  iterations_per_epoch: "iterationsPerEpoch",
  weighted_sampler: "weightedSampler",
  chunk_cache_bytes: "chunkCacheBytes",
  datasplit_path: "datasplit",
  csv_path: "datasplit",
};
const ARRAY_KEYS: Record<string, string> = { n_channels: "nChannels", scale_level: "scaleLevel" };

/** Renames snake_case option keys to camelCase (not user names such as arrays or classes). */
export function normaliseConfigKeys(raw: unknown): unknown {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = TOP_LEVEL[k] ?? k;
    if (key in out) throw new CellMapError("INVALID_ARGUMENT", `config gives "${key}" twice (as ${k} and its other spelling)`, key);
    if ((key === "inputArrays" || key === "targetArrays") && v && typeof v === "object") {
      out[key] = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([name, spec]) => [
          name,
          spec && typeof spec === "object" ? Object.fromEntries(Object.entries(spec).map(([sk, sv]) => [ARRAY_KEYS[sk] ?? sk, sv])) : spec,
        ]),
      );
    } else out[key] = v;
  }
  return out;
}

/** Parses and validates a config object; errors name the offending field. */
export function parseConfig(raw: unknown, source = "config"): CellMapConfig {
  const res = configSchema.safeParse(normaliseConfigKeys(raw));
  if (!res.success) {
    const issue = res.error.issues[0];
    const where = issue.path.map(String).join(".") || "(root)";
    const extra = issue.code === "unrecognized_keys" ? `: ${issue.keys.join(", ")}` : "";
    throw new CellMapError("INVALID_ARGUMENT", `invalid config field ${where}: ${issue.message}${extra}`, source);
  }
  return res.data;
}

/** Reads a `.json`, `.yaml` or `.yml` config file. */
export function loadConfig(file: string): CellMapConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new CellMapError("NOT_FOUND", `cannot read config: ${(err as Error).message}`, file);
  }
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(path.extname(file)) ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new CellMapError("INVALID_ARGUMENT", `config is not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}: ${(err as Error).message}`, file);
  }
  return parseConfig(raw, file);
}
