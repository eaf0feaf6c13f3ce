/**
 * `serve`: a {@link CellMapDataLoader} as an HTTP service, so that a training loop in another
 * process or on another machine (PyTorch: the Python package in `clients/python`) gets the same
 * deterministic, rank-sharded, resumable batches. Wire format and endpoints: docs/serve.md.
 *
 * One loader, one worker pool, one chunk cache; each connection is its own stream (rank,
 * epoch, position) over them (`loader.planFor`). Backpressure: a stream keeps at most
 * `prefetch` batches read ahead, and writes the next one only when the socket has taken the
 * last (`drain`), so a slow client slows its own stream and never grows the server's memory.
 * A client that goes away aborts its reads, and their batch buffers go back to the pool.
 */
import type * as http from "node:http";
import { CellMapError } from "../errors.js";
import { type Batch, batchLayout, tensorKeys } from "../loader/collate.js";
import type { CellMapDataLoader } from "../loader/loader.js";
import type { Duplex } from "node:stream";
import { HttpError, type RequestContext, type RunningHttpServer, startHttpServer } from "../net/http-server.js";
import { batchQueue } from "./queue.js";
import { encodeBatch } from "./safetensors.js";
import { SHM_PROTOCOL, shmStream } from "./shm.js";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Interface to bind (default `127.0.0.1`); any other needs `token`. */
  host?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** Shared secret checked on every request (`Authorization: Bearer …` or `?token=`). */
  token?: string;
  /** Batches read ahead per client (default the loader's `prefetchDepth`). */
  prefetch?: number;
  /** Most shared-memory slots a client may ask for (`slots=`; default 64). */
  maxSlots?: number;
}

/** Whether `err` is the client going away (a closed or reset socket), which is no failure. */
function clientGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "EPIPE" || code === "ECONNRESET" || code === "ERR_STREAM_DESTROYED" || code === "ABORTED" || code === "ERR_STREAM_WRITE_AFTER_END";
}

/** A running batch server. */
export interface BatchServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  host: string;
  port: number;
  /** Streams currently open. */
  readonly streams: number;
  /** Stops accepting, ends open streams and closes the loader's worker threads. */
  close(): Promise<void>;
}

/** One integer query parameter, or a 400 naming it. */
function intParam(url: URL, name: string, fallback: number, min: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min) throw new HttpError(400, "BAD_REQUEST", `${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function sendJson(res: http.ServerResponse, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/**
 * Resolves when the socket has taken `buf`; rejects when the connection closes first (a write
 * pending on a destroyed socket may never call back).
 */
function write(res: http.ServerResponse, buf: Buffer, closed: Promise<never>): Promise<void> {
  if (res.destroyed) return Promise.reject(new CellMapError("ABORTED", "client went away"));
  const done = new Promise<void>((resolve, reject) => res.write(buf, (err) => (err ? reject(err) : resolve())));
  return Promise.race([done, closed]);
}

/**
 * Serves `loader` over HTTP. Endpoints: `GET /health`, `GET /info`,
 * `GET /batches?epoch=E&start=P&rank=r&worldSize=w` (see docs/serve.md).
 *
 * @throws CellMapError `INVALID_ARGUMENT` for a non-loopback `host` without `token`, `IO` when
 *   the port cannot be bound
 */
export async function serve(loader: CellMapDataLoader, opts: ServeOptions = {}): Promise<BatchServer> {
  const prefetch = opts.prefetch ?? loader.prefetchDepth;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new CellMapError("INVALID_ARGUMENT", `prefetch must be a positive integer, got ${prefetch}`, "prefetch");
  const layout = batchLayout(loader.dataset, loader.batchSize);
  // The batch pool as a file, before any batch is read: shared-memory clients read batches in
  // place (null without the native addon: they get copies).
  const pool = loader.shareBatchPool();
  const open = new Set<AbortController>();

  const info = () => ({
    arrays: Object.fromEntries(layout.keys.map((k) => [k.name, { shape: k.sampleShape, dtype: k.dtype }])),
    classes: [...loader.dataset.classes],
    batchSize: loader.batchSize,
    samplesPerEpoch: loader.samplesPerEpoch,
    batchesPerEpoch: loader.length,
    dropLast: loader.dropLast,
    seed: loader.seed,
  });

  /** The stream a `/batches` request asks for (both transports): its parameters, checked, and its plan. */
  const streamRequest = async (url: URL) => {
    const epoch = intParam(url, "epoch", 0, 0);
    const start = intParam(url, "start", 0, 0);
    const worldSize = intParam(url, "worldSize", 1, 1);
    const rank = intParam(url, "rank", 0, 0);
    if (rank >= worldSize) throw new HttpError(400, "BAD_REQUEST", `rank must be in [0, ${worldSize}), got ${rank}`);
    const plan = await loader.planFor(epoch, rank, worldSize);
    if (start > plan.batches) throw new HttpError(400, "BAD_REQUEST", `start ${start} is past the end of epoch ${epoch} (${plan.batches} batches on rank ${rank} of ${worldSize})`);
    return { epoch, start, worldSize, rank, plan };
  };

  const stream = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const { epoch, start, worldSize, rank, plan } = await streamRequest(url);
    if (req.method === "HEAD") {
      // The headers only: a HEAD must not read an epoch of batches nobody receives.
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Cache-Control": "no-store", "X-Cellmap-Batches": String(plan.batches) });
      res.end();
      return;
    }
    const ac = new AbortController();
    open.add(ac);
    const closed = new Promise<never>((_, reject) => {
      res.on("close", () => {
        const err = new CellMapError("ABORTED", "client went away");
        ac.abort(err);
        reject(err);
      });
    });
    closed.catch(() => {});
    // The body is the frames until the connection closes: no chunked encoding, so a client reads
    // frames straight off the socket (chunk framing cost the Python client a copy per chunk).
    res.useChunkedEncodingByDefault = false;
    res.shouldKeepAlive = false;
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Cache-Control": "no-store", Connection: "close", "X-Cellmap-Batches": String(plan.batches) });
    const queue = batchQueue(loader, plan, epoch, start, prefetch, ac.signal, closed);
    try {
      for (let b = start; b < plan.batches; b++) {
        const batch: Batch = await queue.next();
        if (ac.signal.aborted) {
          loader.recycle(batch);
          break;
        }
        const names = tensorKeys(batch);
        const samples = batch.metadata.map((m, i) => ({ ...m, idx: batch.idx[i] }));
        const enc = encodeBatch(batch, names, { epoch: String(epoch), position: String(b), rank: String(rank), worldSize: String(worldSize), samples: JSON.stringify(samples) });
        try {
          await write(res, enc.head, closed);
          for (const part of enc.parts) await write(res, part, closed);
        } finally {
          loader.recycle(batch);
        }
      }
      if (!ac.signal.aborted) res.end();
    } catch (err) {
      // Mid-stream there is no status to send: cut the stream so the client sees a short read.
      // A client that closed its stream (it stopped reading) is no failure: no warning.
      if (!ac.signal.aborted && !clientGone(err)) process.emitWarning(`serve: stream of epoch ${epoch} rank ${rank} failed: ${(err as Error).message}`, { code: "CELLMAP_SERVE" });
      res.destroy();
    } finally {
      ac.abort();
      open.delete(ac);
      queue.drain();
    }
  };

  /** `/batches` with `Upgrade: cellmap-shm/1`: the shared-memory transport (shm.ts). */
  const upgrade = async (req: http.IncomingMessage, socket: Duplex, _head: Buffer, ctx: RequestContext): Promise<void> => {
    const url = ctx.url;
    if (ctx.url.pathname !== "/batches") throw new HttpError(404, "NOT_FOUND", `unknown endpoint ${JSON.stringify(url.pathname)} for an upgrade (use /batches)`);
    const protocol = String(req.headers.upgrade ?? "").toLowerCase();
    if (protocol !== SHM_PROTOCOL) throw new HttpError(400, "BAD_REQUEST", `unknown upgrade ${JSON.stringify(req.headers.upgrade)} (this server speaks ${SHM_PROTOCOL})`);
    const maxSlots = opts.maxSlots ?? 64;
    const slots = intParam(url, "slots", Math.min(maxSlots, prefetch + 6), 2);
    if (slots > maxSlots) throw new HttpError(400, "BAD_REQUEST", `slots must be at most ${maxSlots}, got ${slots}`);
    const { epoch, start, worldSize, rank, plan } = await streamRequest(url);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${SHM_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
    const ac = new AbortController();
    open.add(ac);
    ac.signal.addEventListener("abort", () => socket.destroy());
    try {
      await shmStream(socket, {
        loader,
        plan,
        epoch,
        start,
        rank,
        worldSize,
        prefetch,
        slots,
        batchBytes: layout.bytes,
        pool,
        onFailure: (err) => {
          if (!clientGone(err)) process.emitWarning(`serve: shared-memory stream of epoch ${epoch} rank ${rank} failed: ${err.message}`, { code: "CELLMAP_SERVE" });
        },
      });
    } finally {
      open.delete(ac);
    }
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext): Promise<void> => {
    const path = ctx.url.pathname;
    if (path === "/health") return sendJson(res, { ok: true });
    if (path === "/info") return sendJson(res, info());
    if (path === "/batches") return stream(req, res, ctx.url);
    throw new HttpError(404, "NOT_FOUND", `unknown endpoint ${JSON.stringify(path)} (endpoints: /health, /info, /batches)`);
  };

  const server: RunningHttpServer = await startHttpServer({ host: opts.host, port: opts.port, token: opts.token, handler, upgrade });
  return {
    url: server.url,
    host: server.host,
    port: server.port,
    get streams() {
      return open.size;
    },
    async close() {
      for (const ac of open) ac.abort(new CellMapError("ABORTED", "server closing"));
      await server.close();
      await loader.close();
    },
  };
}
