/** Target transforms computed from label masks. */
export { Affinities } from "./affinities.js";
export { DistanceTransform, type DistanceTransformParams } from "./distance.js";
export { squaredEdt } from "./edt.js";
