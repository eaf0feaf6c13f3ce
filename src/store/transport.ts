/**
 * How an {@link HttpStore} sends one request: Node's own `http`/`https` clients over keep-alive
 * agents, or a `fetch` function the caller supplies (tests, proxies, custom dispatchers).
 *
 * Why not the global `fetch`: a chunk read is a small GET, and a training run sends thousands a
 * second. Measured on the 2-core dev machine, reading the std workload over HTTP with the cache
 * off (32 chunk GETs per sample, 2 workers): the WHATWG `fetch` of Node 20 (its Request,
 * Headers and web streams) cost 13.8–14.1 ms of CPU per sample, these clients 9.2–10.1 ms, and
 * samples/s rose from 129–133 to 168–182. Only what the store needs is here: one request, the
 * whole body, redirects for GET (as `fetch` follows them), and gzip/deflate/br bodies decoded
 * (we never ask for them; a server may send them anyway).
 */
import * as http from "node:http";
import * as https from "node:https";
import * as zlib from "node:zlib";

/** An answer with its whole body read (or discarded). */
export interface TransportResponse {
  status: number;
  statusText: string;
  /** A response header (lower or mixed case name), or null. */
  header(name: string): string | null;
  /** The body (decoded when the server sent it compressed). */
  bytes(): Promise<Uint8Array>;
  /** Drops the body without reading it. */
  discard(): Promise<void>;
}

/** One request of a store. */
interface TransportRequest {
  url: string;
  method: "GET" | "PUT" | "DELETE";
  headers: Record<string, string>;
  body?: Uint8Array;
  signal: AbortSignal;
}

/** Sends a request; rejects on network errors (the store retries them). */
export type Transport = (req: TransportRequest) => Promise<TransportResponse>;

/** Keep-alive agents shared by every store of the thread (connections are reused across arrays). */
const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: "lifo" }),
  https: new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: "lifo" }),
};

const MAX_REDIRECTS = 5;

function decoded(body: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? "").trim().toLowerCase()) {
    case "":
    case "identity":
      return body;
    case "gzip":
    case "x-gzip":
      return zlib.gunzipSync(body);
    case "deflate":
      return zlib.inflateSync(body);
    case "br":
      return zlib.brotliDecompressSync(body);
    default:
      throw new Error(`unsupported content-encoding "${encoding}"`);
  }
}

/** The default transport: Node's `http`/`https` with keep-alive. */
export const nodeTransport: Transport = (req) => send(req, req.url, 0);

function send(req: TransportRequest, url: string, redirects: number): Promise<TransportResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith("https:");
    const client = secure ? https : http;
    const headers: Record<string, string> = { ...req.headers };
    if (req.body) headers["Content-Length"] = String(req.body.length);
    let r: http.ClientRequest;
    try {
      r = client.request(url, { method: req.method, headers, agent: secure ? agents.https : agents.http, signal: req.signal });
    } catch (err) {
      reject(err);
      return;
    }
    r.on("error", reject);
    r.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (req.method === "GET" && location && [301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new Error(`more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        let next: string;
        try {
          next = new URL(location, url).href;
        } catch {
          reject(new Error(`bad redirect location ${JSON.stringify(location)}`));
          return;
        }
        send(req, next, redirects + 1).then(resolve, reject);
        return;
      }
      let body: Promise<Uint8Array> | null = null;
      const read = (): Promise<Uint8Array> =>
        (body ??= new Promise<Uint8Array>((ok, bad) => {
          const chunks: Buffer[] = [];
          let n = 0;
          res.on("data", (d: Buffer) => {
            chunks.push(d);
            n += d.length;
          });
          res.on("end", () => {
            if (!res.complete) {
              bad(new Error("connection closed before the body ended"));
              return;
            }
            try {
              const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n);
              ok(decoded(all, res.headers["content-encoding"] as string | undefined));
            } catch (err) {
              bad(err);
            }
          });
          res.on("aborted", () => bad(new Error("response aborted")));
          res.on("error", bad);
        }));
      resolve({
        status,
        statusText: res.statusMessage ?? "",
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
        },
        bytes: read,
        discard: async () => {
          if (!body) res.resume();
        },
      });
    });
    r.end(req.body);
  });
}

/** A transport over a caller's `fetch` (WHATWG semantics: redirects and decoding are its own). */
export function fetchTransport(fetchFn: typeof fetch): Transport {
  return async (req) => {
    const res = await fetchFn(req.url, { method: req.method, headers: req.headers, body: req.body, signal: req.signal });
    return {
      status: res.status,
      statusText: res.statusText,
      header: (name) => res.headers.get(name),
      bytes: async () => new Uint8Array(await res.arrayBuffer()),
      discard: async () => void (await res.body?.cancel()),
    };
  };
}
