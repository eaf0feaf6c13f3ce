/**
 * The store options, defined once: the zod schemas below are their only definition, and
 * {@link HttpStoreOptions}, {@link S3Options} and {@link S3Credentials} are their input types.
 * The stores read them after an option object's schema has checked them.
 */
import { z } from "zod";
import { bool, integerAtLeast, nonNegativeNumber, positiveNumber, valueWhere } from "../options/fields.js";
import { type OptionObject, optionObject } from "../options/options.js";

const s3CredentialsShape = {
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  sessionToken: z.string().optional(),
};
const s3CredentialsSchema: OptionObject<typeof s3CredentialsShape> = optionObject(s3CredentialsShape);
/** Static AWS credentials. */
export type S3Credentials = z.input<typeof s3CredentialsSchema>;

const s3Shape = {
  /** Send unsigned requests even when credentials are configured (public buckets). Default false. */
  anonymous: bool.optional(),
  /** Credentials to sign with (instead of the environment / shared files). */
  credentials: s3CredentialsSchema.optional(),
  /** Profile of the shared credentials/config files (instead of `AWS_PROFILE`). */
  profile: z.string().optional(),
  /** Signing region (instead of `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile's). */
  region: z.string().optional(),
  /** S3-compatible endpoint such as `http://127.0.0.1:9000` (instead of `AWS_ENDPOINT_URL[_S3]`). */
  endpoint: z.string().optional(),
  /** Path-style URLs `endpoint/bucket/key` (default: true for custom endpoints, false for AWS). */
  forcePathStyle: bool.optional(),
};
const s3OptionsSchema: OptionObject<typeof s3Shape> = optionObject(s3Shape);
/** Options of `s3://` locations (the `s3` field of the `http` options). All plain data. */
export type S3Options = z.input<typeof s3OptionsSchema>;

const httpShape = {
  /** Per-request timeout in ms (default 30000). */
  timeoutMs: positiveNumber.optional(),
  /** Retries after the first attempt for transient failures (default 5). */
  retries: integerAtLeast(0).optional(),
  /**
   * First backoff delay in ms, doubled each retry (default 200). Each wait is drawn uniformly
   * from [d/2, 3d/2] for the retry's delay d: spread out, so that workers that failed together
   * do not retry together, yet never much shorter than d.
   */
  backoffMs: nonNegativeNumber.optional(),
  /** Maximum concurrent requests (default 32). */
  maxConcurrency: integerAtLeast(1).optional(),
  /** Extra request headers. */
  headers: z.record(z.string(), z.string()).optional(),
  /**
   * Merge range reads of one file issued together when the gap between them is at most this
   * many bytes (default 0: only adjacent ranges); `null` disables merging.
   */
  coalesceGapBytes: nonNegativeNumber.nullable().optional(),
  /**
   * Read an HTTP 403 on a *chunk* key as a missing chunk (fill value) instead of a `FORBIDDEN`
   * error. S3 answers 403, not 404, for a missing key when the caller may not list the bucket
   * (no `s3:ListBucket`). Metadata keys (`.zarray`, `.zattrs`, `.zgroup`, `.zmetadata`,
   * `zarr.json`) always raise `FORBIDDEN`. Default false.
   */
  forbiddenAsMissing: bool.optional(),
  /** Options of `s3://` locations: credentials, region, endpoint (see {@link S3Options}). */
  s3: s3OptionsSchema.optional(),
  /**
   * Send requests through this `fetch` instead of Node's `http`/`https` clients (tests, proxies,
   * custom dispatchers).
   */
  fetch: valueWhere<typeof fetch>((v) => typeof v === "function", "a function").optional(),
};
/** The schema of the HTTP options of remote locations (the `http` field of the option objects). */
export const httpOptionsSchema: OptionObject<typeof httpShape> = optionObject(httpShape);
/** Options of {@link HttpStore}: HTTP options of remote locations. */
export type HttpStoreOptions = z.input<typeof httpOptionsSchema>;
