/**
 * The Zarr writer (the write half of `src/zarr/`): array specs, metadata, chunk encoding through
 * zarrita's codec pipeline, sharded arrays, all through the store layer's writable stores.
 */
export {
  allocArray,
  DATA_TYPES,
  dtypeSize,
  fillJson,
  normalizeArraySpec,
  v2DtypeString,
  type ArrayData,
  type CompressorSpec,
  type FillValue,
  type NormalizedArraySpec,
  type WritableDataType,
  type WritableDataType as DataType,
  type ZarrArraySpec,
} from "./spec.js";
export { arrayDocuments, groupDocuments, METADATA_NAMES, v2ArrayDocuments } from "./metadata.js";
export { chunkEncoder, type ChunkEncoder } from "./encode.js";
export { encodeShard, shardedArrayDocument, type ShardOptions } from "./shard.js";
export { allFill, copyBox } from "./box.js";
export {
  childKey,
  createZarrArray,
  openTarget,
  putJson,
  writeArray,
  zarrArrayWriter,
  type ArrayLocation,
  type NodeLocation,
  type TargetOptions,
  type WriteOptions,
  type WriteTarget,
  type ZarrArrayWriter,
} from "./array.js";
