/**
 * Writes a whole OME-NGFF multiscale image: the group with its multiscales metadata (NGFF 0.4
 * on Zarr v2, 0.5 on Zarr v3) and one array per level.
 */
import * as path from "node:path";
import { CellMapError } from "../errors.js";
import { multiscalesAttrs, writeGroup, writeParentGroups, ZYX_NM, type NgffAxis, type NgffTransform } from "./ome-metadata.js";
import {
  allocArray,
  createZarrArray,
  type ArrayData,
  type CompressorSpec,
  type DataType,
  type FillValue,
} from "../zarr/write/index.js";

/** Voxel value by index (storage order); numbers are cast to the dtype, bigint for 64-bit ints. */
export type VoxelFn = (idx: number[]) => number | bigint | boolean;

/** One level of {@link writeOmePyramid}. */
export interface PyramidLevel {
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

/** Writes a multiscale image at `dir`: group metadata plus one array per level. */
export async function writeOmePyramid(dir: string, opts: OmePyramidOptions): Promise<WrittenPyramid> {
  const axes = opts.axes ?? ZYX_NM;
  if (opts.format !== 2 && opts.format !== 3) {
    throw new CellMapError("INVALID_ARGUMENT", `format must be 2 or 3, got ${String(opts.format)}`, dir);
  }
  if (opts.levels.length === 0) throw new CellMapError("INVALID_ARGUMENT", "levels must not be empty", dir);
  const levels = opts.levels.map((l, i) => ({
    path: l.path ?? `s${i}`,
    shape: [...l.shape],
    scale: [...l.scale],
    translation: [...l.translation],
  }));
  for (const [i, l] of levels.entries()) {
    if (l.shape.length !== axes.length) {
      throw new CellMapError("INVALID_ARGUMENT", `level ${i} shape has ${l.shape.length} dims but there are ${axes.length} axes`, dir);
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
  if (opts.root !== undefined) await writeParentGroups(opts.root, dir, opts.format);
  await writeGroup(dir, opts.format, groupAttrs);

  for (const [i, level] of opts.levels.entries()) {
    const p = levels[i].path;
    const shards = opts.chunksPerShard ? level.chunks.map((c, k) => c * opts.chunksPerShard![k]) : undefined;
    const w = await createZarrArray(path.join(dir, ...p.split("/")), {
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
    });
    const data = typeof level.data === "function" ? fillFromFunction(opts.dtype, level.shape, level.data) : level.data;
    await w.writeAll(data, { skipEmptyChunks: opts.skipEmptyChunks });
  }
  return { dir, levels, groupAttrs };
}
