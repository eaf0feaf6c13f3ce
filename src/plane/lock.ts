/**
 * A mutex on one Int32 word of shared memory, for the chunk index's short critical sections
 * (a hash probe and a few word writes). States: 0 free, 1 held, 2 held with waiters — the
 * classic futex mutex. Waiting uses `Atomics.wait`, which Node allows on every thread.
 */
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;

/** Takes the lock at `words[at]`. */
export function lock(words: Int32Array, at: number): void {
  let c = Atomics.compareExchange(words, at, FREE, HELD);
  if (c === FREE) return;
  for (let spin = 0; spin < 100 && c !== FREE; spin++) c = Atomics.compareExchange(words, at, FREE, HELD);
  if (c === FREE) return;
  if (c !== CONTENDED) c = Atomics.exchange(words, at, CONTENDED);
  while (c !== FREE) {
    Atomics.wait(words, at, CONTENDED, 5);
    c = Atomics.exchange(words, at, CONTENDED);
  }
}

/** Releases the lock at `words[at]`. */
export function unlock(words: Int32Array, at: number): void {
  if (Atomics.exchange(words, at, FREE) === CONTENDED) Atomics.notify(words, at, 1);
}
