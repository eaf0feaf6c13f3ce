/**
 * Anonymous HTTP(S) store with range requests, as public S3/GCS buckets serve OME-Zarr.
 * Transient failures (5xx, 429, timeouts, connection resets, truncated bodies) are retried with
 * exponential backoff and jitter; 404 means "missing" (a chunk then reads as fill value);
 * other 4xx fail at once with the URL in the message.
 */
import type { AbsolutePath, AsyncReadable, GetOptions, RangeQuery } from "@zarrita/storage";
import { CellMapError } from "../errors.js";
import { Limiter } from "./limit.js";

/** Options of {@link HttpStore}. */
export interface HttpStoreOptions {
  /** Per-request timeout in ms (default 30000). */
  timeoutMs?: number;
  /** Retries after the first attempt for transient failures (default 5). */
  retries?: number;
  /** First backoff delay in ms, doubled each retry, with full jitter (default 200). */
  backoffMs?: number;
  /** Maximum concurrent requests (default 32). */
  maxConcurrency?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Replacement for global fetch (tests). */
  fetch?: typeof fetch;
}

class TransientError extends Error {}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CellMapError("ABORTED", "request aborted", undefined, { cause: signal?.reason }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A zarrita-compatible read-only store over an HTTP(S) base URL. */
export class HttpStore implements AsyncReadable {
  readonly url: string;
  private readonly opts: Required<Omit<HttpStoreOptions, "headers" | "fetch">> & Pick<HttpStoreOptions, "headers" | "fetch">;
  private readonly limiter: Limiter;

  constructor(url: string, options: HttpStoreOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.opts = {
      timeoutMs: options.timeoutMs ?? 30000,
      retries: options.retries ?? 5,
      backoffMs: options.backoffMs ?? 200,
      maxConcurrency: options.maxConcurrency ?? 32,
      headers: options.headers,
      fetch: options.fetch,
    };
    this.limiter = new Limiter(this.opts.maxConcurrency);
  }

  private href(key: AbsolutePath): string {
    return this.url + key.split("/").map(encodeURIComponent).join("/");
  }

  async get(key: AbsolutePath, opts?: GetOptions): Promise<Uint8Array | undefined> {
    return this.request(key, undefined, opts?.signal);
  }

  async getRange(key: AbsolutePath, range: RangeQuery, opts?: GetOptions): Promise<Uint8Array | undefined> {
    const header = "suffixLength" in range
      ? `bytes=-${range.suffixLength}`
      : `bytes=${range.offset}-${range.offset + range.length - 1}`;
    const expected = "suffixLength" in range ? undefined : range.length;
    return this.request(key, { header, expected }, opts?.signal);
  }

  private async request(
    key: AbsolutePath,
    range: { header: string; expected?: number } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array | undefined> {
    const url = this.href(key);
    const doFetch = this.opts.fetch ?? fetch;
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      if (signal?.aborted) throw new CellMapError("ABORTED", "request aborted", url, { cause: signal.reason });
      if (attempt > 0) {
        const cap = this.opts.backoffMs * 2 ** (attempt - 1);
        await sleep(Math.random() * cap + cap / 2, signal);
      }
      try {
        return await this.limiter.run(async () => {
          const timeout = AbortSignal.timeout(this.opts.timeoutMs);
          const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
          const headers: Record<string, string> = { ...this.opts.headers };
          if (range) headers.Range = range.header;
          let res: Response;
          try {
            res = await doFetch(url, { headers, signal: combined });
          } catch (err) {
            if (signal?.aborted) throw new CellMapError("ABORTED", "request aborted", url, { cause: signal.reason });
            throw new TransientError(`request failed: ${(err as Error).message}`, { cause: err });
          }
          if (res.status === 404) {
            await res.body?.cancel();
            return undefined;
          }
          if (res.status === 429 || res.status >= 500) {
            await res.body?.cancel();
            throw new TransientError(`HTTP ${res.status}`);
          }
          if (!res.ok) {
            await res.body?.cancel();
            throw new CellMapError("IO", `HTTP ${res.status} ${res.statusText}`, url);
          }
          let bytes: Uint8Array;
          try {
            bytes = new Uint8Array(await res.arrayBuffer());
          } catch (err) {
            if (signal?.aborted) throw new CellMapError("ABORTED", "request aborted", url, { cause: signal.reason });
            throw new TransientError(`body read failed: ${(err as Error).message}`, { cause: err });
          }
          const declared = res.headers.get("content-length");
          if (declared !== null && Number(declared) !== bytes.length) {
            throw new TransientError(`truncated body: ${bytes.length} of ${declared} bytes`);
          }
          if (range) {
            if (res.status === 200 && range.expected !== undefined) {
              // Server ignored the Range header: cut the requested window out of the full body.
              const m = /bytes=(\d+)-/.exec(range.header);
              const start = m ? Number(m[1]) : 0;
              bytes = bytes.subarray(start, start + range.expected);
            }
            if (range.expected !== undefined && bytes.length !== range.expected) {
              throw new TransientError(`short range: ${bytes.length} of ${range.expected} bytes`);
            }
          }
          return bytes;
        });
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        lastError = err;
      }
    }
    throw new CellMapError(
      "IO",
      `giving up after ${this.opts.retries + 1} attempts: ${(lastError as Error)?.message}`,
      url,
      { cause: lastError },
    );
  }
}
