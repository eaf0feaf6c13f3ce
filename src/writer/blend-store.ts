/**
 * The blend store of an output image (overlap with `blend: "linear" | "gaussian"`): each tile's
 * whole window is first stored as a *partial* `<image>/.cm-partial/<tile>.f32` (raw float32,
 * C order, one atomic write: temp file + rename locally, one PUT on S3). As soon as every tile
 * overlapping a chunk has its partial, the chunk is computed as the weighted mean of those
 * windows (weights and their separable normaliser in blend.ts, float64 sums in a fixed order, so
 * the result does not depend on write order) and handed to the writer. A partial is deleted once
 * every chunk it overlaps is written.
 *
 * Recently stored windows stay in memory (one budget for all images of the process, least
 * recently stored evicted first), so chunks rarely read partials back.
 */
import { CellMapError } from "../errors.js";
import type { WritableStore } from "../store/writable.js";
import { accumulateTile, normaliseRegion } from "./blend.js";
import { PARTIAL_DIR, partialKey, type Progress } from "./resume.js";
import type { TilePlan } from "./tile-plan.js";
import { tileBox } from "./tiling.js";

const recent = {
  budget: 256 * 1024 ** 2,
  bytes: 0,
  map: new Map<string, Float32Array>(),
  set(key: string, v: Float32Array): void {
    this.delete(key);
    this.map.set(key, v);
    this.bytes += v.byteLength;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(k);
      this.bytes -= old.byteLength;
    }
  },
  delete(key: string): void {
    const v = this.map.get(key);
    if (v) {
      this.bytes -= v.byteLength;
      this.map.delete(key);
    }
  },
};

/** What the blend store needs of its image. */
export interface BlendTarget {
  plan: TilePlan;
  progress: Progress;
  /** The image's store (rooted at the image). */
  store: WritableStore;
  /** The image's location (messages, memory cache keys). */
  location: string;
  fillValue: number;
  /** Writes blended chunk `k` (float64, `[C, ...chunk]`, padded with the fill value). */
  writeChunk(k: number, values: Float64Array): Promise<void>;
  /** Whether chunk `k` is stored (another process may have written it). */
  chunkStored(k: number): Promise<boolean>;
}

/** Partial windows and blended chunks of one image (see the module comment). */
export class BlendStore {
  private readonly finalising = new Map<number, Promise<void>>();

  constructor(private readonly t: BlendTarget) {}

  private recentKey(id: number): string {
    return `${this.t.location}#${id}`;
  }

  private where(id: number): string {
    return `${this.t.location}${partialKey(id)}`;
  }

  /** Stores tile `id`'s window and writes every chunk that is now complete. */
  async put(id: number, values: Float32Array): Promise<void> {
    const copy = values.slice(); // the caller may reuse its buffer once we return
    await this.t.store.set(partialKey(id), new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength));
    this.t.progress.partialDone[id] = 1;
    recent.set(this.recentKey(id), copy);
    const jobs: Promise<void>[] = [];
    this.t.plan.forFootprint(id, (k) => {
      if (!this.t.progress.chunkDone[k] && this.t.progress.chunkReady(k)) jobs.push(this.finalise(k));
    });
    await Promise.all(jobs);
  }

  /** Writes every chunk whose tiles all have partials but that is not written yet. */
  async finishReady(): Promise<void> {
    const { plan, progress } = this.t;
    for (let k = 0; k < plan.count; k++) if (!progress.chunkDone[k] && progress.chunkReady(k)) await this.finalise(k);
  }

  /** Removes every partial (the folder) and forgets the windows kept in memory. */
  async clear(): Promise<void> {
    await this.t.store.deletePrefix(`/${PARTIAL_DIR}`);
    for (let id = 0; id < this.t.plan.count; id++) recent.delete(this.recentKey(id));
  }

  /** Computes and writes blended chunk `k` (once per process at a time). */
  private finalise(k: number): Promise<void> {
    let p = this.finalising.get(k);
    if (!p) {
      p = this.compute(k).finally(() => this.finalising.delete(k));
      this.finalising.set(k, p);
    }
    return p;
  }

  private async load(j: number): Promise<Float32Array | null> {
    const hit = recent.map.get(this.recentKey(j));
    if (hit) return hit;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.t.store.get(partialKey(j));
    } catch (err) {
      if (err instanceof CellMapError) throw err;
      throw new CellMapError("IO", `cannot read partial prediction: ${(err as Error).message}`, this.where(j), { cause: err });
    }
    if (bytes === undefined) return null;
    const n = this.t.plan.windowLength;
    if (bytes.byteLength !== n * 4) {
      throw new CellMapError("CORRUPT_CHUNK", `partial prediction has ${bytes.byteLength} bytes, expected ${n * 4}`, this.where(j));
    }
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    return new Float32Array(aligned.buffer, aligned.byteOffset, n);
  }

  private async compute(k: number): Promise<void> {
    const { plan, progress } = this.t;
    const b = tileBox(plan.t3, k);
    const region = [0, 1, 2].map((a) => b.coreEnd[a] - b.coreStart[a]);
    const accShape = [plan.C, ...plan.chunk3];
    const acc = new Float64Array(plan.chunkLength);
    const predShape = [plan.C, ...plan.window3];
    const contributors = plan.contributors(k);
    for (const j of contributors) {
      const pred = await this.load(j);
      if (!pred) {
        // Another process finished this chunk and removed the partials it needed.
        if (await this.t.chunkStored(k)) {
          progress.chunkDone[k] = 1;
          return;
        }
        throw new CellMapError("IO", `partial prediction of tile ${j} disappeared before chunk ${k} was written`, this.where(j));
      }
      accumulateTile(acc, accShape, b.coreStart, region, pred, predShape, tileBox(plan.t3, j).windowStart, plan.weights3);
    }
    normaliseRegion(acc, accShape, b.coreStart, region, plan.norm3);
    if (this.t.fillValue !== 0) this.fillOutside(acc, region);
    await this.t.writeChunk(k, acc);
    progress.chunkDone[k] = 1;
    // Partials whose every chunk is now written are no longer needed (each deleted once: the
    // flag is cleared before the request, so concurrent chunks do not delete it twice).
    await Promise.all(
      contributors.map(async (j) => {
        if (progress.partialDone[j] && progress.footprintDone(j)) {
          progress.partialDone[j] = 0;
          recent.delete(this.recentKey(j));
          await this.t.store.delete(partialKey(j));
        }
      }),
    );
  }

  /** Sets the part of a chunk buffer outside the array (edge chunks) to the fill value. */
  private fillOutside(acc: Float64Array, region: number[]): void {
    const { C, chunk3 } = this.t.plan;
    const [c0, c1, c2] = chunk3;
    for (let c = 0; c < C; c++) {
      for (let z = 0; z < c0; z++) {
        for (let y = 0; y < c1; y++) {
          const row = ((c * c0 + z) * c1 + y) * c2;
          const inside = z < region[0] && y < region[1];
          acc.fill(this.t.fillValue, row + (inside ? region[2] : 0), row + c2);
        }
      }
    }
  }
}
