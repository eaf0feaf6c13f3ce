/**
 * Micro-benchmark of the heavier value/target transforms on a 64³ float32 patch.
 * Run directly: `node --import tsx bench/transforms.ts`.
 */
import { pathToFileURL } from "node:url";
import { Rng } from "../src/util/rng.js";
import { tensor, type Tensor } from "../src/tensor.js";
import { DistanceTransform, GaussianBlur, GaussianNoise, type ValueTransform } from "../src/transforms/index.js";

const N = 64;

function noisePatch(seed: number): Tensor {
  const rng = new Rng(seed);
  const d = new Float32Array(N * N * N);
  for (let i = 0; i < d.length; i++) d[i] = rng.random();
  return tensor(d, [N, N, N]);
}

/** Blobby binary mask (~40 % foreground, with a NaN slab) so the distance transform has real boundaries. */
function maskPatch(): Tensor {
  const d = new Float32Array(N * N * N);
  for (let z = 0; z < N; z++)
    for (let y = 0; y < N; y++)
      for (let x = 0; x < N; x++) {
        const v = Math.sin(x / 5) + Math.sin(y / 7) + Math.sin(z / 4);
        d[(z * N + y) * N + x] = z >= 56 ? NaN : v > 0.3 ? 1 : 0;
      }
  return tensor(d, [N, N, N]);
}

/** Median ms of `reps` single applications (robust to a busy machine), after a JIT warm-up. */
function time(make: () => Tensor, tr: ValueTransform, reps: number): number {
  const rng = new Rng(1);
  for (let i = 0; i < 2; i++) tr.apply(make(), rng);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = make();
    const t0 = performance.now();
    tr.apply(t, rng);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(reps / 2)];
}

/** ms per 64³ patch for GaussianBlur (3-D, σ = 2), DistanceTransform (anisotropic) and GaussianNoise. */
export async function benchTransforms(): Promise<{ name: string; msPerPatch: number }[]> {
  const base = noisePatch(7);
  const mask = maskPatch();
  const withNaN = (): Tensor => {
    const t = tensor(Float32Array.from(base.data), base.shape);
    for (let i = 0; i < t.data.length; i += 97) t.data[i] = NaN;
    return t;
  };
  const copy = (t: Tensor) => (): Tensor => tensor(Float32Array.from(t.data), t.shape);
  return [
    { name: "GaussianBlur 3-D sigma 2, 64^3", msPerPatch: time(copy(base), new GaussianBlur({ sigma: 2, dims: 3 }), 15) },
    { name: "GaussianBlur 3-D sigma 2, 64^3, 1% NaN", msPerPatch: time(withNaN, new GaussianBlur({ sigma: 2, dims: 3 }), 15) },
    { name: "DistanceTransform 64^3 (voxel 8,4,4 nm)", msPerPatch: time(copy(mask), new DistanceTransform({ voxelSize: [8, 4, 4] }), 15) },
    { name: "GaussianNoise 64^3", msPerPatch: time(copy(base), new GaussianNoise({ std: 0.1 }), 15) },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await benchTransforms()) console.log(`${r.name.padEnd(44)} ${r.msPerPatch.toFixed(2)} ms/patch`);
}
