/**
 * `s3://bucket/key` locations: the AWS credential chain, the endpoint and URL style, and AWS
 * Signature V4 request signing (through `aws4fetch`) as a request hook of the one
 * {@link HttpStore} (retries, range coalescing and error rules are the HTTP store's), and the
 * writable side of buckets ({@link S3Store}: PUT and DELETE signed the same way, listings) that
 * prediction writers use.
 *
 * Resolution, at open time (each `openStore` of an `s3://` location):
 * - credentials: `s3.anonymous` (unsigned) > `s3.credentials` > `s3.profile` > the environment
 *   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) > the profile `AWS_PROFILE`
 *   (default `default`) of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
 *   `~/.aws/credentials`) or config file (`AWS_CONFIG_FILE`, default `~/.aws/config`). Nothing
 *   found: requests go unsigned (public buckets); a profile named explicitly that does not
 *   exist is an `INVALID_ARGUMENT` error.
 * - region: `s3.region` > `AWS_REGION` > `AWS_DEFAULT_REGION` > the profile's `region` in the
 *   config file > `us-east-1`.
 * - endpoint: `s3.endpoint` > `AWS_ENDPOINT_URL_S3` > `AWS_ENDPOINT_URL` > the profile's
 *   `endpoint_url` > AWS. AWS is addressed virtual-host style (`https://bucket.s3.amazonaws.com/key`),
 *   custom endpoints (MinIO, Ceph) path style (`endpoint/bucket/key`); `s3.forcePathStyle`
 *   overrides.
 *
 * Explicit `s3.credentials` are plain data in the `http` options, so they travel with dataset
 * descriptions to loader worker threads; credentials from the environment or files are
 * resolved again in each thread. Messages name the access key id and where it came from,
 * never the secret.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { AbsolutePath, S3Credentials, S3Options, WritableStore } from "./types.js";
import { AwsV4Signer } from "aws4fetch";
import { CellMapError } from "../errors.js";
import { HttpStore, type HttpRequest, type HttpStoreOptions } from "./http.js";

/** Where the credentials of a store came from (for messages). */
type CredentialSource = "options" | "environment" | { profile: string; file: string };

/** An `s3://` location resolved to its HTTP form. */
export interface ResolvedS3 {
  bucket: string;
  /** Key prefix inside the bucket (no leading or trailing slash). */
  prefix: string;
  /** HTTP(S) URL of the location (store root). */
  url: string;
  region: string;
  /** Null: unsigned requests. */
  credentials: S3Credentials | null;
  source: CredentialSource | null;
}

/** Splits `s3://bucket/key` into bucket and key (without surrounding slashes). */
export function parseS3Url(location: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(location);
  if (!m?.[1]) throw new CellMapError("INVALID_ARGUMENT", "not an s3:// URL (expected s3://bucket/key)", location);
  return { bucket: m[1], key: m[2].replace(/^\/+|\/+$/g, "") };
}

/** Parses INI text (AWS shared config/credentials files) into sections of key/value pairs. */
function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
    if (head) {
      section = out[head[1]] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq < 0) continue; // lines outside a section, nested values
    section[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return out;
}

type Env = Record<string, string | undefined>;

function expandHome(file: string): string {
  return file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file;
}

function readIni(file: string): Record<string, Record<string, string>> | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CellMapError("IO", `cannot read AWS shared file: ${(err as Error).message}`, file, { cause: err });
  }
  return parseIni(text);
}

/** The profile's settings: the credentials file section over the config file's (`[profile name]`, `[default]`). */
function profileSettings(profile: string, env: Env): { settings: Record<string, string>; file: string; found: boolean } {
  const credFile = expandHome(env.AWS_SHARED_CREDENTIALS_FILE || path.join(os.homedir(), ".aws", "credentials"));
  const confFile = expandHome(env.AWS_CONFIG_FILE || path.join(os.homedir(), ".aws", "config"));
  const cred = readIni(credFile)?.[profile];
  const confIni = readIni(confFile);
  const conf = confIni?.[profile === "default" ? "default" : `profile ${profile}`] ?? (profile === "default" ? undefined : confIni?.[profile]);
  const file = cred?.aws_access_key_id ? credFile : conf?.aws_access_key_id ? confFile : credFile;
  return { settings: { ...conf, ...cred }, file, found: cred !== undefined || conf !== undefined };
}

function fromSettings(s: Record<string, string>): S3Credentials | null {
  if (!s.aws_access_key_id || !s.aws_secret_access_key) return null;
  return { accessKeyId: s.aws_access_key_id, secretAccessKey: s.aws_secret_access_key, ...(s.aws_session_token ? { sessionToken: s.aws_session_token } : {}) };
}

function checkCredentials(c: S3Credentials): S3Credentials {
  if (typeof c?.accessKeyId !== "string" || !c.accessKeyId || typeof c.secretAccessKey !== "string" || !c.secretAccessKey) {
    throw new CellMapError("INVALID_ARGUMENT", "s3.credentials needs non-empty accessKeyId and secretAccessKey strings", "http.s3.credentials");
  }
  if (c.sessionToken !== undefined && typeof c.sessionToken !== "string") {
    throw new CellMapError("INVALID_ARGUMENT", "s3.credentials.sessionToken must be a string", "http.s3.credentials.sessionToken");
  }
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) };
}

/** Resolves an `s3://` location with the credential chain described in the module comment. */
export function resolveS3(location: string, s3: S3Options = {}, env: Env = process.env): ResolvedS3 {
  const { bucket, key } = parseS3Url(location);
  const explicitProfile = s3.profile ?? undefined;
  const profile = explicitProfile || env.AWS_PROFILE || "default";
  // The profile's files are read only when something may come from them.
  let prof: ReturnType<typeof profileSettings> | null = null;
  const settings = () => (prof ??= profileSettings(profile, env));

  let credentials: S3Credentials | null = null;
  let source: CredentialSource | null = null;
  if (s3.anonymous) {
    // unsigned
  } else if (s3.credentials) {
    credentials = checkCredentials(s3.credentials);
    source = "options";
  } else if (!explicitProfile && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
    source = "environment";
  } else {
    const p = settings();
    credentials = fromSettings(p.settings);
    if (credentials) source = { profile, file: p.file };
    else if (explicitProfile || env.AWS_PROFILE) {
      const why = p.found ? "has no aws_access_key_id / aws_secret_access_key" : "not found";
      throw new CellMapError("INVALID_ARGUMENT", `AWS profile "${profile}" ${why} (in ${p.file} or the config file)`, explicitProfile ? "http.s3.profile" : "AWS_PROFILE");
    }
  }

  const region = s3.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || settings().settings.region || "us-east-1";
  const endpoint = s3.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || settings().settings.endpoint_url || null;
  let url: string;
  if (endpoint) {
    let base: URL;
    try {
      base = new URL(endpoint);
    } catch {
      throw new CellMapError("INVALID_ARGUMENT", `S3 endpoint is not a URL: ${JSON.stringify(endpoint)}`, s3.endpoint ? "http.s3.endpoint" : "AWS_ENDPOINT_URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new CellMapError("INVALID_ARGUMENT", `S3 endpoint must be http(s), got ${base.protocol}`, s3.endpoint ? "http.s3.endpoint" : "AWS_ENDPOINT_URL");
    }
    const root = base.origin + base.pathname.replace(/\/+$/, "");
    url = s3.forcePathStyle === false ? `${base.protocol}//${bucket}.${base.host}${base.pathname.replace(/\/+$/, "")}` : `${root}/${bucket}`;
  } else {
    url = s3.forcePathStyle ? `https://s3.${region === "us-east-1" ? "" : `${region}.`}amazonaws.com/${bucket}` : `https://${bucket}.s3.amazonaws.com`;
  }
  if (key) url += `/${key}`;
  return { bucket, prefix: key, url, region, credentials, source };
}

function describeSource(r: ResolvedS3): string {
  if (!r.credentials) return "the request was unsigned (no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or http.s3.credentials)";
  const from = r.source === "options" ? "http.s3.credentials" : r.source === "environment" ? "the environment" : `profile "${r.source!.profile}" in ${r.source!.file}`;
  return `signed for region ${r.region} with access key ${r.credentials.accessKeyId} from ${from}`;
}

/** The request-signing hook of one resolved location (shares the derived signing key between requests). */
function s3Signer(r: ResolvedS3): ((req: HttpRequest) => Promise<HttpRequest>) | undefined {
  const c = r.credentials;
  if (!c) return undefined;
  const cache = new Map<string, ArrayBuffer>();
  return async (req) => {
    // A PUT signs its payload's SHA-256, so S3 refuses a body damaged on the way.
    const headers = req.body ? { ...req.headers, "x-amz-content-sha256": createHash("sha256").update(req.body).digest("hex") } : req.headers;
    const signed = await new AwsV4Signer({
      method: req.method,
      url: req.url,
      headers,
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      service: "s3",
      region: r.region,
      cache,
    }).sign();
    const out: Record<string, string> = {};
    signed.headers.forEach((v, k) => (out[k] = v));
    return { url: signed.url.toString(), method: req.method, headers: out, ...(req.body && { body: req.body }) };
  };
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescapeXml = (t: string) =>
  t.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) =>
    e[0] === "#" ? String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : XML_ENTITIES[e],
  );

/**
 * The store of an `s3://` location: the {@link HttpStore} (signed requests, retries, error
 * rules) plus what writers need of a bucket ({@link WritableStore}): one PUT per key (atomic
 * per object in S3, so a killed writer leaves whole objects and nothing to sweep), DELETE, and
 * listings through ListObjectsV2 (resume, overwrite).
 */
export class S3Store extends HttpStore implements WritableStore {
  /** URL of the bucket itself (listings are requests to it). */
  private readonly bucketUrl: string;

  constructor(
    readonly resolved: ResolvedS3,
    http: HttpStoreOptions = {},
  ) {
    const root = `s3://${resolved.bucket}${resolved.prefix ? `/${resolved.prefix}` : ""}`;
    super(resolved.url, http, { prepare: s3Signer(resolved), name: (k: AbsolutePath) => root + k, forbiddenHint: describeSource(resolved) });
    this.bucketUrl = resolved.prefix ? resolved.url.slice(0, resolved.url.length - resolved.prefix.length - 1) : resolved.url;
  }

  /** Keys below `prefix` (relative to it), from ListObjectsV2 pages of up to 1000 keys. */
  async list(prefix: AbsolutePath): Promise<string[]> {
    const base = [this.resolved.prefix, prefix.replace(/^\/+|\/+$/g, "")].filter(Boolean).join("/");
    const start = base ? `${base}/` : "";
    const out: string[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams({ "list-type": "2", prefix: start });
      if (token) q.set("continuation-token", token);
      const body = await this.getUrl(`${this.bucketUrl}?${q}`, prefix);
      if (body === undefined) throw new CellMapError("NOT_FOUND", "no such bucket (HTTP 404 on a listing)", `s3://${this.resolved.bucket}`);
      const xml = new TextDecoder().decode(body);
      for (const m of xml.matchAll(/<Contents>[\s\S]*?<Key>([^<]*)<\/Key>[\s\S]*?<\/Contents>/g)) {
        const key = unescapeXml(m[1]);
        if (key.startsWith(start) && key.length > start.length) out.push(key.slice(start.length));
      }
      const truncated = /<IsTruncated>\s*true\s*<\/IsTruncated>/.test(xml);
      token = truncated ? unescapeXml(/<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1] ?? "") || undefined : undefined;
      if (truncated && !token) throw new CellMapError("IO", "truncated S3 listing without a continuation token", `s3://${this.resolved.bucket}/${start}`);
    } while (token);
    return out;
  }

  /** Deletes every key below `prefix` (listed first; DELETEs run concurrently within the request limit). */
  async deletePrefix(prefix: AbsolutePath): Promise<void> {
    const dir = prefix.replace(/\/+$/, "");
    const keys = await this.list(prefix);
    await Promise.all(keys.map((k) => this.delete(`${dir}/${k}` as AbsolutePath)));
  }

  /** Nothing to do: a PUT leaves either the whole object or nothing. */
  async sweep(): Promise<void> {}
}

/** The store of an `s3://` location: signed when credentials resolve, messages naming `s3://bucket/key`. */
export function openS3Store(location: string, http: HttpStoreOptions = {}, env: Env = process.env): { store: S3Store; resolved: ResolvedS3 } {
  const resolved = resolveS3(location, http.s3, env);
  return { store: new S3Store(resolved, http), resolved };
}
