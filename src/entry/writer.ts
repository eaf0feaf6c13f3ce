/**
 * `cellmap-data/writer`: writing predictions as OME-NGFF: `CellMapDatasetWriter`,
 * `ImageWriter`, whole pyramids (`writeOmePyramid`), and the tiling, blending and downsampling
 * they use.
 * @packageDocumentation
 */
export * from "../writer/index.js";
export { writeOmePyramid, type OmePyramidOptions, type WrittenPyramid } from "../writer/pyramid.js";
