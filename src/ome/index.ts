/** OME-NGFF multiscales metadata: validation, parsing into the plain model, and reading groups. */
export type { Axis, AxisType, Level, Multiscale } from "./model.js";
export { unitToNm, isSpatialUnit } from "./units.js";
export {
  validateImageMetadata,
  baseVersion,
  isSpatialAxis,
  formatFieldPath,
  zodToCellMapError,
  axisSchema,
  transformSchema,
  datasetSchema,
  multiscaleSchema04,
  multiscaleSchema05,
  imageSchema04,
  imageSchema05,
  type NgffImageMetadata,
  type AxisMetadata,
  type TransformMetadata,
  type DatasetMetadata,
  type MultiscaleMetadata,
} from "./schema.js";
export { parseMultiscales, type ParseMultiscalesOptions } from "./parse.js";
export { readMultiscale, type ReadMultiscaleOptions } from "./read.js";
export { bareArrayMultiscale, type BareArrayGeometry } from "./bare.js";
