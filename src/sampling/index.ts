/** Public API of sampling: the counter-based RNG and index samplers. */
export { Rng, RngStream, sampleRng } from "../util/rng.js";
export {
  ClassBalancedSampler,
  MutableSubsetRandomSampler,
  SequentialSampler,
  minRedundantIndices,
  offsetsOf,
  sampleWithoutReplacement,
  weightedRandomIndices,
  weightedSubsetIndices,
  type ClassBalancedOptions,
  type Sampler,
  type SubsetGenerator,
} from "./samplers.js";
