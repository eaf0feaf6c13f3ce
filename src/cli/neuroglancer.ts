/**
 * `cellmap-data neuroglancer`: a Neuroglancer link (or state JSON) showing a raw image and label
 * images at a centre. Local images cannot be opened by a hosted Neuroglancer (no `file://`
 * access), so `--serve` serves each local image folder over HTTP (loopback, CORS, byte ranges;
 * see `src/net/`) and points the link at the served URLs, until SIGINT/SIGTERM.
 */
import * as path from "node:path";
import { CellMapError } from "../errors.js";
import { isRemote } from "../store/open.js";
import { startHttpServer, type RunningHttpServer } from "../net/http-server.js";
import { staticFileHandler, type StaticMount } from "../net/static-files.js";
import { neuroglancerLink, neuroglancerState, neuroglancerView, type NeuroglancerLayer, type NeuroglancerView } from "../viz/neuroglancer.js";
import { describeImage, type ImageInfo } from "./info.js";

/** Options of {@link neuroglancerCommand}. */
export interface NeuroglancerCommandOptions {
  /** Centre, one value per spatial axis (storage order), world units (nm); default: the image centre. */
  center?: number[];
  /** Print the state JSON instead of a link. */
  json?: boolean;
  /** Serve local images over HTTP and keep running until `stop` (default: SIGINT/SIGTERM). */
  serve?: boolean;
  host?: string;
  port?: number;
  token?: string;
  /** Neuroglancer deployment (default the public demo). */
  base?: string;
}

/** Where the command writes. */
export interface CommandIO {
  out(line: string): void;
  err(line: string): void;
}

/** What the command shows: the layers, their local folders, and where to look. */
export interface NeuroglancerPlan {
  layers: NeuroglancerLayer[];
  /** Local folders of the layers (same order as `layers`; undefined for URLs). */
  local: Array<string | undefined>;
  view: NeuroglancerView;
  raw: ImageInfo;
}

function layerName(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? p;
}

/** Reads the metadata of the raw and label images (no voxel reads) and decides the view. */
export async function neuroglancerPlan(raw: string, labels: readonly string[], o: Pick<NeuroglancerCommandOptions, "center"> = {}): Promise<NeuroglancerPlan> {
  const info = await describeImage(raw);
  const labelInfos: ImageInfo[] = [];
  for (const l of labels) labelInfos.push(await describeImage(l));
  let view: NeuroglancerView;
  try {
    view = neuroglancerView(info, o.center);
  } catch (err) {
    throw new CellMapError("INVALID_ARGUMENT", (err as Error).message, /readable level/.test((err as Error).message) ? raw : undefined);
  }
  const all = [info, ...labelInfos];
  // A bioformats2raw root: Neuroglancer reads the series' own image group.
  const image = (x: ImageInfo) => (x.series ? `${x.location.replace(/\/+$/, "")}/${x.series.all[x.series.chosen].path}` : x.location);
  const local = all.map((x) => (isRemote(x.location) ? undefined : path.resolve(image(x))));
  const layers: NeuroglancerLayer[] = all.map((x, i) => ({
    name: i === 0 ? "raw" : layerName(labels[i - 1]),
    path: local[i] ?? image(x),
    kind: i === 0 ? "image" : "segmentation",
    zarrFormat: x.levels[0]?.zarrFormat ?? view.zarrFormat,
  }));
  return { layers, local, view, raw: info };
}

/** The state of a plan; `served` gives the URL that replaces local layer `i`'s folder. */
export function planState(plan: NeuroglancerPlan, served?: (i: number, dir: string) => string): Record<string, unknown> {
  const layers = plan.layers.map((l, i) => (served && plan.local[i] !== undefined ? { ...l, path: served(i, plan.local[i]!) } : l));
  const v = plan.view;
  return neuroglancerState(layers, v.center, v.voxelNm, v.zarrFormat, v.space);
}

/** URL path under which local layer `i` (folder `dir`) is served: `/<i>/<folder name>`. */
function servedPath(i: number, dir: string): string {
  return `/${i}/${encodeURIComponent(path.basename(dir) || "data")}`;
}

/**
 * Runs the command. Without `serve`, prints the link (or JSON) and, when a layer is local,
 * one stderr line saying the link needs the data served. With `serve`, starts the server,
 * prints the link, and resolves once `stop` resolves (default: SIGINT or SIGTERM), after closing
 * the server.
 */
export async function neuroglancerCommand(
  raw: string,
  labels: readonly string[],
  o: NeuroglancerCommandOptions,
  io: CommandIO = { out: (l) => console.log(l), err: (l) => console.error(l) },
  stop: (server: RunningHttpServer) => Promise<void> = waitForSignal,
): Promise<void> {
  const print = (state: Record<string, unknown>) => io.out(o.json ? JSON.stringify(state, null, 2) : neuroglancerLink(state, o.base));
  if (!o.serve) {
    if (o.host !== undefined || o.port !== undefined) throw new CellMapError("INVALID_ARGUMENT", "--host and --port only apply with --serve");
    const plan = await neuroglancerPlan(raw, labels, o);
    print(planState(plan));
    if (plan.local.some((d) => d !== undefined)) {
      io.err("cellmap-data: note: a hosted Neuroglancer cannot open local files (file://); serve the data for this link to work, e.g. rerun with --serve");
    }
    return;
  }
  // Metadata first: a bad path fails before anything listens.
  const plan = await neuroglancerPlan(raw, labels, o);
  const mounts: StaticMount[] = [];
  plan.local.forEach((dir, i) => {
    if (dir !== undefined) mounts.push({ prefix: servedPath(i, dir), root: dir });
  });
  const server = await startHttpServer({ host: o.host, port: o.port, token: o.token, handler: staticFileHandler(mounts) });
  try {
    print(planState(plan, (i, dir) => server.urlFor(servedPath(i, dir))));
    const what = mounts.length ? `${mounts.length} local image folder${mounts.length === 1 ? "" : "s"}` : "nothing (every layer is a URL)";
    const secret = server.token !== undefined ? "; the link carries the token, share it only with people who may read the data" : "";
    io.err(`cellmap-data: serving ${what} at ${server.url}${secret}; Ctrl-C to stop`);
    await stop(server);
  } finally {
    await server.close();
  }
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for both). */
function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}
