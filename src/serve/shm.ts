/**
 * The shared-memory transport of `serve` (docs/serve.md, "Shared memory"): a client on the
 * server's host receives each batch's tensor bytes in a slot of a file in `/dev/shm` that it
 * maps, and only a small JSON message per batch over the connection.
 *
 * The connection is an HTTP upgrade (`Upgrade: cellmap-shm/1`), so both sides talk on one
 * socket: the server sends length-prefixed JSON messages (`hello`, `batch`, `end`, `error`), the
 * client sends 4-byte little-endian words: `READY` once it has mapped the files (the server then
 * unlinks the slot file, so nothing is left behind whatever happens to either process),
 * `READY_COPY` when it could map the slot file but not the pool, `MISMATCH` when the file it
 * opened is not the server's (another host: it falls back to HTTP), or the id of a batch it has
 * freed. A batch's memory is reused only once the client has freed it: a batch the client still
 * holds is never overwritten. The server never waits on a client that has gone: a closed socket
 * frees its batches, ends its reads and closes the file.
 *
 * Where the bytes are:
 * - **In the loader's batch pool** when the pool is mapped to a file (`loader.shareBatchPool()`,
 *   the native addon): the client maps the pool (`/proc/<pid>/fd/<fd>`) and reads the batch where
 *   the worker threads wrote it. No copy at all; the batch returns to the pool when freed.
 * - **In a slot of this stream's file** otherwise (no addon, a batch built outside the pool while
 *   the pool was empty): written with `fs.write` on libuv's thread pool, off the event loop, one
 *   copy per byte (the socket path copies twice: server write, client read).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { CellMapError } from "../errors.js";
import { type Batch, tensorKeys } from "../loader/collate.js";
import type { CellMapDataLoader } from "../loader/loader.js";
import type { SharedBatches } from "../plane/plane.js";
import { batchQueue } from "./queue.js";
import { SAFETENSORS_DTYPES } from "./safetensors.js";
import { dtypeOfData, type AnyTensor } from "../tensor.js";

/** The upgrade token a client sends (`Upgrade: cellmap-shm/1`). */
export const SHM_PROTOCOL = "cellmap-shm/1";
/** Client word: the files are mapped (the server unlinks the slot file). */
const SHM_READY = 0xfffffffe;
/** Client word: the slot file is mapped, the pool is not (every batch is copied). */
const SHM_READY_COPY = 0xfffffffc;
/** Client word: the file is not the server's (another host). */
const SHM_MISMATCH = 0xfffffffd;
/** Bytes before the first slot: the nonce page. */
const HEADER_BYTES = 4096;
const PAGE = 4096;

/** Where slot files go: `/dev/shm` (memory) when it exists, else the temp folder. */
function shmDir(): string {
  try {
    if (fs.statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // not Linux
  }
  return os.tmpdir();
}

/** What one shared-memory stream serves. */
export interface ShmStreamOptions {
  loader: CellMapDataLoader;
  /** The stream's epoch plan (`loader.planFor(epoch, rank, worldSize)`). */
  plan: Awaited<ReturnType<CellMapDataLoader["planFor"]>>;
  epoch: number;
  start: number;
  rank: number;
  worldSize: number;
  prefetch: number;
  /** Slots of the file: batches the client may hold at once, plus the one being written. */
  slots: number;
  /** Bytes of the largest batch (the loader's batch layout). */
  batchBytes: number;
  /** The loader's batch pool as a file (zero copy), or null. */
  pool: SharedBatches | null;
  /** Called with a failure that is not the client going away (the server warns). */
  onFailure(err: Error): void;
}

/** One length-prefixed JSON message. */
function message(body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body), "utf8");
  const out = Buffer.allocUnsafe(4 + json.length);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  return out;
}

/** Writes `buf` at `position` of `fd` (libuv thread pool). */
function writeAt(fd: number, buf: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = () =>
      fs.write(fd, buf, done, buf.byteLength - done, position + done, (err, n) => {
        if (err) return reject(err);
        done += n;
        if (done < buf.byteLength) step();
        else resolve();
      });
    step();
  });
}

/**
 * Where each tensor of `batch` lies in the pool file (offsets relative to the first), or null
 * when the batch is not in the mapped pool (built in fresh memory while the pool was empty, or
 * in a plane that replaced the mapped one).
 */
function poolOffsets(batch: Batch, names: readonly string[], pool: SharedBatches): { base: number; header: Record<string, unknown> } | null {
  const at: [string, AnyTensor, number][] = [];
  for (const name of names) {
    const t = batch[name] as AnyTensor;
    const start = t.data.byteOffset - pool.base;
    if ((t.data.buffer as unknown) !== pool.buffer || start < 0 || start + t.data.byteLength > pool.bytes) return null;
    at.push([name, t, start]);
  }
  const base = Math.min(...at.map((x) => x[2]));
  const header: Record<string, unknown> = {};
  for (const [name, t, start] of at) {
    header[name] = { dtype: SAFETENSORS_DTYPES[dtypeOfData(t.data)], shape: [...t.shape], data_offsets: [start - base, start - base + t.data.byteLength] };
  }
  return { base, header };
}

/**
 * Serves the batches of one client over an upgraded connection `socket` (the 101 answer already
 * written). Resolves when the stream has ended, normally or not.
 */
export async function shmStream(socket: Duplex, o: ShmStreamOptions): Promise<void> {
  const slotBytes = Math.ceil(o.batchBytes / PAGE) * PAGE;
  const file = path.join(shmDir(), `cellmap-data-${process.pid}-${randomBytes(6).toString("hex")}`);
  const nonce = randomBytes(16).toString("hex");
  const fd = fs.openSync(file, "w+", 0o600);
  let unlinked = false;
  const unlink = () => {
    if (unlinked) return;
    unlinked = true;
    fs.rm(file, { force: true }, () => {});
  };
  const ac = new AbortController();
  const free: number[] = [];
  /** Batches out with the client by id: a slot of the file, or a pool batch to recycle. */
  const out = new Map<number, { slot: number } | { batch: Batch }>();
  let nextId = 0;
  let usePool = false;
  let waiter: (() => void) | null = null;
  let ready: (() => void) | null = null;
  let mismatch = false;
  let pending: Buffer = Buffer.alloc(0);
  const closed = new Promise<never>((_, reject) => {
    const end = () => {
      // The client's end is the stream's: the server's side of a half-closed socket (the HTTP
      // server allows half-open ones) would otherwise stay open and keep the server from closing.
      socket.destroy();
      ac.abort(new CellMapError("ABORTED", "client went away"));
      reject(new CellMapError("ABORTED", "client went away"));
      waiter?.();
      ready?.();
    };
    socket.on("close", end);
    socket.on("end", end);
    socket.on("error", end);
  });
  closed.catch(() => {});
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let k = 0;
    for (; k + 4 <= pending.length; k += 4) {
      const word = pending.readUInt32LE(k);
      if (word === SHM_READY || word === SHM_READY_COPY) {
        usePool = word === SHM_READY && o.pool !== null;
        unlink();
        ready?.();
      } else if (word === SHM_MISMATCH) {
        mismatch = true;
        ready?.();
      } else {
        const held = out.get(word);
        if (!held) continue;
        out.delete(word);
        if ("slot" in held) free.push(held.slot);
        else o.loader.recycle(held.batch);
        waiter?.();
      }
    }
    pending = pending.subarray(k);
  });
  const send = (body: unknown) =>
    new Promise<void>((resolve, reject) => {
      if (socket.destroyed) return reject(new CellMapError("ABORTED", "client went away"));
      socket.write(message(body), (err) => (err ? reject(err) : resolve()));
    });
  let queue: ReturnType<typeof batchQueue> | null = null;
  try {
    fs.ftruncateSync(fd, HEADER_BYTES + o.slots * slotBytes);
    fs.writeSync(fd, Buffer.from(nonce, "utf8"), 0, nonce.length, 0);
    for (let s = 0; s < o.slots; s++) free.push(s);
    const plan = o.plan;
    const pool = o.pool ? { pid: o.pool.pid, fd: o.pool.fd, bytes: o.pool.bytes } : null;
    await send({ type: "hello", path: file, nonce, slots: o.slots, slotBytes, offset: HEADER_BYTES, pool, batches: plan.batches, epoch: o.epoch, start: o.start });
    await Promise.race([new Promise<void>((r) => (ready = r)), closed]);
    ready = null;
    if (mismatch) return;
    queue = batchQueue(o.loader, plan, o.epoch, o.start, o.prefetch, ac.signal, closed);
    for (let b = o.start; b < plan.batches; b++) {
      const batch: Batch = await queue.next();
      const names = tensorKeys(batch);
      const samples = batch.metadata.map((m, i) => ({ ...m, idx: batch.idx[i] }));
      const meta = { epoch: o.epoch, position: b, rank: o.rank, worldSize: o.worldSize, samples };
      const id = nextId;
      nextId = (nextId + 1) % SHM_READY_COPY;
      const inPool = usePool ? poolOffsets(batch, names, o.pool!) : null;
      if (inPool) {
        // Zero copy: the client reads the batch where the workers wrote it.
        out.set(id, { batch });
        await send({ type: "batch", id, where: "pool", base: inPool.base, tensors: inPool.header, ...meta });
        continue;
      }
      try {
        while (free.length === 0) await Promise.race([new Promise<void>((r) => (waiter = r)), closed]);
        waiter = null;
        const slot = free.shift()!;
        const base = HEADER_BYTES + slot * slotBytes;
        const header: Record<string, unknown> = {};
        let offset = 0;
        const writes: Promise<void>[] = [];
        for (const name of names) {
          const t = batch[name] as AnyTensor;
          const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
          header[name] = { dtype: SAFETENSORS_DTYPES[dtypeOfData(t.data)], shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
          writes.push(writeAt(fd, bytes, base + offset));
          offset += Math.ceil(bytes.byteLength / 8) * 8;
        }
        await Promise.race([Promise.all(writes), closed]);
        out.set(id, { slot });
        await send({ type: "batch", id, where: "slot", base, tensors: header, ...meta });
      } finally {
        o.loader.recycle(batch);
      }
    }
    await send({ type: "end" });
    // Pool batches the client still holds stay its own until it frees them (or goes): only
    // then can the pool reuse their memory.
    while ([...out.values()].some((h) => "batch" in h)) await Promise.race([new Promise<void>((r) => (waiter = r)), closed]);
    waiter = null;
    socket.end();
  } catch (err) {
    if (!ac.signal.aborted) {
      o.onFailure(err as Error);
      if (!socket.destroyed) socket.end(message({ type: "error", message: (err as Error).message }));
    }
  } finally {
    ac.abort();
    queue?.drain();
    // Pool batches the client still held go back to the pool: it has gone, or the stream failed.
    for (const held of out.values()) if ("batch" in held) o.loader.recycle(held.batch);
    out.clear();
    unlink();
    fs.close(fd, () => {});
  }
}
