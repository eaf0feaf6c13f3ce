/**
 * The zarrita codec for blosc (v3 `blosc`, v2 `numcodecs.blosc`): {@link BloscCodec} checks the
 * codec configuration, decodes with the TypeScript decoder ({@link decodeBlosc}, `decode.ts`)
 * and encodes with numcodecs' WASM blosc (the c-blosc build), so written frames are c-blosc's.
 */

import { CellMapError } from "../../../errors.js";
import { type BytesToBytesCodec, type ChunkMeta, type CodecEntry, expectedDecodedSize, itemSize, loadWasmBlosc, type NumcodecsCodec } from "../shared.js";
import { decodeBlosc } from "./decode.js";

/** Maps a blosc shuffle setting (v2 number or v3 string) to c-blosc's 0/1/2/-1. */
function shuffleCode(name: string, shuffle: unknown): number {
  if (shuffle === undefined) return 1;
  if (shuffle === 0 || shuffle === 1 || shuffle === 2 || shuffle === -1) return shuffle;
  if (shuffle === "noshuffle") return 0;
  if (shuffle === "shuffle") return 1;
  if (shuffle === "bitshuffle") return 2;
  throw new CellMapError("INVALID_METADATA", `${name}: shuffle must be 0/1/2/-1 or "noshuffle"/"shuffle"/"bitshuffle", got ${JSON.stringify(shuffle)}`, `codecs.${name}.shuffle`);
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
