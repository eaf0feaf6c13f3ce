/**
 * A local object-store stand-in for the benchmarks: serves a folder over HTTP on loopback and
 * answers every request `latencyMs` after it arrives (as an in-region object store answers a
 * GET in ~10–30 ms), with keep-alive connections. Missing files are 404, as S3/GCS answer for
 * absent chunk keys. Built on the project's own static file handler (`src/net/`).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { startHttpServer, type RunningHttpServer } from "../src/net/http-server.js";
import { staticFileHandler } from "../src/net/static-files.js";

/** A running latency server: its base URL, request count, and `close()`. */
export interface LatencyServer {
  url: string;
  /** Requests answered so far. */
  requests(): number;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 with `latencyMs` added before every answer. */
export async function startLatencyServer(root: string, latencyMs: number): Promise<LatencyServer> {
  const files = staticFileHandler(root);
  let n = 0;
  const server: RunningHttpServer = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    handler: async (req, res, ctx) => {
      n++;
      if (latencyMs > 0) await sleep(latencyMs);
      await files(req, res, ctx);
    },
  });
  server.server.keepAliveTimeout = 60_000;
  return { url: server.url, requests: () => n, close: () => server.close() };
}
