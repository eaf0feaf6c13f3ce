/**
 * A real nginx serving a directory on 127.0.0.1, for the remote-data integration tests and the
 * soak script. nginx is looked up on PATH and in the usual sbin directories (`NGINX_BIN`
 * overrides); `scripts/setup-system.sh` installs it. Startup takes a few milliseconds.
 *
 * ```ts
 * const ng = await startNginx(rootDir);   // throws NginxUnavailable when it cannot be had
 * fetch(`${ng.url}/data.zarr/zarr.json`);
 * await ng.stop();
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The config template, relative to this file. */
export const NGINX_TEMPLATE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../nginx/nginx.conf.template");

/** nginx could not be found or installed (the message says why). */
export class NginxUnavailable extends Error {
  override readonly name = "NginxUnavailable";
}

/** A running nginx. */
export interface NginxServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  port: number;
  /** The served directory. */
  root: string;
  /** nginx's own directory (config, pid, error log). */
  prefix: string;
  /** The nginx process id. */
  pid: number;
  /** Stops nginx and waits for its exit. Safe to call more than once. */
  stop(): Promise<void>;
}

const SBIN = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx", "/opt/homebrew/bin/nginx", "/usr/local/bin/nginx"];

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/** Path of an nginx binary, or null. `NGINX_BIN` wins. */
export function findNginx(): string | null {
  const env = process.env.NGINX_BIN;
  if (env) return fs.existsSync(env) ? env : null;
  const p = onPath("nginx");
  if (p) return p;
  return (
    SBIN.find((b) => {
      try {
        fs.accessSync(b, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? null
  );
}

/**
 * Finds nginx. It is installed by `scripts/setup-system.sh` (run by `.ci/run` and before
 * `npm test`), never from inside a test.
 * @throws NginxUnavailable with one line saying how to get it.
 */
export async function ensureNginx(): Promise<string> {
  const found = findNginx();
  if (found) return found;
  throw new NginxUnavailable("nginx is not installed: run scripts/setup-system.sh (as root) or set NGINX_BIN");
}

/** Whether this nginx knows `-e` (startup error log, 1.19.5+): without it, it first opens the compiled-in log path. */
function supportsErrorLogFlag(bin: string): boolean {
  const v = spawnSync(bin, ["-v"], { encoding: "utf8" });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${v.stdout}${v.stderr}`);
  if (!m) return false;
  const [a, b, c] = m.slice(1).map(Number);
  return a > 1 || (a === 1 && (b > 19 || (b === 19 && c >= 5)));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when a TCP connection to the port succeeds, or rejects when `child` exits first. */
async function waitReady(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = child.exitCode !== null;
  child.once("exit", () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error("nginx exited during start-up");
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      sock.once("connect", () => (sock.destroy(), resolve(true)));
      sock.once("error", () => (sock.destroy(), resolve(false)));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nginx did not accept connections on 127.0.0.1:${port} within ${ms} ms`);
}

/** Options of {@link startNginx}. */
export interface StartNginxOptions {
  /** Write an access log (`<prefix>/access.log`, with the Range header). Default off. */
  accessLog?: boolean;
}

/**
 * Starts nginx serving `root` on a free 127.0.0.1 port (installing nginx first if needed).
 * nginx runs in the foreground as a child of this process and is killed if this process exits.
 */
export async function startNginx(root: string, opts: StartNginxOptions = {}): Promise<NginxServer> {
  const bin = await ensureNginx();
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "cm-nginx-"));
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) fs.mkdirSync(path.join(prefix, "tmp", d), { recursive: true });
  const template = fs.readFileSync(NGINX_TEMPLATE, "utf8");
  const withE = supportsErrorLogFlag(bin);
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const accessLog = opts.accessLog ? `${prefix}/access.log` : "off";
    const conf = template
      .replaceAll("{{PREFIX}}", prefix)
      .replaceAll("{{ROOT}}", path.resolve(root))
      .replaceAll("{{PORT}}", String(port))
      .replace(
        "access_log {{ACCESS_LOG}};",
        opts.accessLog ? `log_format ranges '$request $status $http_range $body_bytes_sent';\n  access_log ${accessLog} ranges;` : "access_log off;",
      );
    const confPath = path.join(prefix, "nginx.conf");
    fs.writeFileSync(confPath, conf);
    const args = ["-p", prefix, "-c", confPath, ...(withE ? ["-e", path.join(prefix, "error.log")] : [])];
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      await waitReady(port, child, 10_000);
    } catch (err) {
      child.kill("SIGKILL");
      process.removeListener("exit", killOnExit);
      let log = "";
      try {
        log = fs.readFileSync(path.join(prefix, "error.log"), "utf8");
      } catch {
        // no log yet
      }
      lastError = `${(err as Error).message}\n${stderr}${log}`.trim();
      if (/in use/i.test(lastError)) continue; // someone took the port between probe and bind
      break;
    }
    let stopped: Promise<void> | null = null;
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      root: path.resolve(root),
      prefix,
      pid: child.pid!,
      stop() {
        stopped ??= new Promise<void>((resolve) => {
          process.removeListener("exit", killOnExit);
          const done = () => {
            clearTimeout(hard);
            fs.rmSync(prefix, { recursive: true, force: true });
            resolve();
          };
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once("exit", done);
          // TERM is nginx's fast shutdown; KILL if it does not exit promptly.
          const hard = setTimeout(() => child.kill("SIGKILL"), 3000);
          child.kill("SIGTERM");
        });
        return stopped;
      },
    };
  }
  fs.rmSync(prefix, { recursive: true, force: true });
  throw new Error(`nginx failed to start (${bin} ${NGINX_TEMPLATE}):\n${lastError}`);
}

/**
 * For test files: starts nginx, or explains why not. In CI (`process.env.CI` set) an unavailable
 * nginx is an error; locally the caller may skip (`skip` holds the reason).
 */
export async function nginxForTests(root: string, opts: StartNginxOptions = {}): Promise<{ server: NginxServer; skip: null } | { server: null; skip: string }> {
  try {
    return { server: await startNginx(root, opts), skip: null };
  } catch (err) {
    if (err instanceof NginxUnavailable && !process.env.CI) {
      return { server: null, skip: `nginx unavailable, remote tests skipped: ${err.message}` };
    }
    if (err instanceof NginxUnavailable) {
      throw new Error(`CI requires nginx for the remote-data tests, but: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Version line of an nginx binary (for reports). */
export function nginxVersion(bin: string): string {
  const r = spawnSync(bin, ["-v"], { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
}
