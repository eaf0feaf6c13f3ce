/**
 * numcodecs-style `lz4` codec (v3 `lz4`, v2 `numcodecs.lz4`): a 4-byte little-endian
 * decoded size followed by one raw LZ4 block. Decodes with the pure-TS block decoder;
 * encodes through numcodecs' WASM LZ4.
 */

import { CellMapError } from "../../errors.js";
import { decodeLz4Block } from "./lz4-block.js";
import { allocUninit, type BytesToBytesCodec, type ChunkMeta, type CodecEntry, corruptChunk, expectedDecodedSize, loadWasmLz4, type NumcodecsCodec } from "./shared.js";

// An LZ4 sequence can expand at most ~255x, so a larger size prefix is a corrupt header
// (checked before allocating the output).
const MAX_RATIO = 255;

/** Decodes a numcodecs `lz4` buffer; `expectedSize`, when given, must match the size prefix. */
export function decodeNumcodecsLz4(src: Uint8Array, expectedSize?: number, into?: Uint8Array): Uint8Array {
  if (src.length < 5) throw corruptChunk(`lz4: ${src.length} bytes is too short for a size prefix and a block`);
  const size = src[0] | (src[1] << 8) | (src[2] << 16) | (src[3] << 24);
  if (size < 0) throw corruptChunk(`lz4: negative decoded size ${size} in the size prefix`);
  if (expectedSize !== undefined && size !== expectedSize) {
    throw corruptChunk(`lz4: size prefix says ${size} bytes, expected ${expectedSize} (chunk shape × item size)`);
  }
  if (size > (src.length - 4) * MAX_RATIO + 64) {
    throw corruptChunk(`lz4: size prefix ${size} is impossible for a ${src.length - 4}-byte block`);
  }
  const out = into && into.length === size ? into : allocUninit(size); // fully written, or the end check below throws
  const end = decodeLz4Block(src, out, 4);
  if (end !== size) throw corruptChunk(`lz4: block decoded to ${end} bytes, size prefix says ${size}`);
  return out;
}

/** zarrita codec for numcodecs' `lz4` format. */
export class Lz4Codec implements BytesToBytesCodec {
  readonly kind = "bytes_to_bytes" as const;
  #encoder: Promise<NumcodecsCodec> | undefined;

  /**
   * @param acceleration LZ4 acceleration used by {@link encode}.
   * @param expectedSize decoded size every chunk must have, when known.
   */
  constructor(
    readonly acceleration = 1,
    readonly expectedSize?: number,
  ) {}

  /** A registry entry for `name` (`lz4` or `numcodecs.lz4`). */
  static entry(name: string): CodecEntry {
    return {
      kind: "bytes_to_bytes",
      fromConfig(config: unknown, meta: ChunkMeta): Lz4Codec {
        const acc = ((config ?? {}) as { acceleration?: unknown }).acceleration ?? 1;
        if (typeof acc !== "number" || !Number.isInteger(acc)) {
          throw new CellMapError("INVALID_METADATA", `${name}: acceleration must be an integer, got ${JSON.stringify(acc)}`, `codecs.${name}.acceleration`);
        }
        return new Lz4Codec(acc, expectedDecodedSize(name, meta));
      },
    };
  }

  /** Decodes one chunk. */
  async decode(data: Uint8Array): Promise<Uint8Array> {
    return decodeNumcodecsLz4(data, this.expectedSize);
  }

  /** Encodes one chunk (numcodecs' WASM LZ4). */
  async encode(data: Uint8Array): Promise<Uint8Array> {
    this.#encoder ??= loadWasmLz4().then((L) => L.fromConfig({ id: "lz4", acceleration: this.acceleration }));
    return (await this.#encoder).encode(data);
  }
}
