/**
 * One `abort` listener per signal, shared by every pending operation that watches it. A batch
 * read under one signal can have hundreds of chunk loads and queued requests waiting at once;
 * registering each on the signal would trip Node's MaxListenersExceededWarning (limit 10).
 */
const watchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once when `signal` aborts (at once if it already has). Returns a function that
 * stops watching; call it when the operation settles.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  let set = watchers.get(signal);
  if (!set) {
    const fresh = new Set<() => void>();
    set = fresh;
    watchers.set(signal, fresh);
    signal.addEventListener(
      "abort",
      () => {
        watchers.delete(signal);
        for (const f of fresh) f();
        fresh.clear();
      },
      { once: true },
    );
  }
  const s = set;
  s.add(fn);
  return () => {
    s.delete(fn);
  };
}
