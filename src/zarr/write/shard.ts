/**
 * Sharded Zarr v3 arrays (`sharding_indexed`), written by hand because zarrita cannot write
 * shards (its `set` refuses sharded arrays). Only the shard layout lives here: the inner chunks
 * are encoded by the array's {@link ChunkEncoder} (zarrita's codec pipeline, `encode.ts`), then
 * concatenated and followed by the index: one `(offset, length)` pair of little-endian uint64
 * per inner chunk in C order (2^64-1 twice for a missing chunk), then its CRC-32C
 * (`@aws-crypto/crc32c`, the same the reader's `crc32c` codec verifies).
 */
import { crc32c } from "@aws-crypto/crc32c";
import { CellMapError } from "../../errors.js";
import { sizeOf } from "../../tensor.js";
import { allFill, copyBox } from "./box.js";
import { allocArray, fillJson, fillScalar, v3ChunkCodecs, type ArrayData, type ChunkEncoder, type NormalizedArraySpec } from "./spec.js";

const MISSING = 0xffffffffffffffffn;

/** The `zarr.json` of a sharded array (shard = chunk grid cell, `chunks` = inner chunks). */
export function shardedArrayDocument(spec: NormalizedArraySpec): Record<string, unknown> {
  if (!spec.shards) throw new CellMapError("INVALID_ARGUMENT", "not a sharded array spec", "shards");
  const meta: Record<string, unknown> = {
    zarr_format: 3,
    node_type: "array",
    shape: spec.shape,
    data_type: spec.dtype,
    chunk_grid: { name: "regular", configuration: { chunk_shape: spec.shards } },
    chunk_key_encoding: { name: "default", configuration: { separator: spec.dimensionSeparator } },
    fill_value: fillJson(spec.fillValue),
    codecs: [
      {
        name: "sharding_indexed",
        configuration: {
          chunk_shape: spec.chunks,
          codecs: v3ChunkCodecs(spec),
          index_codecs: [{ name: "bytes", configuration: { endian: "little" } }, { name: "crc32c" }],
          index_location: "end",
        },
      },
    ],
    attributes: spec.attributes,
    storage_transformers: [],
  };
  if (spec.dimensionNames) meta.dimension_names = spec.dimensionNames;
  return meta;
}

/** Options of {@link encodeShard}. */
export interface ShardOptions {
  /** Store inner chunks made only of the fill value as missing. */
  skipEmptyChunks?: boolean;
  /** Inner chunks (coordinates within the shard) to store as missing. */
  omitChunks?: number[][];
}

/**
 * The bytes of shard `coords` from `data` (C order, shard shape, padded at the array edge), or
 * null when every inner chunk is missing and `skipEmptyChunks` is set. Inner chunks wholly
 * outside the array, listed in `omitChunks`, or all fill with `skipEmptyChunks` are missing.
 */
export async function encodeShard(
  spec: NormalizedArraySpec,
  encoder: ChunkEncoder,
  coords: readonly number[],
  data: ArrayData,
  opts: ShardOptions = {},
): Promise<Uint8Array | null> {
  const shardShape = spec.shards!;
  const n = shardShape.length;
  const inner = shardShape.map((s, i) => s / spec.chunks[i]);
  const nInner = sizeOf(inner);
  const omit = new Set((opts.omitChunks ?? []).map((c) => c.join(",")));
  const fill = fillScalar(spec);
  const index = new DataView(new ArrayBuffer(16 * nInner + 4));
  const parts: Uint8Array[] = [];
  let offset = 0;
  const idx = new Array<number>(n).fill(0);
  const chunkBuf = allocArray(spec.dtype, sizeOf(spec.chunks));
  const zero = new Array<number>(n).fill(0);
  for (let c = 0; c < nInner; c++) {
    const start = idx.map((v, i) => v * spec.chunks[i]);
    const outside = start.some((v, i) => coords[i] * shardShape[i] + v >= spec.shape[i]);
    let stored = false;
    if (!outside && !omit.has(idx.join(","))) {
      copyBox(data, shardShape, start, chunkBuf, spec.chunks, zero, spec.chunks);
      if (!(opts.skipEmptyChunks && allFill(chunkBuf, fill))) {
        const enc = await encoder.encode(chunkBuf);
        parts.push(enc.buffer === chunkBuf.buffer ? enc.slice() : enc); // `chunkBuf` is reused
        index.setBigUint64(16 * c, BigInt(offset), true);
        index.setBigUint64(16 * c + 8, BigInt(enc.length), true);
        offset += enc.length;
        stored = true;
      }
    }
    if (!stored) {
      index.setBigUint64(16 * c, MISSING, true);
      index.setBigUint64(16 * c + 8, MISSING, true);
    }
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k] < inner[k]) break;
      idx[k] = 0;
    }
  }
  if (parts.length === 0 && opts.skipEmptyChunks) return null;
  index.setUint32(16 * nInner, crc32c(new Uint8Array(index.buffer, 0, 16 * nInner)), true);
  const out = new Uint8Array(offset + index.byteLength);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  out.set(new Uint8Array(index.buffer), p);
  return out;
}
