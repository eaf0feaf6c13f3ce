/**
 * Batches as safetensors blobs, the wire format of `cellmap-data serve` (docs/serve.md).
 *
 * A blob is the standard safetensors layout: an 8-byte little-endian header length, a JSON
 * header (`dtype`, `shape`, `data_offsets` per tensor; string values under `__metadata__`),
 * padded with spaces to 8 bytes so that every tensor starts 8-byte aligned, then the tensors'
 * little-endian bytes in header order. A frame on the stream is the blob's byte length (8-byte
 * little-endian) followed by the blob. Hand-written because the format is a JSON header plus
 * raw bytes, and writing the batch's own views to the socket avoids the copy a serialiser
 * library would make; the Python client parses it with `numpy.frombuffer`, without a copy.
 */
import * as os from "node:os";
import { CellMapError } from "../errors.js";
import type { Batch } from "../loader/collate.js";
import { type AnyTensor, dtypeOfData, type OutputDtype } from "../tensor.js";

/** safetensors dtype names of the output dtypes. */
export const SAFETENSORS_DTYPES: Record<OutputDtype, string> = { float32: "F32", int32: "I32", uint32: "U32", float64: "F64" };

/** A batch ready to write: the frame prefix + header, then the tensors' bytes. */
export interface EncodedBatch {
  /** Frame length prefix, blob header length and header JSON (padded), in one buffer. */
  head: Buffer;
  /** The tensors' bytes, views of the batch (no copy). */
  parts: Buffer[];
  /** Bytes of the whole frame (prefix included). */
  frameBytes: number;
}

if (os.endianness() !== "LE") {
  // Typed arrays use the platform's byte order; safetensors is little-endian.
  throw new CellMapError("UNSUPPORTED", "serve needs a little-endian platform (safetensors is little-endian)");
}

/**
 * Encodes `batch` (tensor keys in batch order) with string metadata values. `metadata` values
 * must be strings, as safetensors requires.
 */
export function encodeBatch(batch: Batch, tensorNames: readonly string[], metadata: Record<string, string>): EncodedBatch {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const name of tensorNames) {
    const t = batch[name] as AnyTensor;
    const bytes = t.data.byteLength;
    header[name] = { dtype: SAFETENSORS_DTYPES[dtypeOfData(t.data)], shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, bytes));
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const headerBytes = Buffer.byteLength(json);
  const head = Buffer.allocUnsafe(16 + headerBytes);
  const blobBytes = 8 + headerBytes + offset;
  head.writeBigUInt64LE(BigInt(blobBytes), 0);
  head.writeBigUInt64LE(BigInt(headerBytes), 8);
  head.write(json, 16, "utf8");
  return { head, parts, frameBytes: 8 + blobBytes };
}

/** A decoded blob (tests and JavaScript clients): tensors as views of `blob`, and the metadata. */
export function decodeBlob(blob: Uint8Array): { tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }>; metadata: Record<string, string> } {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const n = Number(view.getBigUint64(0, true));
  type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
  const header = JSON.parse(new TextDecoder().decode(blob.subarray(8, 8 + n))) as Record<string, unknown>;
  const tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
  for (const [k, raw] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const v = raw as Entry;
    tensors[k] = { dtype: v.dtype, shape: v.shape, bytes: blob.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) };
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string> | undefined) ?? {} };
}
