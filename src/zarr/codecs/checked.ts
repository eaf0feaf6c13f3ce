/**
 * zarrita's default codecs (numcodecs' WASM blosc, zstd and lz4; zarrita's gzip and zlib on
 * `DecompressionStream`) behind checks, so that damaged chunks raise `CORRUPT_CHUNK` on that
 * path too, and a crc32c codec that verifies its checksum (zarrita's only strips it), used on
 * every path: it guards shard indexes.
 *
 * Why: numcodecs' WASM blosc ignores c-blosc's return code, so a frame c-blosc rejects (an
 * inverted payload, a truncated frame: c-blosc reads past the end of its input) comes back as
 * a buffer of the right size holding zeros or whatever the WASM heap held before. The numcodecs
 * lz4 and zstd wrappers do report errors but allocate what a damaged size field claims first.
 *
 * What the wrappers check, before handing the chunk to the WASM codec (cheap unless noted):
 * - blosc: the whole frame structure ({@link verifyBloscFrame}: header sizes against the chunk
 *   and the expected decoded size, block starts, split sizes tiling the frame) and every LZ4
 *   split walked without decoding (lengths, offsets, exact size). zlib and zstd splits cannot
 *   be checked without inflating them, so they are decoded once more into scratch (about one
 *   extra decode on this path); blosclz/snappy splits get the frame checks only. memcpy'd
 *   frames are copied here (c-blosc would only copy them too). Only the frame (its first
 *   `cbytes` bytes) is handed to the WASM codec: bytes after it (z5py writes 16) are ignored,
 *   as c-blosc ignores them.
 * - lz4: the size prefix (expected size, plausible ratio) and the block walk.
 * - zstd: a frame content size larger than the chunk is refused before allocating.
 * - all: any error becomes `CORRUPT_CHUNK`, and the output must have the expected size
 *   (chunk shape × item size) when the metadata determines it.
 *
 * Encoding is not this path's concern: the wrappers encode with the fast codecs' encoders
 * (zarrita's gzip and zlib cannot encode, and its WASM zstd writes no checksum), so what the
 * writer stores does not depend on which decoders a thread chose.
 */

import { crc32c } from "@aws-crypto/crc32c";
import { verifyBloscFrame } from "./blosc/decode.js";
import { checkLz4Block } from "./lz4-block.js";
import { asCorrupt, type BytesToBytesCodec, type ChunkMeta, checkDecodedSize, type CodecEntry, corruptChunk, expectedDecodedSize } from "./shared.js";

/** A codec class as zarrita's registry loaders resolve it. */
export interface RegistryCodecClass {
  fromConfig(config: unknown, meta: ChunkMeta): { encode?(data: Uint8Array): unknown; decode(data: Uint8Array): unknown };
}

type Decoder = { decode(data: Uint8Array): unknown };

/** What the WASM codec decodes instead of the whole chunk (a prefix of it), and the decoded size it must give. */
interface Trimmed {
  input: Uint8Array;
  size: number;
}

type GuardResult = Uint8Array | number | Trimmed | void;

/**
 * Checks run before one family's WASM decode: `before` throws on damage, and may return the
 * decoded size the output must have, the decoded chunk itself (then the WASM codec is not
 * called), or the part of the chunk the WASM codec decodes with that size.
 */
interface Guard {
  before?(data: Uint8Array, expected: number | undefined): Promise<GuardResult> | GuardResult;
  what: string;
}

const GUARDS: Record<"blosc" | "zstd" | "lz4" | "gzip" | "zlib", Guard> = {
  blosc: {
    what: "blosc (wasm)",
    async before(data, expected) {
      const layout = await verifyBloscFrame(data, expected);
      if (layout.header.nbytes === 0) return new Uint8Array(0);
      if (layout.memcpyed) return data.slice(16, 16 + layout.header.nbytes);
      // The frame alone: bytes after it (z5py writes 16) are not part of it, and c-blosc
      // ignores them too.
      const { cbytes, nbytes } = layout.header;
      return cbytes === data.length ? nbytes : { input: data.subarray(0, cbytes), size: nbytes };
    },
  },
  lz4: {
    what: "lz4 (wasm)",
    before(data, expected) {
      if (data.length < 5) throw corruptChunk(`lz4: ${data.length} bytes is too short for a size prefix and a block`);
      const size = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24);
      if (size < 0 || (expected !== undefined && size !== expected)) {
        throw corruptChunk(`lz4: size prefix says ${size} bytes, expected ${expected ?? "a non-negative size"}`);
      }
      if (size > (data.length - 4) * 255 + 64) throw corruptChunk(`lz4: size prefix ${size} is impossible for a ${data.length - 4}-byte block`);
      checkLz4Block(data, 4, data.length, size);
      return size;
    },
  },
  zstd: {
    what: "zstd (wasm)",
    before(data, expected) {
      const size = zstdFrameContentSize(data);
      if (expected !== undefined && size !== undefined && size > expected) {
        throw corruptChunk(`zstd: frame header says ${size} bytes, expected ${expected} (chunk shape × item size)`);
      }
    },
  },
  gzip: { what: "gzip (zarrita)" },
  zlib: { what: "zlib (zarrita)" },
};

/** Content size recorded in the header of the first frame, or undefined (none, skippable frame, too short to tell). */
function zstdFrameContentSize(b: Uint8Array): number | undefined {
  if (b.length < 5 || b[0] !== 0x28 || b[1] !== 0xb5 || b[2] !== 0x2f || b[3] !== 0xfd) return undefined;
  const fhd = b[4];
  const single = (fhd >> 5) & 1;
  const fcsSize = [single, 2, 4, 8][fhd >> 6];
  if (fcsSize === 0) return undefined;
  const at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  if (b.length < at + fcsSize) return undefined;
  let v = 0;
  for (let i = fcsSize - 1; i >= 0; i--) v = v * 256 + b[at + i];
  return fcsSize === 2 ? v + 256 : v;
}

/**
 * A codec class whose instances decode with `Original`'s after the checks of `family`, and
 * encode with `encoder`'s codec for the same configuration.
 */
export function checkedWasmCodec(family: keyof typeof GUARDS, name: string, Original: RegistryCodecClass, encoder: CodecEntry): RegistryCodecClass {
  const guard = GUARDS[family];
  return {
    fromConfig(config: unknown, meta: ChunkMeta): BytesToBytesCodec {
      const inner = Original.fromConfig(config, meta) as Decoder;
      const expected = expectedDecodedSize(name, meta);
      let enc: BytesToBytesCodec | undefined;
      return {
        kind: "bytes_to_bytes",
        encode(data: Uint8Array): Promise<Uint8Array> {
          enc ??= encoder.fromConfig(config, meta);
          return enc.encode(data);
        },
        async decode(data: Uint8Array): Promise<Uint8Array> {
          const early = await guard.before?.(data, expected);
          if (early instanceof Uint8Array) return early;
          const trimmed = typeof early === "object" ? early : undefined;
          const size = trimmed ? trimmed.size : early;
          let out: Uint8Array;
          try {
            out = (await inner.decode(trimmed ? trimmed.input : data)) as Uint8Array;
          } catch (err) {
            throw asCorrupt(err, guard.what);
          }
          if (typeof size === "number" && out.length !== size) throw corruptChunk(`${guard.what}: decoded ${out.length} bytes, the chunk says ${size}`);
          checkDecodedSize(guard.what, out.length, expected);
          return out;
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// crc32c

const MISSING = 0xffffffffffffffffn;

/**
 * The shard index a crc32c codec guards, when its chunk metadata is a shard index's (zarrita
 * decodes indexes as uint64 arrays of shape `[...chunks per shard, 2]` with no fill value).
 */
interface ShardIndex {
  /** Inner chunks per shard, per dimension. */
  grid: number[];
  littleEndian: boolean;
}

function shardIndexOf(meta: ChunkMeta | undefined): ShardIndex | null {
  const m = meta as (ChunkMeta & { fillValue?: unknown }) | undefined;
  if (m?.dataType !== "uint64" || m.fillValue !== null || !Array.isArray(m.shape) || m.shape[m.shape.length - 1] !== 2) return null;
  const bytes = (m.codecs ?? []).find((c) => c?.name === "bytes") as { configuration?: { endian?: string } } | undefined;
  return { grid: m.shape.slice(0, -1), littleEndian: bytes?.configuration?.endian !== "big" };
}

function innerCoords(grid: number[], linear: number): string {
  const c = new Array<number>(grid.length);
  for (let d = grid.length - 1; d >= 0; d--) {
    c[d] = linear % grid[d];
    linear = Math.floor(linear / grid[d]);
  }
  return c.join(",");
}

/** Checks the (offset, length) pairs of a verified shard index. */
function checkShardIndex(body: Uint8Array, ix: ShardIndex): void {
  const n = ix.grid.reduce((a, b) => a * b, 1);
  if (body.length !== 16 * n) throw corruptChunk(`shard index has ${body.length} bytes, expected ${16 * n} for ${n} inner chunks`);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let c = 0; c < n; c++) {
    const off = dv.getBigUint64(16 * c, ix.littleEndian);
    const len = dv.getBigUint64(16 * c + 8, ix.littleEndian);
    if (off === MISSING && len === MISSING) continue;
    const where = `shard index entry of inner chunk ${innerCoords(ix.grid, c)} (within the shard)`;
    if (off === MISSING || len === MISSING) throw corruptChunk(`${where}: offset ${off} and length ${len} (only one marks the chunk missing)`);
    if (off + len > BigInt(Number.MAX_SAFE_INTEGER)) throw corruptChunk(`${where}: offset ${off} + length ${len} is beyond any file`);
  }
}

/**
 * The v3 `crc32c` codec, verifying: a chunk whose last 4 bytes are not the CRC-32C of the rest
 * raises `CORRUPT_CHUNK` (zarrita's codec drops them unread). On a shard index it also checks
 * the index's size and that every entry is either missing (both fields 2^64-1) or an
 * offset and length that fit in a file; whether the range lies inside the shard file is
 * checked by the store when the chunk is fetched. The CRC is `@aws-crypto/crc32c`'s; the
 * shard writer (`src/zarr/write/shard.ts`) uses the same.
 */
export class Crc32cCodec implements BytesToBytesCodec {
  readonly kind = "bytes_to_bytes" as const;
  constructor(private readonly index: ShardIndex | null = null) {}

  static fromConfig(_config: unknown, meta: ChunkMeta): Crc32cCodec {
    return new Crc32cCodec(shardIndexOf(meta));
  }

  async decode(data: Uint8Array): Promise<Uint8Array> {
    if (data.length < 4) throw corruptChunk(`crc32c: ${data.length} bytes is too short for a checksum`);
    const n = data.length - 4;
    const body = new Uint8Array(data.buffer, data.byteOffset, n);
    const stored = (data[n] | (data[n + 1] << 8) | (data[n + 2] << 16) | (data[n + 3] << 24)) >>> 0;
    const actual = crc32c(body);
    if (stored !== actual) {
      const what = this.index ? "shard index" : "chunk";
      throw corruptChunk(`crc32c: the ${what} checksum is 0x${stored.toString(16).padStart(8, "0")}, its ${n} bytes give 0x${actual.toString(16).padStart(8, "0")}`);
    }
    if (this.index) checkShardIndex(body, this.index);
    return body;
  }

  async encode(data: Uint8Array): Promise<Uint8Array> {
    const out = new Uint8Array(data.length + 4);
    out.set(data);
    new DataView(out.buffer).setUint32(data.length, crc32c(data), true);
    return out;
  }

  computeEncodedSize(size: number): number {
    return size + 4;
  }
}
