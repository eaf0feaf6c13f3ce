/** Public API of the transforms: spatial draws, value transforms, target transforms, specs. */
export * from "./augment/index.js";
export * from "./targets/index.js";
export {
  axisRotation,
  drawSpatialTransform,
  identityDraw,
  isSignedPermutation,
  parseSpatialConfig,
  rotatedExtent,
  spatialMatrix,
  type ParsedSpatialConfig,
  type SpatialAxis,
  type SpatialConfig,
  type SpatialDraw,
  type SpatialDrawLike,
} from "./spatial.js";
export { BUILTIN_TRANSFORMS, ModuleTransform, loadTransform, transformFromSpec } from "./registry.js";
export { isIntegerDtype, type TransformSpec, type ValueTransform } from "./types.js";
