/**
 * Chunk encoding for the writer, through zarrita: the encoder is a one-chunk zarrita array
 * opened from the array's own metadata (v2: the `.zarray`, with zarrita's `open.v2`; v3:
 * zarrita's `create` with the array's codecs). So the writer runs the reader's codec pipeline
 * and registered codecs (`src/zarr/codecs/`: blosc, zstd with its checksum, gzip/zlib on
 * node:zlib, lz4): transpose, byte order and compression are defined in one place. Sharded
 * arrays encode their inner chunks the same way (`shard.ts`).
 *
 * A chunk goes through the array's codec pipeline directly (zarrita's lower-level chunk encode,
 * which `zarr.set` calls once it has copied the values into a fresh chunk): the copy would cost a
 * third of a raw write. When that pipeline cannot be reached (another zarrita version), `zarr.set`
 * on the one-chunk array does the same work, its store keeping what zarrita stores.
 */
import * as zarr from "zarrita";
import type { AbsolutePath } from "../../store/types.js";
import { CellMapError } from "../../errors.js";
import { DTYPES, stridesOf } from "../../tensor.js";
import { installDefaultCodecs } from "../codecs/register.js";
import { translateZarrError } from "../array.js";
import { v2ArrayDocuments, v3CreateOptions } from "./metadata.js";
import type { ArrayData, ChunkEncoder, NormalizedArraySpec } from "./spec.js";

export type { ChunkEncoder } from "./spec.js";

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

interface Pipeline {
  encode(chunk: { data: ArrayData; shape: number[]; stride: number[] }): Promise<Uint8Array>;
}

/** zarrita's codec pipeline of an opened array (internal to zarrita), or null when it is not where zarrita 0.7 keeps it. */
function pipelineOf(array: object): Pipeline | null {
  const sym = Object.getOwnPropertySymbols(array).find((s) => s.description === "zarrita.context");
  const ctx = sym ? (array as Record<symbol, { kind?: unknown; codec?: { encode?: unknown } }>)[sym] : undefined;
  return ctx?.kind === "regular" && typeof ctx.codec?.encode === "function" ? (ctx.codec as Pipeline) : null;
}

/**
 * The encoder of `spec`'s (inner) chunks. `where` names the array in errors; `viaSet` forces the
 * `zarr.set` path (tests).
 */
export async function chunkEncoder(spec: NormalizedArraySpec, where: string, opts: { viaSet?: boolean } = {}): Promise<ChunkEncoder> {
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
  const pipeline = opts.viaSet ? null : pipelineOf(array);
  const direct = async (data: ArrayData): Promise<Uint8Array> => {
    // zarrita's bytes codec reads the whole buffer of the chunk's array.
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
    try {
      return await pipeline!.encode({ data: own, shape, stride });
    } catch (err) {
      throw translateZarrError(err, where);
    }
  };
  // Through `set`: one chunk at a time per encoder (the sink holds one result).
  let queue: Promise<unknown> = Promise.resolve();
  const viaSet = async (data: ArrayData): Promise<Uint8Array> => {
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
          new CellMapError(
            "INVALID_ARGUMENT",
            `chunk data must be a ${ctor.name} of ${length} values for dtype ${spec.dtype}, got a ${data?.constructor?.name} of ${data?.length}`,
            where,
          ),
        );
      }
      if (pipeline) return direct(data);
      const run = queue.then(() => viaSet(data));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
