/** Public API of the loader: batches, worker threads, resume state, memory estimate, adapters. */
export {
  CellMapDataLoader,
  type CellMapDataLoaderOptions,
  type LoaderState,
  type SamplerInput,
  type WeightedMode,
} from "./loader.js";
export { batchTensor, buildBatch, SampleError, tensorKeys, type AnyBatch, type Batch, type BuildBatchOptions } from "./collate.js";
export { batchMemoryBytes, fitPrefetch, type PrefetchFit } from "./memory.js";
export { EpochPlan, FeistelPermutation, shuffledSequence, type IndexSequence, type PlanShape } from "./order.js";
export { loadOnnx, loadTfjs, toOnnx, toTfjs, type OnnxLike, type TfjsLike } from "./adapters.js";
