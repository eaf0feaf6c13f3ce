/**
 * The one pyramid writer: OME-NGFF multiscale images (NGFF 0.4 on Zarr v2, 0.5 on Zarr v3),
 * through the store layer (local directories or `s3://`).
 * - {@link writeOmePyramid}: a whole image with every level's data given (fixtures, demos);
 * - {@link pyramidLevels} and {@link writeDownsampledLevel}: the factor-2 level geometry and
 *   level `l` computed from level `l - 1` (`ImageWriter.finalize`), one output chunk at a time.
 */
import { CellMapError } from "../errors.js";
import type { ZarrArray } from "../zarr/array.js";
import { ChunkCache } from "../zarr/cache.js";
import { LocalChunkStore } from "../zarr/chunk-store.js";
import { readRegionInto } from "../zarr/read.js";
import {
  allocArray,
  childKey,
  createZarrArray,
  openTarget,
  type ArrayData,
  type CompressorSpec,
  type DataType,
  type FillValue,
  type TargetOptions,
  type WriteTarget,
  type ZarrArrayWriter,
} from "../zarr/write/index.js";
import { downsample, type DownsampleMethod } from "./downsample.js";
import { castInto, type StoredDtype } from "./image-options.js";
import { multiscalesAttrs, writeGroup, writeParentGroups, ZYX_NM, type NgffAxis, type NgffTransform } from "./ome-metadata.js";

/** Voxel value by index (storage order); numbers are cast to the dtype, bigint for 64-bit ints. */
export type VoxelFn = (idx: number[]) => number | bigint | boolean;

/** One level of {@link writeOmePyramid}. */
interface PyramidLevel {
  /** Array path inside the group (default `s<i>`). */
  path?: string;
  shape: number[];
  /** Per-axis voxel size (one entry per axis). */
  scale: number[];
  /** Per-axis world position of voxel 0's centre. */
  translation: number[];
  chunks: number[];
  /** Full array in C order, or a function evaluated at every voxel. */
  data: ArrayData | VoxelFn;
}

/** Options of {@link writeOmePyramid}. */
export interface OmePyramidOptions {
  /** 2 -> Zarr v2 + NGFF 0.4, 3 -> Zarr v3 + NGFF 0.5. */
  format: 2 | 3;
  /** Default z, y, x in nanometres. */
  axes?: NgffAxis[];
  dtype: DataType;
  levels: PyramidLevel[];
  codec?: CompressorSpec | null;
  order?: "C" | "F" | number[];
  endian?: "little" | "big";
  fillValue?: FillValue;
  dimensionSeparator?: "." | "/";
  /** v3 only: shard = this many chunks per dimension (the same for every level). */
  chunksPerShard?: number[];
  /** Extra attributes of the s0 array (e.g. `cellmap.annotation`). */
  attrs?: Record<string, unknown>;
  /** Extra attributes of the multiscale group (merged next to the NGFF keys). */
  groupAttrs?: Record<string, unknown>;
  name?: string;
  topLevelTransforms?: NgffTransform[];
  skipEmptyChunks?: boolean;
  /** If set, write empty group nodes in every directory from `root` down to `dir`'s parent. */
  root?: string;
  /** Replace existing metadata (see `ZarrArraySpec.overwrite`). */
  overwrite?: boolean;
  /** Request options of `s3://` targets. */
  http?: TargetOptions["http"];
}

/** What was written, per level. */
export interface WrittenPyramid {
  dir: string;
  levels: { path: string; shape: number[]; scale: number[]; translation: number[] }[];
  /** The group attributes written. */
  groupAttrs: Record<string, unknown>;
}

/** Evaluates `fn` at every index of `shape` into a new C-ordered array of `dtype`. */
export function fillFromFunction(dtype: DataType, shape: number[], fn: VoxelFn): ArrayData {
  const total = shape.reduce((a, b) => a * b, 1);
  const out = allocArray(dtype, total);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  const n = shape.length;
  const idx = new Array<number>(n).fill(0);
  const o = out as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < total; i++) {
    const v = fn(idx);
    o[i] = big ? (typeof v === "bigint" ? v : BigInt(Number(v))) : Number(v);
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** Writes a multiscale image at `dir` (a local directory, an `s3://` URL or a store location): group metadata plus one array per level. */
export async function writeOmePyramid(dir: WriteTarget, opts: OmePyramidOptions): Promise<WrittenPyramid> {
  const node = openTarget(dir, { http: opts.http });
  const where = node.location;
  const axes = opts.axes ?? ZYX_NM;
  if (opts.format !== 2 && opts.format !== 3) {
    throw new CellMapError("INVALID_ARGUMENT", `format must be 2 or 3, got ${String(opts.format)}`, where);
  }
  if (opts.levels.length === 0) throw new CellMapError("INVALID_ARGUMENT", "levels must not be empty", where);
  const levels = opts.levels.map((l, i) => ({
    path: l.path ?? `s${i}`,
    shape: [...l.shape],
    scale: [...l.scale],
    translation: [...l.translation],
  }));
  for (const [i, l] of levels.entries()) {
    if (l.shape.length !== axes.length) {
      throw new CellMapError("INVALID_ARGUMENT", `level ${i} shape has ${l.shape.length} dims but there are ${axes.length} axes`, where);
    }
  }
  const ms = multiscalesAttrs({
    version: opts.format === 2 ? "0.4" : "0.5",
    name: opts.name,
    axes,
    levels,
    topLevelTransforms: opts.topLevelTransforms,
  });
  const groupAttrs = { ...(opts.groupAttrs ?? {}), ...ms };
  if (opts.root !== undefined) {
    if (typeof dir !== "string") throw new CellMapError("INVALID_ARGUMENT", "root needs the image as a path or URL", where);
    await writeParentGroups(opts.root, dir, opts.format, { http: opts.http });
  }
  await writeGroup(node, opts.format, groupAttrs);

  for (const [i, level] of opts.levels.entries()) {
    const p = levels[i].path;
    const shards = opts.chunksPerShard ? level.chunks.map((c, k) => c * opts.chunksPerShard![k]) : undefined;
    const w = await createZarrArray(
      { store: node.store, path: childKey(node.path, p), location: `${where}/${p}` },
      {
        zarrFormat: opts.format,
        shape: level.shape,
        chunks: level.chunks,
        dtype: opts.dtype,
        compressor: opts.codec ?? null,
        order: opts.order,
        endian: opts.endian,
        fillValue: opts.fillValue,
        dimensionSeparator: opts.dimensionSeparator,
        attributes: i === 0 ? opts.attrs : undefined,
        dimensionNames: opts.format === 3 ? axes.map((a) => a.name) : undefined,
        shards,
        overwrite: opts.overwrite,
      },
    );
    const data = typeof level.data === "function" ? fillFromFunction(opts.dtype, level.shape, level.data) : level.data;
    await w.writeAll(data, { skipEmptyChunks: opts.skipEmptyChunks });
  }
  return { dir: where, levels, groupAttrs };
}

/** One level of a factor-2 pyramid (spatial axes only). */
export interface LevelGeometry {
  path: string;
  shape: number[];
  scale: number[];
  translation: number[];
}

/**
 * Levels `s0` … `s<n>` of a factor-2 pyramid over spatial axes: level `l` has shape
 * `ceil(shape / 2^l)`, scale `scale · 2^l` and translation `t0 + (s_l - s0) / 2` (the centre of
 * the block of s0 voxels each voxel summarises), which is what the NGFF metadata states.
 */
export function pyramidLevels(shape: readonly number[], scale: readonly number[], translation: readonly number[], n: number): LevelGeometry[] {
  const out: LevelGeometry[] = [];
  let s = [...shape];
  for (let l = 0; l <= n; l++) {
    const f = 2 ** l;
    const sc = scale.map((v) => v * f);
    out.push({ path: `s${l}`, shape: [...s], scale: sc, translation: translation.map((t, a) => t + (sc[a] - scale[a]) / 2) });
    s = s.map((v) => Math.ceil(v / 2));
  }
  return out;
}

/** Options of {@link writeDownsampledLevel}. */
export interface DownsampleLevelOptions {
  /** Whether axis 0 is a channel axis (kept as it is). */
  channels: boolean;
  method: DownsampleMethod;
  /** The dtype `dst` stores (values are rounded and clipped into it). */
  dtype: StoredDtype;
  fillValue: number;
  signal?: AbortSignal;
}

/**
 * Writes every chunk of `dst` (level `l`) from `src` (level `l - 1`, the same axes): each
 * output chunk is the {@link downsample} (factor 2 on every spatial axis) of the source box it
 * covers, read as float64 (`readRegionInto`) through a private cache-less chunk store, so a
 * level never reads chunks of an earlier output from the process-wide cache. Chunks of `dst`
 * span the whole channel axis.
 */
export async function writeDownsampledLevel(src: ZarrArray, dst: ZarrArrayWriter, opts: DownsampleLevelOptions): Promise<void> {
  const lead = opts.channels ? 1 : 0;
  const C = opts.channels ? dst.spec.shape[0] : 1;
  const spatial = dst.spec.shape.length - lead;
  if (spatial !== 2 && spatial !== 3) throw new CellMapError("INVALID_ARGUMENT", `expected 2 or 3 spatial axes, got ${spatial}`, dst.location);
  if (opts.channels && dst.spec.chunks[0] !== C) throw new CellMapError("INVALID_ARGUMENT", "chunks must span the channel axis", dst.location);
  const to3 = (v: readonly number[]) => (spatial === 2 ? [1, ...v.slice(lead)] : v.slice(lead));
  const srcShape3 = to3(src.shape);
  const dstShape3 = to3(dst.spec.shape);
  const chunk3 = to3(dst.spec.chunks);
  const factors = spatial === 2 ? [1, 2, 2] : [2, 2, 2];
  const grid = dstShape3.map((n, a) => Math.ceil(n / chunk3[a]));
  const store = new LocalChunkStore(new ChunkCache(0));
  const chunkLen = C * chunk3[0] * chunk3[1] * chunk3[2];
  const full = (v3: number[], c: number) => [...(lead ? [c] : []), ...(spatial === 2 ? v3.slice(1) : v3)];
  for (let z = 0; z < grid[0]; z++) {
    for (let y = 0; y < grid[1]; y++) {
      for (let x = 0; x < grid[2]; x++) {
        const k = [z, y, x];
        const lo = k.map((v, a) => v * chunk3[a] * factors[a]);
        const hi = lo.map((v, a) => Math.min(v + chunk3[a] * factors[a], srcShape3[a]));
        const size = lo.map((v, a) => hi[a] - v);
        const box = new Float64Array(C * size[0] * size[1] * size[2]);
        await readRegionInto(src, full(lo, 0), full(hi, C), box, store, opts.signal);
        const ds = downsample(box, [C, ...size], factors, opts.method);
        const out = new Float64Array(chunkLen).fill(opts.fillValue);
        const [, dz, dy, dx] = ds.shape;
        for (let c = 0; c < C; c++) {
          for (let zz = 0; zz < dz; zz++) {
            for (let yy = 0; yy < dy; yy++) {
              const s = ((c * dz + zz) * dy + yy) * dx;
              out.set(ds.data.subarray(s, s + dx), ((c * chunk3[0] + zz) * chunk3[1] + yy) * chunk3[2]);
            }
          }
        }
        const typed = allocArray(opts.dtype, out.length);
        castInto(out, typed, opts.dtype);
        await dst.writeChunk(full(k, 0), typed);
      }
    }
  }
}
