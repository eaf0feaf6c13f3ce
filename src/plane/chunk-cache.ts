/**
 * The process's decoded-chunk cache, in shared memory, used by every thread at once.
 *
 * Layout (all inside the data plane's `WebAssembly.Memory`, so the SIMD gathers read it):
 * - control words: the index lock, the eviction hand, counters;
 * - the index: an open-addressing table (linear probing, backward-shift deletion) of slot ids,
 *   keyed by (64-bit hash of the array's id, 53-bit linear chunk index): exact for chunks, and
 *   for arrays up to a 2^-64 chance that two array ids collide;
 * - slot words: state (`FREE`, `DECODING`, `READY`), pin count, key, decoded bytes, strides;
 * - the slab: pages of `pageBytes`, each given to one size class (a power of two ≥ 16 KiB) when
 *   first needed, then cut into slots of that size.
 *
 * Protocol: a thread that misses claims a slot (`DECODING`, pinned), decodes outside the lock,
 * copies into the slot and publishes `READY` with `Atomics.notify`; other threads that find
 * `DECODING` wait (`Atomics.waitAsync`), so each chunk is decoded once per process. Readers pin
 * a slot while they copy from it. Eviction is CLOCK over pages (a page's reference bit is set by
 * any hit in it) and skips pages with pinned or decoding slots; a full cache of pinned slots
 * decodes privately instead of waiting.
 */
import { CellMapError } from "../errors.js";
import { sizeOf } from "../tensor.js";
import type { ZarrArray } from "../zarr/array.js";
import type { CacheStats, DecodedChunk, NumericArray } from "../zarr/cache.js";
import { type ChunkLease, type ChunkStore, DEFAULT_MAX_CHUNK_REQUESTS, type LoadInto } from "../zarr/chunk-store.js";
import { Limiter } from "../util/limit.js";
import { waitAsync } from "../kernels/wasm.js";
import { lock, unlock } from "./lock.js";
import type { ScratchArena } from "../kernels/scratch.js";
import { Float16Bits } from "../kernels/float16.js";

const FREE = 0;
const DECODING = 1;
const READY = 2;

// Slot words.
const S_STATE = 0,
  S_REF = 1,
  S_K0 = 2,
  S_K1 = 3,
  S_K2 = 4,
  S_K3 = 5,
  S_BYTES = 6,
  S_ND = 7,
  S_STRIDE = 8;
const MAX_ND = 4;
const SLOT_WORDS = S_STRIDE + MAX_ND;
// Page words.
const P_CLASS = 0,
  P_REF = 1,
  P_USED = 2;
const PAGE_WORDS = 4;
// Control words.
const C_LOCK = 0,
  C_HAND = 1,
  C_HITS = 2,
  C_MISSES = 3,
  C_EVICTIONS = 4,
  C_ENTRIES = 5,
  C_WAITS = 6,
  C_BYPASS = 7;
const CTRL_WORDS = 32;
/** Float64 index (bytes 64..71, words 16..17) of the "bytes held" figure, written under the lock. */
const CTRL_BYTES_F64 = 8;

const MIN_SHIFT = 14; // 16 KiB slots at least
/** How long a reader waits for another thread's decode before decoding privately (never a hang). */
const DECODE_WAIT_MS = 60_000;

/** Where the cache's parts sit in the plane's buffer (bytes), plus its geometry. */
export interface ChunkCacheLayout {
  ctrl: number;
  table: number;
  tableSize: number;
  slots: number;
  pages: number;
  slab: number;
  nPages: number;
  pageBytes: number;
  slotsPerPage: number;
  /**
   * Whether chunks stay after their last reader lets go (a cache), or leave at once (transit:
   * a budget of 0 keeps nothing between reads, yet decodes land in shared memory, so the SIMD
   * gathers read them and concurrent readers of one chunk share its decode).
   */
  retain: boolean;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** Page size for a budget: about 1/16 of it, a power of two between 1 and 16 MiB. */
function pageBytesFor(capacity: number): number {
  let p = 1 << 20;
  while (p < 16 << 20 && p * 2 * 16 <= capacity) p *= 2;
  return p;
}

/** Bytes the cache needs for `capacity` bytes of slab (0 when the budget holds no page). */
export function chunkCacheLayout(capacity: number, base: number, retain = true): { layout: ChunkCacheLayout | null; end: number } {
  const pageBytes = pageBytesFor(capacity);
  const nPages = Math.floor(capacity / pageBytes);
  if (nPages < 1) return { layout: null, end: base };
  const slotsPerPage = pageBytes >> MIN_SHIFT;
  const nSlots = nPages * slotsPerPage;
  let tableSize = 1;
  while (tableSize < 2 * nSlots) tableSize *= 2;
  const ctrl = align(base, 64);
  const table = ctrl + CTRL_WORDS * 4;
  const slots = table + tableSize * 4;
  const pages = slots + nSlots * SLOT_WORDS * 4;
  const slab = align(pages + nPages * PAGE_WORDS * 4, 65536);
  return { layout: { ctrl, table, tableSize, slots, pages, slab, nPages, pageBytes, slotsPerPage, retain }, end: slab + nPages * pageBytes };
}

/** Writes the empty state (once, by the thread that creates the plane). */
export function initChunkCache(buffer: SharedArrayBuffer, l: ChunkCacheLayout): void {
  new Int32Array(buffer, l.table, l.tableSize).fill(-1);
  const pages = new Int32Array(buffer, l.pages, l.nPages * PAGE_WORDS);
  for (let p = 0; p < l.nPages; p++) pages[p * PAGE_WORDS + P_CLASS] = -1;
}

/** Element type of decoded chunks of a dtype (bigint widened to float64, bool as uint8). */
function viewType(dtype: string): { ctor: new (b: ArrayBufferLike, o: number, n: number) => NumericArray; bytes: number } {
  switch (dtype) {
    case "bool":
    case "uint8":
      return { ctor: Uint8Array, bytes: 1 };
    case "int8":
      return { ctor: Int8Array, bytes: 1 };
    case "int16":
      return { ctor: Int16Array, bytes: 2 };
    case "uint16":
      return { ctor: Uint16Array, bytes: 2 };
    case "float16":
      return { ctor: Float16Bits, bytes: 2 }; // bit patterns, widened by the gather
    case "int32":
      return { ctor: Int32Array, bytes: 4 };
    case "uint32":
      return { ctor: Uint32Array, bytes: 4 };
    case "float32":
      return { ctor: Float32Array, bytes: 4 };
    default:
      return { ctor: Float64Array, bytes: 8 }; // float64, int64, uint64
  }
}

/** Per-array facts every lookup needs (computed once per array per thread). */
interface ArrayKey {
  k0: number;
  k1: number;
  grid: number[];
  ctor: new (b: ArrayBufferLike, o: number, n: number) => NumericArray;
  elemBytes: number;
  length: number;
  bytes: number;
  cls: number;
}

function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function mix(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ c;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ d;
  return (h ^ (h >>> 16)) >>> 0;
}

/** One thread's handle on the shared cache. */
export class SharedChunkCache implements ChunkStore {
  private readonly ctrl: Int32Array;
  private readonly ctrlF64: Float64Array;
  private readonly table: Int32Array;
  private readonly slots: Int32Array;
  private readonly pages: Int32Array;
  private readonly mask: number;
  private readonly keys = new WeakMap<ZarrArray, ArrayKey>();
  /** This thread's scratch arena (set by the plane). */
  scratch: ScratchArena | null = null;
  /** This thread's bound on chunk fetches and decodes at once. */
  readonly limiter = new Limiter(DEFAULT_MAX_CHUNK_REQUESTS);

  constructor(
    private readonly buffer: SharedArrayBuffer,
    private readonly l: ChunkCacheLayout,
  ) {
    this.ctrl = new Int32Array(buffer, l.ctrl, CTRL_WORDS);
    this.ctrlF64 = new Float64Array(buffer, l.ctrl, CTRL_WORDS / 2);
    this.table = new Int32Array(buffer, l.table, l.tableSize);
    this.slots = new Int32Array(buffer, l.slots, l.nPages * l.slotsPerPage * SLOT_WORDS);
    this.pages = new Int32Array(buffer, l.pages, l.nPages * PAGE_WORDS);
    this.mask = l.tableSize - 1;
  }

  /** Slab bytes (the budget actually usable); 0 for a transit area, which keeps nothing. */
  get capacityBytes(): number {
    return this.l.retain ? this.l.nPages * this.l.pageBytes : 0;
  }

  /** Bytes of the slab (cache or transit area). */
  get slabBytes(): number {
    return this.l.nPages * this.l.pageBytes;
  }

  private keyOf(za: ZarrArray): ArrayKey {
    let k = this.keys.get(za);
    if (!k) {
      const t = viewType(za.dtype);
      const length = sizeOf(za.chunks);
      const bytes = length * t.bytes;
      let cls = MIN_SHIFT;
      while (1 << cls < bytes && cls < 31) cls++;
      k = {
        k0: fnv1a(za.id, 0x811c9dc5),
        k1: fnv1a(za.id, 0x01000193 ^ 0x5bd1e995),
        grid: za.shape.map((n, d) => Math.max(1, Math.ceil(n / za.chunks[d]))),
        ctor: t.ctor,
        elemBytes: t.bytes,
        length,
        bytes,
        cls,
      };
      this.keys.set(za, k);
    }
    return k;
  }

  private linear(k: ArrayKey, coords: readonly number[]): number {
    let lin = 0;
    for (let d = 0; d < coords.length; d++) lin = lin * k.grid[d] + coords[d];
    return lin;
  }

  private slotOffset(slot: number): number {
    const p = Math.floor(slot / this.l.slotsPerPage);
    const i = slot - p * this.l.slotsPerPage;
    return this.l.slab + p * this.l.pageBytes + i * (1 << this.pages[p * PAGE_WORDS + P_CLASS]);
  }

  private home(k0: number, k1: number, k2: number, k3: number): number {
    return mix(k0, k1, k2, k3) & this.mask;
  }

  /** Index position holding a slot with this key, or -1 (under the lock). */
  private find(k0: number, k1: number, k2: number, k3: number): number {
    const s = this.slots;
    for (let h = this.home(k0, k1, k2, k3); ; h = (h + 1) & this.mask) {
      const id = this.table[h];
      if (id < 0) return -1;
      const b = id * SLOT_WORDS;
      if (s[b + S_K0] === k0 && s[b + S_K1] === k1 && s[b + S_K2] === k2 && s[b + S_K3] === k3) return h;
    }
  }

  private insert(id: number): void {
    const b = id * SLOT_WORDS;
    const s = this.slots;
    let h = this.home(s[b + S_K0], s[b + S_K1], s[b + S_K2], s[b + S_K3]);
    while (this.table[h] >= 0) h = (h + 1) & this.mask;
    this.table[h] = id;
  }

  /** Removes index position `h` (backward-shift deletion keeps probe chains unbroken). */
  private removeAt(h: number): void {
    const t = this.table;
    const s = this.slots;
    let i = h;
    t[i] = -1;
    for (let j = (i + 1) & this.mask; t[j] >= 0; j = (j + 1) & this.mask) {
      const b = t[j] * SLOT_WORDS;
      const k = this.home(s[b + S_K0], s[b + S_K1], s[b + S_K2], s[b + S_K3]);
      // Move entry j into the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      t[i] = t[j];
      t[j] = -1;
      i = j;
    }
  }

  private removeSlot(id: number): void {
    const b = id * SLOT_WORDS;
    const s = this.slots;
    const h = this.find(s[b + S_K0], s[b + S_K1], s[b + S_K2], s[b + S_K3]);
    if (h >= 0 && this.table[h] === id) this.removeAt(h);
  }

  /** A free slot of size class `cls`, evicting a page if needed; -1 if every page is busy (under the lock). */
  private allocate(cls: number): number {
    const { nPages, slotsPerPage, pageBytes } = this.l;
    const per = pageBytes >> cls;
    if (per < 1) return -1;
    const pg = this.pages;
    const s = this.slots;
    for (let p = 0; p < nPages; p++) {
      const pb = p * PAGE_WORDS;
      if (pg[pb + P_CLASS] !== cls || pg[pb + P_USED] >= per) continue;
      for (let i = 0; i < per; i++) {
        const id = p * slotsPerPage + i;
        if (s[id * SLOT_WORDS + S_STATE] === FREE && Atomics.load(s, id * SLOT_WORDS + S_REF) === 0) return this.claimIn(p, id);
      }
    }
    for (let p = 0; p < nPages; p++) {
      if (pg[p * PAGE_WORDS + P_CLASS] === -1) {
        pg[p * PAGE_WORDS + P_CLASS] = cls;
        return this.claimIn(p, p * slotsPerPage);
      }
    }
    for (let step = 0; step < 2 * nPages; step++) {
      const p = this.ctrl[C_HAND];
      this.ctrl[C_HAND] = (p + 1) % nPages;
      const pb = p * PAGE_WORDS;
      if (this.pageBusy(p)) continue;
      if (pg[pb + P_REF]) {
        pg[pb + P_REF] = 0;
        continue;
      }
      this.evictPage(p);
      pg[pb + P_CLASS] = cls;
      return this.claimIn(p, p * slotsPerPage);
    }
    return -1;
  }

  private claimIn(p: number, id: number): number {
    this.pages[p * PAGE_WORDS + P_USED]++;
    this.pages[p * PAGE_WORDS + P_REF] = 1;
    return id;
  }

  private slotsOfPage(p: number): number {
    const cls = this.pages[p * PAGE_WORDS + P_CLASS];
    return cls < 0 ? 0 : this.l.pageBytes >> cls;
  }

  private pageBusy(p: number): boolean {
    const n = this.slotsOfPage(p);
    const s = this.slots;
    for (let i = 0; i < n; i++) {
      const b = (p * this.l.slotsPerPage + i) * SLOT_WORDS;
      if (Atomics.load(s, b + S_REF) > 0 || s[b + S_STATE] === DECODING) return true;
    }
    return false;
  }

  private evictPage(p: number): void {
    const n = this.slotsOfPage(p);
    const s = this.slots;
    for (let i = 0; i < n; i++) {
      const id = p * this.l.slotsPerPage + i;
      const b = id * SLOT_WORDS;
      if (s[b + S_STATE] !== READY) continue;
      this.removeSlot(id);
      s[b + S_STATE] = FREE;
      this.ctrl[C_EVICTIONS]++;
      this.ctrl[C_ENTRIES]--;
      this.ctrlF64[CTRL_BYTES_F64] -= s[b + S_BYTES];
    }
    this.pages[p * PAGE_WORDS + P_USED] = 0;
  }

  private lease(id: number, k: ArrayKey): ChunkLease {
    const b = id * SLOT_WORDS;
    const s = this.slots;
    const nd = s[b + S_ND];
    const stride = new Array<number>(nd);
    for (let d = 0; d < nd; d++) stride[d] = s[b + S_STRIDE + d];
    const data = new k.ctor(this.buffer, this.slotOffset(id), k.length);
    if (this.l.retain) return { data, stride, release: () => void Atomics.sub(s, b + S_REF, 1) };
    return { data, stride, release: () => this.unpin(id) };
  }

  /** Transit: frees slot `id` once its last reader is done (unless a new reader pinned it meanwhile). */
  private drop(id: number): void {
    const b = id * SLOT_WORDS;
    const s = this.slots;
    lock(this.ctrl, C_LOCK);
    if (Atomics.load(s, b + S_REF) === 0 && s[b + S_STATE] === READY) {
      this.removeSlot(id);
      s[b + S_STATE] = FREE;
      this.pages[Math.floor(id / this.l.slotsPerPage) * PAGE_WORDS + P_USED]--;
      this.ctrl[C_ENTRIES]--;
      this.ctrlF64[CTRL_BYTES_F64] -= s[b + S_BYTES];
    }
    unlock(this.ctrl, C_LOCK);
  }

  /** The chunk if it is ready in the cache (pinned until `release()`), else null. Never waits. */
  peek(za: ZarrArray, coords: readonly number[]): ChunkLease | null {
    const k = this.keyOf(za);
    if (coords.length > MAX_ND) return null;
    const lin = this.linear(k, coords);
    const k2 = (lin % 4294967296) | 0;
    const k3 = Math.floor(lin / 4294967296) | 0;
    lock(this.ctrl, C_LOCK);
    const h = this.find(k.k0, k.k1, k2, k3);
    const id = h >= 0 ? this.table[h] : -1;
    if (id >= 0 && this.slots[id * SLOT_WORDS + S_STATE] === READY) {
      Atomics.add(this.slots, id * SLOT_WORDS + S_REF, 1);
      this.pages[Math.floor(id / this.l.slotsPerPage) * PAGE_WORDS + P_REF] = 1;
      unlock(this.ctrl, C_LOCK);
      Atomics.add(this.ctrl, C_HITS, 1);
      return this.lease(id, k);
    }
    unlock(this.ctrl, C_LOCK);
    return null;
  }

  /**
   * The chunk at `coords`, pinned until `release()`: from the cache, from another thread's
   * decode in progress, or decoded here with `load` and published for every thread.
   */
  async get(za: ZarrArray, coords: readonly number[], load: () => Promise<DecodedChunk>, signal?: AbortSignal, loadInto?: LoadInto): Promise<ChunkLease> {
    const k = this.keyOf(za);
    if (coords.length > MAX_ND || k.cls > 30 || 1 << k.cls > this.l.pageBytes) return this.bypass(load);
    const lin = this.linear(k, coords);
    const k2 = (lin % 4294967296) | 0;
    const k3 = Math.floor(lin / 4294967296) | 0;
    const s = this.slots;
    const started = Date.now();
    for (;;) {
      if (signal?.aborted) throw new CellMapError("ABORTED", "read aborted", za.chunkKey([...coords]), { cause: signal.reason });
      lock(this.ctrl, C_LOCK);
      const h = this.find(k.k0, k.k1, k2, k3);
      let id = h >= 0 ? this.table[h] : -1;
      if (id >= 0) {
        const b = id * SLOT_WORDS;
        if (s[b + S_STATE] === READY) {
          Atomics.add(s, b + S_REF, 1);
          this.pages[Math.floor(id / this.l.slotsPerPage) * PAGE_WORDS + P_REF] = 1;
          unlock(this.ctrl, C_LOCK);
          Atomics.add(this.ctrl, C_HITS, 1);
          return this.lease(id, k);
        }
        // Another thread (or this one) is decoding it: pin it as a waiter (so it cannot leave
        // between the decoder's publish and this wake-up), wait for the notify, then use it.
        Atomics.add(s, b + S_REF, 1);
        unlock(this.ctrl, C_LOCK);
        Atomics.add(this.ctrl, C_WAITS, 1);
        const state = await this.waitWhileDecoding(b, started);
        if (state === READY) {
          this.pages[Math.floor(id / this.l.slotsPerPage) * PAGE_WORDS + P_REF] = 1;
          Atomics.add(this.ctrl, C_HITS, 1);
          return this.lease(id, k);
        }
        this.unpin(id); // the decode failed (or took too long): look again, decoding here if need be
        if (state === DECODING) return this.bypass(load);
        continue;
      }
      id = this.allocate(k.cls);
      if (id < 0) {
        unlock(this.ctrl, C_LOCK);
        return this.bypass(load);
      }
      const b = id * SLOT_WORDS;
      s[b + S_K0] = k.k0;
      s[b + S_K1] = k.k1;
      s[b + S_K2] = k2;
      s[b + S_K3] = k3;
      s[b + S_STATE] = DECODING;
      Atomics.store(s, b + S_REF, 1);
      this.insert(id);
      this.ctrl[C_MISSES]++;
      unlock(this.ctrl, C_LOCK);
      return this.fill(id, k, load, loadInto, `${za.id}: chunk ${za.chunkKey([...coords])}`);
    }
  }

  /** Waits until the slot at word `b` leaves `DECODING` (or the wait limit passes); returns its state. */
  private async waitWhileDecoding(b: number, started: number): Promise<number> {
    const s = this.slots;
    for (;;) {
      const state = Atomics.load(s, b + S_STATE);
      if (state !== DECODING || Date.now() - started > DECODE_WAIT_MS) return state;
      const w = waitAsync(s, b + S_STATE, DECODING, 1000);
      if (w.async) {
        // A pending waitAsync does not keep the event loop alive; this timer does.
        const keepAlive = setTimeout(() => {}, 1000);
        await w.value;
        clearTimeout(keepAlive);
      }
    }
  }

  /** Drops one pin of slot `id`; a transit slot leaves with its last reader. */
  private unpin(id: number): void {
    if (Atomics.sub(this.slots, id * SLOT_WORDS + S_REF, 1) === 1 && !this.l.retain) this.drop(id);
  }

  /** Decodes into slot `id` (claimed, pinned, `DECODING`) and publishes it. */
  private async fill(id: number, k: ArrayKey, load: () => Promise<DecodedChunk>, loadInto: LoadInto | undefined, where: string): Promise<ChunkLease> {
    const b = id * SLOT_WORDS;
    const s = this.slots;
    let stride: number[];
    try {
      if (loadInto) {
        // Decode straight into the slot (no chunk-sized allocation, no copy).
        stride = await loadInto(new Uint8Array(this.buffer, this.slotOffset(id), k.bytes));
      } else {
        const chunk = await load();
        if (chunk.data.length !== k.length || chunk.data.BYTES_PER_ELEMENT !== k.elemBytes) {
          throw new CellMapError(
            "CORRUPT_CHUNK",
            `decoded chunk has ${chunk.data.length} values of ${chunk.data.BYTES_PER_ELEMENT} bytes, expected ${k.length} of ${k.elemBytes}`,
            where,
          );
        }
        const d = chunk.data;
        new Uint8Array(this.buffer, this.slotOffset(id), k.bytes).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        stride = chunk.stride;
      }
      if (stride.length > MAX_ND) throw new CellMapError("UNSUPPORTED", `chunks of more than ${MAX_ND} dimensions are not cached`, where);
    } catch (err) {
      // Publish nothing: unlist the slot and free it; waiters (still pinning it) wake, let go
      // and look again. The slot is reused only once no pin is left.
      lock(this.ctrl, C_LOCK);
      this.removeSlot(id);
      s[b + S_STATE] = FREE;
      Atomics.sub(s, b + S_REF, 1);
      this.pages[Math.floor(id / this.l.slotsPerPage) * PAGE_WORDS + P_USED]--;
      unlock(this.ctrl, C_LOCK);
      Atomics.notify(s, b + S_STATE);
      throw err;
    }
    s[b + S_BYTES] = k.bytes;
    s[b + S_ND] = stride.length;
    for (let i = 0; i < stride.length; i++) s[b + S_STRIDE + i] = stride[i];
    lock(this.ctrl, C_LOCK);
    Atomics.store(s, b + S_STATE, READY);
    this.ctrl[C_ENTRIES]++;
    this.ctrlF64[CTRL_BYTES_F64] += k.bytes;
    unlock(this.ctrl, C_LOCK);
    Atomics.notify(s, b + S_STATE);
    return this.lease(id, k);
  }

  /** Decodes privately (nothing cached): chunks too big for a page, or a cache full of pinned slots. */
  private async bypass(load: () => Promise<DecodedChunk>): Promise<ChunkLease> {
    Atomics.add(this.ctrl, C_BYPASS, 1);
    const c = await load();
    return { data: c.data, stride: c.stride, release: () => {} };
  }

  /** Counters of the cache (all threads together). */
  getStats(): CacheStats {
    return {
      hits: Atomics.load(this.ctrl, C_HITS),
      misses: Atomics.load(this.ctrl, C_MISSES),
      evictions: Atomics.load(this.ctrl, C_EVICTIONS),
      bytes: this.ctrlF64[CTRL_BYTES_F64],
      entries: Atomics.load(this.ctrl, C_ENTRIES),
      capacityBytes: this.capacityBytes,
      inflight: 0,
      waits: Atomics.load(this.ctrl, C_WAITS),
      bypassed: Atomics.load(this.ctrl, C_BYPASS),
    };
  }
}
