/**
 * The Python library's options that no option object here has, with the same reason wherever
 * one is given (`OptionInfo.python`).
 */
export const PYTHON = {
  device: "tensors are CPU typed arrays; move a batch to a device in the training loop (toTfjs / toOnnx hand it over without a copy)",
  context: "chunks are cached in the loader's shared chunk cache (chunkCacheBytes) or the process cache (setChunkCacheBytes)",
  rng: "every random draw is a function of seed, epoch and sample index; give seed",
  max_workers: "the reads of a sample run concurrently; CellMapDataLoader's numWorkers adds threads",
} as const;
