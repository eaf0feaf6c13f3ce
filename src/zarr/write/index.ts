/**
 * The Zarr writer (the write half of `src/zarr/`): array specs, metadata, chunk encoding through
 * zarrita's codec pipeline, sharded arrays, all through the store layer's writable stores.
 */
export {
  allocArray,
  DATA_TYPES,
  normalizeArraySpec,
  type ArrayData,
  type CompressorSpec,
  type FillValue,
  type WritableDataType as DataType,
  type ZarrArraySpec,
} from "./spec.js";
export { arrayDocuments, groupDocuments } from "./metadata.js";
export { chunkEncoder } from "./encode.js";
export {
  childKey,
  createZarrArray,
  openTarget,
  putJson,
  writeArray,
  zarrArrayWriter,
  type TargetOptions,
  type WriteTarget,
  type ZarrArrayWriter,
} from "./array.js";
