/**
 * Blosc1 frame decoder in TypeScript (v3 `blosc`, v2 `numcodecs.blosc`).
 *
 * Frame layout (c-blosc 1.x, format version 2): a 16-byte header
 * `[version, versionlz, flags, typesize, nbytes:i32, blocksize:i32, cbytes:i32]`, then,
 * unless the frame is memcpy'd, one i32 start offset per block; each block holds one or
 * `typesize` "split" streams, each prefixed by its i32 compressed size (a size equal to
 * the split's decoded size means it is stored raw). Blocks are then byte- or
 * bit-unshuffled. Inner compressors handled here: lz4/lz4hc (TS), zstd (zstd-napi, else
 * numcodecs' WASM zstd), zlib (`node:zlib`). Anything else (blosclz, snappy) is handed to
 * numcodecs' WASM blosc for that chunk. Encoding always goes through numcodecs' WASM blosc.
 *
 * Every frame is first checked whole by {@link parseBloscFrame}: header sizes against the
 * chunk, block starts and split sizes within the frame, and the blocks tiling the frame
 * exactly (c-blosc writes them back to back), so a damaged offset cannot make a block decode
 * another block's bytes. {@link verifyBloscFrame} adds the checks of every compressed split
 * for decoders that do not report damage themselves (see `checked.ts`).
 */

import { inflateSync } from "node:zlib";
import { CellMapError } from "../../errors.js";
import { checkLz4Block, decodeLz4Block } from "./lz4-block.js";
import {
  allocUninit,
  asCorrupt,
  type BytesToBytesCodec,
  type ChunkMeta,
  type CodecEntry,
  corruptChunk,
  expectedDecodedSize,
  itemSize,
  loadWasmBlosc,
  loadWasmZstd,
  type NumcodecsCodec,
} from "./shared.js";
import { nativeZstd, zstdDecodeInto } from "./zstd.js";

/** The 16-byte blosc1 header. */
export interface BloscHeader {
  version: number;
  versionlz: number;
  flags: number;
  typesize: number;
  /** Decoded size in bytes. */
  nbytes: number;
  blocksize: number;
  /** Size of the whole frame in bytes. */
  cbytes: number;
}

/** Header flag bits (blosc.h). */
const DOSHUFFLE = 0x1;
const MEMCPYED = 0x2;
const DOBITSHUFFLE = 0x4;
const FUTURE_FLAG = 0x8; // c-blosc 1.x refuses frames with this bit
const DONT_SPLIT = 0x10;

/** Inner compressor codes (flags >> 5). */
const FORMAT_BLOSCLZ = 0;
const FORMAT_LZ4 = 1; // lz4 and lz4hc
const FORMAT_SNAPPY = 2;
const FORMAT_ZLIB = 3;
const FORMAT_ZSTD = 4;
const FORMAT_NAMES = ["blosclz", "lz4", "snappy", "zlib", "zstd"];

const HEADER_SIZE = 16;
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

/** The name of the frame's inner compressor (`lz4` also covers lz4hc). */
export function bloscCompressor(header: BloscHeader): string {
  return FORMAT_NAMES[header.flags >> 5] ?? `unknown(${header.flags >> 5})`;
}

/**
 * Decodes one split stream `src[s, s + csize)` into exactly `dst[d, d + n)`.
 * Returns a promise only on the WASM zstd path.
 */
type InnerDecoder = (src: Uint8Array, s: number, csize: number, dst: Uint8Array, d: number, n: number) => void | Promise<void>;

function lz4Inner(src: Uint8Array, s: number, csize: number, dst: Uint8Array, d: number, n: number): void {
  const end = decodeLz4Block(src, dst, s, s + csize, d, d + n);
  if (end !== d + n) throw corruptChunk(`blosc/lz4: split decoded to ${end - d} bytes, expected ${n}`);
}

function zlibInner(src: Uint8Array, s: number, csize: number, dst: Uint8Array, d: number, n: number): void {
  let out: Uint8Array;
  try {
    out = inflateSync(src.subarray(s, s + csize), { chunkSize: Math.max(64, n), maxOutputLength: Math.max(1, n) });
  } catch (err) {
    throw asCorrupt(err, "blosc/zlib");
  }
  if (out.length !== n) throw corruptChunk(`blosc/zlib: split decoded to ${out.length} bytes, expected ${n}`);
  dst.set(out, d);
}

function zstdNativeInner(src: Uint8Array, s: number, csize: number, dst: Uint8Array, d: number, n: number): void {
  const z = nativeZstd();
  if (!z) throw new CellMapError("UNSUPPORTED", "blosc/zstd: native zstd became unavailable");
  const got = zstdDecodeInto(z, src.subarray(s, s + csize), dst.subarray(d, d + n));
  if (got !== n) throw corruptChunk(`blosc/zstd: split decoded to ${got} bytes, expected ${n}`);
}

let wasmZstdCodec: Promise<NumcodecsCodec> | undefined;
async function zstdWasmInner(src: Uint8Array, s: number, csize: number, dst: Uint8Array, d: number, n: number): Promise<void> {
  wasmZstdCodec ??= loadWasmZstd().then((Z) => Z.fromConfig({ id: "zstd", level: 0 }));
  let out: Uint8Array;
  try {
    out = await (await wasmZstdCodec).decode(src.subarray(s, s + csize));
  } catch (err) {
    throw asCorrupt(err, "blosc/zstd (wasm)");
  }
  if (out.length !== n) throw corruptChunk(`blosc/zstd: split decoded to ${out.length} bytes, expected ${n}`);
  dst.set(out, d);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Byte-unshuffle one block of `size` bytes: `src` holds byte 0 of every element, then byte 1,
 * ... (exported for tests and benchmarks).
 */
export function unshuffle(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, size: number): void {
  const n = Math.floor(size / typesize);
  let from = 0;
  if (
    LITTLE_ENDIAN &&
    (typesize === 2 || (typesize & 3) === 0) &&
    n >= 4 &&
    ((src.byteOffset + s) & 3) === 0 &&
    ((dst.byteOffset + d) & 3) === 0 &&
    (n & 3) === 0
  ) {
    unshuffleWords(src, s, dst, d, typesize, n);
    from = n;
  }
  if (from < n) {
    for (let j = 0; j < typesize; j++) {
      const row = s + j * n;
      for (let e = from, o = d + from * typesize + j; e < n; e++, o += typesize) dst[o] = src[row + e];
    }
  }
  // Bytes past the last whole element are stored unshuffled.
  const done = n * typesize;
  for (let i = done; i < size; i++) dst[d + i] = src[s + i];
}

/**
 * Word-at-a-time byte-unshuffle for typesize 2 or a multiple of 4 (aligned, n % 4 == 0): one
 * 32-bit word per byte-row covers 4 elements; 4x4 byte transposes regroup them.
 */
function unshuffleWords(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, n: number): void {
  const nw = n >>> 2; // row length in words
  const rows = new Int32Array(src.buffer, src.byteOffset + s, typesize * nw);
  const out = new Int32Array(dst.buffer, dst.byteOffset + d, typesize * nw);
  if (typesize === 2) {
    for (let c = 0; c < nw; c++) {
      const a = rows[c], b = rows[nw + c];
      // elements 4c..4c+3: [a0 b0 a1 b1] [a2 b2 a3 b3]
      out[2 * c] = (a & 0xff) | ((b & 0xff) << 8) | ((a & 0xff00) << 8) | ((b & 0xff00) << 16);
      out[2 * c + 1] = ((a >>> 16) & 0xff) | ((b >>> 8) & 0xff00) | ((a >>> 8) & 0xff0000) | (b & 0xff000000);
    }
    return;
  }
  const wpe = typesize >>> 2; // output words per element
  for (let g = 0; g < wpe; g++) {
    const r = 4 * g * nw; // rows 4g..4g+3 hold bytes 4g..4g+3 of every element
    for (let c = 0; c < nw; c++) {
      let w0 = rows[r + c], w1 = rows[r + nw + c], w2 = rows[r + 2 * nw + c], w3 = rows[r + 3 * nw + c];
      // 4x4 byte transpose: afterwards w_q holds bytes 4g..4g+3 of element 4c+q.
      let t = ((w0 >>> 8) ^ w1) & 0x00ff00ff; w1 ^= t; w0 ^= t << 8;
      t = ((w2 >>> 8) ^ w3) & 0x00ff00ff; w3 ^= t; w2 ^= t << 8;
      t = ((w0 >>> 16) ^ w2) & 0x0000ffff; w2 ^= t; w0 ^= t << 16;
      t = ((w1 >>> 16) ^ w3) & 0x0000ffff; w3 ^= t; w1 ^= t << 16;
      const o = 4 * c * wpe + g;
      out[o] = w0;
      out[o + wpe] = w1;
      out[o + 2 * wpe] = w2;
      out[o + 3 * wpe] = w3;
    }
  }
}

/**
 * Bit-unshuffle one block (bitshuffle's layout, as c-blosc 1.x writes it): for byte j of the
 * element type and bit k, a row of `n/8` bytes holds bit k of byte j of every element, element
 * `8b+i` at bit i of row byte b. Blocks whose element count is not a multiple of 8 were stored
 * unshuffled (format version 2), and trailing bytes past the last element are copied.
 * (Exported for tests and benchmarks.)
 */
export function bitunshuffle(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, size: number): void {
  const n = Math.floor(size / typesize);
  if (n % 8 !== 0) {
    dst.set(src.subarray(s, s + size), d);
    return;
  }
  const rowLen = n >>> 3;
  // 32-bit word path when the bit-rows are 4-byte aligned; bytes left over go the byte path.
  let from = 0;
  if (LITTLE_ENDIAN && rowLen >= 4 && (rowLen & 3) === 0 && ((src.byteOffset + s) & 3) === 0) {
    bitunshuffleWords(src, s, dst, d, typesize, rowLen);
    from = rowLen;
  }
  if (from < rowLen) bitunshuffleBytes(src, s, dst, d, typesize, rowLen, from);
  const done = n * typesize;
  for (let i = done; i < size; i++) dst[d + i] = src[s + i];
}

/** Byte-at-a-time bit-unshuffle of row bytes `b >= from` (any alignment). */
function bitunshuffleBytes(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, rowLen: number, from: number): void {
  const r1 = rowLen, r2 = 2 * rowLen, r3 = 3 * rowLen, r4 = 4 * rowLen, r5 = 5 * rowLen, r6 = 6 * rowLen, r7 = 7 * rowLen;
  const step = typesize;
  for (let j = 0; j < typesize; j++) {
    const base = s + j * 8 * rowLen;
    for (let b = from; b < rowLen; b++) {
      const p = base + b;
      // Gather one byte from each of the 8 bit-rows (row k -> byte k of the 64-bit word hi:lo)...
      let lo = src[p] | (src[p + r1] << 8) | (src[p + r2] << 16) | (src[p + r3] << 24);
      let hi = src[p + r4] | (src[p + r5] << 8) | (src[p + r6] << 16) | (src[p + r7] << 24);
      // ...and transpose the 8x8 bit matrix (bit c of byte r <-> bit r of byte c).
      let t = (lo ^ (lo >>> 7)) & 0x00aa00aa;
      lo = lo ^ t ^ (t << 7);
      t = (hi ^ (hi >>> 7)) & 0x00aa00aa;
      hi = hi ^ t ^ (t << 7);
      t = (lo ^ (lo >>> 14)) & 0x0000cccc;
      lo = lo ^ t ^ (t << 14);
      t = (hi ^ (hi >>> 14)) & 0x0000cccc;
      hi = hi ^ t ^ (t << 14);
      t = (lo ^ (hi << 4)) & 0xf0f0f0f0;
      lo ^= t;
      hi ^= t >>> 4;
      // Byte i of the word is byte j of element 8b+i.
      let o = d + b * 8 * step + j;
      dst[o] = lo;
      dst[(o += step)] = lo >>> 8;
      dst[(o += step)] = lo >>> 16;
      dst[(o += step)] = lo >>> 24;
      dst[(o += step)] = hi;
      dst[(o += step)] = hi >>> 8;
      dst[(o += step)] = hi >>> 16;
      dst[(o += step)] = hi >>> 24;
    }
  }
}

/**
 * Word-at-a-time bit-unshuffle (little-endian hosts, rowLen % 4 == 0, 4-byte aligned rows):
 * one 32-bit word from each of the 8 bit-rows covers 32 elements; the four 8x8 bit matrices
 * in those words are transposed in place with three mask-and-swap rounds.
 */
function bitunshuffleWords(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, rowLen: number): void {
  const rw = rowLen >>> 2; // row length in words
  const words = new Int32Array(src.buffer, src.byteOffset + s, 2 * typesize * rowLen);
  const aligned32 = typesize === 1 && ((dst.byteOffset + d) & 3) === 0;
  const out = aligned32 ? new Int32Array(dst.buffer, dst.byteOffset + d, 2 * rowLen) : undefined;
  for (let j = 0; j < typesize; j++) {
    const base = j * 8 * rw;
    for (let c = 0; c < rw; c++) {
      const p = base + c;
      let w0 = words[p], w1 = words[p + rw], w2 = words[p + 2 * rw], w3 = words[p + 3 * rw];
      let w4 = words[p + 4 * rw], w5 = words[p + 5 * rw], w6 = words[p + 6 * rw], w7 = words[p + 7 * rw];
      // Transpose each byte lane's 8x8 bit matrix (row = bit plane, column = element).
      let t = ((w0 >>> 4) ^ w4) & 0x0f0f0f0f; w4 ^= t; w0 ^= t << 4;
      t = ((w1 >>> 4) ^ w5) & 0x0f0f0f0f; w5 ^= t; w1 ^= t << 4;
      t = ((w2 >>> 4) ^ w6) & 0x0f0f0f0f; w6 ^= t; w2 ^= t << 4;
      t = ((w3 >>> 4) ^ w7) & 0x0f0f0f0f; w7 ^= t; w3 ^= t << 4;
      t = ((w0 >>> 2) ^ w2) & 0x33333333; w2 ^= t; w0 ^= t << 2;
      t = ((w1 >>> 2) ^ w3) & 0x33333333; w3 ^= t; w1 ^= t << 2;
      t = ((w4 >>> 2) ^ w6) & 0x33333333; w6 ^= t; w4 ^= t << 2;
      t = ((w5 >>> 2) ^ w7) & 0x33333333; w7 ^= t; w5 ^= t << 2;
      t = ((w0 >>> 1) ^ w1) & 0x55555555; w1 ^= t; w0 ^= t << 1;
      t = ((w2 >>> 1) ^ w3) & 0x55555555; w3 ^= t; w2 ^= t << 1;
      t = ((w4 >>> 1) ^ w5) & 0x55555555; w5 ^= t; w4 ^= t << 1;
      t = ((w6 >>> 1) ^ w7) & 0x55555555; w7 ^= t; w6 ^= t << 1;
      // Now byte q of w_i is byte j of element 8(4c+q)+i.
      if (out) {
        // typesize 1: regroup bytes so each output word holds 4 consecutive elements.
        t = ((w0 >>> 8) ^ w1) & 0x00ff00ff; w1 ^= t; w0 ^= t << 8;
        t = ((w2 >>> 8) ^ w3) & 0x00ff00ff; w3 ^= t; w2 ^= t << 8;
        t = ((w4 >>> 8) ^ w5) & 0x00ff00ff; w5 ^= t; w4 ^= t << 8;
        t = ((w6 >>> 8) ^ w7) & 0x00ff00ff; w7 ^= t; w6 ^= t << 8;
        t = ((w0 >>> 16) ^ w2) & 0x0000ffff; w2 ^= t; w0 ^= t << 16;
        t = ((w1 >>> 16) ^ w3) & 0x0000ffff; w3 ^= t; w1 ^= t << 16;
        t = ((w4 >>> 16) ^ w6) & 0x0000ffff; w6 ^= t; w4 ^= t << 16;
        t = ((w5 >>> 16) ^ w7) & 0x0000ffff; w7 ^= t; w5 ^= t << 16;
        const o = c * 8;
        out[o] = w0; out[o + 1] = w4;
        out[o + 2] = w1; out[o + 3] = w5;
        out[o + 4] = w2; out[o + 5] = w6;
        out[o + 6] = w3; out[o + 7] = w7;
      } else {
        const step = typesize;
        for (let q = 0, sh = 0; q < 4; q++, sh += 8) {
          let o = d + (c * 32 + q * 8) * step + j;
          dst[o] = w0 >>> sh;
          dst[(o += step)] = w1 >>> sh;
          dst[(o += step)] = w2 >>> sh;
          dst[(o += step)] = w3 >>> sh;
          dst[(o += step)] = w4 >>> sh;
          dst[(o += step)] = w5 >>> sh;
          dst[(o += step)] = w6 >>> sh;
          dst[(o += step)] = w7 >>> sh;
        }
      }
    }
  }
}

// Per-thread scratch for the shuffled block, reused by synchronous decodes only (an async
// decode could interleave with another one).
let scratch = new Uint8Array(0);
function scratchOf(size: number): Uint8Array {
  if (scratch.length < size) scratch = new Uint8Array(Math.max(size, 1 << 16));
  return scratch;
}

let wasmBloscCodec: Promise<NumcodecsCodec> | undefined;

/** Decodes a whole frame with numcodecs' WASM blosc (for inner compressors we lack). */
async function decodeWithWasm(src: Uint8Array, nbytes: number, what: string): Promise<Uint8Array> {
  wasmBloscCodec ??= loadWasmBlosc().then((B) => B.fromConfig({ id: "blosc" }));
  let out: Uint8Array;
  try {
    out = await (await wasmBloscCodec).decode(src);
  } catch (err) {
    throw asCorrupt(err, `blosc/${what} (wasm)`);
  }
  if (out.length !== nbytes) throw corruptChunk(`blosc/${what}: decoded ${out.length} bytes, header says ${nbytes}`);
  return out;
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
 * the header against the chunk (`cbytes` = its length, `nbytes` = `expectedSize`), the block
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
  if (h.cbytes !== src.length) {
    throw corruptChunk(`blosc: header says the frame is ${h.cbytes} bytes but the chunk has ${src.length} (truncated or padded)`);
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

/**
 * {@link parseBloscFrame} plus a check of every compressed split, for decoders that do not
 * report damage (c-blosc inside numcodecs' WASM blosc returns a buffer whatever happens):
 * LZ4 splits are walked without decoding ({@link checkLz4Block}: exactly their decoded size,
 * every length and offset in bounds); zlib and zstd splits cannot be checked without
 * inflating them, so they are decoded once into scratch, by node:zlib (whose inflate accepts
 * what c-blosc's zlib accepts) and by numcodecs' WASM zstd (the same 32-bit libzstd build as
 * c-blosc's, which checks its Huffman streams; 64-bit zstd-napi does not). blosclz and snappy
 * splits get the frame checks only.
 */
export async function verifyBloscFrame(src: Uint8Array, expectedSize?: number): Promise<BloscLayout> {
  const layout = parseBloscFrame(src, expectedSize);
  if (layout.memcpyed || layout.nblocks === 0) return layout;
  const format = layout.header.flags >> 5;
  const sp = layout.splits;
  let tmp: Uint8Array | undefined;
  for (let i = 0; i < sp.length; i += 3) {
    const [pos, csize, n] = [sp[i], sp[i + 1], sp[i + 2]];
    if (csize === n) continue; // stored raw
    if (format === FORMAT_LZ4) checkLz4Block(src, pos, pos + csize, n);
    else if (format === FORMAT_ZLIB || format === FORMAT_ZSTD) {
      if (!tmp || tmp.length < n) tmp = new Uint8Array(n);
      if (format === FORMAT_ZLIB) zlibInner(src, pos, csize, tmp, 0, n);
      else await zstdWasmInner(src, pos, csize, tmp, 0, n);
    }
  }
  return layout;
}

/**
 * Decodes one blosc1 frame.
 *
 * @param src the whole chunk; its length must equal the header's `cbytes`.
 * @param expectedSize decoded size the chunk must have (chunk shape × item size), if known.
 * @param into where to decode (exactly the decoded size; e.g. a slot of the shared chunk cache),
 *   instead of a new array. The result is then `into`.
 * @throws CellMapError `CORRUPT_CHUNK` for truncated/inconsistent frames or sizes that disagree
 *   with `src.length`/`expectedSize` (see {@link parseBloscFrame}); `UNSUPPORTED` for frame
 *   versions other than blosc1's.
 */
export async function decodeBlosc(src: Uint8Array, expectedSize?: number, into?: Uint8Array): Promise<Uint8Array> {
  const layout = parseBloscFrame(src, expectedSize);
  const h = layout.header;
  if (h.nbytes === 0) return new Uint8Array(0);
  if (layout.memcpyed) {
    const copy = into && into.length === h.nbytes ? into : allocUninit(h.nbytes);
    copy.set(src.subarray(HEADER_SIZE, HEADER_SIZE + h.nbytes));
    return copy;
  }

  const format = h.flags >> 5;
  let inner: InnerDecoder;
  let sync = true;
  if (format === FORMAT_LZ4) inner = lz4Inner;
  else if (format === FORMAT_ZLIB) inner = zlibInner;
  else if (format === FORMAT_ZSTD && nativeZstd()) inner = zstdNativeInner;
  else if (format === FORMAT_ZSTD) {
    inner = zstdWasmInner;
    sync = false;
  } else {
    // blosclz, snappy or an unknown code: let the WASM c-blosc decide.
    return decodeWithWasm(src, h.nbytes, format === FORMAT_BLOSCLZ || format === FORMAT_SNAPPY ? FORMAT_NAMES[format] : `format ${format}`);
  }

  const { typesize, nbytes, blocksize } = h;
  const { nblocks, splits, firstSplit } = layout;
  const leftover = nbytes % blocksize;
  const doShuffle = (h.flags & DOSHUFFLE) !== 0 && typesize > 1;
  const doBitshuffle = !doShuffle && (h.flags & DOBITSHUFFLE) !== 0;
  // Every byte is written below (splits must decode to exactly their size) or we throw.
  const out = into && into.length === nbytes ? into : allocUninit(nbytes);
  const tmp = doShuffle || doBitshuffle ? (sync ? scratchOf(blocksize) : new Uint8Array(blocksize)) : out;

  for (let j = 0; j < nblocks; j++) {
    const isLeftover = j === nblocks - 1 && leftover > 0;
    const bsize = isLeftover ? leftover : blocksize;
    const outPos = j * blocksize;
    const filter = doShuffle || (doBitshuffle && bsize >= typesize);
    const target = filter ? tmp : out;
    let t = filter ? 0 : outPos;
    for (let i = 3 * firstSplit[j]; i < 3 * firstSplit[j + 1]; i += 3) {
      const pos = splits[i], csize = splits[i + 1], neblock = splits[i + 2];
      if (csize === neblock) {
        target.set(src.subarray(pos, pos + csize), t); // stored raw
      } else {
        const p = inner(src, pos, csize, target, t, neblock);
        if (p) await p;
      }
      t += neblock;
    }

    if (doShuffle) unshuffle(tmp, 0, out, outPos, typesize, bsize);
    else if (filter) bitunshuffle(tmp, 0, out, outPos, typesize, bsize);
  }
  return out;
}

/** Maps a blosc shuffle setting (v2 number or v3 string) to c-blosc's 0/1/2/-1. */
function shuffleCode(name: string, shuffle: unknown): number {
  if (shuffle === undefined) return 1;
  if (shuffle === 0 || shuffle === 1 || shuffle === 2 || shuffle === -1) return shuffle;
  if (shuffle === "noshuffle") return 0;
  if (shuffle === "shuffle") return 1;
  if (shuffle === "bitshuffle") return 2;
  throw new CellMapError(
    "INVALID_METADATA",
    `${name}: shuffle must be 0/1/2/-1 or "noshuffle"/"shuffle"/"bitshuffle", got ${JSON.stringify(shuffle)}`,
    `codecs.${name}.shuffle`,
  );
}

/** Settings handed to numcodecs' WASM blosc when encoding. */
export interface BloscEncodeConfig {
  cname: string;
  clevel: number;
  /** c-blosc code: 0 none, 1 byte shuffle, 2 bit shuffle. */
  shuffle: number;
  blocksize: number;
}

/** zarrita codec for blosc: fast TS decode, encode via numcodecs' WASM blosc. */
export class BloscCodec implements BytesToBytesCodec {
  readonly kind = "bytes_to_bytes" as const;
  #encoder: Promise<NumcodecsCodec> | undefined;

  /**
   * @param config encoder settings.
   * @param expectedSize decoded size every chunk must have, when known.
   */
  constructor(
    readonly config: BloscEncodeConfig,
    readonly expectedSize?: number,
  ) {}

  /** A registry entry for `name` (`blosc` or `numcodecs.blosc`). */
  static entry(name: string): CodecEntry {
    return {
      kind: "bytes_to_bytes",
      fromConfig(config: unknown, meta: ChunkMeta): BloscCodec {
        const c = (config ?? {}) as { cname?: unknown; clevel?: unknown; shuffle?: unknown; blocksize?: unknown; typesize?: unknown };
        const cname = c.cname ?? "lz4";
        if (typeof cname !== "string" || !["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"].includes(cname)) {
          throw new CellMapError("INVALID_METADATA", `${name}: unknown cname ${JSON.stringify(cname)}`, `codecs.${name}.cname`);
        }
        const clevel = c.clevel ?? 5;
        if (typeof clevel !== "number" || !Number.isInteger(clevel) || clevel < 0 || clevel > 9) {
          throw new CellMapError("INVALID_METADATA", `${name}: clevel must be an integer in 0..9, got ${JSON.stringify(clevel)}`, `codecs.${name}.clevel`);
        }
        const blocksize = c.blocksize ?? 0;
        if (typeof blocksize !== "number" || !Number.isInteger(blocksize) || blocksize < 0) {
          throw new CellMapError("INVALID_METADATA", `${name}: blocksize must be a non-negative integer, got ${JSON.stringify(blocksize)}`, `codecs.${name}.blocksize`);
        }
        let shuffle = shuffleCode(name, c.shuffle);
        const item = typeof c.typesize === "number" ? c.typesize : meta?.dataType ? itemSize(meta.dataType) : undefined;
        // AUTOSHUFFLE (numcodecs): bit shuffle for 1-byte items, byte shuffle otherwise.
        if (shuffle === -1) shuffle = item === 1 ? 2 : 1;
        // numcodecs.js frames with a type size of 4 whatever the data: for 1-byte items, where a
        // byte shuffle is the identity, write unshuffled frames instead of shuffled 4-byte groups
        // (readers follow each frame's own flags).
        if (item === 1 && shuffle === 1) shuffle = 0;
        return new BloscCodec({ cname, clevel, shuffle, blocksize }, expectedDecodedSize(name, meta));
      },
    };
  }

  /** Decodes one chunk. */
  decode(data: Uint8Array): Promise<Uint8Array> {
    return decodeBlosc(data, this.expectedSize);
  }

  /** Encodes one chunk with numcodecs' WASM blosc. */
  async encode(data: Uint8Array): Promise<Uint8Array> {
    this.#encoder ??= loadWasmBlosc().then((B) => B.fromConfig({ id: "blosc", ...this.config }));
    return (await this.#encoder).encode(data);
  }
}
