/**
 * Crash-safe file writes: data goes to a temporary file in the target's own directory and is
 * then renamed over the target. A rename within one filesystem is atomic, so a killed process
 * leaves either the old file, the new file, or a stray temp file — never a torn chunk.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { CellMapError } from "../errors.js";

/** Prefix of the temporary files; readers never look at dot-files named like this. */
export const TEMP_PREFIX = ".cm-tmp-";

// Unique per process (random) and per call (counter), so concurrent writers never share a temp file.
const PROCESS_TAG = `${process.pid}-${randomBytes(4).toString("hex")}`;
let counter = 0;

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `${TEMP_PREFIX}${path.basename(target)}.${PROCESS_TAG}-${counter++}`);
}

const isEnoent = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === "ENOENT";

function ioError(target: string, err: unknown): CellMapError {
  const msg = err instanceof Error ? err.message : String(err);
  return new CellMapError("IO", `cannot write file: ${msg}`, target, { cause: err });
}

/**
 * Writes `bytes` to `target` atomically (temp file + rename), creating parent directories.
 * Throws `CellMapError("IO")` on failure; the temp file is removed in that case.
 */
export async function writeFileAtomic(target: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    // Parents usually exist already; only create them when the first attempt says they don't.
    try {
      await fsp.writeFile(tmp, bytes);
    } catch (err) {
      if (!isEnoent(err)) throw err;
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await fsp.writeFile(tmp, bytes);
    }
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(target, err);
  }
}

/** Synchronous variant of {@link writeFileAtomic}. */
export function writeFileAtomicSync(target: string, bytes: Uint8Array | string): void {
  const tmp = tempPathFor(target);
  try {
    try {
      fs.writeFileSync(tmp, bytes);
    } catch (err) {
      if (!isEnoent(err)) throw err;
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(tmp, bytes);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // best effort: the original error matters more
    }
    throw ioError(target, err);
  }
}
