/**
 * Blosc's shuffle filters, undone: byte-unshuffle ({@link unshuffle}) and bit-unshuffle
 * ({@link bitunshuffle}, bitshuffle's layout as c-blosc 1.x writes it) of one decoded block,
 * with 32-bit word paths for aligned blocks on little-endian hosts and byte paths for the rest.
 * Pure kernels over `(src, offset) -> (dst, offset)`; the frame logic is in `decode.ts`.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Byte-unshuffle one block of `size` bytes: `src` holds byte 0 of every element, then byte 1,
 * ... (exported for tests and benchmarks).
 */
export function unshuffle(src: Uint8Array, s: number, dst: Uint8Array, d: number, typesize: number, size: number): void {
  const n = Math.floor(size / typesize);
  let from = 0;
  if (LITTLE_ENDIAN && (typesize === 2 || (typesize & 3) === 0) && n >= 4 && ((src.byteOffset + s) & 3) === 0 && ((dst.byteOffset + d) & 3) === 0 && (n & 3) === 0) {
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
      const a = rows[c],
        b = rows[nw + c];
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
      let w0 = rows[r + c],
        w1 = rows[r + nw + c],
        w2 = rows[r + 2 * nw + c],
        w3 = rows[r + 3 * nw + c];
      // 4x4 byte transpose: afterwards w_q holds bytes 4g..4g+3 of element 4c+q.
      let t = ((w0 >>> 8) ^ w1) & 0x00ff00ff;
      w1 ^= t;
      w0 ^= t << 8;
      t = ((w2 >>> 8) ^ w3) & 0x00ff00ff;
      w3 ^= t;
      w2 ^= t << 8;
      t = ((w0 >>> 16) ^ w2) & 0x0000ffff;
      w2 ^= t;
      w0 ^= t << 16;
      t = ((w1 >>> 16) ^ w3) & 0x0000ffff;
      w3 ^= t;
      w1 ^= t << 16;
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
  const r1 = rowLen,
    r2 = 2 * rowLen,
    r3 = 3 * rowLen,
    r4 = 4 * rowLen,
    r5 = 5 * rowLen,
    r6 = 6 * rowLen,
    r7 = 7 * rowLen;
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
      let w0 = words[p],
        w1 = words[p + rw],
        w2 = words[p + 2 * rw],
        w3 = words[p + 3 * rw];
      let w4 = words[p + 4 * rw],
        w5 = words[p + 5 * rw],
        w6 = words[p + 6 * rw],
        w7 = words[p + 7 * rw];
      // Transpose each byte lane's 8x8 bit matrix (row = bit plane, column = element).
      let t = ((w0 >>> 4) ^ w4) & 0x0f0f0f0f;
      w4 ^= t;
      w0 ^= t << 4;
      t = ((w1 >>> 4) ^ w5) & 0x0f0f0f0f;
      w5 ^= t;
      w1 ^= t << 4;
      t = ((w2 >>> 4) ^ w6) & 0x0f0f0f0f;
      w6 ^= t;
      w2 ^= t << 4;
      t = ((w3 >>> 4) ^ w7) & 0x0f0f0f0f;
      w7 ^= t;
      w3 ^= t << 4;
      t = ((w0 >>> 2) ^ w2) & 0x33333333;
      w2 ^= t;
      w0 ^= t << 2;
      t = ((w1 >>> 2) ^ w3) & 0x33333333;
      w3 ^= t;
      w1 ^= t << 2;
      t = ((w4 >>> 2) ^ w6) & 0x33333333;
      w6 ^= t;
      w4 ^= t << 2;
      t = ((w5 >>> 2) ^ w7) & 0x33333333;
      w7 ^= t;
      w5 ^= t << 2;
      t = ((w0 >>> 1) ^ w1) & 0x55555555;
      w1 ^= t;
      w0 ^= t << 1;
      t = ((w2 >>> 1) ^ w3) & 0x55555555;
      w3 ^= t;
      w2 ^= t << 1;
      t = ((w4 >>> 1) ^ w5) & 0x55555555;
      w5 ^= t;
      w4 ^= t << 1;
      t = ((w6 >>> 1) ^ w7) & 0x55555555;
      w7 ^= t;
      w6 ^= t << 1;
      // Now byte q of w_i is byte j of element 8(4c+q)+i.
      if (out) {
        // typesize 1: regroup bytes so each output word holds 4 consecutive elements.
        t = ((w0 >>> 8) ^ w1) & 0x00ff00ff;
        w1 ^= t;
        w0 ^= t << 8;
        t = ((w2 >>> 8) ^ w3) & 0x00ff00ff;
        w3 ^= t;
        w2 ^= t << 8;
        t = ((w4 >>> 8) ^ w5) & 0x00ff00ff;
        w5 ^= t;
        w4 ^= t << 8;
        t = ((w6 >>> 8) ^ w7) & 0x00ff00ff;
        w7 ^= t;
        w6 ^= t << 8;
        t = ((w0 >>> 16) ^ w2) & 0x0000ffff;
        w2 ^= t;
        w0 ^= t << 16;
        t = ((w1 >>> 16) ^ w3) & 0x0000ffff;
        w3 ^= t;
        w1 ^= t << 16;
        t = ((w4 >>> 16) ^ w6) & 0x0000ffff;
        w6 ^= t;
        w4 ^= t << 16;
        t = ((w5 >>> 16) ^ w7) & 0x0000ffff;
        w7 ^= t;
        w5 ^= t << 16;
        const o = c * 8;
        out[o] = w0;
        out[o + 1] = w4;
        out[o + 2] = w1;
        out[o + 3] = w5;
        out[o + 4] = w2;
        out[o + 5] = w6;
        out[o + 6] = w3;
        out[o + 7] = w7;
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
