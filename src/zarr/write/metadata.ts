/**
 * Array and group metadata documents. zarrita creates only v3 arrays, so the v2 documents
 * (`.zarray`, `.zattrs`) are written here by hand; plain v3 arrays get the `zarr.json` of
 * zarrita's `create`; sharded v3 arrays get theirs from `shard.ts`.
 */
import * as zarr from "zarrita";
import { CellMapError } from "../../errors.js";
import { fillJson, v2Compressor, v2DtypeString, v3ChunkCodecs, type NormalizedArraySpec } from "./spec.js";
import { shardedArrayDocument } from "./shard.js";

/** Metadata file names an array (or group) location may hold. */
export const METADATA_NAMES = [".zarray", ".zgroup", ".zattrs", "zarr.json"] as const;

/** The v2 documents of `spec`: `.zarray`, plus `.zattrs` when there are attributes or axis names. */
export function v2ArrayDocuments(spec: NormalizedArraySpec): Record<string, unknown> {
  const zarray = {
    zarr_format: 2,
    shape: spec.shape,
    chunks: spec.chunks,
    dtype: v2DtypeString(spec.dtype, spec.endian),
    compressor: v2Compressor(spec.compressor),
    fill_value: fillJson(spec.fillValue),
    order: spec.order.every((v, i) => v === i) || spec.shape.length < 2 ? "C" : "F",
    filters: null,
    dimension_separator: spec.dimensionSeparator,
  };
  const attrs = { ...spec.attributes };
  if (spec.dimensionNames) attrs._ARRAY_DIMENSIONS = spec.dimensionNames;
  const files: Record<string, unknown> = { ".zarray": zarray };
  if (Object.keys(attrs).length > 0) files[".zattrs"] = attrs;
  return files;
}

/**
 * The options of zarrita's `create` for a plain v3 array (declared here rather than taken from
 * zarrita, so that the package's declarations never load zarrita's types).
 */
export interface V3CreateOptions {
  shape: number[];
  chunkShape: number[];
  dtype: NormalizedArraySpec["dtype"];
  codecs: { name: string; configuration: Record<string, unknown> }[];
  fillValue: number;
  chunkSeparator: "." | "/";
  dimensionNames: string[] | undefined;
  attributes: Record<string, unknown>;
}

/** The options of zarrita's `create` for a plain (unsharded) v3 array of `spec`. */
export function v3CreateOptions(spec: NormalizedArraySpec): V3CreateOptions {
  return {
    shape: spec.shape,
    chunkShape: spec.chunks,
    dtype: spec.dtype,
    codecs: v3ChunkCodecs(spec) as V3CreateOptions["codecs"],
    fillValue: spec.fillValue as number,
    chunkSeparator: spec.dimensionSeparator,
    dimensionNames: spec.dimensionNames ?? undefined,
    attributes: spec.attributes,
  };
}

/**
 * Every metadata document of the array `spec` describes (file name inside the array's location
 * to JSON value), as the writer stores them: what a resumed writer compares with what it finds.
 */
export async function arrayDocuments(spec: NormalizedArraySpec): Promise<Record<string, unknown>> {
  if (spec.zarrFormat === 2) return v2ArrayDocuments(spec);
  if (spec.shards) return { "zarr.json": shardedArrayDocument(spec) };
  const mem = new Map<string, Uint8Array>();
  await zarr.create(mem as unknown as zarr.Location<Map<string, Uint8Array>>["store"], v3CreateOptions(spec));
  return { "zarr.json": JSON.parse(new TextDecoder().decode(mem.get("/zarr.json"))) as unknown };
}

/** The metadata documents of a group node (file name to JSON): `.zgroup` (+ `.zattrs` when `attrs` is non-empty) for v2, `zarr.json` for v3. */
export function groupDocuments(format: 2 | 3, attrs: Record<string, unknown> = {}): Record<string, unknown> {
  if (format === 2) return Object.keys(attrs).length > 0 ? { ".zgroup": { zarr_format: 2 }, ".zattrs": attrs } : { ".zgroup": { zarr_format: 2 } };
  if (format === 3) return { "zarr.json": { zarr_format: 3, node_type: "group", attributes: attrs } };
  throw new CellMapError("INVALID_ARGUMENT", `zarr format must be 2 or 3, got ${String(format)}`, "format");
}
