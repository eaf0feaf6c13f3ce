/**
 * `renderBatchGrid`: a PNG of what the model sees — one tile row per sample (every sample of the
 * batch unless `maxSamples` says otherwise), columns = the input's mid-slice (grey,
 * contrast-stretched per tile), then each class target (dark blue 0 → yellow 1, NaN = unknown in
 * magenta), then each class prediction if given. The slice is the middle one along `axis`
 * (`z`: a y·x section, `y`: z·x, `x`: z·y). The target's field of view is outlined in red on
 * the input when the array specs are known.
 *
 * Small patches are enlarged (nearest neighbour, by a whole factor) to tiles of at least
 * `minTileSize` px along their longer edge. Above the tiles each column is titled (input key,
 * class names, `p:` + class for predictions); below them a legend shows the unknown colour, the
 * field-of-view outline and the label ramp. Text uses the built-in 5x7 font (`font.ts`).
 * {@link batchGridLayout} gives the geometry, to find tiles and legend swatches in the picture.
 */
import { PNG } from "pngjs";
import { CellMapError } from "../errors.js";
import type { AnyTensor } from "../tensor.js";
import { drawText, fitText, GLYPH_H, textWidth } from "./font.js";

/** The axis a slice is taken across. */
export type SliceAxis = "z" | "y" | "x";

/** Options of {@link renderBatchGrid}. */
export interface BatchGridOptions {
  /** Input key (default: the first tensor in the batch). */
  inputKey?: string;
  /** Target key (default: the second tensor in the batch, if any). */
  targetKey?: string;
  /** Class names, in channel order (column titles; their count must match the target's channels). */
  classes?: readonly string[];
  /** Model outputs `[N, C, ...spatial]` aligned with the target. */
  predictions?: AnyTensor;
  /** At most this many samples (rows). Default: every sample of the batch. */
  maxSamples?: number;
  /** Array specs (shape in voxels, scale in nm) to outline the target's field of view. */
  inputArray?: { shape: number[]; scale: number[] };
  targetArray?: { shape: number[]; scale: number[] };
  /** Slice across this axis, through the middle (default `z`; 2-D patches allow only `z`). */
  axis?: SliceAxis;
  /** Tile size in px along the input slice's longer edge (default: enlarged to `minTileSize`). */
  tileSize?: number;
  /** Smallest tile edge when `tileSize` is not given (default 128). */
  minTileSize?: number;
  /** Draw column titles and the legend (default true). */
  legend?: boolean;
}

/** Where things are in the picture (px). */
export interface BatchGridLayout {
  width: number;
  height: number;
  rows: number;
  cols: number;
  /** Tile size (all tiles share it; slices are stretched to it). */
  tileW: number;
  tileH: number;
  /** Gap between tiles. */
  gap: number;
  /** Left edge of the first tile column. */
  gridLeft: number;
  /** Top of the first tile row (below the column titles). */
  gridTop: number;
  /** Column titles, in column order. */
  columns: string[];
  /** Text scale (font pixel = `textScale`² px). */
  textScale: number;
  /** Legend swatches (absent without a legend; `fov` only when the outline is drawn). */
  legend?: {
    unknown: { x: number; y: number; size: number };
    fov?: { x: number; y: number; size: number };
    ramp: { x: number; y: number; w: number; h: number };
  };
}

/** RGB of an unknown (NaN) label voxel. */
export const NAN_RGB: readonly [number, number, number] = [200, 0, 200];
/** RGB of the field-of-view outline. */
export const FOV_RGB: readonly [number, number, number] = [255, 0, 0];
/** RGB of the titles and legend text. */
export const TEXT_RGB: readonly [number, number, number] = [0, 0, 0];
const GAP = 2;
/** Outer margin (in font pixels) when titles and legend are drawn. */
const MARGIN = 2;

function isTensor(v: unknown): v is AnyTensor {
  return !!v && typeof v === "object" && ArrayBuffer.isView((v as AnyTensor).data) && Array.isArray((v as AnyTensor).shape);
}

interface Slice {
  data: Float64Array;
  h: number;
  w: number;
}

/** Spatial extent `[d, h, w]` of a `[N, C, (z,) y, x]` tensor (d = 1 for 2-D). */
function spatial(t: AnyTensor): [number, number, number] {
  const sp = t.shape.slice(2);
  return sp.length === 3 ? [sp[0], sp[1], sp[2]] : [1, sp[0], sp[1]];
}

/** Mid-slice across `axis` of channel `c` of sample `n` (rows × cols: z→y·x, y→z·x, x→z·y). */
function midSlice(t: AnyTensor, n: number, c: number, axis: SliceAxis): Slice {
  const [d, h, w] = spatial(t);
  const base = (n * t.shape[1] + c) * d * h * w;
  const src = t.data;
  if (axis === "z") {
    const k = Math.floor(d / 2);
    const start = base + k * h * w;
    return { data: Float64Array.from(src.subarray(start, start + h * w)), h, w };
  }
  const rows = d;
  const cols = axis === "y" ? w : h;
  const out = new Float64Array(rows * cols);
  const k = Math.floor((axis === "y" ? h : w) / 2);
  for (let z = 0; z < d; z++) {
    for (let j = 0; j < cols; j++) {
      out[z * cols + j] = src[axis === "y" ? base + z * h * w + k * w + j : base + z * h * w + j * w + k];
    }
  }
  return { data: out, h: rows, w: cols };
}

/** Dark blue (0) to yellow (1) ramp. */
function ramp(v: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, v));
  return [Math.round(20 + 235 * x), Math.round(20 + 200 * x), Math.round(80 * (1 - x))];
}

interface Resolved {
  input: AnyTensor;
  target?: AnyTensor;
  pred?: AnyTensor;
  inputKey: string;
  nSamples: number;
  nClass: number;
  axis: SliceAxis;
}

function resolve(batch: Record<string, unknown>, opts: BatchGridOptions): Resolved {
  const keys = Object.keys(batch).filter((k) => isTensor(batch[k]));
  const inputKey = opts.inputKey ?? keys[0];
  const targetKey = opts.targetKey ?? keys.find((k) => k !== inputKey);
  const input = batch[inputKey];
  if (!isTensor(input) || input.shape.length < 4 || input.shape.length > 5) {
    throw new CellMapError("INVALID_ARGUMENT", `batch["${inputKey}"] must be a tensor [N, C, (z,) y, x]`, inputKey);
  }
  const target = targetKey ? (batch[targetKey] as AnyTensor | undefined) : undefined;
  if (target && (!isTensor(target) || target.shape[0] !== input.shape[0] || target.shape.length < 4)) {
    throw new CellMapError("INVALID_ARGUMENT", `batch["${targetKey}"] must be a tensor [N, C, (z,) y, x] with ${input.shape[0]} samples`, targetKey);
  }
  const pred = opts.predictions;
  if (pred && (pred.shape[0] !== input.shape[0] || (target && pred.shape[1] !== target.shape[1]))) {
    throw new CellMapError("INVALID_ARGUMENT", `predictions shape [${pred.shape}] does not match the target's samples/classes`, "predictions");
  }
  if (opts.classes && target && opts.classes.length !== target.shape[1]) {
    throw new CellMapError("INVALID_ARGUMENT", `${opts.classes.length} classes given but the target has ${target.shape[1]} channels`, "classes");
  }
  const axis = opts.axis ?? "z";
  if (axis !== "z" && axis !== "y" && axis !== "x") throw new CellMapError("INVALID_ARGUMENT", `axis must be z, y or x, got ${String(axis)}`, "axis");
  if (axis !== "z") {
    for (const [k, t] of [
      [inputKey, input],
      [targetKey, target],
      ["predictions", pred],
    ] as const) {
      if (t && spatial(t)[0] === 1) {
        throw new CellMapError("INVALID_ARGUMENT", `slicing across ${axis} needs 3-D patches, but batch["${k}"] is 2-D [${t.shape}]; only --axis z applies`, "axis");
      }
    }
  }
  const max = opts.maxSamples ?? input.shape[0];
  return { input, target, pred, inputKey, nSamples: Math.max(0, Math.min(input.shape[0], max)), nClass: target ? target.shape[1] : 0, axis };
}

interface LegendItem {
  kind: "unknown" | "fov" | "ramp";
  text: string;
  w: number;
}

function layoutOf(r: Resolved, opts: BatchGridOptions): BatchGridLayout {
  const s = midSlice(r.input, 0, 0, r.axis);
  const long = Math.max(s.h, s.w);
  const min = opts.minTileSize ?? 128;
  const tileLong = opts.tileSize ?? long * Math.max(1, Math.ceil(min / long));
  const tileH = Math.max(1, Math.round((tileLong * s.h) / long));
  const tileW = Math.max(1, Math.round((tileLong * s.w) / long));
  const nPred = r.pred ? r.pred.shape[1] : 0;
  const cols = 1 + r.nClass + nPred;
  const classNames = Array.from({ length: r.nClass }, (_, c) => opts.classes?.[c] ?? `class ${c}`);
  const columns = [r.inputKey, ...classNames, ...Array.from({ length: nPred }, (_, c) => `p:${classNames[c] ?? `class ${c}`}`)];
  const gridW = cols * tileW + (cols - 1) * GAP;
  const gridH = r.nSamples * tileH + Math.max(0, r.nSamples - 1) * GAP;
  const legend = opts.legend ?? true;
  const ts = tileW >= 96 ? 2 : 1;
  if (!legend) return { width: gridW, height: Math.max(1, gridH), rows: r.nSamples, cols, tileW, tileH, gap: GAP, gridLeft: 0, gridTop: 0, columns, textScale: ts };

  const lineH = GLYPH_H * ts;
  const m = MARGIN * ts;
  const gridTop = m + lineH + 3 * ts;
  const sw = lineH; // swatch edge
  const items: LegendItem[] = [{ kind: "unknown", text: "unknown (nan)", w: 0 }];
  if (opts.inputArray && opts.targetArray) items.push({ kind: "fov", text: "target field of view", w: 0 });
  items.push({ kind: "ramp", text: "label 0 to 1", w: 0 });
  for (const it of items) it.w = (it.kind === "ramp" ? 4 * sw : sw) + 2 * ts + textWidth(it.text, ts);
  const inner = Math.max(gridW, ...items.map((it) => it.w));
  // Flow the legend items left to right, wrapping at the picture's width.
  const spacing = 6 * ts;
  let x = m;
  let y = gridTop + gridH + 4 * ts;
  const pos: Record<string, { x: number; y: number }> = {};
  for (const it of items) {
    if (x > m && x + it.w > m + inner) {
      x = m;
      y += lineH + 3 * ts;
    }
    pos[it.kind] = { x, y };
    x += it.w + spacing;
  }
  const width = inner + 2 * m;
  const height = y + lineH + m;
  return {
    width,
    height,
    rows: r.nSamples,
    cols,
    tileW,
    tileH,
    gap: GAP,
    gridLeft: m,
    gridTop,
    columns,
    textScale: ts,
    legend: {
      unknown: { ...pos.unknown, size: sw },
      ...(pos.fov ? { fov: { ...pos.fov, size: sw } } : {}),
      ramp: { ...pos.ramp, w: 4 * sw, h: sw },
    },
  };
}

/** The geometry {@link renderBatchGrid} draws with these arguments (validates like it). */
export function batchGridLayout(batch: Record<string, unknown>, opts: BatchGridOptions = {}): BatchGridLayout {
  return layoutOf(resolve(batch, opts), opts);
}

/** Renders the grid and returns PNG bytes. */
export function renderBatchGrid(batch: Record<string, unknown>, opts: BatchGridOptions = {}): Uint8Array {
  const r = resolve(batch, opts);
  const L = layoutOf(r, opts);
  const { tileW, tileH, gridLeft, gridTop } = L;
  const png = new PNG({ width: L.width, height: L.height });
  png.data.fill(255);

  const put = (x: number, y: number, rgb: readonly number[]) => {
    if (x < 0 || y < 0 || x >= png.width || y >= png.height) return;
    const p = (y * png.width + x) * 4;
    png.data[p] = rgb[0];
    png.data[p + 1] = rgb[1];
    png.data[p + 2] = rgb[2];
    png.data[p + 3] = 255;
  };
  const text = (t: string, x: number, y: number) => drawText(t, x, y, L.textScale, (px, py) => put(px, py, TEXT_RGB));
  const drawTile = (row: number, col: number, s: Slice, colour: (v: number) => readonly number[]) => {
    const x0 = gridLeft + col * (tileW + GAP);
    const y0 = gridTop + row * (tileH + GAP);
    for (let y = 0; y < tileH; y++) {
      const sy = Math.min(s.h - 1, Math.floor((y * s.h) / tileH));
      for (let x = 0; x < tileW; x++) {
        const v = s.data[sy * s.w + Math.min(s.w - 1, Math.floor((x * s.w) / tileW))];
        put(x0 + x, y0 + y, Number.isNaN(v) ? NAN_RGB : colour(v));
      }
    }
  };
  const rect = (x0: number, y0: number, w: number, h: number, rgb: readonly number[], fill: boolean) => {
    for (let y = y0; y < y0 + h; y++) {
      for (let x = x0; x < x0 + w; x++) {
        if (fill || y === y0 || y === y0 + h - 1 || x === x0 || x === x0 + w - 1) put(x, y, rgb);
      }
    }
  };

  /** Red rectangle: the target's world extent in the slice plane, centred in the input tile. */
  const outline = (row: number) => {
    const ia = opts.inputArray!,
      ta = opts.targetArray!;
    // Spec axes are (z,) y, x: the tile's rows/cols are y/x (axis z), z/x (axis y), z/y (axis x).
    const [rk, ck] = r.axis === "z" ? [2, 1] : r.axis === "y" ? [3, 1] : [3, 2];
    const last = (v: number[], k: number) => v[v.length - k];
    const frac = (k: number) => (last(ta.shape, k) * last(ta.scale, k)) / (last(ia.shape, k) * last(ia.scale, k));
    const fy = Math.min(1, frac(rk)),
      fx = Math.min(1, frac(ck));
    if (!Number.isFinite(fy) || !Number.isFinite(fx)) return;
    const x0 = Math.round(((1 - fx) / 2) * tileW),
      x1 = Math.max(x0, Math.round(((1 + fx) / 2) * tileW) - 1);
    const y0 = Math.round(((1 - fy) / 2) * tileH),
      y1 = Math.max(y0, Math.round(((1 + fy) / 2) * tileH) - 1);
    rect(gridLeft + x0, gridTop + row * (tileH + GAP) + y0, x1 - x0 + 1, y1 - y0 + 1, FOV_RGB, false);
  };

  const nPred = r.pred ? r.pred.shape[1] : 0;
  for (let n = 0; n < r.nSamples; n++) {
    const raw = midSlice(r.input, n, 0, r.axis);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of raw.data)
      if (v === v) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    const span = hi > lo ? hi - lo : 1;
    drawTile(n, 0, raw, (v) => {
      const g = Math.round((255 * (v - lo)) / span);
      return [g, g, g];
    });
    for (let c = 0; c < r.nClass; c++) drawTile(n, 1 + c, midSlice(r.target!, n, c, r.axis), ramp);
    for (let c = 0; c < nPred; c++) drawTile(n, 1 + r.nClass + c, midSlice(r.pred!, n, c, r.axis), ramp);
    if (opts.inputArray && opts.targetArray) outline(n);
  }

  if (L.legend) {
    L.columns.forEach((title, c) => text(fitText(title, tileW, L.textScale), gridLeft + c * (tileW + GAP), MARGIN * L.textScale));
    const { unknown, fov, ramp: rp } = L.legend;
    const ts = L.textScale;
    rect(unknown.x, unknown.y, unknown.size, unknown.size, NAN_RGB, true);
    text("unknown (nan)", unknown.x + unknown.size + 2 * ts, unknown.y);
    if (fov) {
      rect(fov.x, fov.y, fov.size, fov.size, FOV_RGB, false);
      if (ts > 1) rect(fov.x + 1, fov.y + 1, fov.size - 2, fov.size - 2, FOV_RGB, false);
      text("target field of view", fov.x + fov.size + 2 * ts, fov.y);
    }
    for (let x = 0; x < rp.w; x++) {
      const rgb = ramp(x / Math.max(1, rp.w - 1));
      for (let y = 0; y < rp.h; y++) put(rp.x + x, rp.y + y, rgb);
    }
    text("label 0 to 1", rp.x + rp.w + 2 * ts, rp.y);
  }
  return PNG.sync.write(png);
}
