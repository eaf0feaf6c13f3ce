/**
 * Process-wide cache of *decoded* chunks, bounded in bytes (least recently used evicted first).
 * A non-aligned 64^3 patch touches 8 chunks, so without it every chunk is decoded many times;
 * with it, training on a working set that fits in RAM is no longer codec-bound.
 */
import { CellMapError } from "../errors.js";

/** A decoded chunk as the copy loop consumes it (bigint and bool data already widened). */
export interface DecodedChunk {
  data: NumericArray;
  shape: number[];
  /** Element strides of `data` per dimension (zarrita returns F-strided data for F-order arrays). */
  stride: number[];
}

export type { NumericArray } from "../tensor.js";
import type { NumericArray } from "../tensor.js";

/** Cache counters, for summaries and benchmarks. */
export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  bytes: number;
  entries: number;
  capacityBytes: number;
  /** Loads in progress (0 when no read is pending). */
  inflight: number;
  /** Shared cache: reads that waited for another read's decode of the same chunk. */
  waits?: number;
  /** Shared cache: chunks decoded without caching (too big for a page, or every page pinned). */
  bypassed?: number;
}

const DEFAULT_BYTES = 1024 ** 3;

/** The chunk-cache budget from `CELLMAP_CHUNK_CACHE_BYTES` (default 1 GiB). */
export function envChunkCacheBytes(): number {
  const v = process.env.CELLMAP_CHUNK_CACHE_BYTES;
  if (v === undefined || v === "") return DEFAULT_BYTES;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new CellMapError("INVALID_ARGUMENT", `CELLMAP_CHUNK_CACHE_BYTES must be a non-negative number of bytes, got "${v}"`, "CELLMAP_CHUNK_CACHE_BYTES");
  }
  return Math.floor(n);
}

/** LRU map from chunk key to decoded chunk, bounded by total bytes. */
export class ChunkCache {
  private readonly map = new Map<string, DecodedChunk>();
  private readonly inflight = new Map<string, Promise<DecodedChunk>>();
  private bytes = 0;
  private stats = { hits: 0, misses: 0, evictions: 0 };

  constructor(private capacity: number = envChunkCacheBytes()) {}

  /** Budget in bytes (0 disables caching, but concurrent requests are still de-duplicated). */
  get capacityBytes(): number {
    return this.capacity;
  }

  /** Changes the budget, evicting as needed. */
  setCapacity(bytes: number): void {
    if (!(bytes >= 0)) throw new CellMapError("INVALID_ARGUMENT", `chunk cache budget must be >= 0 bytes, got ${bytes}`, "chunkCacheBytes");
    this.capacity = Math.floor(bytes);
    this.evict();
  }

  /**
   * Returns the chunk for `key`, loading it with `load` on a miss. Concurrent callers of the same
   * key share one load (the chunks of one sample are requested by several arrays at once).
   */
  async get(key: string, load: () => Promise<DecodedChunk>): Promise<DecodedChunk> {
    const hit = this.map.get(key);
    if (hit) {
      this.stats.hits++;
      this.map.delete(key); // re-insert: Map order is our recency order
      this.map.set(key, hit);
      return hit;
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.stats.hits++;
      return pending;
    }
    this.stats.misses++;
    const p = load().then(
      (chunk) => {
        this.inflight.delete(key);
        this.put(key, chunk);
        return chunk;
      },
      (err) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  /** The cached chunk for `key` (counted as a hit, made most recent), or undefined. */
  peek(key: string): DecodedChunk | undefined {
    const hit = this.map.get(key);
    if (hit) {
      this.stats.hits++;
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  private put(key: string, chunk: DecodedChunk): void {
    const size = chunk.data.byteLength;
    if (size > this.capacity) return;
    this.map.set(key, chunk);
    this.bytes += size;
    this.evict();
  }

  private evict(): void {
    while (this.bytes > this.capacity && this.map.size > 0) {
      const [k, v] = this.map.entries().next().value as [string, DecodedChunk];
      this.map.delete(k);
      this.bytes -= v.data.byteLength;
      this.stats.evictions++;
    }
  }

  /** Drops every entry and resets counters. */
  clear(): void {
    this.map.clear();
    this.bytes = 0;
    this.stats = { hits: 0, misses: 0, evictions: 0 };
  }

  /** Current counters. */
  getStats(): CacheStats {
    return { ...this.stats, bytes: this.bytes, entries: this.map.size, capacityBytes: this.capacity, inflight: this.inflight.size };
  }
}

/** The process-wide (per thread) decoded-chunk cache. */
export const chunkCache = new ChunkCache();

/** Sets the process-wide chunk cache budget in bytes (0 disables). */
export function setChunkCacheBytes(bytes: number): void {
  chunkCache.setCapacity(bytes);
}
