/**
 * Config files for `verify`, `bench`, `demo` and `preview`. Config loading is library API: it
 * lives in `src/config/` (one schema with the library's options); this module re-exports it.
 */
export { configSchema, loadConfig, loaderOptionsFromConfig, normaliseConfigKeys, parseConfig, splitOptionsFromConfig, type CellMapConfig } from "../config/load.js";
