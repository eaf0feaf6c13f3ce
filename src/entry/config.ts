/**
 * `cellmap-data/config`: config files, the schema of every option object, the defaults, and the
 * option-key machinery (camelCase / snake_case / Python names, did-you-mean suggestions).
 * @packageDocumentation
 */
export * from "../config/index.js";
