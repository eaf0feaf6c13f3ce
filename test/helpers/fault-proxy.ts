/**
 * A small HTTP proxy for fault injection in front of a real server (nginx in the tests). Each
 * request draws from a seeded generator: with probability `rate` it gets one of the faults
 * below instead of (or on top of) the upstream response. Requests whose path matches `fail`
 * always get the permanent fault. Every request is recorded (path, Range header, fault, time).
 *
 * Faults: `delay` (answer after `delayMs`), `stall` (never answer; the client must time out),
 * `reset` (close the socket without a response), `500` / `503` (error status), `truncate` (send
 * the headers and half the body, then close the socket).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** One kind of injected fault. */
export type FaultKind = "delay" | "stall" | "reset" | "500" | "503" | "truncate";

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Probability of a fault per request (default 0). */
  rate?: number;
  /** Seed of the fault generator (default 1). */
  seed?: number;
  /** Faults drawn from (uniformly; default all but `stall`). */
  kinds?: FaultKind[];
  /** Delay of `delay` faults, ms (default 50). */
  delayMs?: number;
  /** Delay added to *every* request, ms (default 0). */
  latencyMs?: number;
  /** Paths that always fail, with the fault they get. */
  fail?: { match: RegExp; kind: FaultKind }[];
}

/** One proxied request. */
export interface ProxiedRequest {
  path: string;
  range?: string;
  fault?: FaultKind;
  /** `performance.now()` when the request arrived. */
  t: number;
}

/** A running proxy. */
export interface FaultProxy {
  url: string;
  requests: ProxiedRequest[];
  /** Changes the options of later requests. */
  configure(opts: FaultProxyOptions): void;
  /** Requests not yet answered or closed. */
  readonly open: number;
  /** Responses sent to the end (not aborted), since start. */
  readonly served: number;
  /** Most requests open at once so far (reset with `resetStats`). */
  readonly maxOpen: number;
  /** TCP connections accepted so far (keep-alive reuse keeps this far below the request count). */
  readonly connections: number;
  /** Clears `requests`, `maxOpen` and `connections`. */
  resetStats(): void;
  close(): Promise<void>;
}

/** mulberry32: a tiny seeded generator, enough for picking faults. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEFAULT_KINDS: FaultKind[] = ["delay", "reset", "500", "503", "truncate"];

/** Starts a proxy on 127.0.0.1 (free port) forwarding to `upstream` (`http://host:port`). */
export async function startFaultProxy(upstream: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let o: FaultProxyOptions = { ...opts };
  let rand = mulberry32(o.seed ?? 1);
  const requests: ProxiedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let open = 0;
  let served = 0;
  let maxOpen = 0;
  let connections = 0;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, truncate: boolean) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (req.headers.range) headers.range = req.headers.range;
    const upReq = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers, agent }, (upRes) => {
      const h = { ...upRes.headers };
      delete h.connection;
      delete h["keep-alive"];
      if (!truncate) {
        res.writeHead(upRes.statusCode ?? 502, h);
        upRes.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      upRes.on("data", (c: Buffer) => chunks.push(c));
      upRes.on("end", () => {
        const body = Buffer.concat(chunks);
        res.writeHead(upRes.statusCode ?? 502, h);
        // Send half the body, then cut the connection mid-body.
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
      });
    });
    upReq.on("error", () => res.destroy());
    res.on("close", () => upReq.destroy());
    upReq.end();
  };

  const server = http.createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    // 'finish' (last byte handed to the socket) comes before the client can reuse its slot; 'close' covers aborts.
    let counted = true;
    const done = () => {
      if (counted) (counted = false), open--;
    };
    res.on("finish", () => {
      served++;
      done();
    });
    res.on("close", done);
    const p = (req.url ?? "/").split("?")[0];
    let fault: FaultKind | undefined = o.fail?.find((f) => f.match.test(p))?.kind;
    if (!fault && (o.rate ?? 0) > 0 && rand() < o.rate!) {
      const kinds = o.kinds ?? DEFAULT_KINDS;
      fault = kinds[Math.floor(rand() * kinds.length)];
    }
    requests.push({ path: decodeURIComponent(p), range: req.headers.range, fault, t: performance.now() });
    const go = () => {
      if (res.destroyed) return;
      switch (fault) {
        case "stall":
          return; // never answered: the client's timeout or abort closes it
        case "reset":
          return req.socket.destroy();
        case "500":
        case "503":
          res.writeHead(Number(fault), { "content-type": "text/plain" });
          return res.end(`injected ${fault}`);
        case "delay":
          return later(o.delayMs ?? 50, () => !res.destroyed && forward(req, res, false));
        default:
          return forward(req, res, fault === "truncate");
      }
    };
    if (o.latencyMs) later(o.latencyMs, go);
    else go();
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    configure(next) {
      o = { ...next };
      rand = mulberry32(o.seed ?? 1);
    },
    get served() {
      return served;
    },
    get open() {
      return open;
    },
    get maxOpen() {
      return maxOpen;
    },
    get connections() {
      return connections;
    },
    resetStats() {
      requests.length = 0;
      maxOpen = open;
      connections = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
