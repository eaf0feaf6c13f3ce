/**
 * Process warnings the library emits about data it can read but that may not mean what the user
 * expects (axes without units, …). Each distinct message is emitted once per process, so a
 * loader that opens the same image in every epoch and worker does not flood stderr.
 */

const emitted = new Set<string>();

/** Emits `message` as a process warning with `code`, unless this exact message was emitted before. */
export function warnOnce(message: string, code: string): void {
  const key = `${code}\0${message}`;
  if (emitted.has(key)) return;
  emitted.add(key);
  process.emitWarning(message, { code });
}
