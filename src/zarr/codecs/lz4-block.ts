/**
 * Pure-TS decoder for the raw LZ4 *block* format (no frame header, no checksum), as used
 * inside blosc frames and by numcodecs' `lz4` codec.
 *
 * Every read and write is bounds-checked, so malformed input throws a `CORRUPT_CHUNK`
 * {@link CellMapError} instead of reading/writing out of range. Each loop iteration
 * consumes at least one input byte, so a decode always terminates.
 */

import { CellMapError } from "../../errors.js";

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
export function decodeLz4Block(
  src: Uint8Array,
  dst: Uint8Array,
  srcStart = 0,
  srcEnd = src.length,
  dstStart = 0,
  dstEnd = dst.length,
): number {
  if (srcStart < 0 || srcEnd > src.length || srcStart > srcEnd) corrupt("input range out of bounds");
  if (dstStart < 0 || dstEnd > dst.length || dstStart > dstEnd) corrupt("output range out of bounds");
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
    if (len > dstEnd - d) corrupt("match overflows the output");
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
