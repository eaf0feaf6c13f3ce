/**
 * Builders for OME-NGFF multiscales metadata (0.4 on Zarr v2, 0.5 on Zarr v3) and for Zarr
 * group nodes, written through the store layer (local directories or `s3://`).
 */
import { CellMapError } from "../errors.js";
import { childKey, groupDocuments, openTarget, putJson, type TargetOptions, type WriteTarget } from "../zarr/write/index.js";
import { outputLocation, relativeLocation } from "../store/writable.js";

/** An NGFF axis as written to metadata. */
export interface NgffAxis {
  name: string;
  type?: string;
  unit?: string;
}

/** One dataset (pyramid level): per-axis scale and optional translation (world = translation + index * scale). */
interface NgffLevel {
  path: string;
  scale: number[];
  translation?: number[];
}

/** A coordinate transformation as written to NGFF metadata. */
export type NgffTransform = { type: "scale"; scale: number[] } | { type: "translation"; translation: number[] } | { type: "identity" };

/** Input of {@link multiscalesAttrs}. */
export interface MultiscalesInput {
  version: "0.4" | "0.5";
  name?: string;
  axes: NgffAxis[];
  levels: NgffLevel[];
  /** Multiscale-level `coordinateTransformations`, applied after each dataset's own. */
  topLevelTransforms?: NgffTransform[];
  /** Optional `type` (e.g. "mean") and `metadata` fields of the multiscale. */
  type?: string;
  metadata?: Record<string, unknown>;
}

/** Default axes: z, y, x in nanometres. */
export const ZYX_NM: NgffAxis[] = [
  { name: "z", type: "space", unit: "nanometer" },
  { name: "y", type: "space", unit: "nanometer" },
  { name: "x", type: "space", unit: "nanometer" },
];

/**
 * Builds the attributes holding a multiscales image: for 0.4 the v2 `.zattrs` object
 * `{multiscales: [{version: "0.4", ...}]}`, for 0.5 the v3 `attributes`
 * `{ome: {version: "0.5", multiscales: [...]}}`.
 */
export function multiscalesAttrs(input: MultiscalesInput): Record<string, unknown> {
  const where = `multiscales ${input.name ?? ""}`.trim();
  if (input.version !== "0.4" && input.version !== "0.5") {
    throw new CellMapError("UNSUPPORTED", `NGFF version must be "0.4" or "0.5", got ${String(input.version)}`, where);
  }
  if (input.levels.length === 0) throw new CellMapError("INVALID_ARGUMENT", "at least one level is needed", where);
  const nAxes = input.axes.length;
  const datasets = input.levels.map((l, i) => {
    if (l.scale.length !== nAxes || (l.translation && l.translation.length !== nAxes)) {
      throw new CellMapError("INVALID_ARGUMENT", `level ${i} ('${l.path}') scale/translation must have ${nAxes} entries (one per axis)`, where);
    }
    const transforms: NgffTransform[] = [{ type: "scale", scale: [...l.scale] }];
    if (l.translation) transforms.push({ type: "translation", translation: [...l.translation] });
    return { path: l.path, coordinateTransformations: transforms };
  });
  const ms: Record<string, unknown> = {};
  if (input.version === "0.4") ms.version = "0.4";
  if (input.name !== undefined) ms.name = input.name;
  ms.axes = input.axes.map((a) => ({ ...a }));
  ms.datasets = datasets;
  if (input.topLevelTransforms) ms.coordinateTransformations = input.topLevelTransforms.map((t) => ({ ...t }));
  if (input.type !== undefined) ms.type = input.type;
  if (input.metadata !== undefined) ms.metadata = input.metadata;
  return input.version === "0.4" ? { multiscales: [ms] } : { ome: { version: "0.5", multiscales: [ms] } };
}

/**
 * Writes a group node at `target` (a local directory, an `s3://` URL, or a store location):
 * `.zgroup` (+ `.zattrs` when `attrs` is non-empty) for v2, a group `zarr.json` for v3.
 * Existing group metadata is replaced.
 */
export async function writeGroup(target: WriteTarget, format: 2 | 3, attrs: Record<string, unknown> = {}, opts: TargetOptions = {}): Promise<void> {
  const node = openTarget(target, opts);
  if (format !== 2 && format !== 3) throw new CellMapError("INVALID_ARGUMENT", `zarr format must be 2 or 3, got ${String(format)}`, node.location);
  for (const [name, doc] of Object.entries(groupDocuments(format, attrs))) await putJson(node.store, childKey(node.path, name), doc);
}

/**
 * Writes an attribute-less group node in every directory from `root` down to (not including)
 * `dir`, as Python writers do for nested hierarchies. Directories that already hold zarr
 * metadata are left alone. `dir` must lie inside `root`; both are local paths or both `s3://`
 * URLs.
 */
export async function writeParentGroups(root: string, dir: string, format: 2 | 3, opts: TargetOptions = {}): Promise<void> {
  const rel = relativeLocation(outputLocation(root, root), outputLocation(dir, dir));
  if (rel === null) throw new CellMapError("INVALID_ARGUMENT", `'${dir}' is not inside root '${root}'`, dir);
  const node = openTarget(root, opts);
  const parts = rel === "" ? [] : rel.split("/");
  const meta = format === 2 ? ".zgroup" : "zarr.json";
  let cur = node.path;
  for (let i = 0; i < parts.length; i++) {
    if ((await node.store.get(childKey(cur, meta))) === undefined) await writeGroup({ store: node.store, path: cur, location: node.location }, format);
    cur = childKey(cur, parts[i]);
  }
}
