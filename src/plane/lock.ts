/**
 * A mutex on one Int32 word of shared memory, for the chunk index's short critical sections
 * (a hash probe and a few word writes). States: 0 free, 1 held, 2 held with waiters — the
 * classic futex mutex. Waiting uses `Atomics.wait`, which Node allows on every thread.
 */
import { CellMapError } from "../errors.js";

const FREE = 0;
const HELD = 1;
const CONTENDED = 2;

/**
 * A holder keeps the lock for microseconds; one that has not let go after this long died holding
 * it (a terminated worker thread), and waiting longer would hang the process.
 */
const DEADLINE_MS = 5000;

/** Takes the lock at `words[at]`; throws `IO` if it stays held past the deadline (its holder died). */
export function lock(words: Int32Array, at: number): void {
  let c = Atomics.compareExchange(words, at, FREE, HELD);
  if (c === FREE) return;
  for (let spin = 0; spin < 100 && c !== FREE; spin++) c = Atomics.compareExchange(words, at, FREE, HELD);
  if (c === FREE) return;
  if (c !== CONTENDED) c = Atomics.exchange(words, at, CONTENDED);
  const start = Date.now();
  while (c !== FREE) {
    if (Date.now() - start > DEADLINE_MS) {
      throw new CellMapError("IO", "the shared chunk cache's lock was not released (a worker thread died holding it)", "chunk cache");
    }
    Atomics.wait(words, at, CONTENDED, 5);
    c = Atomics.exchange(words, at, CONTENDED);
  }
}

/** Releases the lock at `words[at]`. */
export function unlock(words: Int32Array, at: number): void {
  if (Atomics.exchange(words, at, FREE) === CONTENDED) Atomics.notify(words, at, 1);
}
