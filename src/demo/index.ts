/**
 * `cellmap-data/demo`: the synthetic CellMap-style dataset the `demo` command trains on (a raw
 * EM-like volume, label crops and a datasplit CSV), for examples and tests. A subpath export,
 * so the package root carries no demo code.
 * @packageDocumentation
 */
export { writeSyntheticDataset, type SyntheticDataset, type SyntheticOptions } from "./synthetic.js";
