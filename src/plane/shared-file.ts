/**
 * The batch pool as a file: maps a region of the data plane's shared memory to a file in
 * `/dev/shm` (unlinked at once; other processes open it as `/proc/<pid>/fd/<fd>`), so that
 * `serve`'s shared-memory transport hands batches to a client on this host without copying them.
 * The mapping is made by the small native addon `native/remap.c` (see its header for why it is
 * hand-written, with the measurement); without it (not built, not Linux) there is no file and
 * the transport copies.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";

interface RemapAddon {
  remap(view: Uint8Array, fd: number): boolean;
}

let addon: RemapAddon | null | undefined;

/** The addon (`build/Release/cellmap_remap.node`, built by `npm install`), or null. */
function remapAddon(): RemapAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform === "linux" && process.env.CELLMAP_SHM_COPY !== "1") {
    try {
      addon = createRequire(import.meta.url)("../../build/Release/cellmap_remap.node") as RemapAddon;
    } catch {
      // not built: the transport copies
    }
  }
  return addon;
}

/** A region of this process's memory that is also a file another process can map. */
export interface SharedRegionFile {
  /** Open descriptor of the (unlinked) file: `/proc/<pid>/fd/<fd>`. */
  fd: number;
  pid: number;
  /** Bytes mapped (the region rounded up to whole pages). */
  bytes: number;
}

/**
 * Maps `bytes` of `buffer` from byte `base` (page aligned) to a new file, keeping their
 * contents. Nothing may write to the region meanwhile. Null when the addon is not available or
 * the mapping fails (then nothing changed).
 */
export function mapRegionToFile(buffer: SharedArrayBuffer, base: number, bytes: number): SharedRegionFile | null {
  const a = remapAddon();
  if (!a || base % 4096 !== 0) return null;
  const length = Math.ceil(bytes / 4096) * 4096;
  if (base + length > buffer.byteLength) return null;
  const dir = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const file = path.join(dir, `cellmap-data-pool-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fd = fs.openSync(file, "w+", 0o600);
  try {
    fs.unlinkSync(file);
    fs.ftruncateSync(fd, length);
    a.remap(new Uint8Array(buffer, base, length), fd);
    return { fd, pid: process.pid, bytes: length };
  } catch {
    fs.closeSync(fd);
    return null;
  }
}
