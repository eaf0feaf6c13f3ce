/**
 * What damage to each byte of a stored chunk may do, per format (for test/corruption.test.ts).
 * The parsers here are deliberately independent of src/: they read the clean chunk's layout so
 * the test knows which bytes are sizes, offsets and checksums and which are payload.
 *
 * - `raise`: structural (magic numbers, sizes, offsets, block headers) or a checksum itself:
 *   every decode path must raise `CORRUPT_CHUNK`.
 * - `checked`: payload a checksum covers (deflate data of gzip/zlib, zstd blocks of a frame
 *   with a content checksum), or a header field no checksum covers (gzip FLG/MTIME/XFL/OS, a
 *   zstd frame descriptor or window size): each path raises or decodes identically. (A few
 *   bit flips in deflate data decode identically: redundant code bits, padding.)
 * - `free`: damage no format can see (LZ4 literals and offsets, raw blosc splits, blosc's
 *   version/flags/typesize bytes): any outcome, but every path gives the same one (all raise,
 *   or all decode to the same bytes of the right size).
 * - `lenient`: zstd blocks without a content checksum. zstd does not promise to detect damage
 *   there, and its builds differ: 64-bit libzstd (zstd-napi) decodes Huffman-coded literals
 *   with a fast loop that does not check each stream ends exactly, the 32-bit WASM build
 *   does. Each path raises or decodes (to the right size); the paths that decode agree.
 */

export type Role = "raise" | "checked" | "free" | "lenient";

const i32 = (b: Uint8Array, p: number) => b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);

function set(roles: Role[], from: number, to: number, role: Role): void {
  for (let i = from; i < to && i < roles.length; i++) roles[i] = role;
}

/** Roles of a zlib stream (RFC 1950): header, deflate data, Adler-32. */
export function zlibRoles(len: number): Role[] {
  const r = new Array<Role>(len).fill("raise");
  set(r, 2, len - 4, "checked");
  return r;
}

/** Roles of a gzip member as node:zlib writes it (no optional fields): ID1 ID2 CM, FLG MTIME XFL OS, deflate data, CRC-32 and ISIZE. */
export function gzipRoles(len: number): Role[] {
  const r = new Array<Role>(len).fill("raise");
  set(r, 3, len - 8, "checked");
  return r;
}

/** Roles of one zstd frame; block contents are `lenient` unless the frame has a content checksum. */
export function zstdRoles(f: Uint8Array): Role[] {
  const r = new Array<Role>(f.length).fill("raise");
  const fhd = f[4];
  const single = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  let p = 5;
  r[4] = "checked";
  if (!single) r[p++] = "checked"; // window descriptor
  p += [0, 1, 2, 4][fhd & 3]; // dictionary id (raise)
  p += [single, 2, 4, 8][fhd >> 6]; // frame content size (raise)
  for (;;) {
    const h = f[p] | (f[p + 1] << 8) | (f[p + 2] << 16);
    const type = (h >> 1) & 3;
    const size = type === 1 ? 1 : h >>> 3;
    p += 3; // block header (raise)
    set(r, p, p + size, checksum ? "checked" : "lenient");
    p += size;
    if (h & 1 || p >= f.length) break;
  }
  return r;
}

/** Roles of a blosc1 frame whose compressed splits use `inner`. */
export function bloscRoles(f: Uint8Array, inner: "lz4" | "zstd" | "zlib"): Role[] {
  const r = new Array<Role>(f.length).fill("raise");
  set(r, 0, 4, "free"); // version, versionlz, flags, typesize: the frame may read differently
  const flags = f[2];
  const typesize = f[3];
  const nbytes = i32(f, 4);
  const blocksize = i32(f, 8);
  if (flags & 2) {
    set(r, 16, f.length, "free");
    return r;
  }
  const nblocks = Math.ceil(nbytes / blocksize);
  const leftover = nbytes % blocksize;
  for (let j = 0; j < nblocks; j++) {
    const isLeft = j === nblocks - 1 && leftover > 0;
    const bsize = isLeft ? leftover : blocksize;
    const nsplits = !(flags & 0x10) && typesize <= 16 && bsize / typesize >= 128 && !isLeft ? typesize : 1;
    const neblock = bsize / nsplits;
    let pos = i32(f, 16 + 4 * j);
    for (let k = 0; k < nsplits; k++) {
      const csize = i32(f, pos);
      pos += 4;
      const data = f.subarray(pos, pos + csize);
      const sub: Role[] = csize === neblock || inner === "lz4" ? new Array<Role>(csize).fill("free") : inner === "zstd" ? zstdRoles(data) : zlibRoles(csize);
      for (let i = 0; i < csize; i++) r[pos + i] = sub[i];
      pos += csize;
    }
  }
  return r;
}

/** Roles of a numcodecs `lz4` chunk: the size prefix is checked, the block is not. */
export function lz4Roles(len: number): Role[] {
  const r = new Array<Role>(len).fill("free");
  set(r, 0, 4, "raise");
  return r;
}

/**
 * Roles of a shard (index at the end, `[bytes, crc32c]` index codecs): the index and its
 * checksum raise, inner chunks follow their own format's roles.
 */
export function shardRoles(shard: Uint8Array, nInner: number, inner: (chunk: Uint8Array) => Role[]): Role[] {
  const r = new Array<Role>(shard.length).fill("raise");
  const at = shard.length - (16 * nInner + 4);
  const dv = new DataView(shard.buffer, shard.byteOffset + at, 16 * nInner);
  for (let c = 0; c < nInner; c++) {
    const off = dv.getBigUint64(16 * c, true);
    if (off === 0xffffffffffffffffn) continue;
    const o = Number(off);
    const n = Number(dv.getBigUint64(16 * c + 8, true));
    const sub = inner(shard.subarray(o, o + n));
    for (let i = 0; i < n; i++) r[o + i] = sub[i];
  }
  return r;
}
