/** Value transforms (augmentation and normalisation). */
export { GaussianBlur, type GaussianBlurParams } from "./blur.js";
export { Compose, PerClass, checkTransform } from "./compose.js";
export { RandomContrast, RandomGamma, type RandomContrastParams, type RandomGammaParams } from "./intensity.js";
export { GaussianNoise, type GaussianNoiseParams } from "./noise.js";
export { DefectAugment, type DefectAugmentParams } from "./defects.js";
export { IntensityScaleShift, type IntensityScaleShiftParams } from "./scale-shift.js";
export { Normalize, ToDtype, type NormalizeParams, type ToDtypeParams } from "./normalize.js";
export { Binarize, NaNtoNum, FLOAT32_MAX, type NaNtoNumParams } from "./threshold.js";
