/**
 * `cellmap-data preview`: one training batch (the demo data, or a user's datasplit) drawn as a PNG
 * grid by {@link renderBatchGrid}: every sample a row, raw plus each class a column, the
 * mid-slice across `axis`, column titles and a legend in the picture.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DatasetLike, GetOptions } from "../dataset/types.js";
import { buildBatch } from "../loader/collate.js";
import { CellMapDataLoader } from "../loader/loader.js";
import { batchGridLayout, renderBatchGrid, type SliceAxis } from "../viz/grid.js";
import type { CellMapConfig } from "../config/load.js";
import { openTrainingSource } from "./stream.js";
import { CellMapError } from "../errors.js";

/** Options of {@link runPreview}. */
export interface PreviewOptions {
  /** PNG to write. */
  out: string;
  datasplit?: string;
  config?: CellMapConfig;
  /** Demo data folder (when no datasplit). */
  dir: string;
  size: number;
  patch: number;
  /** Samples in the grid (default: the config's `batchSize`, else 4). */
  batchSize?: number;
  /** Seed of the sample order and augmentation (default: the config's `seed`, else 1). */
  seed?: number;
  augment: boolean;
  /**
   * Draw one sample under this many augmentation draws, one per row (the draws of epochs 0, 1,
   * …), to look at the augmentation itself. Default: one batch of different samples.
   */
  draws?: number;
  axis?: SliceAxis;
}

/** What {@link runPreview} wrote. */
export interface PreviewSummary {
  out: string;
  samples: number;
  indices: number[];
  columns: string[];
  axis: SliceAxis;
  width: number;
  height: number;
  /** With `draws`: the rows are one sample under this many augmentation draws. */
  draws?: number;
}

/** Streams one batch and writes its grid. */
export async function runPreview(o: PreviewOptions): Promise<PreviewSummary> {
  const { train, config: used } = await openTrainingSource({ datasplit: o.datasplit, config: o.config, dir: o.dir, patch: o.patch, size: o.size, seed: 1, augment: o.augment });
  // Flags win over the config, the config over the preview's defaults.
  const loader = new CellMapDataLoader(train, { batchSize: o.batchSize ?? used.batchSize ?? 4, numWorkers: 0, seed: o.seed ?? used.seed ?? 1, iterationsPerEpoch: 1 });
  const inputKey = Object.keys(used.inputArrays)[0];
  const targetKey = used.targetArrays ? Object.keys(used.targetArrays)[0] : undefined;
  const axis = o.axis ?? "z";
  try {
    for await (const first of loader) {
      // With `draws`: the batch's first sample, under the draws of epochs 0 … draws-1.
      const i = first.idx[0];
      const draws = o.draws;
      const batch = draws
        ? await buildBatch(
            Object.assign(Object.create(train) as DatasetLike, { length: draws, get: (k: number, g: GetOptions) => train.get(i, { ...g, epoch: k }) }),
            Array.from({ length: draws }, (_, k) => k),
            0,
          )
        : first;
      const grid = {
        inputKey,
        targetKey,
        classes: used.classes,
        axis,
        inputArray: used.inputArrays[inputKey],
        targetArray: targetKey ? used.targetArrays![targetKey] : undefined,
      };
      const png = renderBatchGrid(batch, grid);
      const layout = batchGridLayout(batch, grid);
      fs.writeFileSync(o.out, png);
      const indices = draws ? new Array<number>(draws).fill(i) : Array.from(batch.idx);
      return { out: path.resolve(o.out), samples: batch.idx.length, indices, columns: layout.columns, axis, width: layout.width, height: layout.height, ...(draws && { draws }) };
    }
  } finally {
    await loader.close();
  }
  throw new CellMapError("INVALID_ARGUMENT", "the training data gave no batch (no usable training row, or every batch was empty)", "datasplit");
}

/** One-line human summary. */
export function formatPreviewSummary(s: PreviewSummary): string {
  const rows = s.draws ? `sample ${s.indices[0]} under ${s.draws} augmentation draws` : `samples ${s.indices.join(", ")}`;
  return `wrote ${s.out} (${s.width}x${s.height}): ${s.samples} rows (${rows}); columns ${s.columns.join(", ")}; slices across ${s.axis}`;
}
