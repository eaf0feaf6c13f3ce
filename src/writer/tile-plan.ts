/**
 * The tile plan of one output image: its tiling (tiling.ts) in internal `z, y, x` coordinates
 * (2-D images get a virtual z axis of one voxel), the s0 chunk each tile owns, which tiles'
 * windows overlap which chunks (blending), the blend weights, and the checks on a tile's values.
 * Pure geometry: no I/O.
 */
import { invalid } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { axisNormaliser, windowWeights } from "./blend.js";
import type { Config } from "./image-options.js";
import { axisContributors, axisFootprint, makeTiling, tileBox, tileCoords, tileId, type Tiling } from "./tiling.js";

/** A tile in API axis order (voxel indices of s0). */
export interface TileInfo {
  id: number;
  windowStart: number[];
  coreStart: number[];
  coreEnd: number[];
  /** World centre (nm) of the window: where the model's input patch is centred. */
  center: number[];
}

/** Shape with its size-1 axes removed (they do not change the C-order layout). */
function squeeze(shape: readonly number[]): number[] {
  return shape.filter((s) => s !== 1);
}

/** Whether `shape` describes the same C-order layout as `expected` (up to size-1 axes). */
export function sameLayout(shape: readonly number[], expected: readonly number[]): boolean {
  const a = squeeze(shape);
  const b = squeeze(expected);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The Float32Array of a tile's values, checked against `expected` (`[C,] ...window`). */
export function tileValues(data: Tensor | Float32Array, expected: readonly number[], where: string): Float32Array {
  const n = expected.reduce((p, v) => p * v, 1);
  if (data instanceof Float32Array) {
    if (data.length !== n) throw invalid(where, `expected ${n} values (shape [${expected}]), got a Float32Array of ${data.length}`);
    return data;
  }
  if (!data || !(data.data instanceof Float32Array) || !Array.isArray(data.shape)) {
    throw invalid(where, "expected a Tensor ({ data: Float32Array, shape }) or a Float32Array");
  }
  if (!sameLayout(data.shape, expected) || data.data.length !== n) {
    throw invalid(where, `tensor shape [${data.shape}] does not match the expected [${expected}] (size-1 axes aside)`);
  }
  return data.data;
}

/** Tiles, chunks and blend weights of one image (see the module comment). */
export class TilePlan {
  /** Tiling in internal z, y, x. */
  readonly t3: Tiling;
  /** Window (model output) shape, internal z, y, x. */
  readonly window3: number[];
  /** s0 chunk (core) shape, internal z, y, x. */
  readonly chunk3: number[];
  /** Channels (1 without a channel axis). */
  readonly C: number;
  /** Whether tiles are blended through partial windows (overlap with `linear`/`gaussian`). */
  readonly blending: boolean;
  /** Per-axis window weights and their normalisers (blending only). */
  readonly weights3: Float64Array[] = [];
  readonly norm3: Float64Array[] = [];
  private readonly contrib3: number[][][] = [];
  private readonly twoD: boolean;
  private readonly hasChannels: boolean;

  constructor(private readonly cfg: Config) {
    const d = cfg.axes.length;
    this.twoD = d === 2;
    this.hasChannels = cfg.nChannels !== null;
    const pad3 = (v: number[], fill: number) => (d === 3 ? [...v] : [fill, ...v]);
    this.window3 = pad3(cfg.writeShape, 1);
    this.t3 = makeTiling(pad3(cfg.shape, 1), this.window3, pad3(cfg.overlap, 0), cfg.path);
    this.chunk3 = this.t3.axes.map((a) => a.core);
    this.C = cfg.nChannels ?? 1;
    this.blending = cfg.blend !== "crop" && cfg.overlap.some((h) => h > 0);
    if (this.blending) {
      this.weights3 = this.t3.axes.map((ax) => windowWeights(ax.window, ax.halo, cfg.blend));
      this.norm3 = this.t3.axes.map((ax, a) => axisNormaliser(ax, this.weights3[a]));
      this.contrib3 = this.t3.axes.map((ax) => axisContributors(ax));
    }
  }

  get count(): number {
    return this.t3.count;
  }

  /** s0 chunk shape on disk (`[c,] ...core`). */
  get chunks(): number[] {
    return [...(this.hasChannels ? [this.C] : []), ...this.toApi(this.chunk3)];
  }

  /** Elements of one chunk (all channels). */
  get chunkLength(): number {
    return this.C * this.chunk3[0] * this.chunk3[1] * this.chunk3[2];
  }

  /** Elements of one window (all channels). */
  get windowLength(): number {
    return this.C * this.window3[0] * this.window3[1] * this.window3[2];
  }

  /** Internal z, y, x as API axes (drops the virtual z of 2-D images). */
  toApi(v: number[]): number[] {
    return this.twoD ? v.slice(1) : [...v];
  }

  /** On-disk chunk coordinates (any level) of internal chunk coordinates `k`. */
  diskCoords(k: number[]): number[] {
    return [...(this.hasChannels ? [0] : []), ...this.toApi(k)];
  }

  /** On-disk s0 chunk coordinates of tile/chunk `id` (range-checked). */
  diskChunk(id: number): number[] {
    return this.diskCoords(tileCoords(this.t3, id));
  }

  /** Window, core and world centre of tile `id` (API axis order). */
  tile(id: number): TileInfo {
    const b = tileBox(this.t3, id);
    const windowStart = this.toApi(b.windowStart);
    const { translation, scale, writeShape } = this.cfg;
    const center = windowStart.map((w, a) => translation[a] + (w + (writeShape[a] - 1) / 2) * scale[a]);
    return { id, windowStart, coreStart: this.toApi(b.coreStart), coreEnd: this.toApi(b.coreEnd), center };
  }

  /** Whether tile `id`'s chunk is exactly its whole window (no cropping needed). */
  windowIsChunk(id: number): boolean {
    const b = tileBox(this.t3, id);
    return [0, 1, 2].every((a) => b.windowStart[a] === b.coreStart[a] && this.window3[a] === this.chunk3[a] && b.coreEnd[a] - b.coreStart[a] === this.chunk3[a]);
  }

  /** Tile `id`'s core cut out of its window values (all channels) into a chunk buffer padded with `fill`. */
  cutCore(id: number, values: Float32Array, fill: number): Float32Array {
    const b = tileBox(this.t3, id);
    const [P0, P1, P2] = this.window3;
    const [c0, c1, c2] = this.chunk3;
    const out = new Float32Array(this.chunkLength).fill(fill);
    const n = b.coreEnd[2] - b.coreStart[2];
    for (let c = 0; c < this.C; c++) {
      for (let z = b.coreStart[0]; z < b.coreEnd[0]; z++) {
        for (let y = b.coreStart[1]; y < b.coreEnd[1]; y++) {
          const src = ((c * P0 + (z - b.windowStart[0])) * P1 + (y - b.windowStart[1])) * P2 + (b.coreStart[2] - b.windowStart[2]);
          const dst = ((c * c0 + (z - b.coreStart[0])) * c1 + (y - b.coreStart[1])) * c2;
          out.set(values.subarray(src, src + n), dst);
        }
      }
    }
    return out;
  }

  /** Calls `fn` for every chunk that tile `id`'s window overlaps. */
  forFootprint(id: number, fn: (chunk: number) => void): void {
    const c = tileCoords(this.t3, id);
    const r = c.map((k, a) => axisFootprint(this.t3.axes[a], k));
    for (let z = r[0][0]; z <= r[0][1]; z++) {
      for (let y = r[1][0]; y <= r[1][1]; y++) {
        for (let x = r[2][0]; x <= r[2][1]; x++) fn(tileId(this.t3, [z, y, x]));
      }
    }
  }

  /** Tiles whose windows overlap chunk `k`, in C order (blending only). */
  contributors(k: number): number[] {
    const c = tileCoords(this.t3, k);
    const [lz, ly, lx] = c.map((v, a) => this.contrib3[a][v]);
    const out: number[] = [];
    for (const z of lz) for (const y of ly) for (const x of lx) out.push(tileId(this.t3, [z, y, x]));
    return out;
  }
}
