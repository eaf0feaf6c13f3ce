/**
 * The one small HTTP server the command line uses to hand data to a browser or another process
 * (`cellmap-data neuroglancer --serve` today; `cellmap-data serve`, which will serve batches, is
 * meant to use it too). It owns the rules every such endpoint must share:
 *
 * - **Binding rule** ({@link checkBind}): loopback (`127.0.0.1`) by default; any other address
 *   (a LAN address, `0.0.0.0`, `::`) requires a shared secret (`--token <secret>`), because
 *   anyone who can reach the port could otherwise read the data.
 * - **Token check**: when a token is set (always for non-loopback, optionally on loopback), every
 *   request but a CORS preflight must carry it, as `Authorization: Bearer <token>` or as a
 *   `?token=<token>` query parameter (so a URL handed to a viewer such as Neuroglancer, which
 *   keeps a source URL's query on every request, can carry it). Otherwise: 401.
 * - **CORS**: `Access-Control-Allow-Origin: *` on every response (errors included, so a page can
 *   read them), `OPTIONS` preflight answered with 204 (methods, `Authorization`/`Range` headers,
 *   Chrome's private-network opt-in), the range headers exposed.
 * - **Errors**: 4xx/5xx bodies are one line of JSON,
 *   `{"error":{"status":404,"code":"NOT_FOUND","message":"…"}}`; handlers throw {@link HttpError}.
 *
 * Request routing is the caller's {@link RequestHandler} (e.g. `staticFileHandler` in
 * `static-files.ts`).
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import * as os from "node:os";
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { CellMapError } from "../errors.js";

/** Where servers bind unless told otherwise. */
const DEFAULT_HOST = "127.0.0.1";
/** Shortest accepted token: a guessable secret protects nothing. */
const MIN_TOKEN_LENGTH = 8;

/** An HTTP error a handler throws; becomes a one-line JSON error response. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** Short machine-readable code, e.g. `NOT_FOUND`. */
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. `Content-Range` of a 416). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What a handler gets besides the raw request and response. */
export interface RequestContext {
  /** The request URL parsed against the server's base (query in `url.searchParams`). */
  url: URL;
  /**
   * The request's path exactly as sent (percent-encoded, dot segments *not* removed), so a
   * handler can refuse `/../` itself instead of having it silently normalised away.
   */
  rawPath: string;
}

/**
 * Answers one request (CORS, token and method already checked). Throw {@link HttpError} for
 * a 4xx; anything else thrown becomes a 500.
 */
export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext) => void | Promise<void>;

/** Address and secret of a server. */
export interface BindOptions {
  /** Interface to listen on (default `127.0.0.1`). */
  host?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** Shared secret required on every request (required when `host` is not loopback). */
  token?: string;
}

/** A checked {@link BindOptions}. */
export interface BindPlan {
  host: string;
  port: number;
  token?: string;
  loopback: boolean;
}

/**
 * Takes over the connection of a request asking for a protocol upgrade (`Connection: Upgrade`),
 * after the token check. It writes the `101` answer itself (or an error status and ends the
 * socket). A throw ends the socket with a one-line JSON error of its status (500 for non-HTTP
 * errors).
 */
type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer, ctx: RequestContext) => void | Promise<void>;

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions extends BindOptions {
  handler: RequestHandler;
  /** Upgrade requests (without it they get 426). */
  upgrade?: UpgradeHandler;
  /** Methods the handler accepts (default GET and HEAD); others get 405. */
  methods?: readonly string[];
  /** Request headers a browser may send besides `Authorization`, `Range` and `Content-Type`. */
  allowHeaders?: readonly string[];
}

/** A listening server. */
export interface RunningHttpServer {
  /** Base URL, e.g. `http://127.0.0.1:41234` (a reachable host name when bound to all interfaces). */
  url: string;
  host: string;
  port: number;
  token?: string;
  /** Absolute URL of `path` (`/a/b`), with `?token=` appended when a token is set. */
  urlFor(path: string): string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
  server: http.Server;
}

/** Whether `host` is a loopback address or name (`localhost`, `127.x.x.x`, `::1`). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The binding rule shared by every server of the command line: loopback needs nothing; any
 * other address needs a token of at least {@link MIN_TOKEN_LENGTH} printable characters.
 * Throws `INVALID_ARGUMENT` with a message meant for the command line.
 */
export function checkBind(o: BindOptions): BindPlan {
  const host = (o.host ?? DEFAULT_HOST).trim();
  if (!host) throw new CellMapError("INVALID_ARGUMENT", "--host must not be empty");
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CellMapError("INVALID_ARGUMENT", `--port must be an integer from 0 to 65535 (0 = any free port), got ${port}`);
  }
  const token = o.token;
  if (token !== undefined) {
    if (token.length < MIN_TOKEN_LENGTH) throw new CellMapError("INVALID_ARGUMENT", `--token must be at least ${MIN_TOKEN_LENGTH} characters`);
    if (!/^[\x21-\x7e]+$/.test(token)) throw new CellMapError("INVALID_ARGUMENT", "--token must be printable ASCII without spaces");
  }
  const loopback = isLoopbackHost(host);
  if (!loopback && token === undefined) {
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `binding to ${host} (not loopback) requires --token <secret>, or bind to ${DEFAULT_HOST}: anyone who can reach the port could read the data`,
    );
  }
  return { host, port, token, loopback };
}

/** The token a request carries (`Authorization: Bearer …` first, then `?token=`), if any. */
function requestToken(req: http.IncomingMessage, url?: URL): string | undefined {
  const auth = req.headers.authorization;
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (m) return m[1];
  const u = url ?? new URL(req.url ?? "/", "http://localhost");
  return u.searchParams.get("token") ?? undefined;
}

/** Constant-time comparison of a presented token with the expected one. */
function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The CORS headers of every response. */
function corsHeaders(): Record<string, string> {
  return {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Content-Type",
  };
}

/** Writes a one-line JSON error (the response's CORS headers are already set by the server). */
function sendError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${JSON.stringify({ error: { status, code, message } })}\n`;
  res.writeHead(status, { ...headers, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return os.hostname();
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * Starts a server under the binding rule ({@link checkBind}) and resolves once it listens.
 * Listening failures (port in use, address not available) are `IO` errors.
 */
export async function startHttpServer(o: HttpServerOptions): Promise<RunningHttpServer> {
  const plan = checkBind(o);
  const methods = (o.methods ?? ["GET", "HEAD"]).map((m) => m.toUpperCase());
  const allowHeaders = ["Authorization", "Range", "Content-Type", ...(o.allowHeaders ?? [])].join(", ");
  const server = http.createServer((req, res) => {
    for (const [k, v] of Object.entries(corsHeaders())) res.setHeader(k, v);
    const rawUrl = req.url ?? "/";
    let url: URL;
    try {
      url = new URL(rawUrl.startsWith("/") ? rawUrl : `/${rawUrl}`, "http://localhost");
    } catch {
      return sendError(res, 400, "BAD_REQUEST", "malformed request URL");
    }
    const method = (req.method ?? "GET").toUpperCase();
    if (method === "OPTIONS") {
      // CORS preflight: browsers never send credentials on it, so no token check.
      const h: Record<string, string> = {
        "Access-Control-Allow-Methods": [...methods, "OPTIONS"].join(", "),
        // Echo what the page asks for (no credentials are involved: the origin is `*`).
        "Access-Control-Allow-Headers": [allowHeaders, req.headers["access-control-request-headers"]].filter(Boolean).join(", "),
        "Access-Control-Max-Age": "600",
        "Content-Length": "0",
      };
      if (req.headers["access-control-request-private-network"]) h["Access-Control-Allow-Private-Network"] = "true";
      res.writeHead(204, h);
      return res.end();
    }
    if (plan.token !== undefined && !tokenMatches(requestToken(req, url), plan.token)) {
      return sendError(res, 401, "UNAUTHORIZED", "missing or wrong token (send Authorization: Bearer <token> or ?token=<token>)", {
        "WWW-Authenticate": 'Bearer realm="cellmap-data"',
      });
    }
    if (!methods.includes(method)) {
      return sendError(res, 405, "METHOD_NOT_ALLOWED", `${method} is not allowed here (allowed: ${methods.join(", ")})`, { Allow: [...methods, "OPTIONS"].join(", ") });
    }
    const rawPath = rawUrl.split(/[?#]/)[0] || "/";
    Promise.resolve()
      .then(() => o.handler(req, res, { url, rawPath }))
      .catch((err: unknown) => {
        if (err instanceof HttpError) sendError(res, err.status, err.code, err.message, err.headers);
        else sendError(res, 500, "INTERNAL", err instanceof Error ? err.message : String(err));
      });
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, code: string, message: string) => {
      const body = `${JSON.stringify({ error: { status, code, message } })}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    socket.on("error", () => socket.destroy());
    const rawUrl = req.url ?? "/";
    let url: URL;
    try {
      url = new URL(rawUrl.startsWith("/") ? rawUrl : `/${rawUrl}`, "http://localhost");
    } catch {
      return refuse(400, "BAD_REQUEST", "malformed request URL");
    }
    if (plan.token !== undefined && !tokenMatches(requestToken(req, url), plan.token)) return refuse(401, "UNAUTHORIZED", "missing or wrong token");
    if (!o.upgrade) return refuse(426, "UPGRADE_REQUIRED", "this server takes no protocol upgrade");
    const rawPath = rawUrl.split(/[?#]/)[0] || "/";
    Promise.resolve()
      .then(() => o.upgrade!(req, socket, head, { url, rawPath }))
      .catch((err: unknown) => {
        if (socket.destroyed) return;
        if (err instanceof HttpError) refuse(err.status, err.code, err.message);
        else refuse(500, "INTERNAL", err instanceof Error ? err.message : String(err));
      });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new CellMapError("IO", `cannot listen on ${plan.host}:${plan.port}: ${err.code ?? err.message}`, undefined, { cause: err }));
    };
    server.once("error", onError);
    server.listen(plan.port, plan.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://${urlHost(plan.host)}:${port}`;
  return {
    url: base,
    host: plan.host,
    port,
    token: plan.token,
    urlFor(p: string): string {
      const rel = p.startsWith("/") ? p : `/${p}`;
      return plan.token === undefined ? `${base}${rel}` : `${base}${rel}?token=${encodeURIComponent(plan.token)}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    server,
  };
}
