/**
 * Blosc1 frame decoder in TypeScript: {@link decodeBlosc} walks the blocks and splits that
 * {@link parseBloscFrame} (`header.ts`) checked, decompresses each split and undoes the
 * block's shuffle (`shuffle.ts`), writing straight into the destination (a new array or a slot
 * of the shared chunk cache). Inner compressors handled here: lz4/lz4hc (TS), zstd (zstd-napi,
 * else numcodecs' WASM zstd), zlib (`node:zlib`). Anything else (blosclz, snappy) is handed to
 * numcodecs' WASM blosc for that chunk. {@link verifyBloscFrame} adds the checks of every
 * compressed split for decoders that do not report damage themselves (see `checked.ts`).
 * Encoding always goes through numcodecs' WASM blosc (`codec.ts`).
 *
 * Why not numcodecs' WASM blosc (zarrita's default): measured by `bench/codecs.ts` on the
 * fixture's own chunks (one thread, MB/s; README "Performance"), blosc-zstd raw decodes at
 * 327–512 into a cache slot here vs ~100 through the WASM build (Python's c-blosc: 233–406), and
 * blosc-lz4 labels at 1715–1939 vs ~1000 (c-blosc: 3818–3918). The WASM build also cannot decode
 * into a caller's buffer (one extra chunk-sized copy) and does not report damaged frames (it
 * returned zeros or stale bytes, docs/bad-input.md), which this decoder does as `CORRUPT_CHUNK`.
 */

import { inflateSync } from "node:zlib";
import { CellMapError } from "../../../errors.js";
import { checkLz4Block, decodeLz4Block } from "../lz4-block.js";
import { allocUninit, asCorrupt, corruptChunk, loadWasmBlosc, loadWasmZstd, type NumcodecsCodec } from "../shared.js";
import { nativeZstd, zstdDecodeInto } from "../zstd.js";
import {
  type BloscLayout,
  DOBITSHUFFLE,
  DOSHUFFLE,
  FORMAT_BLOSCLZ,
  FORMAT_LZ4,
  FORMAT_NAMES,
  FORMAT_SNAPPY,
  FORMAT_ZLIB,
  FORMAT_ZSTD,
  HEADER_SIZE,
  parseBloscFrame,
} from "./header.js";
import { bitunshuffle, unshuffle } from "./shuffle.js";

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

// Per-thread scratch for the shuffled block, reused by synchronous decodes only (an async
// decode could interleave with another one).
let scratch = new Uint8Array(0);
function scratchOf(size: number): Uint8Array {
  if (scratch.length < size) scratch = new Uint8Array(Math.max(size, 1 << 16));
  return scratch;
}

let wasmBloscCodec: Promise<NumcodecsCodec> | undefined;

/** Decodes a whole frame (exactly `cbytes` bytes) with numcodecs' WASM blosc (for inner compressors we lack). */
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
 * @param src the whole chunk: the frame (the header's `cbytes` bytes), then possibly bytes that
 *   are ignored, as c-blosc ignores them (z5py writes 16). A chunk shorter than `cbytes` raises.
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
    // blosclz, snappy or an unknown code: let the WASM c-blosc decide, on the frame alone
    // (bytes after it are not the codec's to see).
    return decodeWithWasm(src.subarray(0, h.cbytes), h.nbytes, format === FORMAT_BLOSCLZ || format === FORMAT_SNAPPY ? FORMAT_NAMES[format] : `format ${format}`);
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
      const pos = splits[i],
        csize = splits[i + 1],
        neblock = splits[i + 2];
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
