/**
 * Blosc1 frame header and structure (v3 `blosc`, v2 `numcodecs.blosc`): parsing and validation
 * only, no decompression.
 *
 * Frame layout (c-blosc 1.x, format version 2): a 16-byte header
 * `[version, versionlz, flags, typesize, nbytes:i32, blocksize:i32, cbytes:i32]`, then,
 * unless the frame is memcpy'd, one i32 start offset per block; each block holds one or
 * `typesize` "split" streams, each prefixed by its i32 compressed size (a size equal to
 * the split's decoded size means it is stored raw).
 *
 * Every frame is first checked whole by {@link parseBloscFrame}: header sizes against the
 * chunk, block starts and split sizes within the frame, and the blocks tiling the frame
 * exactly (c-blosc writes them back to back), so a damaged offset cannot make a block decode
 * another block's bytes. The decoder (`decode.ts`) then only follows the layout it returns.
 *
 * The frame is the chunk's first `cbytes` bytes: bytes after it are not part of it and are
 * ignored, as c-blosc (and so zarr-python, zarrita) ignores them. z5py writes 16 such bytes
 * after every blosc frame. A chunk shorter than `cbytes` is truncated: `CORRUPT_CHUNK`.
 */

import { CellMapError } from "../../../errors.js";
import { corruptChunk } from "../shared.js";

/** The 16-byte blosc1 header. */
export interface BloscHeader {
  version: number;
  versionlz: number;
  flags: number;
  typesize: number;
  /** Decoded size in bytes. */
  nbytes: number;
  blocksize: number;
  /** Size of the whole frame in bytes (the chunk may hold more bytes after it, which are ignored). */
  cbytes: number;
}

/** Header flag bits (blosc.h). */
export const DOSHUFFLE = 0x1;
const MEMCPYED = 0x2;
export const DOBITSHUFFLE = 0x4;
const FUTURE_FLAG = 0x8; // c-blosc 1.x refuses frames with this bit
const DONT_SPLIT = 0x10;

/** Inner compressor codes (flags >> 5). */
export const FORMAT_BLOSCLZ = 0;
export const FORMAT_LZ4 = 1; // lz4 and lz4hc
export const FORMAT_SNAPPY = 2;
export const FORMAT_ZLIB = 3;
export const FORMAT_ZSTD = 4;
export const FORMAT_NAMES = ["blosclz", "lz4", "snappy", "zlib", "zstd"];

export const HEADER_SIZE = 16;
const VERSION_FORMAT = 2;
// Splitting rules shared with c-blosc's decoder (kept for frames older than the split flag).
const MAX_SPLITS = 16;
const MIN_BUFFERSIZE = 128;

function readI32(b: Uint8Array, p: number): number {
  return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
}

/** Parses the 16-byte blosc1 header. @throws `CORRUPT_CHUNK` if `src` is shorter. */
export function readBloscHeader(src: Uint8Array): BloscHeader {
  if (src.length < HEADER_SIZE) {
    throw corruptChunk(`blosc: ${src.length} bytes is shorter than the 16-byte frame header`);
  }
  return {
    version: src[0],
    versionlz: src[1],
    flags: src[2],
    typesize: src[3],
    nbytes: readI32(src, 4),
    blocksize: readI32(src, 8),
    cbytes: readI32(src, 12),
  };
}

/** The compressor format version c-blosc 1.x writes (and requires) for every inner compressor. */
const VERSION_LZ = 1;

/** A blosc1 frame checked by {@link parseBloscFrame}: where every split lies. */
export interface BloscLayout {
  header: BloscHeader;
  memcpyed: boolean;
  nblocks: number;
  /** Split `i` of the frame: data at `splits[3i]`, `splits[3i+1]` compressed bytes, `splits[3i+2]` decoded bytes. */
  splits: Int32Array;
  /** Block `j` holds splits `firstSplit[j]` .. `firstSplit[j+1] - 1`. */
  firstSplit: Int32Array;
}

/**
 * Checks the structure of a blosc1 frame without decoding it and returns where its splits lie:
 * the header against the chunk (`cbytes` at most its length: the frame is its first `cbytes`
 * bytes, and bytes after it are ignored; `nbytes` = `expectedSize`), the block
 * sizes, every block start and split size within the frame, and the blocks covering
 * `[header + block starts, cbytes)` exactly, without gaps or overlaps, as c-blosc writes them.
 *
 * @throws CellMapError `CORRUPT_CHUNK` naming the first inconsistency; `UNSUPPORTED` for frame
 *   versions other than blosc1's.
 */
export function parseBloscFrame(src: Uint8Array, expectedSize?: number): BloscLayout {
  const h = readBloscHeader(src);
  if (h.version !== VERSION_FORMAT) {
    throw new CellMapError("UNSUPPORTED", `blosc: frame format version ${h.version} (only blosc1 frames, version ${VERSION_FORMAT}, are supported)`);
  }
  if (h.flags & FUTURE_FLAG) throw new CellMapError("UNSUPPORTED", `blosc: unknown header flag 0x08 (flags 0x${h.flags.toString(16)})`);
  if (h.cbytes < HEADER_SIZE) throw corruptChunk(`blosc: header says the frame is ${h.cbytes} bytes, less than its 16-byte header`);
  // Only a chunk shorter than its frame is damage: c-blosc decodes the first cbytes bytes and
  // ignores any after them (z5py writes 16 bytes after every frame; zarr-python and zarrita
  // read such chunks). Everything below stays within [0, cbytes).
  if (h.cbytes > src.length) {
    throw corruptChunk(`blosc: header says the frame is ${h.cbytes} bytes but the chunk has only ${src.length} (truncated)`);
  }
  if (h.nbytes < 0) throw corruptChunk(`blosc: negative decoded size ${h.nbytes} in the header`);
  if (expectedSize !== undefined && h.nbytes !== expectedSize) {
    throw corruptChunk(`blosc: header says ${h.nbytes} decoded bytes, expected ${expectedSize} (chunk shape × item size)`);
  }
  const empty = { header: h, memcpyed: false, nblocks: 0, splits: new Int32Array(0), firstSplit: new Int32Array(1) };
  if (h.nbytes === 0) return empty;
  if (h.typesize === 0) throw corruptChunk("blosc: typesize 0 in the header");
  if (h.blocksize <= 0) throw corruptChunk(`blosc: invalid blocksize ${h.blocksize} in the header`);
  if (h.flags & MEMCPYED) {
    if (h.cbytes !== h.nbytes + HEADER_SIZE) {
      throw corruptChunk(`blosc: memcpy'd frame of ${h.cbytes} bytes cannot hold ${h.nbytes} bytes`);
    }
    return { ...empty, memcpyed: true };
  }
  if (h.versionlz !== VERSION_LZ) throw corruptChunk(`blosc: compressor format version ${h.versionlz} in the header (c-blosc writes ${VERSION_LZ})`);

  const { typesize, nbytes, blocksize, cbytes } = h;
  // c-blosc never writes (and refuses to read) blocks larger than the buffer.
  if (blocksize > nbytes) throw corruptChunk(`blosc: blocksize ${blocksize} exceeds the decoded size ${nbytes}`);
  const nblocks = Math.ceil(nbytes / blocksize);
  const leftover = nbytes % blocksize;
  const tableEnd = HEADER_SIZE + 4 * nblocks;
  if (tableEnd > cbytes) throw corruptChunk(`blosc: frame of ${cbytes} bytes is too short for ${nblocks} block offsets`);
  const dontSplit = (h.flags & DONT_SPLIT) !== 0;
  const firstSplit = new Int32Array(nblocks + 1);
  const starts = new Int32Array(nblocks);
  const ends = new Int32Array(nblocks);
  const out: number[] = [];
  let sorted = true;
  for (let j = 0; j < nblocks; j++) {
    const isLeftover = j === nblocks - 1 && leftover > 0;
    const bsize = isLeftover ? leftover : blocksize;
    const nsplits = !dontSplit && typesize <= MAX_SPLITS && bsize / typesize >= MIN_BUFFERSIZE && !isLeftover ? typesize : 1;
    if (bsize % nsplits !== 0) throw corruptChunk(`blosc: block ${j} of ${bsize} bytes cannot be split into ${nsplits} streams`);
    const neblock = bsize / nsplits;
    let pos = readI32(src, HEADER_SIZE + 4 * j);
    if (pos < tableEnd || pos > cbytes) throw corruptChunk(`blosc: block ${j} starts at ${pos}, outside the frame (${tableEnd}..${cbytes})`);
    starts[j] = pos;
    if (j > 0 && pos < starts[j - 1]) sorted = false;
    firstSplit[j] = out.length / 3;
    for (let k = 0; k < nsplits; k++) {
      if (pos > cbytes - 4) throw corruptChunk(`blosc: block ${j} split ${k} header runs past the end of the frame`);
      const csize = readI32(src, pos);
      pos += 4;
      if (csize <= 0 || csize > cbytes - pos) throw corruptChunk(`blosc: block ${j} split ${k} claims ${csize} bytes, past the end of the frame`);
      out.push(pos, csize, neblock);
      pos += csize;
    }
    ends[j] = pos;
  }
  firstSplit[nblocks] = out.length / 3;
  // The blocks must tile the rest of the frame (c-blosc writes them back to back, in any order).
  const order = Array.from({ length: nblocks }, (_, j) => j);
  if (!sorted) order.sort((a, b) => starts[a] - starts[b]);
  let at = tableEnd;
  for (const j of order) {
    if (starts[j] !== at) {
      throw corruptChunk(`blosc: block ${j} starts at ${starts[j]}, expected ${at} (blocks must cover the frame without gaps or overlaps)`);
    }
    at = ends[j];
  }
  if (at !== cbytes) throw corruptChunk(`blosc: the blocks end at byte ${at} of a ${cbytes}-byte frame`);
  return { header: h, memcpyed: false, nblocks, splits: Int32Array.from(out), firstSplit };
}
