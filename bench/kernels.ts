/**
 * `npm run bench -- kernels`: ns per output voxel of each sampling kernel, on one thread, for a
 * 64^3 float32 patch sampled from a uint8 level (the std/aug workloads' raw and label arrays),
 * region and output in a data plane as in the loader. Rows: the grid (identity, mirror,
 * rotation about z, rotation about z/y/x), the interpolation, the kernel that ran, and
 * ns/voxel (fastest of 15 runs after a warm-up: the machine is shared, and the fastest is the least disturbed), plus the region copy (chunk cache → scratch).
 */
import { performance } from "node:perf_hooks";
import { samplePatch, sampleWindow, type LevelGeometry, type PatchGrid, axisAligned } from "../src/image/resample.js";
import { DataPlane } from "../src/plane/plane.js";
import { affineIndex } from "../src/image/grid.js";
import { stridesOf } from "../src/tensor.js";
import { releaseSectionMaps } from "../src/image/rotated.js";

/** One row. */
export interface KernelRow {
  grid: string;
  interpolation: string;
  kernel: string;
  region: string;
  /** ns per output voxel for the first array of a grid (maps computed). */
  nsPerVoxel: number;
  /** ns per output voxel for each further array sharing the grid (the maps kept: the classes of a crop). */
  nsPerVoxelShared: number;
}

function rot(axis: "z" | "y" | "x", deg: number): number[][] {
  const c = Math.cos((deg * Math.PI) / 180);
  const s = Math.sin((deg * Math.PI) / 180);
  if (axis === "z")
    return [
      [1, 0, 0],
      [0, c, -s],
      [0, s, c],
    ];
  if (axis === "y")
    return [
      [c, 0, s],
      [0, 1, 0],
      [-s, 0, c],
    ];
  return [
    [c, -s, 0],
    [s, c, 0],
    [0, 0, 1],
  ];
}

function mul(a: number[][], b: number[][]): number[][] {
  return a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
}

/** Runs the kernel rows. */
export function benchKernels(): KernelRow[] {
  const N = 256;
  const g: LevelGeometry = { size: [N, N, N], scale: [8, 8, 8], translation: [4, 4, 4], real: [true, true, true] };
  const plane = DataPlane.create({ cacheBytes: 0, transitBytes: 0, batchBytes: 64 * 64 * 64 * 4, batchSlots: 1, scratchBytes: 64 * 2 ** 20 });
  const arena = plane.scratch!;
  const out = plane.batchView(0, 0, 64 ** 3);
  const grids: [string, number[][] | null][] = [
    ["identity (off-grid)", null],
    [
      "mirror y",
      [
        [1, 0, 0],
        [0, -1, 0],
        [0, 0, 1],
      ],
    ],
    ["rotate z 23°", rot("z", 23)],
    ["rotate z 23°, y 11°, x -7°", mul(mul(rot("z", 23), rot("y", 11)), rot("x", -7))],
  ];
  const rows: KernelRow[] = [];
  for (const [name, matrix] of grids) {
    for (const interpolation of ["nearest", "linear"] as const) {
      // Off-grid centre for the identity grid, so the separable passes run (not a plain copy).
      const center = matrix ? [1024, 1024, 1024] : [1027, 1024, 1025];
      const grid: PatchGrid = { center, shape: [64, 64, 64], scale: [8, 8, 8], matrix };
      const win = sampleWindow(g, grid);
      const rshape = win.hi.map((h, w) => h - win.lo[w] + 1);
      const rsize = rshape.reduce((a, b) => a * b, 1);
      const stride = stridesOf(rshape);
      const source = !axisAligned(matrix);
      const at = arena.alloc(rsize * (source ? 1 : 4));
      const region = source ? new Uint8Array(arena.buffer, at, rsize) : new Float32Array(arena.buffer, at, rsize);
      for (let i = 0; i < rsize; i++) region[i] = (i * 2654435761) >>> 24;
      const opt = { interpolation, pad: true, padValue: 0 };
      const time = (fresh: boolean): number => {
        const run = () => {
          if (fresh) releaseSectionMaps(arena);
          const t = performance.now();
          samplePatch(g, grid, opt, region, win, stride, out, arena);
          return performance.now() - t;
        };
        for (let r = 0; r < 3; r++) run();
        let best = Infinity;
        for (let r = 0; r < 15; r++) best = Math.min(best, run());
        return (best * 1e6) / 64 ** 3;
      };
      const a = matrix ? affineIndex(g, grid) : null;
      const sections = a && a.dj[0] === 0 && a.dk[0] === 0 && a.di[1] === 0 && a.di[2] === 0;
      const kernel = !source
        ? interpolation === "nearest"
          ? "separable nearest (f32 region)"
          : "separable linear (f32 region)"
        : sections
          ? interpolation === "linear"
            ? "zrot_linear4_u8"
            : "zrot_nearest_u8"
          : interpolation === "nearest"
            ? "gen_nearest_map + gather (map per sample)"
            : "gen_linear_u8";
      rows.push({ grid: name, interpolation, kernel, region: rshape.join("x"), nsPerVoxel: time(true), nsPerVoxelShared: time(false) });
      arena.release(at);
    }
  }
  return rows;
}
