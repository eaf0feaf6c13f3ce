/**
 * cellmap-data: stream training patches out of OME-NGFF / Zarr multiscale microscopy volumes.
 *
 * Layers (each knows only those below it): store → zarr → ome → image → dataset → loader → cli.
 * @packageDocumentation
 */
export { CellMapError, type CellMapErrorCode, isCellMapError } from "./errors.js";
export {
  type Tensor, type AnyTensor, type TensorData, type TensorArrays, type OutputDtype, type DataType,
  tensor, sizeOf, stridesOf, dtypeMax, dtypeOfData, isFloat32Tensor, OUTPUT_DTYPES,
} from "./tensor.js";

export { openStore, s3ToHttps, isRemote, joinLocation, readLocation, type OpenedStore } from "./store/open.js";
export { HttpStore, type HttpStoreOptions, type HttpStoreHooks, type HttpRequest } from "./store/http.js";
export { openS3Store, resolveS3, parseS3Url, S3Store, type ResolvedS3 } from "./store/s3.js";
export type { S3Options, S3Credentials } from "./store/types.js";
export { LocalStore } from "./store/local.js";
export { openWritableStore, type WritableStore, type OpenedWritableStore } from "./store/writable.js";
export type { AbsolutePath, AsyncMutable, AsyncReadable, RangeQuery, Readable, StoreGetOptions, StoreLocation, SyncReadable } from "./store/types.js";

export { chunkCache, setChunkCacheBytes, ChunkCache, type CacheStats } from "./zarr/cache.js";
export { openZarrArray, type ZarrArray, type ZarritaArray } from "./zarr/array.js";
export { readRegion } from "./zarr/read.js";
export { registerFastCodecs, registerWasmCodecs, codecBackends } from "./zarr/codecs/register.js";

export * from "./ome/index.js";

export { chooseLevel, levelBoundingBox, samplingBox, intersectBoxes, sameScale, type Box } from "./geometry/level.js";

export { CellMapImage, type CellMapImageOptions, type ReadOptions, type ScaleLevel, type ValueTransformLike } from "./image/image.js";
export { EmptyImage, type EmptyImageOptions } from "./image/empty.js";

export * from "./sampling/index.js";

export * from "./transforms/index.js";
export * from "./dataset/index.js";
export * from "./writer/index.js";
export * from "./loader/index.js";
export { renderBatchGrid, batchGridLayout, NAN_RGB, FOV_RGB, TEXT_RGB, type BatchGridOptions, type BatchGridLayout, type SliceAxis } from "./viz/grid.js";
export {
  neuroglancerState, neuroglancerLink, neuroglancerSource, neuroglancerView,
  type NeuroglancerLayer, type NeuroglancerSpace, type NeuroglancerView, type ImageGeometry,
} from "./viz/neuroglancer.js";
export {
  startHttpServer, checkBind, isLoopbackHost, requestToken, tokenMatches, sendError, corsHeaders, HttpError, DEFAULT_HOST, MIN_TOKEN_LENGTH,
  type HttpServerOptions, type RunningHttpServer, type RequestHandler, type RequestContext, type BindOptions, type BindPlan,
} from "./net/http-server.js";
export { staticFileHandler, parseRange, safeSegments, type StaticMount, type StaticFilesOptions, type ByteRange } from "./net/static-files.js";
export {
  parseConfig, loadConfig, normaliseConfigKeys, configSchema, splitOptionsFromConfig, loaderOptionsFromConfig, type CellMapConfig,
  parseOptions, normaliseKeys, optionObject, optionInfo, type OptionInfo, closest, didYouMean, snakeCase, camelCase,
  SPLIT_DEFAULTS, DATASET_DEFAULTS, LOADER_DEFAULTS,
  arraySpecSchema, arraySpecsSchema, datasetOptionsSchema, splitOptionsSchema, loaderOptionsSchema, multiDatasetOptionsSchema,
  datasetWriterOptionsSchema, imageOptionsSchema, imageWriterOptionsSchema, httpOptionsSchema, spatialConfigSchema,
} from "./config/index.js";
export { serve, type ServeOptions, type BatchServer } from "./serve/server.js";
export { encodeBatch, decodeBlob, SAFETENSORS_DTYPES, type EncodedBatch } from "./serve/safetensors.js";
