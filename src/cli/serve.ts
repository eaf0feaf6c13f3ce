/**
 * `cellmap-data serve`: a datasplit's training (or validation) loader as an HTTP batch service
 * (docs/serve.md). The config means what it means for `demo` and `verify`: the same schema and
 * defaults (`src/config`); flags override the config's `numWorkers`, `batchSize` and `seed`.
 */
import { loaderOptionsFromConfig, splitOptionsFromConfig } from "../config/load.js";
import { CellMapDataSplit } from "../dataset/split.js";
import { CellMapError } from "../errors.js";
import { CellMapDataLoader } from "../loader/loader.js";
import { type BatchServer, serve } from "../serve/server.js";
import type { CellMapConfig } from "../config/load.js";

/** Options of {@link runServe} (flags of the command). */
export interface ServeCommandOptions {
  /** The datasplit CSV (default: the config's `csvPath`). */
  datasplit?: string;
  config: CellMapConfig;
  /** Serve the validation datasets instead of the training ones. */
  validate?: boolean;
  workers?: number;
  batchSize?: number;
  seed?: number;
  host?: string;
  port?: number;
  token?: string;
  prefetch?: number;
}

/** Opens the datasplit, builds its loader and starts serving it. */
export async function runServe(o: ServeCommandOptions): Promise<BatchServer> {
  const config = o.config;
  const csvPath = o.datasplit ?? config.csvPath;
  if (csvPath === undefined) throw new CellMapError("INVALID_ARGUMENT", "serve needs --datasplit (or csvPath in the config)", "datasplit");
  const seed = o.seed ?? config.seed;
  const split = await CellMapDataSplit.open({ ...splitOptionsFromConfig(config), csvPath, ...(seed !== undefined && { seed }) });
  const dataset = o.validate ? split.validationDatasetsCombined : split.trainDatasetsCombined;
  if (dataset.length === 0) throw new CellMapError("INVALID_ARGUMENT", `no ${o.validate ? "validation" : "training"} samples in ${csvPath}`, csvPath);
  const loader = new CellMapDataLoader(dataset, {
    ...loaderOptionsFromConfig(config),
    ...(o.workers !== undefined && { numWorkers: o.workers }),
    ...(o.batchSize !== undefined && { batchSize: o.batchSize }),
    ...(seed !== undefined && { seed }),
    isTrain: !o.validate,
  });
  return serve(loader, { host: o.host, port: o.port, token: o.token, prefetch: o.prefetch });
}
