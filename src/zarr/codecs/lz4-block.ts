/**
 * Decoders for the raw LZ4 *block* format (no frame header, no checksum), as used inside blosc
 * frames and by numcodecs' `lz4` codec: a WebAssembly one (`scripts/build-kernels.ts`; 2.5–3x
 * faster on label chunks, where the TypeScript one spends its time in short sequences) for
 * blocks of 4 KiB and more, and the TypeScript one for small blocks and as the fallback
 * (`CELLMAP_LZ4=ts` forces it). Both make the same checks and give identical bytes.
 *
 * Every read and write is bounds-checked, so malformed input throws a `CORRUPT_CHUNK`
 * {@link CellMapError} instead of reading/writing out of range. Each loop iteration
 * consumes at least one input byte, so a decode always terminates.
 *
 * Both also enforce the format's end-of-block rules, as the reference decoder
 * (`LZ4_decompress_safe`, used by c-blosc and numcodecs) does: a sequence with a match must
 * end its literals at least 12 bytes (MFLIMIT) before the end of the output, and a match must
 * end at least 5 bytes (LASTLITERALS) before it. Blocks breaking them are damaged (no encoder
 * writes them), and accepting them would let the fast decoders return bytes where zarrita's
 * WASM codecs fail. {@link checkLz4Block} makes the same checks without decoding.
 */

import { CellMapError } from "../../errors.js";
import { LZ4_WASM_BASE64 } from "../../kernels/lz4-wasm.js";
import { wasm } from "../../kernels/wasm.js";

function corrupt(what: string): never {
  throw new CellMapError("CORRUPT_CHUNK", `malformed LZ4 block: ${what}`);
}

/**
 * Decodes the LZ4 block `src[srcStart, srcEnd)` into `dst[dstStart, dstEnd)`.
 *
 * The whole input must be consumed by complete sequences; the output may stop short of
 * `dstEnd` (callers that know the exact size compare the return value).
 *
 * @returns the position in `dst` one past the last byte written.
 * @throws CellMapError `CORRUPT_CHUNK` on truncated input, an output overrun or a match
 *   offset pointing before `dstStart`.
 */
export function decodeLz4Block(src: Uint8Array, dst: Uint8Array, srcStart = 0, srcEnd = src.length, dstStart = 0, dstEnd = dst.length): number {
  if (dstEnd - dstStart >= WASM_MIN_BYTES && useWasm) return decodeLz4BlockWasm(src, dst, srcStart, srcEnd, dstStart, dstEnd);
  return decodeLz4BlockTs(src, dst, srcStart, srcEnd, dstStart, dstEnd);
}

/** Blocks at least this large (decoded) take the WebAssembly decoder (below, the copies in and out cost more than they save). */
const WASM_MIN_BYTES = 4096;
let useWasm = process.env.CELLMAP_LZ4 !== "ts";

/** Which LZ4 block decoder this thread uses for large blocks (benchmarks compare them). */
export function setLz4Backend(backend: "wasm" | "ts"): void {
  useWasm = backend === "wasm";
}

/** A sequence with a match must end its literals at least this far before the output end. */
const MFLIMIT = 12;
/** A match must end at least this far before the output end (the block ends in literals). */
const LAST_LITERALS = 5;

const WASM_ERRORS: Record<number, string> = {
  [-1]: "input ends before the last sequence",
  [-2]: "truncated literal length",
  [-3]: "literals run past the end of the input",
  [-4]: "literals overflow the output",
  [-5]: "truncated match offset",
  [-6]: "match offset points before the output start",
  [-7]: "truncated match length",
  [-8]: "match overflows the output or ends in its last 5 bytes",
  [-9]: "a match follows literals ending in the last 12 bytes of the output",
};

interface Lz4Wasm {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  lz4_block(s0: number, se: number, d0: number, de: number): number;
}
let instance: Lz4Wasm | null = null;

function checkRanges(src: Uint8Array, dst: Uint8Array, srcStart: number, srcEnd: number, dstStart: number, dstEnd: number): void {
  if (srcStart < 0 || srcEnd > src.length || srcStart > srcEnd) corrupt("input range out of bounds");
  if (dstStart < 0 || dstEnd > dst.length || dstStart > dstEnd) corrupt("output range out of bounds");
}

/** {@link decodeLz4Block} with the WebAssembly decoder (block copied in, output copied out). */
export function decodeLz4BlockWasm(src: Uint8Array, dst: Uint8Array, srcStart = 0, srcEnd = src.length, dstStart = 0, dstEnd = dst.length): number {
  checkRanges(src, dst, srcStart, srcEnd, dstStart, dstEnd);
  if (!instance) {
    const mod = new wasm.Module(Buffer.from(LZ4_WASM_BASE64, "base64"));
    instance = new wasm.Instance(mod, {}).exports as unknown as Lz4Wasm;
  }
  const n = srcEnd - srcStart;
  const cap = dstEnd - dstStart;
  const at = (Math.ceil(n / 16) + 1) * 16; // output after the input (+16: SIMD reads past the input stay inside)
  const need = at + cap + 16;
  const have = instance.memory.buffer.byteLength;
  if (need > have) instance.memory.grow(Math.ceil((need - have) / 65536));
  const mem = new Uint8Array(instance.memory.buffer);
  mem.set(src.subarray(srcStart, srcEnd), 0);
  const r = instance.lz4_block(0, n, at, at + cap);
  if (r < 0) corrupt(WASM_ERRORS[r] ?? `error ${r}`);
  dst.set(mem.subarray(at, at + r), dstStart);
  return dstStart + r;
}

/** {@link decodeLz4Block} with the TypeScript decoder. */
export function decodeLz4BlockTs(src: Uint8Array, dst: Uint8Array, srcStart = 0, srcEnd = src.length, dstStart = 0, dstEnd = dst.length): number {
  checkRanges(src, dst, srcStart, srcEnd, dstStart, dstEnd);
  let s = srcStart;
  let d = dstStart;
  for (;;) {
    if (s >= srcEnd) corrupt("input ends before the last sequence");
    const token = src[s++];

    // Literals.
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= srcEnd) corrupt("truncated literal length");
        b = src[s++];
        lit += b;
      } while (b === 255);
    }
    if (lit > 0) {
      if (lit > srcEnd - s) corrupt("literals run past the end of the input");
      if (lit > dstEnd - d) corrupt("literals overflow the output");
      if (lit < 32) {
        // Short copies: a loop beats allocating a subarray view.
        for (let i = 0; i < lit; i++) dst[d + i] = src[s + i];
      } else {
        dst.set(src.subarray(s, s + lit), d);
      }
      s += lit;
      d += lit;
    }
    // The last sequence has literals only.
    if (s === srcEnd) return d;
    if (dstEnd - d < MFLIMIT) corrupt("a match follows literals ending in the last 12 bytes of the output");

    // Match.
    if (srcEnd - s < 2) corrupt("truncated match offset");
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d - dstStart) corrupt(`match offset ${offset} points before the output start`);
    let len = (token & 15) + 4;
    if (len === 19) {
      let b: number;
      do {
        if (s >= srcEnd) corrupt("truncated match length");
        b = src[s++];
        len += b;
      } while (b === 255);
    }
    if (len > dstEnd - d - LAST_LITERALS) corrupt("match overflows the output or ends in its last 5 bytes");
    let m = d - offset;
    if (offset >= len && len >= 32) {
      // Non-overlapping: native memmove.
      dst.copyWithin(d, m, m + len);
      d += len;
    } else if (offset === 1) {
      // Run of one repeated byte (common in flat regions).
      dst.fill(dst[m], d, d + len);
      d += len;
    } else if (len >= 32) {
      // Overlapping: the match repeats the `offset`-byte pattern before it. Copy it in native
      // non-overlapping pieces that double in size ([m, d) always holds whole periods), not
      // byte by byte: label chunks are mostly such long repeats (13x faster on them).
      let rem = len;
      while (rem > 0) {
        const n = Math.min(d - m, rem);
        dst.copyWithin(d, m, m + n);
        d += n;
        rem -= n;
      }
    } else {
      // Short overlapping copy: forward byte by byte (it replicates the pattern).
      const end = d + len;
      while (d < end) dst[d++] = dst[m++];
    }
  }
}

/**
 * Checks that the LZ4 block `src[srcStart, srcEnd)` decodes to exactly `size` bytes, without
 * decoding it: walks the sequences and makes every check of {@link decodeLz4Block} (lengths
 * within the input and the output, match offsets within what is decoded so far, the
 * end-of-block rules, the input consumed exactly). Used in front of decoders that do not
 * report damage (c-blosc inside numcodecs' WASM blosc). Costs a fraction of a decode: no byte
 * is copied.
 *
 * @throws CellMapError `CORRUPT_CHUNK` naming the first violation.
 */
export function checkLz4Block(src: Uint8Array, srcStart: number, srcEnd: number, size: number): void {
  if (srcStart < 0 || srcEnd > src.length || srcStart > srcEnd) corrupt("input range out of bounds");
  let s = srcStart;
  let d = 0;
  for (;;) {
    if (s >= srcEnd) corrupt("input ends before the last sequence");
    const token = src[s++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= srcEnd) corrupt("truncated literal length");
        b = src[s++];
        lit += b;
      } while (b === 255);
    }
    if (lit > srcEnd - s) corrupt("literals run past the end of the input");
    if (lit > size - d) corrupt("literals overflow the output");
    s += lit;
    d += lit;
    if (s === srcEnd) {
      if (d !== size) corrupt(`block decodes to ${d} bytes, expected ${size}`);
      return;
    }
    if (size - d < MFLIMIT) corrupt("a match follows literals ending in the last 12 bytes of the output");
    if (srcEnd - s < 2) corrupt("truncated match offset");
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d) corrupt(`match offset ${offset} points before the output start`);
    let len = (token & 15) + 4;
    if (len === 19) {
      let b: number;
      do {
        if (s >= srcEnd) corrupt("truncated match length");
        b = src[s++];
        len += b;
      } while (b === 255);
    }
    if (len > size - d - LAST_LITERALS) corrupt("match overflows the output or ends in its last 5 bytes");
    d += len;
  }
}
