/**
 * Where the read path gets decoded chunks from: the data plane's shared cache
 * (`plane/chunk-cache.ts`) or, without one, this thread's own cache (`cache.ts`). A lease pins
 * the chunk's memory until `release()`, so a shared slot cannot be evicted mid-copy.
 */
import type { ScratchArena } from "../kernels/scratch.js";
import { Limiter } from "../util/limit.js";
import type { ZarrArray } from "./array.js";
import type { CacheStats, ChunkCache, DecodedChunk, NumericArray } from "./cache.js";

/** A decoded chunk held for reading. */
export interface ChunkLease {
  data: NumericArray;
  /** Element strides of `data` per dimension. */
  stride: number[];
  /** Ends the hold (once). */
  release(): void;
}

/** Decodes a chunk into `dst` (exactly its bytes) and returns its element strides. */
export type LoadInto = (dst: Uint8Array) => Promise<number[]>;

/** A decoded-chunk cache the read path can use. */
export interface ChunkStore {
  /** The chunk if it is cached and ready, else null; never waits. */
  peek(za: ZarrArray, coords: readonly number[]): ChunkLease | null;
  /**
   * The chunk, decoded with `load` on a miss (concurrent requests share one decode). A store
   * with its own memory may use `loadInto` instead, which decodes into the given bytes and
   * returns the chunk's element strides.
   */
  get(za: ZarrArray, coords: readonly number[], load: () => Promise<DecodedChunk>, signal?: AbortSignal, loadInto?: LoadInto): Promise<ChunkLease>;
  /** Counters. */
  getStats(): CacheStats;
  /** Budget in bytes. */
  readonly capacityBytes: number;
  /** The reading thread's scratch space in the data plane (resampling uses it), if any. */
  scratch?: ScratchArena | null;
  /** Bounds the chunk fetches and decodes running at once through this store. */
  readonly limiter: Limiter;
}

/** Chunk fetch+decode requests a store runs at once unless told otherwise. */
export const DEFAULT_MAX_CHUNK_REQUESTS = 64;

const noop = () => {};

/** A {@link ChunkStore} over a thread-local {@link ChunkCache} (Map, LRU). */
export class LocalChunkStore implements ChunkStore {
  scratch: ScratchArena | null = null;

  /** `maxChunkRequests`: fetches and decodes at once through this store (default 64). */
  constructor(
    readonly cache: ChunkCache,
    maxChunkRequests = DEFAULT_MAX_CHUNK_REQUESTS,
  ) {
    this.limiter = new Limiter(maxChunkRequests);
  }

  readonly limiter: Limiter;

  get capacityBytes(): number {
    return this.cache.capacityBytes;
  }

  peek(za: ZarrArray, coords: readonly number[]): ChunkLease | null {
    const c = this.cache.peek(`${za.id}|${coords.join(",")}`);
    return c ? { data: c.data, stride: c.stride, release: noop } : null;
  }

  async get(za: ZarrArray, coords: readonly number[], load: () => Promise<DecodedChunk>): Promise<ChunkLease> {
    const c = await this.cache.get(`${za.id}|${coords.join(",")}`, load);
    return { data: c.data, stride: c.stride, release: noop };
  }

  getStats(): CacheStats {
    return this.cache.getStats();
  }
}
