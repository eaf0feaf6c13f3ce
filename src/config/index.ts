/**
 * Configuration: the schemas of every option object and of config files, their defaults, the
 * key machinery (camelCase / snake_case / Python names, unknown keys with suggestions) and
 * config file loading.
 */
export { DATASET_DEFAULTS, SPLIT_DEFAULTS, defaultRawTransform, defaultTargetTransform } from "../dataset/defaults.js";
export { LOADER_DEFAULTS } from "../loader/options.js";
export { configSchema, loadConfig, loaderOptionsFromConfig, parseConfig, splitOptionsFromConfig, type CellMapConfig } from "./load.js";
export { fieldPath, normaliseKeys, optionInfo, optionObject, parseOptions, type OptionInfo, type OptionObject } from "../options/options.js";
export { spatialConfigSchema } from "../transforms/spatial.js";
export { arraySpecSchema, arraySpecsSchema } from "../dataset/fields.js";
export { datasetOptionsSchema } from "../dataset/options.js";
export { splitOptionsSchema } from "../dataset/split-options.js";
export { multiDatasetOptionsSchema } from "../dataset/multi.js";
export { imageOptionsSchema } from "../image/options.js";
export { loaderOptionsSchema } from "../loader/options.js";
export { httpOptionsSchema } from "../store/options.js";
export { datasetWriterOptionsSchema, writerArraySpecSchema } from "../writer/dataset-writer-options.js";
export { imageWriterOptionsSchema } from "../writer/image-options.js";
export { camelCase, snakeCase } from "../options/names.js";
export { closest, didYouMean, editDistance } from "../options/suggest.js";
