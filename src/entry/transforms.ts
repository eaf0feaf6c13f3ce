/**
 * `cellmap-data/transforms`: every transform, value (`Normalize`, `GaussianNoise`, …), target
 * (`Affinities`, `DistanceTransform`) and spatial (the per-sample draw and its matrix), the
 * registry that rebuilds them from JSON specs in worker threads, and the counter-based RNG they
 * draw from.
 * @packageDocumentation
 */
export * from "../transforms/index.js";
export { Rng, RngStream, sampleRng } from "../util/rng.js";
