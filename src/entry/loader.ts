/**
 * `cellmap-data/loader`: the loader's parts: batch collation and layout, epoch plans and the
 * shuffles behind them, the memory arithmetic of the prefetch queue, and the TensorFlow.js /
 * onnxruntime adapters.
 * @packageDocumentation
 */
export * from "../loader/index.js";
