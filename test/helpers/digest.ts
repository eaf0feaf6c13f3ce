/** Byte-exact digests of samples and batches (NaN-safe: compares float bits, not values). */
import { createHash } from "node:crypto";
import type { Tensor } from "../../src/tensor.js";

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && (v as Tensor).data instanceof Float32Array;
}

/** sha256 over `idx` and every tensor's name, shape and bytes (metadata, which names paths, is left out). */
export function tensorDigest(item: { idx: number | number[]; [k: string]: unknown }): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(item.idx));
  for (const k of Object.keys(item).sort()) {
    const t = item[k];
    if (!isTensor(t)) continue;
    h.update(`${k}:${t.shape.join(",")}:`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest("hex");
}
