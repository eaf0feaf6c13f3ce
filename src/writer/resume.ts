/**
 * Resume bookkeeping of an output image: which tiles are written, recovered from what the store
 * holds, and the check that an output being resumed was written with the same settings.
 *
 * No journal: a tile counts as written when its s0 chunk exists (no overlap / crop), or when its
 * partial window exists or every chunk its window overlaps exists (blending). Chunks and
 * partials are written atomically (temp file + rename locally, one PUT per object on S3), so
 * their existence cannot disagree with the data. This works the same on local directories and
 * on `s3://` (a listing of the bucket prefix).
 */
import type { AbsolutePath } from "../store/types.js";
import { isDeepStrictEqual } from "node:util";
import { CellMapError } from "../errors.js";
import type { WritableStore } from "../store/writable.js";
import { childKey, putJson } from "../zarr/write/index.js";
import type { TilePlan } from "./tile-plan.js";

/** Folder (inside the image) of the partial windows of blended tiles. */
export const PARTIAL_DIR = ".cm-partial";

/** Store key of tile `id`'s partial window. */
export function partialKey(id: number): AbsolutePath {
  return `/${PARTIAL_DIR}/${id}.f32`;
}

/** Which tiles and chunks of one image are written. */
export class Progress {
  /** Per chunk (= tile id): its s0 chunk is stored. */
  readonly chunkDone: Uint8Array;
  /** Per tile: its partial window is stored (blending). */
  readonly partialDone: Uint8Array;

  /**
   * @param plan the image's tiles.
   * @param store the image's store (rooted at the image).
   * @param chunkKey the s0 chunk key (relative to `s0`) of tile `id`.
   */
  constructor(
    private readonly plan: TilePlan,
    private readonly store: WritableStore,
    private readonly chunkKey: (id: number) => string,
  ) {
    this.chunkDone = new Uint8Array(plan.count);
    this.partialDone = new Uint8Array(plan.count);
  }

  /** Marks what the store holds: s0 chunks, and (blending) partial windows. */
  async scan(): Promise<void> {
    const keys = new Set(await this.store.list("/s0"));
    for (let id = 0; id < this.plan.count; id++) if (keys.has(this.chunkKey(id))) this.chunkDone[id] = 1;
    if (!this.plan.blending) return;
    for (const name of await this.store.list(`/${PARTIAL_DIR}`)) {
      const m = /^(\d+)\.f32$/.exec(name);
      if (m && Number(m[1]) < this.plan.count) this.partialDone[Number(m[1])] = 1;
    }
  }

  /** Whether every chunk tile `id`'s window overlaps is written. */
  footprintDone(id: number): boolean {
    let all = true;
    this.plan.forFootprint(id, (k) => {
      if (!this.chunkDone[k]) all = false;
    });
    return all;
  }

  /** Whether every tile overlapping chunk `k` has its partial window (so `k` can be blended). */
  chunkReady(k: number): boolean {
    return this.plan.contributors(k).every((j) => this.partialDone[j] === 1);
  }

  /** Whether tile `id` is written (see the module comment). */
  isTileDone(id: number): boolean {
    if (!this.plan.blending) return this.chunkDone[id] === 1;
    return this.partialDone[id] === 1 || this.footprintDone(id);
  }

  /** Ids of the tiles not written yet (ascending). */
  pending(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.plan.count; id++) if (!this.isTileDone(id)) out.push(id);
    return out;
  }
}

/**
 * Writes the metadata documents `files` (name to JSON value) of the node at `dir` that are not
 * there; with `resume`, the ones that are must equal them (else `WRITE_CONFLICT`).
 */
export async function ensureDocuments(store: WritableStore, dir: AbsolutePath, files: Record<string, unknown>, resume: boolean, where: string): Promise<void> {
  for (const [name, doc] of Object.entries(files)) {
    const key = childKey(dir, name);
    if (resume) {
      const bytes = await store.get(key);
      if (bytes !== undefined) {
        let old: unknown;
        try {
          old = JSON.parse(new TextDecoder().decode(bytes));
        } catch {
          old = undefined;
        }
        if (!isDeepStrictEqual(old, doc)) {
          throw new CellMapError(
            "WRITE_CONFLICT",
            "existing output was written with different settings (shape, chunks, dtype, codec or geometry); use overwrite: true or another path",
            `${where}${key}`,
          );
        }
        continue;
      }
    }
    await putJson(store, key, doc);
  }
}
