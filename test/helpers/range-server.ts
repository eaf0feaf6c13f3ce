/**
 * A small static file server with HTTP Range support for tests (Python's http.server has no
 * Range support). `faults` lets a test inject failures per request.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { AddressInfo } from "node:net";

/** What to do with one request (return undefined to serve it normally). */
export type Fault = "500" | "503" | "429" | "403" | "reset" | "truncate" | "delay" | undefined;

export interface RangeServer {
  url: string;
  requests: { url: string; range?: string }[];
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 (free port). */
export async function startRangeServer(root: string, fault?: (url: string, n: number) => Fault): Promise<RangeServer> {
  const requests: { url: string; range?: string }[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? "/").split("?")[0]);
    requests.push({ url, range: req.headers.range });
    const f = fault?.(url, requests.length);
    if (f === "reset") return req.socket.destroy();
    if (f === "500" || f === "503" || f === "429" || f === "403") {
      res.writeHead(Number(f));
      return res.end("fault");
    }
    const file = path.join(root, url);
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404);
      return res.end();
    }
    const body = fs.readFileSync(file);
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    const m = /bytes=(\d*)-(\d*)/.exec(req.headers.range ?? "");
    if (m) {
      status = 206;
      if (m[1] === "") start = Math.max(0, body.length - Number(m[2]));
      else {
        start = Number(m[1]);
        if (m[2] !== "") end = Math.min(end, Number(m[2]));
      }
    }
    const slice = body.subarray(start, end + 1);
    const headers: Record<string, string | number> = { "Content-Length": slice.length, "Accept-Ranges": "bytes" };
    if (status === 206) headers["Content-Range"] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(status, headers);
    if (f === "truncate") {
      res.write(slice.subarray(0, Math.floor(slice.length / 2)));
      return req.socket.destroy();
    }
    if (f === "delay") {
      setTimeout(() => res.end(slice), 300);
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
