/**
 * Tagged errors. Every error the library raises for bad input is a {@link CellMapError} with a
 * stable `code` and, where one is involved, the `path` (file path, URL, array or metadata field).
 */

/** Stable error codes (documented in the README's bad-input table). */
export type CellMapErrorCode =
  | "NOT_FOUND" // group/array/metadata missing
  | "INVALID_METADATA" // NGFF or zarr metadata fails validation
  | "UNSUPPORTED" // unknown codec, dtype or feature
  | "CORRUPT_CHUNK" // chunk bytes cannot be decoded or have the wrong size
  | "INVALID_ARGUMENT" // bad option passed by the caller
  | "OUT_OF_RANGE" // index outside a dataset / image
  | "IO" // network or filesystem failure after retries
  | "FORBIDDEN" // access denied (HTTP 403): missing or wrong credentials, or no permission
  | "ABORTED" // the caller's AbortSignal fired
  | "WRITE_CONFLICT"; // refusing to clobber existing output

/**
 * Base error of the library: `code` tells what went wrong, `detail` what exactly, `path` where.
 * `message` is composed from them for display (`detail [path]`); code that rewords an error
 * uses `detail` and `path`, never the message.
 */
export class CellMapError extends Error {
  override readonly name = "CellMapError";
  /** What went wrong, without the path. */
  readonly detail: string;
  constructor(
    readonly code: CellMapErrorCode,
    detail: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(path ? `${detail} [${path}]` : detail, options);
    this.detail = detail;
  }
}

/**
 * Whether `err` is a {@link CellMapError} (with `code`, when given). Works across module copies
 * and for errors rebuilt after crossing a worker thread, which `instanceof` can miss.
 */
export function isCellMapError(err: unknown, code?: CellMapErrorCode): err is CellMapError {
  if (!(err instanceof Error) || err.name !== "CellMapError") return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === "string" && (code === undefined || c === code);
}

/** The `INVALID_ARGUMENT` error of a bad option or argument at `path` (the option or field). */
export function invalid(path: string | undefined, message: string): CellMapError {
  return new CellMapError("INVALID_ARGUMENT", message, path);
}

/** Throws an `ABORTED` error if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, path?: string): void {
  if (signal?.aborted) throw new CellMapError("ABORTED", "operation aborted", path, { cause: signal.reason });
}
