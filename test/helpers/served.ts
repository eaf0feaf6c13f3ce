/**
 * The setup shared by the remote and fault tests: generate the remote fixture in a temp dir,
 * serve it with nginx, put a fault proxy in front, and clean everything up after the file.
 */
import { after } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeRemoteFixture } from "../fixtures/remote.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";
import { nginxForTests } from "./nginx.js";

/** A served fixture: `proxy` is null (and `skip` set) when nginx is unavailable outside CI. */
export interface ServedFixture {
  tmp: string;
  fx: Awaited<ReturnType<typeof makeRemoteFixture>>;
  ng: Awaited<ReturnType<typeof nginxForTests>>;
  proxy: FaultProxy | null;
}

/** Generates, serves and registers the clean-up (`onCleanup` runs first, e.g. to restore globals). */
export async function serveRemoteFixture(prefix: string, onCleanup?: () => void): Promise<ServedFixture> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let ng: ServedFixture["ng"] | null = null;
  let proxy: FaultProxy | null = null;
  after(async () => {
    onCleanup?.();
    await proxy?.close();
    await ng?.server?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const fx = await makeRemoteFixture(tmp);
  try {
    ng = await nginxForTests(tmp);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true }); // the after() hook never runs when start-up throws
    throw err;
  }
  if (ng.server) proxy = await startFaultProxy(ng.server.url);
  return { tmp, fx, ng, proxy };
}
