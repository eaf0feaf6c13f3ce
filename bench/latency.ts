/**
 * A local object-store stand-in for the benchmarks: serves a folder over HTTP on loopback and
 * answers every request `latencyMs` after it arrives (as an in-region object store answers a
 * GET in ~10–30 ms), over keep-alive connections. Missing files are 404, as S3/GCS answer for
 * absent chunk keys; folders are 404 too.
 *
 * Files are read once and then served from memory, so that the server's own work per request
 * (it shares this machine's cores with the loader being measured, where a real object store
 * would not) stays as small as Node allows: no `stat`, no file stream, one write.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

/** A running latency server: its base URL, request count, and `close()`. */
export interface LatencyServer {
  url: string;
  /** Requests answered so far. */
  requests(): number;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 with `latencyMs` added before every answer. */
export async function startLatencyServer(root: string, latencyMs: number): Promise<LatencyServer> {
  const base = path.resolve(root);
  const files = new Map<string, Buffer | null>();
  const read = (p: string): Buffer | null => {
    let b = files.get(p);
    if (b !== undefined) return b;
    const file = path.join(base, ...p.split("/").filter(Boolean).map(decodeURIComponent));
    b = file.startsWith(base + path.sep) && fs.statSync(file, { throwIfNoEntry: false })?.isFile() ? fs.readFileSync(file) : null;
    files.set(p, b);
    return b;
  };
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    const p = (req.url ?? "/").split("?")[0];
    setTimeout(() => {
      const body = req.method === "GET" || req.method === "HEAD" ? read(p) : null;
      if (!body) {
        res.writeHead(404, { "Content-Length": 0 });
        res.end();
        return;
      }
      res.writeHead(200, { "Content-Length": body.length, "Content-Type": "application/octet-stream" });
      res.end(req.method === "HEAD" ? undefined : body);
    }, latencyMs);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
