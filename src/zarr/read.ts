/**
 * The hot path: copy the part of a zarr array inside an index box into a C-order Float32Array.
 * Chunks come from the chunk store the caller gives (its decoded-chunk cache); only chunks the box
 * touches are requested, all concurrently but bounded by the store's limiter; strides are honoured
 * (F-order / transpose codecs).
 */
import { CellMapError } from "../errors.js";
import { onAbort } from "../util/abort.js";
import { sizeOf, stridesOf } from "../tensor.js";
import type { ZarrArray } from "./array.js";
import { translateZarrError } from "./array.js";
import { copyBoxSame, gatherBox } from "../kernels/gather.js";
import { chunkCache, type DecodedChunk, type NumericArray } from "./cache.js";
import { asFloat16Bits } from "./float16.js";
import { type ChunkLease, type ChunkStore, LocalChunkStore } from "./chunk-store.js";

/** Converts zarrita's chunk data into a number-indexable typed array. */
function widen(data: unknown, where: string): NumericArray {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
    return out;
  }
  if (ArrayBuffer.isView(data)) return data as NumericArray;
  const b = data as { buffer?: ArrayBuffer; byteOffset?: number; length?: number };
  if (b && b.buffer instanceof ArrayBuffer && typeof b.length === "number") {
    return new Uint8Array(b.buffer, b.byteOffset ?? 0, b.length); // zarrita BoolArray
  }
  throw new CellMapError("UNSUPPORTED", "chunk data is not numeric", where);
}

/** Chunk loads running or waiting for a slot of `store` (0 when no read through it is pending). */
export function pendingChunkReads(store: ChunkStore = defaultChunkStore()): number {
  return store.limiter.active + store.limiter.waiting;
}

/** Settles with `p`, or rejects with `ABORTED` as soon as `signal` fires (p keeps running for others). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, where: string): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new CellMapError("ABORTED", "read aborted", where, { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const stop = onAbort(signal, () => reject(new CellMapError("ABORTED", "read aborted", where, { cause: signal.reason })));
    p.then(
      (v) => (stop(), resolve(v)),
      (e) => (stop(), reject(e)),
    );
  });
}

/**
 * Fetches chunk `coords` and decodes it straight into `dst` (arrays with a direct decode plan);
 * returns its element strides. Bounded by the same limiter as zarrita reads.
 */
function loadChunkInto(store: ChunkStore, za: ZarrArray, coords: number[], dst: Uint8Array, signal?: AbortSignal): Promise<number[]> {
  const direct = za.direct!;
  return store.limiter.run(async () => {
    const where = `${za.id}: chunk ${za.chunkKey(coords)}`;
    if (signal?.aborted) throw new CellMapError("ABORTED", "read aborted", za.chunkKey(coords), { cause: signal.reason });
    try {
      const bytes = await direct.store.get(direct.key(coords), { signal });
      await direct.decodeInto(bytes, dst);
    } catch (err) {
      if (err instanceof CellMapError && err.path === undefined) throw new CellMapError(err.code, err.detail, where, { cause: err });
      throw translateZarrError(err, where);
    }
    return direct.stride;
  }, signal);
}

/**
 * Fetches and decodes one chunk without touching a cache (whole-array scans, which load one
 * chunk at a time); reads through a store run it under the store's limiter.
 */
export async function loadChunkUncached(za: ZarrArray, coords: number[], signal?: AbortSignal): Promise<DecodedChunk> {
  if (signal?.aborted) throw new CellMapError("ABORTED", "read aborted", za.chunkKey(coords), { cause: signal.reason });
  let chunk: Awaited<ReturnType<typeof za.array.getChunk>>;
  try {
    chunk = await za.array.getChunk(coords, { signal });
  } catch (err) {
    const where = `${za.id}: chunk ${za.chunkKey(coords)}`;
    // A store's CORRUPT_CHUNK (a shard range outside its file) names the file only: add the chunk.
    if (err instanceof CellMapError && err.code === "CORRUPT_CHUNK" && err.path !== where) {
      throw new CellMapError(err.code, err.detail, where, { cause: err });
    }
    throw translateZarrError(err, where);
  }
  const decoded = widen(chunk.data, za.chunkKey(coords));
  // float16 arrays are decoded by zarrita as uint16 (see float16.ts).
  const data = za.dtype === "float16" ? asFloat16Bits(decoded as Uint16Array) : decoded;
  const expected = sizeOf(za.chunks);
  if (data.length !== expected) {
    throw new CellMapError(
      "CORRUPT_CHUNK",
      `chunk decoded to ${data.length} values, expected ${expected} (shape [${za.chunks}], dtype ${za.dtype})`,
      `${za.id}: chunk ${za.chunkKey(coords)}`,
    );
  }
  return { data, shape: chunk.shape, stride: chunk.stride };
}

let defaultStore: ChunkStore | undefined;

/**
 * The chunk store of reads that are given none (`CellMapImage.read` called by a script): this
 * thread's process-wide LRU cache `chunkCache` (budget `CELLMAP_CHUNK_CACHE_BYTES`), at most
 * `CELLMAP_MAX_CHUNK_REQUESTS` (default 64) fetches at once. Made on first use and never
 * replaced: a loader passes its own store down every read it makes.
 */
export function defaultChunkStore(): ChunkStore {
  defaultStore ??= new LocalChunkStore(chunkCache, Number(process.env.CELLMAP_MAX_CHUNK_REQUESTS) || undefined);
  return defaultStore;
}

/**
 * Reads the box `[lo, hi)` (array index space, all dimensions, inside the array) as float32,
 * C order, shape `hi - lo`.
 */
export async function readRegion(
  za: ZarrArray,
  lo: readonly number[],
  hi: readonly number[],
  signal?: AbortSignal,
  store?: ChunkStore,
): Promise<{ data: Float32Array; shape: number[] }> {
  const shape = checkRegion(za, lo, hi);
  const out = new Float32Array(sizeOf(shape));
  await readRegionInto(za, lo, hi, out, store ?? defaultChunkStore(), signal);
  return { data: out, shape };
}

function checkRegion(za: ZarrArray, lo: readonly number[], hi: readonly number[]): number[] {
  const nd = za.shape.length;
  if (lo.length !== nd || hi.length !== nd) {
    throw new CellMapError("INVALID_ARGUMENT", `region has ${lo.length} dims, array has ${nd}`, za.id);
  }
  const shape: number[] = [];
  for (let d = 0; d < nd; d++) {
    if (!(lo[d] >= 0 && hi[d] <= za.shape[d] && lo[d] <= hi[d])) {
      throw new CellMapError("OUT_OF_RANGE", `region [${lo}]..[${hi}] outside array shape [${za.shape}]`, za.id);
    }
    shape.push(hi[d] - lo[d]);
  }
  return shape;
}

/** Where a region goes: widened to float32/float64, or kept in the chunks' own element type. */
export type RegionTarget = Float32Array | Float64Array | NumericArray;

/**
 * Fills `out` (C order over the box `[lo, hi)`, exactly its size) from the chunks the box
 * touches: cached chunks are copied at once, the others as their decodes arrive (all
 * requested concurrently). Each chunk is held (pinned) only while it is copied. A float32 or
 * float64 `out` receives the values widened; any other typed array must be the chunks' own
 * element type and receives them as stored.
 */
export async function readRegionInto(za: ZarrArray, lo: readonly number[], hi: readonly number[], out: RegionTarget, store: ChunkStore, signal?: AbortSignal): Promise<void> {
  const shape = checkRegion(za, lo, hi);
  const size = sizeOf(shape);
  if (out.length !== size) throw new CellMapError("INVALID_ARGUMENT", `region needs ${size} values, the target holds ${out.length}`, za.id);
  if (size === 0) return;
  const nd = za.shape.length;
  const c0 = lo.map((v, d) => Math.floor(v / za.chunks[d]));
  const c1 = hi.map((v, d) => Math.floor((v - 1) / za.chunks[d]));
  const outStride = stridesOf(shape);
  const pending: Promise<void>[] = [];
  // Once this read has failed or been aborted, `out` may already serve someone else (a scratch
  // block freed, a batch slot reused): late chunks are released without being copied.
  let dead = false;
  const copyLate = (l: ChunkLease, cc: number[]) => (dead ? l.release() : copyLease(l, cc, za.chunks, lo, hi, out, outStride));
  const cur = [...c0];
  for (;;) {
    const cc = [...cur];
    const hit = store.peek(za, cc);
    if (hit) copyLease(hit, cc, za.chunks, lo, hi, out, outStride);
    else pending.push(leaseChunk(store, za, cc, signal).then((l) => copyLate(l, cc)));
    let d = nd - 1;
    while (d >= 0 && ++cur[d] > c1[d]) {
      cur[d] = c0[d];
      d--;
    }
    if (d < 0) break;
  }
  if (pending.length === 0) return;
  try {
    await untilAborted(Promise.all(pending), signal, za.id);
  } catch (err) {
    dead = true;
    throw err;
  }
}

/**
 * The chunk at `coords` through `store`. A decode shared with a concurrent reader runs under
 * the first reader's signal: when that reader aborts, a reader whose own signal has not fired
 * loads the chunk again.
 */
async function leaseChunk(store: ChunkStore, za: ZarrArray, coords: number[], signal?: AbortSignal): Promise<ChunkLease> {
  for (let attempt = 0; ; attempt++) {
    try {
      const into = za.direct ? (dst: Uint8Array) => loadChunkInto(store, za, coords, dst, signal) : undefined;
      return await store.get(za, coords, () => store.limiter.run(() => loadChunkUncached(za, coords, signal), signal), signal, into);
    } catch (err) {
      const aborted = err instanceof CellMapError && err.code === "ABORTED";
      if (!aborted || signal?.aborted || attempt >= 3) throw err;
    }
  }
}

function copyLease(l: ChunkLease, cc: number[], chunkShape: number[], lo: readonly number[], hi: readonly number[], out: RegionTarget, outStride: number[]): void {
  try {
    copyChunk(l, cc, chunkShape, lo, hi, out, outStride);
  } finally {
    l.release();
  }
}

/**
 * Copies the overlap of one chunk with the box into `out` (strided source, C-order target).
 * Dimensions the overlap spans with one index fold into the base offsets, so up to three
 * dimensions of extent > 1 (the usual zyx, czyx with one channel …) take the box gather.
 */
function copyChunk(
  chunk: { data: NumericArray; stride: number[] },
  cc: number[],
  chunkShape: number[],
  lo: readonly number[],
  hi: readonly number[],
  out: RegionTarget,
  outStride: number[],
): void {
  const nd = cc.length;
  const st = chunk.stride;
  let sBase = 0;
  let oBase = 0;
  const dims: number[] = [];
  const a = new Array<number>(nd);
  const b = new Array<number>(nd);
  for (let d = 0; d < nd; d++) {
    const origin = cc[d] * chunkShape[d];
    a[d] = Math.max(lo[d], origin);
    b[d] = Math.min(hi[d], origin + chunkShape[d]);
    if (a[d] >= b[d]) return;
    sBase += (a[d] - origin) * st[d];
    oBase += (a[d] - lo[d]) * outStride[d];
    if (b[d] - a[d] > 1) dims.push(d);
  }
  const src = chunk.data;
  const widening = out instanceof Float32Array || out instanceof Float64Array;
  if (!widening && Object.getPrototypeOf(out) !== Object.getPrototypeOf(src)) {
    throw new CellMapError("INVALID_ARGUMENT", `a region kept in the source type needs ${src.constructor.name} chunks' type, got ${out.constructor.name}`, "region");
  }
  if (dims.length <= 3) {
    // Pad to three dims (extent 1 in front); the last dim must be contiguous in `out`.
    while (dims.length < 3) dims.unshift(-1);
    const ext = (d: number) => (d < 0 ? 1 : b[d] - a[d]);
    const sst = (d: number) => (d < 0 ? 0 : st[d]);
    const ost = (d: number) => (d < 0 ? 0 : outStride[d]);
    const [d0, d1, d2] = dims;
    if (d2 < 0 || ost(d2) === 1) {
      const target = { data: out, offset: oBase, d0: ost(d0), d1: ost(d1) };
      if (widening)
        gatherBox(
          src,
          sBase,
          sst(d0),
          sst(d1),
          d2 < 0 ? 1 : sst(d2),
          target as { data: Float32Array | Float64Array; offset: number; d0: number; d1: number },
          ext(d0),
          ext(d1),
          ext(d2),
        );
      else copyBoxSame(src, sBase, sst(d0), sst(d1), d2 < 0 ? 1 : sst(d2), target, ext(d0), ext(d1), ext(d2));
      return;
    }
  }
  const last = nd - 1;
  const runLen = b[last] - a[last];
  const sStep = st[last];
  const idx = [...a];
  for (;;) {
    let s = 0;
    let o = 0;
    for (let d = 0; d < nd; d++) {
      s += (idx[d] - cc[d] * chunkShape[d]) * st[d];
      o += (idx[d] - lo[d]) * outStride[d];
    }
    for (let i = 0; i < runLen; i++) out[o + i] = src[s + i * sStep];
    let d = last - 1;
    while (d >= 0 && ++idx[d] >= b[d]) {
      idx[d] = a[d];
      d--;
    }
    if (d < 0) break;
  }
}
