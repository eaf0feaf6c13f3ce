/**
 * `cellmap-data/dataset`: the dataset layer in full: dataset kinds and their descriptions
 * (what worker threads re-open), datasplit rows and CSV parsing, class counts and weights,
 * target paths, option checks, and the samplers.
 * @packageDocumentation
 */
export * from "../dataset/index.js";
export * from "../sampling/index.js";
