/**
 * The schemas of the store options (`http`, and its `s3` part): the keys of
 * `HttpStoreOptions`, `S3Options` and `S3Credentials` (a compile-time check fails when they drift
 * apart).
 */
import { z } from "zod";
import { bool, functionSchema, integerAtLeast, nonNegativeNumber, positiveNumber } from "../options/fields.js";
import { optionObject, type SameKeys } from "../options/options.js";
import type { HttpStoreOptions } from "./http.js";
import type { S3Credentials, S3Options } from "./types.js";

const s3CredentialsSchema = optionObject({ accessKeyId: z.string(), secretAccessKey: z.string(), sessionToken: z.string().optional() });
/** `http.s3`: credentials, profile, region, endpoint of `s3://` locations. */
const s3OptionsSchema = optionObject({
  anonymous: bool.optional(),
  credentials: s3CredentialsSchema.optional(),
  profile: z.string().optional(),
  region: z.string().optional(),
  endpoint: z.string().optional(),
  forcePathStyle: bool.optional(),
});
const httpShape = optionObject({
  timeoutMs: positiveNumber.optional(),
  retries: integerAtLeast(0).optional(),
  backoffMs: nonNegativeNumber.optional(),
  maxConcurrency: integerAtLeast(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  coalesceGapBytes: nonNegativeNumber.nullable().optional(),
  forbiddenAsMissing: bool.optional(),
  s3: s3OptionsSchema.optional(),
  fetch: functionSchema.optional(),
});
/** HTTP options of remote locations (values checked by the store). */
export const httpOptionsSchema = httpShape as unknown as z.ZodType<HttpStoreOptions>;


const _http: SameKeys<HttpStoreOptions, z.input<typeof httpShape>> = true;
const _s3: SameKeys<S3Options, z.input<typeof s3OptionsSchema>> = true;
const _creds: SameKeys<S3Credentials, z.input<typeof s3CredentialsSchema>> = true;
void [_http, _s3, _creds];
