/**
 * `renderBatchGrid`: a PNG of what the model sees — one row per sample, columns = the input's
 * mid-slice (grey, contrast-stretched), then each class target (dark→yellow, NaN = unknown in
 * magenta), then each class prediction if given. The target's field of view is outlined in red
 * on the input when the array specs are known.
 */
import { PNG } from "pngjs";
import { CellMapError } from "../errors.js";
import type { Tensor } from "../tensor.js";

/** Options of {@link renderBatchGrid}. */
export interface BatchGridOptions {
  /** Input key (default: the first tensor in the batch). */
  inputKey?: string;
  /** Target key (default: the second tensor in the batch, if any). */
  targetKey?: string;
  /** Class names, in channel order (only used to check channel counts). */
  classes?: readonly string[];
  /** Model outputs `[N, C, ...spatial]` aligned with the target. */
  predictions?: Tensor;
  /** At most this many samples (rows). Default 4. */
  maxSamples?: number;
  /** Array specs (shape in voxels, scale in nm) to outline the target's field of view. */
  inputArray?: { shape: number[]; scale: number[] };
  targetArray?: { shape: number[]; scale: number[] };
  /** Pixel size of one tile (default: the largest slice edge, at least 64). */
  tileSize?: number;
}

/** RGB of an unknown (NaN) label voxel. */
export const NAN_RGB: readonly [number, number, number] = [200, 0, 200];
/** RGB of the field-of-view outline. */
export const FOV_RGB: readonly [number, number, number] = [255, 0, 0];
const GAP = 2;

function isTensor(v: unknown): v is Tensor {
  return !!v && typeof v === "object" && (v as Tensor).data instanceof Float32Array && Array.isArray((v as Tensor).shape);
}

/** Mid-slice `[h, w]` of channel `c` of sample `n` of a `[N, C, (z,) y, x]` tensor. */
function midSlice(t: Tensor, n: number, c: number): { data: Float32Array; h: number; w: number } {
  const sp = t.shape.slice(2);
  const [d, h, w] = sp.length === 3 ? sp : [1, sp[0], sp[1]];
  const per = d * h * w;
  const z = Math.floor(d / 2);
  const start = (n * t.shape[1] + c) * per + z * h * w;
  return { data: t.data.subarray(start, start + h * w), h, w };
}

/** Dark blue (0) to yellow (1) ramp. */
function ramp(v: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, v));
  return [Math.round(20 + 235 * x), Math.round(20 + 200 * x), Math.round(80 * (1 - x))];
}

/** Renders the grid and returns PNG bytes. */
export function renderBatchGrid(batch: Record<string, unknown>, opts: BatchGridOptions = {}): Uint8Array {
  const keys = Object.keys(batch).filter((k) => isTensor(batch[k]));
  const inputKey = opts.inputKey ?? keys[0];
  const targetKey = opts.targetKey ?? keys.find((k) => k !== inputKey);
  const input = batch[inputKey];
  if (!isTensor(input) || input.shape.length < 4) {
    throw new CellMapError("INVALID_ARGUMENT", `batch["${inputKey}"] must be a tensor [N, C, (z,) y, x]`, inputKey);
  }
  const target = targetKey ? (batch[targetKey] as Tensor | undefined) : undefined;
  if (target && (!isTensor(target) || target.shape[0] !== input.shape[0])) {
    throw new CellMapError("INVALID_ARGUMENT", `batch["${targetKey}"] must be a tensor with ${input.shape[0]} samples`, targetKey);
  }
  const pred = opts.predictions;
  if (pred && (pred.shape[0] !== input.shape[0] || (target && pred.shape[1] !== target.shape[1]))) {
    throw new CellMapError("INVALID_ARGUMENT", `predictions shape [${pred.shape}] does not match the target's samples/classes`, "predictions");
  }
  if (opts.classes && target && opts.classes.length !== target.shape[1]) {
    throw new CellMapError("INVALID_ARGUMENT", `${opts.classes.length} classes given but the target has ${target.shape[1]} channels`, "classes");
  }
  const nSamples = Math.min(input.shape[0], opts.maxSamples ?? 4);
  const nClass = target ? target.shape[1] : 0;
  const cols = 1 + nClass + (pred ? pred.shape[1] : 0);
  const slices = [input, target, pred].filter(isTensor).map((t) => midSlice(t, 0, 0));
  const tile = opts.tileSize ?? Math.max(64, ...slices.map((s) => Math.max(s.h, s.w)));
  const png = new PNG({ width: cols * tile + (cols - 1) * GAP, height: nSamples * tile + (nSamples - 1) * GAP });
  png.data.fill(255);

  const put = (x: number, y: number, rgb: readonly number[]) => {
    const p = (y * png.width + x) * 4;
    png.data[p] = rgb[0];
    png.data[p + 1] = rgb[1];
    png.data[p + 2] = rgb[2];
    png.data[p + 3] = 255;
  };
  const drawTile = (row: number, col: number, s: { data: Float32Array; h: number; w: number }, colour: (v: number) => readonly number[]) => {
    const x0 = col * (tile + GAP);
    const y0 = row * (tile + GAP);
    for (let y = 0; y < tile; y++) {
      const sy = Math.min(s.h - 1, Math.floor((y * s.h) / tile));
      for (let x = 0; x < tile; x++) {
        const v = s.data[sy * s.w + Math.min(s.w - 1, Math.floor((x * s.w) / tile))];
        put(x0 + x, y0 + y, Number.isNaN(v) ? NAN_RGB : colour(v));
      }
    }
  };

  for (let n = 0; n < nSamples; n++) {
    const raw = midSlice(input, n, 0);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of raw.data) if (v === v) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const span = hi > lo ? hi - lo : 1;
    drawTile(n, 0, raw, (v) => {
      const g = Math.round((255 * (v - lo)) / span);
      return [g, g, g];
    });
    for (let c = 0; c < nClass; c++) drawTile(n, 1 + c, midSlice(target!, n, c), ramp);
    if (pred) for (let c = 0; c < pred.shape[1]; c++) drawTile(n, 1 + nClass + c, midSlice(pred, n, c), ramp);
    if (opts.inputArray && opts.targetArray) outline(n);
  }

  /** Red rectangle: the target's world extent (y, x) centred in the input tile. */
  function outline(row: number): void {
    const ia = opts.inputArray!, ta = opts.targetArray!;
    const last = (v: number[], k: number) => v[v.length - k];
    const frac = (k: number) => (last(ta.shape, k) * last(ta.scale, k)) / (last(ia.shape, k) * last(ia.scale, k));
    const fy = Math.min(1, frac(2)), fx = Math.min(1, frac(1));
    const x0 = Math.round(((1 - fx) / 2) * tile), x1 = Math.max(x0, Math.round(((1 + fx) / 2) * tile) - 1);
    const y0 = Math.round(((1 - fy) / 2) * tile), y1 = Math.max(y0, Math.round(((1 + fy) / 2) * tile) - 1);
    const oy = row * (tile + GAP);
    for (let x = x0; x <= x1; x++) { put(x, oy + y0, FOV_RGB); put(x, oy + y1, FOV_RGB); }
    for (let y = y0; y <= y1; y++) { put(x0, oy + y, FOV_RGB); put(x1, oy + y, FOV_RGB); }
  }
  return PNG.sync.write(png);
}
