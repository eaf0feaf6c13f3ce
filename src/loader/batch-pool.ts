/**
 * The loader's batch buffers: slots of the data plane's batch region, handed to whoever builds
 * a batch and back when the consumer is done with it. A slot returns to the pool when the
 * consumer calls `loader.recycle(batch)`, or once neither the batch nor any of its tensors'
 * typed arrays can be reached any more: when the pool runs dry it asks for a collection and
 * checks (see `reclaim.ts`), and collections V8 runs by itself return slots too. A batch the
 * consumer still references is never reused. When no slot is free even so, batches get fresh
 * buffers instead (never a wait).
 *
 * The lowest free slot is taken first, so the memory a run touches is the most it ever had out
 * at once.
 */
import type { DataPlane } from "../plane/plane.js";
import type { AnyTensor, TensorData } from "../tensor.js";
import { type Batch, type BatchLayout, type BatchTarget, tensorKeys } from "./collate.js";
import { Reclaimer } from "./reclaim.js";

interface Lease {
  slot: number;
  /** Tensors of the batch not yet collected. */
  alive: number;
  /** The batch's typed arrays, to check after a collection (a batch is gone when all are). */
  refs: WeakRef<TensorData>[];
  returned: boolean;
}

/** Full-batch views of batch buffer `slot` of `plane`, one per key of `layout` (any thread). */
export function batchTarget(plane: DataPlane, layout: BatchLayout, slot: number): BatchTarget {
  const views: Record<string, TensorData> = {};
  for (const k of layout.keys) views[k.name] = plane.batchView(slot, k.offset, k.sampleSize * layout.batchSize, k.dtype);
  return { layout, views };
}

/** Slots of a plane's batch region (main thread only). */
export class BatchPool {
  /** Free slots, highest first (so `pop` gives the lowest). */
  private readonly free: number[] = [];
  private readonly leases = new WeakMap<Batch, Lease>();
  /** Batches handed out and not yet back. */
  private readonly out = new Set<Lease>();
  private readonly registry = new FinalizationRegistry<Lease>((lease) => {
    if (--lease.alive === 0 && !lease.returned) {
      this.giveBack(lease);
      this.reclaimer.returned();
    }
  });
  private readonly reclaimer: Reclaimer;

  constructor(
    private readonly plane: DataPlane,
    readonly layout: BatchLayout,
    reclaimer?: Reclaimer,
  ) {
    for (let s = plane.batches.slots - 1; s >= 0; s--) this.free.push(s);
    this.reclaimer = reclaimer ?? new Reclaimer();
  }

  /** Slots not handed out. */
  get available(): number {
    return this.free.length;
  }

  /**
   * A free slot, or -1 when every slot is out: then {@link reclaim} may find one, or the
   * caller builds the batch in fresh memory.
   */
  take(): number {
    return this.free.pop() ?? -1;
  }

  /**
   * A slot for a batch when {@link take} found none: runs a collection if one is worth it, then
   * takes a slot, or returns -1 (the caller then builds the batch in fresh memory).
   *
   * Asynchronous on purpose: a `WeakRef` keeps its target alive until the current job ends (the
   * consumer's loop may run many batches in one chain of microtasks), so the collection runs
   * after a turn of the event loop. Concurrent callers share one collection.
   */
  async reclaim(): Promise<number> {
    let slot = this.take();
    if (slot >= 0) return slot;
    if (this.reclaimer.wants(this.out.size)) {
      this.collecting ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.collecting = null;
        if (this.free.length === 0) this.reclaimer.tryCollect(this.out.size, () => this.scan());
      });
      await this.collecting;
      slot = this.take();
    }
    if (slot < 0) this.reclaimer.freshBatch();
    return slot;
  }

  /** A collection under way ({@link reclaim}), shared by concurrent callers. */
  private collecting: Promise<void> | null = null;

  /** Gives back the slots of batches whose typed arrays are all gone; returns how many. */
  private scan(): number {
    let found = 0;
    for (const lease of this.out) {
      if (lease.refs.every((r) => r.deref() === undefined)) {
        this.registry.unregister(lease);
        this.giveBack(lease);
        found++;
      }
    }
    return found;
  }

  /** Returns a slot that was taken but never became a batch (e.g. the read failed). */
  release(slot: number): void {
    this.put(slot);
  }

  /** Puts `slot` back, keeping `free` sorted highest first. */
  private put(slot: number): void {
    let i = this.free.length;
    while (i > 0 && this.free[i - 1] < slot) i--;
    this.free.splice(i, 0, slot);
  }

  /** Full-batch views of `slot`, one per key. */
  target(slot: number): BatchTarget {
    return batchTarget(this.plane, this.layout, slot);
  }

  /** Records that `batch` (built in `slot`) goes to the consumer. */
  handOut(batch: Batch, slot: number): void {
    const keys = tensorKeys(batch);
    const data = keys.map((k) => (batch[k] as AnyTensor).data);
    const lease: Lease = { slot, alive: keys.length, refs: data.map((d) => new WeakRef(d)), returned: false };
    this.leases.set(batch, lease);
    this.out.add(lease);
    for (const d of data) this.registry.register(d, lease, lease);
  }

  /** Whether `batch` lives in this pool. */
  owns(batch: Batch): boolean {
    return this.leases.has(batch);
  }

  /** The consumer is done with `batch`: its tensors are emptied and its slot reused. */
  recycle(batch: Batch): boolean {
    const lease = this.leases.get(batch);
    if (!lease) return false;
    this.leases.delete(batch);
    this.registry.unregister(lease);
    for (const k of tensorKeys(batch)) {
      const t = batch[k] as AnyTensor;
      t.data = new (t.data.constructor as new (n: number) => TensorData)(0);
    }
    this.giveBack(lease);
    this.reclaimer.returned();
    return true;
  }

  private giveBack(lease: Lease): void {
    if (lease.returned) return;
    lease.returned = true;
    this.out.delete(lease);
    this.put(lease.slot);
  }
}
