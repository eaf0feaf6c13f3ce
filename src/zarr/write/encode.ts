/**
 * Chunk encoding for the writer, through zarrita: a chunk is encoded by `zarr.set` on a one-chunk
 * array opened from the array's own metadata (v2: the `.zarray` with zarrita's `open.v2`; v3:
 * zarrita's `create` with the array's codecs), over a store that keeps what zarrita stores. So
 * the writer runs the same codec pipeline and the same registered codecs (`src/zarr/codecs/`:
 * blosc, zstd with its checksum, gzip/zlib on node:zlib, lz4) as the reader: transpose, byte
 * order and compression are defined in one place. Sharded arrays encode their inner chunks the
 * same way (`shard.ts`).
 */
import * as zarr from "zarrita";
import type { AbsolutePath } from "@zarrita/storage";
import { CellMapError } from "../../errors.js";
import { DTYPES, stridesOf } from "../../tensor.js";
import { installDefaultCodecs } from "../codecs/register.js";
import { translateZarrError } from "../array.js";
import { v2ArrayDocuments, v3CreateOptions } from "./metadata.js";
import type { ArrayData, NormalizedArraySpec } from "./spec.js";

/** Encodes whole (inner) chunks of one array. */
export interface ChunkEncoder {
  /**
   * The stored bytes of one chunk given in C order with the (inner) chunk shape, edge chunks
   * padded: memory order, byte order and compressor applied.
   */
  encode(data: ArrayData): Promise<Uint8Array>;
}

/** A store holding in-memory metadata documents and keeping the last chunk zarrita writes. */
class CaptureStore {
  private readonly docs = new Map<string, Uint8Array>();
  captured: Uint8Array | undefined;

  constructor(docs: Record<string, unknown>) {
    for (const [name, doc] of Object.entries(docs)) this.docs.set(`/${name}`, new TextEncoder().encode(JSON.stringify(doc)));
  }

  async get(key: AbsolutePath): Promise<Uint8Array | undefined> {
    return this.docs.get(key);
  }

  async set(key: AbsolutePath, value: Uint8Array): Promise<void> {
    if (key.endsWith("/zarr.json")) return; // zarrita's create writes the one-chunk array's metadata
    this.captured = value;
  }
}

/** The encoder of `spec`'s (inner) chunks. `where` names the array in errors. */
export async function chunkEncoder(spec: NormalizedArraySpec, where: string): Promise<ChunkEncoder> {
  installDefaultCodecs();
  const one: NormalizedArraySpec = { ...spec, shape: [...spec.chunks], shards: null, attributes: {} };
  let sink: CaptureStore;
  let array: zarr.Array<zarr.DataType, CaptureStore>;
  try {
    if (spec.zarrFormat === 2) {
      sink = new CaptureStore(v2ArrayDocuments(one));
      array = await zarr.open.v2(zarr.root(sink), { kind: "array" });
    } else {
      sink = new CaptureStore({});
      array = (await zarr.create(zarr.root(sink), v3CreateOptions(one))) as unknown as zarr.Array<zarr.DataType, CaptureStore>;
    }
  } catch (err) {
    throw translateZarrError(err, where);
  }
  const shape = [...spec.chunks];
  const stride = stridesOf(shape);
  const length = shape.reduce((a, b) => a * b, 1);
  const ctor = DTYPES[spec.dtype].array;
  // One chunk at a time per encoder (the sink holds one result); encoding is CPU-bound anyway.
  let queue: Promise<unknown> = Promise.resolve();
  const encodeOne = async (data: ArrayData): Promise<Uint8Array> => {
    sink.captured = undefined;
    try {
      const value = shape.length === 0 ? (data[0] as never) : ({ data, shape, stride } as never);
      await zarr.set(array, null, value);
    } catch (err) {
      throw translateZarrError(err, where);
    }
    const bytes = sink.captured;
    sink.captured = undefined;
    if (!bytes) throw new CellMapError("IO", "zarrita stored no chunk", where);
    return bytes;
  };
  return {
    encode(data: ArrayData): Promise<Uint8Array> {
      if (!(data instanceof ctor) || data.length !== length) {
        return Promise.reject(
          new CellMapError("INVALID_ARGUMENT", `chunk data must be a ${ctor.name} of ${length} values for dtype ${spec.dtype}, got a ${data?.constructor?.name} of ${data?.length}`, where),
        );
      }
      const run = queue.then(() => encodeOne(data));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
