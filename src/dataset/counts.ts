/**
 * Class statistics shared by datasets, multi-datasets and samplers. Counts are voxels at the
 * training resolution (already scaled by the voxel-volume ratio by `CellMapImage.classCounts`),
 * so crops stored at different resolutions add up in the same unit.
 */

/** Foreground (class present) and background (annotated, class absent) voxels of one class. */
export interface ClassCount {
  foreground: number;
  background: number;
}

/** Counts per class name. */
export type ClassCounts = Record<string, ClassCount>;

/** Zero counts for every class. */
export function zeroCounts(classes: readonly string[]): ClassCounts {
  const out: ClassCounts = {};
  for (const c of classes) out[c] = { foreground: 0, background: 0 };
  return out;
}

/** Sum of several count tables over `classes` (classes missing from a table count 0). */
export function sumCounts(classes: readonly string[], tables: readonly ClassCounts[]): ClassCounts {
  const out = zeroCounts(classes);
  for (const t of tables) {
    for (const c of classes) {
      const v = t[c];
      if (!v) continue;
      out[c].foreground += v.foreground;
      out[c].background += v.background;
    }
  }
  return out;
}

/**
 * Class weights `background / foreground`, 1 when a class has no foreground (nothing to
 * up-weight). A class filling half of its crops gets 1; one filling 10 % gets 9.
 */
export function weightsFromCounts(counts: ClassCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [c, v] of Object.entries(counts)) out[c] = v.foreground > 0 ? v.background / v.foreground : 1;
  return out;
}

/**
 * Weighted foreground mass of one dataset, `Σ_c fg_c · w_c`: the probability of drawing from a
 * dataset in weighted sampling is proportional to it (rare classes pull their crops up).
 */
export function weightedForeground(counts: ClassCounts, weights: Record<string, number>): number {
  let m = 0;
  for (const [c, v] of Object.entries(counts)) m += v.foreground * (weights[c] ?? 1);
  return m;
}
