/**
 * Safe static file serving for {@link startHttpServer}: folders mounted under URL prefixes
 * (`/0/raw` → `/data/raw.zarr`), GET and HEAD, single byte ranges (`Range: bytes=a-b`, `a-`,
 * `-n` → 206 with `Content-Range`; past the end → 416; several ranges → the whole file, which
 * HTTP allows), exact `Content-Length`.
 *
 * Safety: the path is taken as sent, split on `/` and each segment percent-decoded; a `.` or
 * `..` segment (encoded or not), an encoded `/` or `\`, a NUL or a malformed escape is refused
 * with 403/400 before the file system is touched, and the resolved file must lie inside the
 * mount's root — after resolving symbolic links too, unless `followSymlinks` allows links out.
 * Folders are never listed (404), so a client sees exactly the files it asks for by name.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type * as http from "node:http";
import { pipeline } from "node:stream/promises";
import { HttpError, type RequestContext, type RequestHandler } from "./http-server.js";

/** A folder served under a URL prefix. */
export interface StaticMount {
  /** URL path prefix, e.g. `/0/raw` (`/` or `""` for the server root). */
  prefix: string;
  /** Folder on disk. */
  root: string;
}

/** Options of {@link staticFileHandler}. */
export interface StaticFilesOptions {
  /** Serve files whose symbolic links lead outside the mount's root (default false). */
  followSymlinks?: boolean;
}

/** A resolved single byte range (inclusive `end`). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a file of `size` bytes: a {@link ByteRange}, `"unsatisfiable"`
 * (→ 416), or undefined when the header is absent, malformed or asks for several ranges (→ the
 * whole file, as HTTP permits).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  const end = m[2] === "" ? size - 1 : Number(m[2]);
  return { start, end: Math.min(end, size - 1) };
}

/** Decodes a raw URL path into segments, refusing traversal and odd characters. */
function safeSegments(rawPath: string): string[] {
  const out: string[] = [];
  for (const raw of rawPath.split("/")) {
    if (raw === "") continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, "BAD_REQUEST", "malformed percent-encoding in the path");
    }
    if (seg === "." || seg === ".." || /[/\\\0]/.test(seg)) throw new HttpError(403, "FORBIDDEN", "path leaves the served folder");
    out.push(seg);
  }
  return out;
}

function contentType(file: string): string {
  const base = path.basename(file);
  if (base === ".zattrs" || base === ".zarray" || base === ".zgroup" || base === ".zmetadata" || base.endsWith(".json")) return "application/json";
  if (base.endsWith(".png")) return "image/png";
  if (base.endsWith(".html")) return "text/html; charset=utf-8";
  if (base.endsWith(".txt") || base.endsWith(".csv")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

function inside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * A {@link RequestHandler} serving the mounted folders (a plain folder path mounts it at `/`).
 * Unknown prefixes, missing files and folders are 404.
 */
export function staticFileHandler(mounts: string | StaticMount | readonly StaticMount[], opts: StaticFilesOptions = {}): RequestHandler {
  const list = (typeof mounts === "string" ? [{ prefix: "/", root: mounts }] : Array.isArray(mounts) ? mounts : [mounts as StaticMount]).map((m) => ({
    prefix: safeSegments(m.prefix),
    root: path.resolve(m.root),
    real: undefined as string | undefined,
  }));
  // Longest prefix first, so `/a/b` wins over `/a`.
  list.sort((a, b) => b.prefix.length - a.prefix.length);
  return async (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext) => {
    const segs = safeSegments(ctx.rawPath);
    const mount = list.find((m) => m.prefix.every((p, i) => segs[i] === p));
    if (!mount) throw new HttpError(404, "NOT_FOUND", "no such file");
    const file = path.join(mount.root, ...segs.slice(mount.prefix.length));
    if (!inside(mount.root, file)) throw new HttpError(403, "FORBIDDEN", "path leaves the served folder");
    let stat: fs.Stats;
    let real: string;
    try {
      real = await fs.promises.realpath(file);
      stat = await fs.promises.stat(real);
    } catch {
      throw new HttpError(404, "NOT_FOUND", "no such file");
    }
    if (!opts.followSymlinks) {
      mount.real ??= await fs.promises.realpath(mount.root).catch(() => mount.root);
      if (!inside(mount.real, real)) throw new HttpError(403, "FORBIDDEN", "path leaves the served folder");
    }
    if (!stat.isFile()) throw new HttpError(404, "NOT_FOUND", "no such file");
    const size = stat.size;
    const range = parseRange(req.headers.range, size);
    if (range === "unsatisfiable") {
      throw new HttpError(416, "RANGE_NOT_SATISFIABLE", `range ${req.headers.range} is outside the file (${size} bytes)`, { "Content-Range": `bytes */${size}` });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const headers: Record<string, string | number> = {
      "Content-Type": contentType(real),
      "Content-Length": Math.max(0, end - start + 1),
      "Accept-Ranges": "bytes",
      "Last-Modified": stat.mtime.toUTCString(),
      "Cache-Control": "no-cache",
    };
    if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    try {
      await pipeline(fs.createReadStream(real, { start, end }), res);
    } catch {
      res.destroy(); // client went away or the file vanished mid-read
    }
  };
}
