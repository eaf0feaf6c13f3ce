/**
 * Groups that hold images instead of being one: a bioformats2raw root (`"bioformats2raw.layout":
 * 3`, the images under `0/`, `1/`, …, their names in `OME/METADATA.ome.xml`), and OME-NGFF HCS
 * plates and wells (`plate` / `well`, or `ome.plate` / `ome.well` in NGFF 0.5).
 *
 * A bioformats2raw root is followed to one of its series. A plate or a well is not followed
 * (which field of which well is a choice for the user): the error names the images to give.
 */
import * as zarr from "zarrita";
import type { Readable } from "../store/types.js";
import { CellMapError } from "../errors.js";

/** What kind of container a group is, from its attributes (null: not one). */
export type ContainerKind = "bioformats2raw" | "plate" | "well";

/** One image (or well) a container holds: its path below the container, and a name when known. */
export interface ContainedImage {
  path: string;
  name?: string;
}

type Attrs = Record<string, unknown>;

function record(v: unknown): Attrs | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Attrs) : null;
}

/** The container kind of a group's attributes (v2 `.zattrs`, or v3 `attributes` with `ome`). */
export function containerKind(attrs: unknown): ContainerKind | null {
  const a = record(attrs);
  if (!a) return null;
  const ome = record(a.ome);
  if (a.multiscales !== undefined || ome?.multiscales !== undefined) return null;
  if (a["bioformats2raw.layout"] !== undefined || ome?.["bioformats2raw.layout"] !== undefined) return "bioformats2raw";
  if (record(a.plate) || record(ome?.plate)) return "plate";
  if (record(a.well) || record(ome?.well)) return "well";
  return null;
}

/** The paths a plate (its wells) or a well (its images) lists. */
export function listedChildren(attrs: unknown, kind: "plate" | "well"): ContainedImage[] {
  const a = record(attrs);
  const node = record(a?.[kind]) ?? record(record(a?.ome)?.[kind]);
  const list = kind === "plate" ? node?.wells : node?.images;
  if (!Array.isArray(list)) return [];
  return list.flatMap((e) => {
    const p = record(e)?.path;
    return typeof p === "string" && p !== "" ? [{ path: p }] : [];
  });
}

/** The attributes of the group at `loc` (zarr v3, else v2), or null when there is none. */
async function groupAttrs(loc: zarr.Location<Readable>, signal?: AbortSignal): Promise<Attrs | null> {
  for (const open of [zarr.open.v3, zarr.open.v2]) {
    try {
      return (await open(loc, { kind: "group", signal })).attrs as Attrs;
    } catch {
      // not this format (or nothing here)
    }
  }
  return null;
}

async function text(loc: zarr.Location<Readable>, signal?: AbortSignal): Promise<string | null> {
  try {
    const bytes = await loc.store.get(loc.path, { signal } as never);
    return bytes ? new TextDecoder().decode(bytes) : null;
  } catch {
    return null;
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** `Image` names of an OME-XML document by their series number (`ID="Image:N"`, else document order). */
export function omeImageNames(xml: string): Map<number, string> {
  const out = new Map<number, string>();
  let order = 0;
  for (const m of xml.matchAll(/<(?:\w+:)?Image\b([^>]*)>/g)) {
    const attrs = m[1];
    const id = /\bID\s*=\s*"Image:(\d+)"/.exec(attrs);
    const name = /\bName\s*=\s*"([^"]*)"/.exec(attrs);
    const k = id ? Number(id[1]) : order;
    order++;
    if (name)
      out.set(
        k,
        name[1].replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]),
      );
  }
  return out;
}

/**
 * The series of a bioformats2raw root at `loc`: the paths the `OME` group's `series` attribute
 * lists, else the groups `0`, `1`, … that exist (up to the first missing one), with their names
 * from `OME/METADATA.ome.xml` where it has them.
 */
export async function bioformats2rawSeries(loc: zarr.Location<Readable>, signal?: AbortSignal): Promise<ContainedImage[]> {
  const omeAttrs = await groupAttrs(loc.resolve("OME"), signal);
  const listed = Array.isArray(omeAttrs?.series) ? (omeAttrs!.series as unknown[]).filter((p): p is string => typeof p === "string" && p !== "") : null;
  let paths: string[];
  if (listed) paths = listed;
  else {
    paths = [];
    for (let i = 0; i < 100_000; i++) {
      if (!(await groupAttrs(loc.resolve(String(i)), signal))) break;
      paths.push(String(i));
    }
  }
  const xml = await text(loc.resolve("OME/METADATA.ome.xml"), signal);
  const names = xml ? omeImageNames(xml) : new Map<number, string>();
  return paths.map((path, i) => {
    const name = names.get(/^\d+$/.test(path) ? Number(path) : i);
    return name !== undefined ? { path, name } : { path };
  });
}

/** `0 ("name")` / `0`: a series as messages name it. */
export function seriesLabel(s: ContainedImage): string {
  return s.name ? `${s.path} ("${s.name}")` : s.path;
}

/**
 * The error for a plate or well given where an image is expected: it names the images (or
 * wells) to give instead.
 */
export function containerError(kind: "plate" | "well", children: ContainedImage[], where: string): CellMapError {
  const shown =
    children
      .slice(0, 8)
      .map((c) => c.path)
      .join(", ") + (children.length > 8 ? `, … (${children.length} in all)` : "");
  const message =
    kind === "plate"
      ? `this is an OME-NGFF plate, not an image: give one field of a well, e.g. ${children[0] ? `${where}/${children[0].path}/0` : `${where}/<row>/<column>/<field>`} (wells: ${shown || "none listed"})`
      : `this is an OME-NGFF well, not an image: give one of its fields, e.g. ${children[0] ? `${where}/${children[0].path}` : `${where}/<field>`} (fields: ${shown || "none listed"})`;
  return new CellMapError("UNSUPPORTED", message, where);
}
