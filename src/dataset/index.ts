/** Public API of datasets: one crop, concatenations, subsets, train/validation splits. */
export { CellMapDataset } from "./dataset.js";
export { validateDatasetOptions, type CellMapDatasetOptions, type TargetTransformInput, type TransformInput } from "./options.js";
export type { CellMapDatasetDescription } from "./description.js";
export { CellMapMultiDataset, type CellMapMultiDatasetDescription, type CropRow, type MultiDatasetOptions } from "./multi.js";
export { BUILTIN_DESCRIPTION_KINDS, descriptionKinds, openDescription, registerDescriptionKind, type DescriptionOpener } from "./kinds.js";
export { CellMapSubset, type CellMapSubsetDescription } from "./subset.js";
export {
  CellMapDataSplit,
  defaultRawTransform,
  defaultTargetTransform,
  openDataSplitRows,
  parseDataSplitCsv,
  validateSplitOptions,
  type DataSplitRow,
  type DataSplitRows,
  type CellMapDataSplitOptions,
  type DataSplitDict,
  type DataSplitEntry,
  type SplitProblem,
} from "./split.js";
export { parseCsv, type CsvRecord, type CsvResult } from "./csv.js";
export { classPath, splitTargetPath, type TargetPath } from "./target-path.js";
export { sumCounts, weightedForeground, weightsFromCounts, zeroCounts, type ClassCount, type ClassCounts } from "./counts.js";
export {
  checkIndex,
  type AnyDatasetItem,
  type ArraySpec,
  type ArraySpecs,
  type DatasetDescription,
  type DatasetItem,
  type DatasetLike,
  type GetOptions,
  type LevelInfo,
  type OpenDescriptionOptions,
  type SampleBase,
  type SampleMetadata,
  type SpecTensor,
} from "./types.js";
