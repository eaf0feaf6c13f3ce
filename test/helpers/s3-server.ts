/**
 * A private S3-compatible object store on 127.0.0.1 for tests: `s3rver` (a real S3 API server
 * keeping objects on disk) behind a small gateway that makes its buckets private.
 *
 * s3rver answers anonymous requests and does not check Signature V4 signatures (it only looks
 * the access key up), so the gateway does what S3 does for a private bucket: an unsigned request
 * gets 403 `AccessDenied`, an unknown key 403 `InvalidAccessKeyId`, a wrong signature 403
 * `SignatureDoesNotMatch`. Signatures are recomputed with `@smithy/signature-v4` (the AWS SDK's
 * signer), independently of the library's signer (`aws4fetch`). Keys matching `deny` get 403
 * `AccessDenied` even when signed (an object the caller may not read, or a missing key without
 * `s3:ListBucket`). Verified requests reach s3rver without their `Authorization` header (s3rver
 * knows only its own default key).
 *
 * s3rver 3.7 reads a suffix range `bytes=-N` as `bytes=0-N`; the gateway turns suffix ranges into
 * bounded ones (after a HEAD for the size), as S3 itself serves them.
 */
import { createHash, createHmac, type BinaryLike } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { SignatureV4 } from "@smithy/signature-v4";
import S3rver from "s3rver";

/** Access keys the gateway accepts. */
export const S3_KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
export const S3_KEY2 = { accessKeyId: "CELLMAPTEST", secretAccessKey: "cellmap/test+secret" };

/** One request seen by the gateway. */
export interface S3Request {
  method: string;
  path: string;
  range?: string;
  /** Access key id of a signed request, or null. */
  signedBy: string | null;
  /** Region of the signature's credential scope. */
  region?: string;
  /** The session token sent (`x-amz-security-token`). */
  token?: string;
  status: number;
}

export interface S3GatewayOptions {
  /** Unsigned requests get 403 (default true). */
  private?: boolean;
  /** Keys (paths `/bucket/key`) that always get 403 AccessDenied. */
  deny?: RegExp[];
  /** The buckets' region: a signature for another one gets 400 AuthorizationHeaderMalformed, as from S3 (default: any). */
  region?: string;
}

export interface S3TestServer {
  /** Gateway URL (the endpoint to give clients). */
  url: string;
  /** s3rver itself, without the gateway (uploads). */
  backend: string;
  requests: S3Request[];
  configure(opts: S3GatewayOptions): void;
  /** Uploads every file under `dir` as `bucket/prefix/<relative path>`; returns the number of objects. */
  upload(dir: string, bucket: string, prefix?: string, skip?: (rel: string) => boolean): Promise<number>;
  close(): Promise<void>;
}

/** sha256 / HMAC-SHA256 for the smithy signer, over node's crypto. */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: SourceData): BinaryLike => (typeof d === "string" ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength));

class NodeSha256 {
  private readonly h;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash("sha256") : createHmac("sha256", bytesOf(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    throw new Error("not needed");
  }
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

/** x-amz-date `20240101T000000Z` as a Date. */
function parseAmzDate(v: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return new Date(NaN);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

/** Checks the Signature V4 `Authorization` header of `req`; returns the S3 error code or null. */
async function verify(req: http.IncomingMessage, keys: Map<string, string>): Promise<{ error: string | null; accessKeyId: string; region?: string }> {
  const auth = req.headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { error: "AuthorizationHeaderMalformed", accessKeyId: "" };
  const [, accessKeyId, , region, service, signedHeaders, signature] = m;
  const secret = keys.get(accessKeyId);
  if (secret === undefined) return { error: "InvalidAccessKeyId", accessKeyId };
  const headers: Record<string, string> = {};
  for (const h of signedHeaders.split(";")) {
    const v = req.headers[h];
    headers[h] = Array.isArray(v) ? v.join(",") : (v ?? "");
  }
  const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
  const query: Record<string, string> = {};
  url.searchParams.forEach((v, k) => (query[k] = v));
  const signer = new SignatureV4({ service, region, credentials: { accessKeyId, secretAccessKey: secret }, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign(
    { method: req.method ?? "GET", protocol: "http:", hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers },
    { signingDate: parseAmzDate(headers["x-amz-date"] ?? "") },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1];
  return { error: expected === signature ? null : "SignatureDoesNotMatch", accessKeyId, region };
}

function forward(backend: URL, req: http.IncomingMessage, headers: http.IncomingHttpHeaders, method = req.method): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const out = http.request({ host: backend.hostname, port: backend.port, method, path: req.url, headers }, resolve);
    out.on("error", reject);
    if (method === "GET" || method === "HEAD") out.end();
    else req.pipe(out);
  });
}

/** Starts s3rver with `buckets` and the gateway in front of it. */
export async function startS3(buckets: string[], opts: S3GatewayOptions = {}): Promise<S3TestServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-s3rver-"));
  const s3rver = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })) });
  const address = (await s3rver.run()) as AddressInfo;
  const backend = new URL(`http://127.0.0.1:${address.port}`);
  const keys = new Map([S3_KEY, S3_KEY2].map((k) => [k.accessKeyId, k.secretAccessKey]));
  let conf: S3GatewayOptions = { private: true, deny: [], ...opts };
  const requests: S3Request[] = [];

  const gateway = http.createServer((req, res) => {
    void (async () => {
      const urlPath = (req.url ?? "/").split("?")[0];
      const rec: S3Request = { method: req.method ?? "GET", path: decodeURIComponent(urlPath), range: req.headers.range, signedBy: null, status: 0 };
      requests.push(rec);
      const deny = (code: string, message: string, status = 403) => {
        rec.status = status;
        res.writeHead(status, { "Content-Type": "application/xml" });
        res.end(s3ErrorXml(code, message));
      };
      if (req.headers.authorization) {
        const v = await verify(req, keys);
        if (v.error)
          return deny(
            v.error,
            v.error === "InvalidAccessKeyId"
              ? "The AWS Access Key Id you provided does not exist in our records."
              : "The request signature we calculated does not match the signature you provided.",
          );
        rec.signedBy = v.accessKeyId;
        rec.region = v.region;
        if (conf.region && v.region !== conf.region) {
          return deny(
            "AuthorizationHeaderMalformed",
            `The authorization header is malformed; the region &apos;${v.region}&apos; is wrong; expecting &apos;${conf.region}&apos;`,
            400,
          );
        }
        const token = req.headers["x-amz-security-token"];
        if (typeof token === "string") rec.token = token;
      } else if (conf.private) {
        return deny("AccessDenied", "Access Denied");
      }
      if (conf.deny?.some((re) => re.test(rec.path))) return deny("AccessDenied", "Access Denied");
      const { authorization: _a, ...headers } = req.headers;
      const suffix = /^bytes=-(\d+)$/.exec(req.headers.range ?? "");
      if (suffix && req.method === "GET") {
        const { range: _r, ...plain } = headers;
        const head = await forward(backend, req, plain, "HEAD");
        head.resume();
        const size = Number(head.headers["content-length"]);
        if (head.statusCode === 200 && Number.isFinite(size)) headers.range = `bytes=${Math.max(0, size - Number(suffix[1]))}-${size - 1}`;
      }
      const up = await forward(backend, req, headers);
      rec.status = up.statusCode ?? 0;
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err.message));
    });
  });
  await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;

  const upload = async (root: string, bucket: string, prefix = "", skip?: (rel: string) => boolean): Promise<number> => {
    const files = (fs.readdirSync(root, { recursive: true }) as string[])
      .map((rel) => rel.split(path.sep).join("/"))
      .filter((rel) => fs.statSync(path.join(root, rel)).isFile() && !skip?.(rel));
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const rel = files[next++];
        const key = [prefix, rel].filter(Boolean).join("/");
        const body = fs.readFileSync(path.join(root, rel));
        const r = await fetch(`${backend.origin}/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`, { method: "PUT", body });
        await r.arrayBuffer();
        if (!r.ok) throw new Error(`upload of ${key}: HTTP ${r.status}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return files.length;
  };

  return {
    url,
    backend: backend.origin,
    requests,
    configure: (o) => {
      conf = { private: true, deny: [], ...o };
    },
    upload,
    close: async () => {
      gateway.closeAllConnections();
      await new Promise<void>((r) => gateway.close(() => r()));
      await s3rver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
