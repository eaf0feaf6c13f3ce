/**
 * Finding the batches a consumer dropped, so their shared buffers can be filled again without a
 * `recycle()` call.
 *
 * JavaScript says an object is unreachable only through a garbage collection, and V8 clears weak
 * references (`WeakRef`, `FinalizationRegistry`) only in a full mark-compact, never in the
 * young-generation scavenges (checked on Node 20: a dropped view survives `gc({type: "minor"})`).
 * A training loop that drops each batch allocates almost nothing on the JavaScript heap, so V8
 * rarely collects on its own: before this module every batch past the pool took fresh memory,
 * and the process paid for it anyway (page faults, copies outside the shared plane, and the
 * collections the fresh memory itself set off, in every thread).
 *
 * So when the pool runs dry the loader asks for one full collection itself, then checks which
 * batches died. No library offers this; the collection function comes from V8's `--expose-gc`
 * flag, set for the moment it takes to fetch it (or `globalThis.gc` when the process already
 * has it).
 *
 * Measured on the 2-core dev machine (std workload, batch 8, 33.5 MB per batch): one full
 * collection of the main thread's heap (12 MB after importing the package) costs 10–30 ms,
 * while a batch in fresh memory cost 61 ms more CPU than one in the pool (10.2 against 2.6 ms
 * per sample: page faults, copies outside the plane, and the collections fresh memory sets off
 * in every thread). A collection returns every batch dropped since the last one, and the pool
 * keeps spares so that it finds many (`memory.ts`). The policy: collect when the pool is empty,
 * unless the last collection found nothing (the consumer keeps its batches: collecting again
 * would only cost); then fresh memory, until a batch comes back by itself (or, at the latest,
 * {@link RETRY} fresh batches later).
 */
import * as v8 from "node:v8";
import * as vm from "node:vm";

type Collect = () => void;

/** Fresh batches after which a collection judged not worth it is tried again. */
const RETRY = 32;

let collector: Collect | null | undefined;

/** The full-collection function of this thread's isolate, or null when V8 refuses to give one. */
function fullCollector(): Collect | null {
  if (collector !== undefined) return collector;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === "function") return (collector = exposed as Collect);
  try {
    v8.setFlagsFromString("--expose-gc");
    const fn = vm.runInNewContext("gc") as unknown;
    collector = typeof fn === "function" ? (fn as Collect) : null;
  } catch {
    collector = null;
  } finally {
    // Only the context made above gets the function; later contexts of the process do not.
    v8.setFlagsFromString("--no-expose-gc");
  }
  return collector;
}

/** Counters of a {@link Reclaimer}. */
export interface ReclaimStats {
  /** Full collections the loader asked for. */
  collections: number;
  /** Milliseconds they blocked this thread. */
  collectMs: number;
  /** Batches they found dropped. */
  found: number;
  /** Batches built outside the pool because no buffer was free. */
  fresh: number;
}

/** Decides when a collection is worth it, and runs it. */
export class Reclaimer {
  readonly stats: ReclaimStats = { collections: 0, collectMs: 0, found: 0, fresh: 0 };
  /** The last collection found nothing: wait for a batch to come back some other way. */
  private futile = false;
  /** Fresh batches since a collection found nothing (a retry comes after {@link RETRY}). */
  private skipped = 0;

  constructor(private readonly collect: Collect | null = fullCollector()) {}

  /** A batch came back without a collection (recycle, or a collection V8 ran by itself). */
  returned(): void {
    this.futile = false;
  }

  /** Whether to collect now, with `outstanding` batches out whose fate is unknown. */
  wants(outstanding: number): boolean {
    if (this.collect === null || outstanding === 0) return false;
    if (!this.futile) return true;
    // The last one found nothing: look again now and then (the consumer may have let go).
    return this.skipped >= RETRY;
  }

  /**
   * Runs one full collection if it is worth it, then `scan()`, which returns how many batches it
   * found dropped. Returns that count (0 when no collection ran).
   */
  tryCollect(outstanding: number, scan: () => number): number {
    if (!this.wants(outstanding)) return 0;
    this.skipped = 0;
    // Wall time: the collection blocks this thread (per-thread CPU time needs Node 23).
    const t0 = performance.now();
    this.collect!();
    const ms = performance.now() - t0;
    const found = scan();
    this.stats.collections++;
    this.stats.collectMs += ms;
    this.stats.found += found;
    this.futile = found === 0;
    return found;
  }

  /** A batch had to be built outside the pool. */
  freshBatch(): void {
    this.stats.fresh++;
    this.skipped++;
  }
}
