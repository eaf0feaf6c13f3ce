/**
 * Defaults of the dataset layer, stated once. The library's entry points, the CLI, `verify` and
 * the README read them from here, so an option left out means the same wherever it is left out
 * (the loader's are in `loader/options.ts`).
 *
 * | option | `CellMapDataSplit` (and config files) | `CellMapDataset` | `CellMapDatasetWriter` |
 * |---|---|---|---|
 * | `pad` | `false` (both splits) | `true` | always (inputs padded with 0) |
 * | raw value transforms | {@link defaultRawTransform} (train and validate) | none | {@link defaultRawTransform} |
 * | target value transforms | {@link defaultTargetTransform} (raw-only: {@link defaultRawTransform}) | none | — |
 * | `seed` | 0 (the k-th row gets `seed + k`) | 0 | — |
 * | `emptyValue` | NaN | NaN | — |
 *
 * The split's and the dataset's `pad` differ as in the Python library (its `CellMapDataSplit`
 * pads neither split unless asked; a lone `CellMapDataset` pads).
 */
import { Compose } from "../transforms/augment/compose.js";
import { Normalize } from "../transforms/augment/normalize.js";
import { Binarize, NaNtoNum } from "../transforms/augment/threshold.js";

/** Defaults of `CellMapDataSplit.open` (and of config files, which describe a split). */
export const SPLIT_DEFAULTS = {
  pad: false,
  seed: 0,
  emptyValue: NaN,
  forceHasData: false,
  /** Rows opened at once. */
  concurrency: 16,
} as const;

/** Defaults of `CellMapDataset.open`. */
export const DATASET_DEFAULTS = {
  pad: true,
  seed: 0,
  emptyValue: NaN,
  isTrain: false,
  forceHasData: false,
} as const;

/**
 * Default raw transform of training, validation and inference inputs: `Normalize()` (integer
 * raw divided by its dtype's maximum, so uint8 0–255 becomes 0–1; float raw unchanged), then
 * `NaNtoNum({ nan: 0 })`.
 */
export function defaultRawTransform(): Compose {
  return new Compose([new Normalize(), new NaNtoNum({ nan: 0 })]);
}

/** Default target transform: `Binarize({ threshold: 0 })` (every value > 0 becomes 1; NaN stays NaN). */
export function defaultTargetTransform(): Binarize {
  return new Binarize({ threshold: 0 });
}
