/**
 * The schema of config files: the datasplit options of `CellMapDataSplit.open` and the batching
 * options of `CellMapDataLoader` in one object. Every option object's own schema lives with its
 * layer (`image/options.ts`, `dataset/options.ts`, `dataset/split-options.ts`,
 * `loader/options.ts`, `writer/…-options.ts`, `store/options.ts`); this module only composes
 * them, so a key means one thing wherever it is written.
 */
import type { z } from "zod";
import { arraySpecsSchema, classesSchema, classRelationDictSchema, foregroundSchema, padSchema, seedSchema } from "../dataset/fields.js";
import type { CellMapDataSplitOptions } from "../dataset/split-options.js";
import { loaderOptionsSchema, type CellMapDataLoaderOptions } from "../loader/options.js";
import { anyNumber, bool, integerAtLeast, nonEmptyString, targetTransformInputSchema, transformInputSchema } from "../options/fields.js";
import { optionInfo, optionObject } from "../options/options.js";
import { PYTHON } from "../options/python.js";
import { httpOptionsSchema } from "../store/options.js";
import { spatialConfigSchema } from "../transforms/spatial.js";

/** A config file: datasplit options plus the loader's batching options. */
export const configSchema = optionObject(
  {
    csvPath: nonEmptyString.optional(),
    inputArrays: arraySpecsSchema,
    targetArrays: arraySpecsSchema.optional(),
    classes: classesSchema.optional(),
    classRelationDict: classRelationDictSchema.optional(),
    spatialTransforms: spatialConfigSchema.optional(),
    rawValueTransforms: transformInputSchema.nullable().optional(),
    trainRawValueTransforms: transformInputSchema.nullable().optional(),
    valRawValueTransforms: transformInputSchema.nullable().optional(),
    targetValueTransforms: targetTransformInputSchema.nullable().optional(),
    pad: padSchema.optional(),
    emptyValue: anyNumber.optional(),
    forceHasData: bool.optional(),
    seed: seedSchema.optional(),
    foreground: foregroundSchema.optional(),
    http: httpOptionsSchema.optional(),
    concurrency: integerAtLeast(1).optional(),
    ...(({ batchSize, numWorkers, prefetchFactor, iterationsPerEpoch, weightedSampler, chunkCacheBytes, dropLast, sampleConcurrency, memoryBudgetBytes }) => ({
      batchSize,
      numWorkers,
      prefetchFactor,
      iterationsPerEpoch,
      weightedSampler,
      chunkCacheBytes,
      dropLast,
      sampleConcurrency,
      memoryBudgetBytes,
    }))(loaderOptionsSchema.shape),
  },
  {
    aliases: { datasplit: "csvPath", datasplit_path: "csvPath", tensorstore_cache_bytes: "chunkCacheBytes" },
    python: Object.fromEntries(Object.entries({ ...PYTHON, ...optionInfo.get(loaderOptionsSchema)?.python }).filter(([k]) => k !== "classes")),
  },
);

type ConfigKeys = Exclude<keyof z.input<typeof configSchema>, "csvPath" | "rawValueTransforms">;
const _configKeys: [Exclude<ConfigKeys, keyof CellMapDataSplitOptions | keyof CellMapDataLoaderOptions>] extends [never] ? true : never = true;
void _configKeys;
