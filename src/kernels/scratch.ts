/**
 * One thread's scratch space inside the data plane: regions read for resampling, tap tables and
 * the separable passes' intermediates, where the WebAssembly kernels can reach them. First fit
 * over a sorted free list (a handful of blocks are live at once). Full: callers use ordinary
 * arrays and the JS loops instead.
 */
const ALIGN = 64;

/** A thread-private allocator over `[base, base + size)` of the plane's buffer. */
export class ScratchArena {
  /** Free ranges `[start, end)`, sorted, coalesced. */
  private readonly free: [number, number][];
  private readonly sizes = new Map<number, number>();

  constructor(
    readonly buffer: SharedArrayBuffer,
    base: number,
    readonly size: number,
  ) {
    this.free = size > 0 ? [[base, base + size]] : [];
  }

  /** Byte offset of `bytes` free bytes (64-byte aligned), or -1 when no block is large enough. */
  alloc(bytes: number): number {
    const n = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f[1] - f[0] < n) continue;
      const at = f[0];
      f[0] += n;
      if (f[0] === f[1]) this.free.splice(i, 1);
      this.sizes.set(at, n);
      return at;
    }
    return -1;
  }

  /** Returns a block from {@link alloc}. */
  release(at: number): void {
    const n = this.sizes.get(at);
    if (n === undefined) return;
    this.sizes.delete(at);
    const end = at + n;
    let i = 0;
    while (i < this.free.length && this.free[i][0] < at) i++;
    this.free.splice(i, 0, [at, end]);
    // Coalesce with the neighbours.
    if (i + 1 < this.free.length && this.free[i][1] === this.free[i + 1][0]) {
      this.free[i][1] = this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][1] === this.free[i][0]) {
      this.free[i - 1][1] = this.free[i][1];
      this.free.splice(i, 1);
    }
  }

  /** Bytes handed out and not returned. */
  get inUse(): number {
    let n = 0;
    for (const v of this.sizes.values()) n += v;
    return n;
  }
}
