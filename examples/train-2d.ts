/**
 * A real training run in TypeScript: a small 2-D convolutional network (TensorFlow.js, CPU
 * backend, pure JavaScript) learns mitochondria and nuclei from 2-D sections of the synthetic
 * demo volume, fed by `CellMapDataLoader` with worker threads and spatial augmentation; then it
 * predicts a 3-D block section by section and writes the predictions as OME-NGFF with
 * `CellMapDatasetWriter`.
 *
 * Why 2-D and small: TensorFlow.js's pure-JavaScript CPU backend runs convolutions at a few hundred
 * MFLOP/s (its native backend cannot install offline here), so a small 2-D model on 32x32 sections
 * shows the whole pipeline in minutes.
 *
 * Run: `npm run example:train` (a few minutes), or `npm run example:train -- --steps 20`.
 */
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { CellMapDataLoader, CellMapDataSplit, CellMapDatasetWriter, CellMapImage, toTfjs, type Tensor } from "../src/index.js";
import { writeSyntheticDataset } from "../src/demo/index.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const steps = arg("steps", 150);
const batchSize = arg("batch-size", 8);
const dir = args.includes("--dir") ? args[args.indexOf("--dir") + 1] : path.join(os.tmpdir(), "cellmap-example");
const classes = ["mito", "nuc"];
const patch = 32;
const spec = { shape: [patch, patch], scale: [8, 8] }; // 2-D sections (z slices) at 8 nm

await tf.setBackend("cpu");
const data = await writeSyntheticDataset(dir, { size: 256, seed: 3 });
const split = await CellMapDataSplit.open({
  csvPath: data.csvPath,
  classes,
  inputArrays: { raw: spec },
  targetArrays: { gt: spec },
  spatialTransforms: { mirror: { axes: { x: 0.5, y: 0.5 } }, transpose: { axes: ["x", "y"] }, rotate: { axes: { z: [-180, 180] } } },
  pad: true,
  seed: 3,
});
const train = split.trainDatasetsCombined;
console.log(`training on ${train.length} sections of ${patch}x${patch} at 8 nm, classes ${classes.join(", ")}`);

// A small encoder-decoder: one pooling step widens the field of view; the transposed
// convolution brings it back (tfjs has no gradient for dilated convolutions, and its CPU
// gradient for nearest up-sampling is slow).
const model = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [patch, patch, 1], filters: 8, kernelSize: 3, padding: "same", activation: "relu" }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: "same", activation: "relu" }),
    tfl.layers.conv2dTranspose({ filters: 8, kernelSize: 2, strides: 2, padding: "same", activation: "relu" }),
    tfl.layers.conv2d({ filters: classes.length, kernelSize: 1, padding: "same", activation: "sigmoid" }),
  ],
});
const optimizer = tf.train.adam(3e-3);

/** Binary cross-entropy over known voxels only (NaN = unknown in the targets). */
function maskedBce(y: tf.Tensor, p: tf.Tensor): tf.Scalar {
  const known = tf.logicalNot(tf.isNaN(y));
  const y0 = tf.where(known, y, tf.zerosLike(y));
  const eps = 1e-6;
  const bce = tf.neg(tf.add(tf.mul(y0, tf.log(tf.add(p, eps))), tf.mul(tf.sub(1, y0), tf.log(tf.add(tf.sub(1, p), eps)))));
  const m = tf.cast(known, "float32");
  return tf.div(tf.sum(tf.mul(bce, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
}

const loader = new CellMapDataLoader(train, { batchSize, numWorkers: 2, iterationsPerEpoch: steps, seed: 3 });
const t0 = performance.now();
let step = 0;
let running = 0;
for await (const batch of loader) {
  const x = tf.tidy(() => tf.transpose(toTfjsSync(batch.raw as Tensor), [0, 2, 3, 1])); // [N,1,y,x] -> NHWC
  const y = tf.tidy(() => tf.transpose(toTfjsSync(batch.gt as Tensor), [0, 2, 3, 1]));
  const loss = optimizer.minimize(() => maskedBce(y, model.apply(x) as tf.Tensor), true) as tf.Scalar;
  const l = (await loss.data())[0];
  tf.dispose([x, y, loss]);
  running = step === 0 ? l : 0.9 * running + 0.1 * l;
  step++;
  if (step % Math.max(1, Math.floor(steps / 10)) === 0 || step === 1) {
    console.log(`step ${String(step).padStart(4)}  loss ${running.toFixed(4)}  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}
await loader.close();

// Predict a 3-D block (every z section of crop 1's region) and write it as OME-NGFF.
const raw = await CellMapImage.open({ path: data.rawPath, targetScale: [8, 8, 8], targetVoxelShape: [1, patch, patch] });
const bb = raw.boundingBox;
const out = path.join(dir, "predictions.zarr", "example");
const writer = await CellMapDatasetWriter.open({
  rawPath: data.rawPath,
  targetPath: out,
  classes,
  inputArrays: { raw: { shape: [1, patch, patch], scale: [8, 8, 8] } },
  targetArrays: { pred: { shape: [1, patch, patch], scale: [8, 8, 8] } },
  targetBounds: { pred: { z: [bb.lo[0] + 256, bb.lo[0] + 256 + 8 * 16], y: [bb.lo[1], bb.hi[1]], x: [bb.lo[2], bb.hi[2]] } },
  rawValueTransforms: { type: "Compose", params: { transforms: [{ type: "Normalize" }, { type: "NaNtoNum", params: { nan: 0 } }] } },
  overwrite: true,
});
const infer = new CellMapDataLoader(writer, { batchSize: 8, numWorkers: 2, isTrain: false });
for await (const batch of infer) {
  const pred = tf.tidy(() => {
    const x = tf.transpose(tf.reshape(toTfjsSync(batch.raw as Tensor), [-1, 1, patch, patch]), [0, 2, 3, 1]);
    return tf.transpose(model.apply(x) as tf.Tensor, [0, 3, 1, 2]); // NHWC -> [N, C, y, x]
  });
  await writer.write(batch.idx, { pred: (await pred.data()) as Float32Array });
  pred.dispose();
}
await infer.close();
await writer.finalize();
console.log(`predictions written to ${out}/{${classes.join(",")}} (OME-NGFF, inspect with: npx cellmap-data info ${path.join(out, "mito")})`);

function toTfjsSync(t: Tensor): tf.Tensor {
  return toTfjs<tf.Tensor>(t, tf);
}
