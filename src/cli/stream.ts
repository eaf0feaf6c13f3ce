/** Shared by `preview` and `bench`: the training split of the demo data or of a user's datasplit. */
import { CellMapDataSplit } from "../dataset/split.js";
import type { ArraySpecs, DatasetLike } from "../dataset/types.js";
import { writeSyntheticDataset } from "../demo/synthetic.js";
import type { CellMapConfig } from "./config.js";
import { demoConfig } from "./demo.js";

/** Where to stream from. */
export interface StreamSource {
  /** User datasplit CSV (with `config`), or undefined for the synthetic demo data in `dir`. */
  datasplit?: string;
  config?: CellMapConfig;
  dir: string;
  patch: number;
  size: number;
  seed: number;
  /** Apply the config's spatial augmentation. */
  augment: boolean;
}

/** Opens the combined training datasets and returns them with the config used. */
export async function openTrainingSource(s: StreamSource): Promise<{ train: DatasetLike; config: CellMapConfig }> {
  const csvPath = s.datasplit ?? (await writeSyntheticDataset(s.dir, { size: s.size, seed: s.seed })).csvPath;
  const config = s.config ?? demoConfig(s.patch);
  const split = await CellMapDataSplit.open({
    csvPath,
    classes: config.classes ?? null,
    inputArrays: config.inputArrays as ArraySpecs,
    targetArrays: (config.targetArrays ?? null) as ArraySpecs | null,
    spatialTransforms: s.augment ? (config.spatialTransforms as never) : null,
    classRelationDict: config.classRelationDict ?? null,
    pad: config.pad ?? true,
    seed: s.seed,
  });
  return { train: split.trainDatasetsCombined, config };
}
