/**
 * Configuration: the schemas of every option object and of config files, their defaults, the
 * key machinery (camelCase / snake_case / Python names, unknown keys with suggestions) and
 * config file loading.
 */
export { DATASET_DEFAULTS, LOADER_DEFAULTS, SPLIT_DEFAULTS, defaultRawTransform, defaultTargetTransform } from "./defaults.js";
export { configSchema, loadConfig, loaderOptionsFromConfig, normaliseConfigKeys, parseConfig, splitOptionsFromConfig, type CellMapConfig } from "./load.js";
export { fieldPath, normaliseKeys, optionInfo, optionObject, parseOptions, type OptionInfo, type SameKeys } from "./options.js";
export {
  arraySpecSchema,
  arraySpecsSchema,
  datasetOptionsSchema,
  datasetWriterOptionsSchema,
  httpOptionsSchema,
  imageOptionsSchema,
  imageWriterOptionsSchema,
  loaderOptionsSchema,
  multiDatasetOptionsSchema,
  spatialConfigSchema,
  splitOptionsSchema,
  writerArraySpecSchema,
} from "./schema.js";
export { camelCase, snakeCase } from "./names.js";
export { closest, didYouMean, editDistance } from "./suggest.js";
