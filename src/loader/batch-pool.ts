/**
 * The loader's batch buffers: slots of the data plane's batch region, handed to whoever builds
 * a batch and back when the consumer is done with it. A slot returns to the pool when the
 * consumer calls `loader.recycle(batch)`, or when every tensor of the batch has been garbage
 * collected; a batch the consumer still references is never reused. When all slots are out,
 * batches get fresh buffers instead (never a wait).
 */
import type { DataPlane } from "../plane/plane.js";
import type { AnyTensor, TensorData } from "../tensor.js";
import { type Batch, type BatchLayout, type BatchTarget, tensorKeys } from "./collate.js";

interface Lease {
  slot: number;
  /** Tensors of the batch not yet collected. */
  alive: number;
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
  private readonly free: number[] = [];
  private readonly leases = new WeakMap<Batch, Lease>();
  private readonly registry = new FinalizationRegistry<Lease>((lease) => {
    if (--lease.alive === 0) this.giveBack(lease);
  });

  constructor(
    private readonly plane: DataPlane,
    readonly layout: BatchLayout,
  ) {
    for (let s = plane.batches.slots - 1; s >= 0; s--) this.free.push(s);
  }

  /** Slots not handed out. */
  get available(): number {
    return this.free.length;
  }

  /** A free slot, or -1 when all are out. */
  take(): number {
    return this.free.pop() ?? -1;
  }

  /** Returns a slot that was taken but never became a batch (e.g. the read failed). */
  release(slot: number): void {
    this.free.push(slot);
  }

  /** Full-batch views of `slot`, one per key. */
  target(slot: number): BatchTarget {
    return batchTarget(this.plane, this.layout, slot);
  }

  /** Records that `batch` (built in `slot`) goes to the consumer. */
  handOut(batch: Batch, slot: number): void {
    const keys = tensorKeys(batch);
    const lease: Lease = { slot, alive: keys.length, returned: false };
    this.leases.set(batch, lease);
    for (const k of keys) this.registry.register((batch[k] as AnyTensor).data, lease, lease);
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
    return true;
  }

  private giveBack(lease: Lease): void {
    if (lease.returned) return;
    lease.returned = true;
    this.free.push(lease.slot);
  }
}
