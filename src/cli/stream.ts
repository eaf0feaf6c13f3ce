/** Shared by `preview` and `bench`: the training split of the demo data or of a user's datasplit. */
import { splitOptionsFromConfig } from "../config/load.js";
import { CellMapDataSplit } from "../dataset/split.js";
import type { DatasetLike } from "../dataset/types.js";
import { writeSyntheticDataset } from "../demo/synthetic.js";
import type { CellMapConfig } from "../config/load.js";
import { demoConfig } from "./demo.js";

/** Where to stream from. */
export interface StreamSource {
  /** User datasplit CSV (default: the config's `csvPath`; neither: the synthetic demo data in `dir`). */
  datasplit?: string;
  config?: CellMapConfig;
  dir: string;
  patch: number;
  size: number;
  /** Seed of the split when the config gives none. */
  seed: number;
  /** Apply the config's spatial augmentation. */
  augment: boolean;
}

/**
 * Opens the combined training datasets and returns them with the config used. The split is
 * opened with every option of the config (transforms, pad, relations …), as training does.
 */
export async function openTrainingSource(s: StreamSource): Promise<{ train: DatasetLike; config: CellMapConfig }> {
  const config = s.config ?? demoConfig(s.patch);
  const seed = config.seed ?? s.seed;
  const csvPath = s.datasplit ?? config.csvPath ?? (await writeSyntheticDataset(s.dir, { size: s.size, seed })).csvPath;
  const split = await CellMapDataSplit.open({
    ...splitOptionsFromConfig(config),
    csvPath,
    seed,
    spatialTransforms: s.augment ? config.spatialTransforms : null,
  });
  return { train: split.trainDatasetsCombined, config };
}
