/**
 * cellmap-data: stream training patches out of OME-NGFF / Zarr multiscale microscopy volumes.
 *
 * The root holds what a training or inference script needs: images, datasets, splits, the
 * loader, value transforms, samplers, the dataset writer, config files, previews and `serve`.
 * More specialised parts have subpath exports of their own:
 * - `cellmap-data/zarr`: stores (local, HTTP, S3), Zarr arrays and region reads, codecs and the
 *   chunk cache, OME-NGFF metadata, pyramid geometry;
 * - `cellmap-data/transforms`: every value, target and spatial transform, and their registry;
 * - `cellmap-data/dataset`: dataset kinds and descriptions, datasplit CSV parsing, class counts;
 * - `cellmap-data/loader`: batch collation, epoch plans, memory arithmetic, framework adapters;
 * - `cellmap-data/writer`: `ImageWriter`, OME-NGFF pyramids, tiling and blending;
 * - `cellmap-data/config`: the option schemas and the option-key machinery;
 * - `cellmap-data/serve`: `serve` and its safetensors framing;
 * - `cellmap-data/demo`: the synthetic demo data.
 *
 * Layers (each imports only those below it; `.dependency-cruiser.cjs` enforces it):
 * util → kernels → store → zarr → plane → ome/geometry → image → transforms → sampling →
 * dataset → loader → writer → config → net/viz → serve/demo → cli.
 * @packageDocumentation
 */
export { CellMapError, type CellMapErrorCode, isCellMapError } from "./errors.js";
export type { Tensor, AnyTensor, TensorData, TensorArrays, OutputDtype, DataType } from "./tensor.js";

export { CellMapImage, type CellMapImageOptions, type ReadOptions, type ScaleLevel, type ValueTransformLike } from "./image/image.js";
export { EmptyImage, type EmptyImageOptions } from "./image/empty.js";

export { CellMapDataset } from "./dataset/dataset.js";
export type { CellMapDatasetOptions, TargetTransformInput, TransformInput } from "./dataset/options.js";
export { CellMapMultiDataset, type MultiDatasetOptions } from "./dataset/multi.js";
export { CellMapSubset } from "./dataset/subset.js";
export { CellMapDataSplit, parseDataSplitCsv, type SplitProblem } from "./dataset/split.js";
export type { CellMapDataSplitOptions, DataSplitDict, DataSplitEntry } from "./dataset/split-options.js";
export { defaultRawTransform, defaultTargetTransform } from "./dataset/defaults.js";
export { openDescription, registerDescriptionKind, type DescriptionOpener } from "./dataset/kinds.js";
export type { ClassCount, ClassCounts } from "./dataset/counts.js";
export type {
  AnyDatasetItem,
  ArraySpec,
  ArraySpecs,
  DatasetDescription,
  DatasetItem,
  DatasetLike,
  GetOptions,
  LevelInfo,
  SampleBase,
  SampleMetadata,
  SpecTensor,
} from "./dataset/types.js";

export { CellMapDataLoader, type CellMapDataLoaderOptions, type LoaderState, type SamplerInput, type WeightedMode } from "./loader/loader.js";
export { batchTensor, SampleError, tensorKeys, type AnyBatch, type Batch } from "./loader/collate.js";
export { toOnnx, toTfjs } from "./loader/adapters.js";

export { ClassBalancedSampler, MutableSubsetRandomSampler, SequentialSampler, type Sampler } from "./sampling/samplers.js";

export { Normalize, ToDtype } from "./transforms/augment/normalize.js";
export { Binarize, NaNtoNum } from "./transforms/augment/threshold.js";
export { GaussianNoise } from "./transforms/augment/noise.js";
export { GaussianBlur } from "./transforms/augment/blur.js";
export { RandomContrast, RandomGamma } from "./transforms/augment/intensity.js";
export { DefectAugment } from "./transforms/augment/defects.js";
export { IntensityScaleShift } from "./transforms/augment/scale-shift.js";
export { Compose, PerClass } from "./transforms/augment/compose.js";
export { Affinities } from "./transforms/targets/affinities.js";
export { DistanceTransform } from "./transforms/targets/distance.js";
export type { TransformSpec, ValueTransform } from "./transforms/types.js";
export type { SpatialConfig, SpatialDraw } from "./transforms/spatial.js";

export { CellMapDatasetWriter, type CellMapDatasetWriterOptions, type WriterArraySpec, type WriterItem } from "./writer/dataset-writer.js";
export { ImageWriter, type Bounds, type ImageWriterOptions } from "./writer/image-writer.js";

export { setChunkCacheBytes, type CacheStats } from "./zarr/cache.js";
export { codecBackends } from "./zarr/codecs/register.js";
export type { HttpStoreOptions } from "./store/http.js";
export type { S3Credentials, S3Options } from "./store/types.js";

export { loadConfig, loaderOptionsFromConfig, parseConfig, splitOptionsFromConfig, type CellMapConfig } from "./config/load.js";

export { renderBatchGrid, type BatchGridOptions } from "./viz/grid.js";
export { neuroglancerLink, neuroglancerState } from "./viz/neuroglancer.js";

export { serve, type BatchServer, type ServeOptions } from "./serve/server.js";
