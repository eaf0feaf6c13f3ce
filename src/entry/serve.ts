/**
 * `cellmap-data/serve`: the loader as an HTTP service (`serve`) and the safetensors framing of
 * its batches (`encodeBatch`, `decodeBlob`), for clients in other processes and languages.
 * @packageDocumentation
 */
export { serve, type ServeOptions, type BatchServer } from "../serve/server.js";
export { encodeBatch, decodeBlob, SAFETENSORS_DTYPES, type EncodedBatch } from "../serve/safetensors.js";
