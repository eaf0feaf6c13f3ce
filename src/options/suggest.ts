/**
 * "Did you mean …?" for misspelt names: the closest candidate by edit distance, compared without
 * case and underscores so that `batchsize`, `Batch_Size` and `batch_size` all find `batchSize`.
 */

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  if (m === 0) return n;
  if (n === 0) return m;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n];
}

/** The form names are compared in: lower case, without `_` and `-`. */
function fold(s: string): string {
  return s.toLowerCase().replace(/[_-]/g, "");
}

/**
 * The candidate closest to `word`, or undefined when none is close: at most a third of the
 * word's length in edits (at least 1, at most 3), or one name a prefix of the other
 * (`gt_path` → `gt`, `mitochondria` → `mito`).
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = fold(word);
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const f = fold(c);
    let d = editDistance(w, f);
    if (d > 0 && Math.min(w.length, f.length) >= 2 && (f.startsWith(w) || w.startsWith(f))) d = Math.min(d, 1);
    if (d < bestD) [best, bestD] = [c, d];
  }
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  return bestD <= limit ? best : undefined;
}

/** ` (did you mean "x"?)` for the closest candidate, or `""`. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? "" : ` (did you mean ${JSON.stringify(c)}?)`;
}
