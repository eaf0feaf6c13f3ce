/**
 * `cellmap-data/zarr`: the storage side. Byte stores (local files, HTTP(S), S3, and their
 * writable forms), Zarr arrays and region reads through the decoded-chunk cache, the codec
 * registry, OME-NGFF metadata parsing, and the pyramid geometry (level choice, bounding boxes).
 * @packageDocumentation
 */
export { openStore, s3ToHttps, isRemote, joinLocation, readLocation, type OpenedStore } from "../store/open.js";
export { HttpStore, type HttpStoreOptions, type HttpStoreHooks, type HttpRequest } from "../store/http.js";
export { openS3Store, resolveS3, parseS3Url, S3Store, type ResolvedS3 } from "../store/s3.js";
export { LocalStore } from "../store/local.js";
export { openWritableStore, type OpenedWritableStore } from "../store/writable.js";
export type {
  AbsolutePath,
  AsyncMutable,
  AsyncReadable,
  RangeQuery,
  Readable,
  S3Credentials,
  S3Options,
  StoreGetOptions,
  StoreLocation,
  SyncReadable,
  WritableStore,
} from "../store/types.js";
export { chunkCache, setChunkCacheBytes, ChunkCache, type CacheStats } from "../zarr/cache.js";
export { openZarrArray, type ZarrArray, type ZarritaArray } from "../zarr/array.js";
export { readRegion } from "../zarr/read.js";
export { registerFastCodecs, registerWasmCodecs, codecBackends } from "../zarr/codecs/register.js";
export { createZarrArray, type CompressorSpec } from "../zarr/write/index.js";
export * from "../ome/index.js";
export { chooseLevel, levelBoundingBox, samplingBox, intersectBoxes, sameScale, type Box } from "../geometry/level.js";
export { tensor, sizeOf, stridesOf, dtypeMax, dtypeOfData, isFloat32Tensor, OUTPUT_DTYPES } from "../tensor.js";
