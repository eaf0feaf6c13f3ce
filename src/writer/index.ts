/**
 * Writing model predictions as OME-NGFF: `CellMapDatasetWriter` (tiled inference over a region,
 * usable as a loader dataset) and its building block `ImageWriter` (one class, one image), plus
 * the pure tiling, blending and downsampling math they use. Importing this module registers the
 * `CellMapDatasetWriter` description kind with `openDescription`.
 */
export {
  CellMapDatasetWriter,
  type CellMapDatasetWriterDescription,
  type CellMapDatasetWriterOptions,
  type WriterArraySpec,
  type WriterItem,
} from "./dataset-writer.js";
export {
  ImageWriter,
  sameLayout,
  tileValues,
  type Bounds,
  type ImageWriterOptions,
  type StoredDtype,
  type TileInfo,
  type WrittenLevel,
} from "./image-writer.js";
export {
  axisContributors,
  axisFootprint,
  coreRange,
  gridFromBounds,
  makeTiling,
  tileAxis,
  tileBox,
  tileCoords,
  tileId,
  type AxisTiling,
  type TileBox,
  type Tiling,
  type VoxelGrid,
} from "./tiling.js";
export { accumulateTile, axisNormaliser, BLEND_MODES, normaliseRegion, windowWeights, type BlendMode } from "./blend.js";
export { downsample, downsampledShape, type DownsampleMethod } from "./downsample.js";
export type { CompressorSpec } from "../zarr/write/index.js";
