/**
 * Zod schemas for the `multiscales` part of OME-NGFF 0.4 and 0.5 image metadata, plus the rules
 * the NGFF spec states in prose (axis order, transformation order, vector lengths) that JSON
 * schema cannot express. Validation failures become `CellMapError`s naming the offending field.
 *
 * Only `multiscales` is validated: `omero` (display settings), `labels`, `plate` and `well`
 * metadata do not affect geometry, and rejecting an image for them would make readable data
 * unreadable.
 */
import { z } from "zod";
import { CellMapError, type CellMapErrorCode } from "../errors.js";

/** One entry of `axes`. Unknown extra keys are kept (NGFF allows them). */
export const axisSchema = z.looseObject({
  name: z.string(),
  type: z.string().optional(),
  unit: z.string().optional(),
});

/**
 * One coordinate transformation. The shape is loose here (type + optional vectors); which types,
 * in which order and with which lengths is checked by {@link checkTransforms}, which gives better
 * messages than a discriminated union.
 */
export const transformSchema = z.looseObject({
  type: z.string(),
  scale: z.array(z.number()).optional(),
  translation: z.array(z.number()).optional(),
  path: z.string().optional(),
});

/** One pyramid level. */
export const datasetSchema = z.looseObject({
  path: z.string(),
  coordinateTransformations: z.array(transformSchema),
});

const multiscaleShape = z.looseObject({
  // `null` names occur in the wild; a name never affects geometry, so tolerate it.
  name: z.string().nullable().optional(),
  version: z.string().optional(),
  axes: z.array(axisSchema),
  datasets: z.array(datasetSchema).min(1),
  coordinateTransformations: z.array(transformSchema).optional(),
});

export type AxisMetadata = z.infer<typeof axisSchema>;
export type TransformMetadata = z.infer<typeof transformSchema>;
export type DatasetMetadata = z.infer<typeof datasetSchema>;
export type MultiscaleMetadata = z.infer<typeof multiscaleShape>;

/** Issue params marking a well-formed feature the library does not implement (→ `UNSUPPORTED`). */
const UNSUPPORTED = { unsupported: true } as const;

/**
 * Whether an axis is spatial: `type: "space"`, or no type and the name `x`, `y` or `z`
 * (older writers omit the type on spatial axes).
 */
export function isSpatialAxis(axis: { name: string; type?: string }): boolean {
  return axis.type === "space" || (axis.type === undefined && /^[xyz]$/.test(axis.name));
}

/** Position class of an axis in the mandated order: time, then channel/custom, then space. */
function axisRank(axis: AxisMetadata): 0 | 1 | 2 {
  if (isSpatialAxis(axis)) return 2;
  return axis.type === "time" ? 0 : 1;
}

const RANK_NAMES = ["time", "channel/custom", "space"] as const;

function checkAxes(axes: AxisMetadata[], ctx: z.RefinementCtx): void {
  const n = axes.length;
  if (n < 2 || n > 5) ctx.addIssue({ code: "custom", path: ["axes"], message: `expected 2 to 5 axes, got ${n}` });
  const seen = new Map<string, number>();
  axes.forEach((axis, i) => {
    const first = seen.get(axis.name);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: ["axes", i, "name"], message: `duplicate axis name "${axis.name}" (also axes[${first}])` });
    } else seen.set(axis.name, i);
  });
  const ranks = axes.map(axisRank);
  const count = (r: number) => ranks.filter((x) => x === r).length;
  const describe = axes.map((a) => `${a.name}:${a.type ?? "untyped"}`).join(", ");
  if (n > 0 && (count(2) < 2 || count(2) > 3)) {
    ctx.addIssue({ code: "custom", path: ["axes"], message: `expected 2 or 3 space axes, got ${count(2)} (${describe})` });
  }
  if (count(0) > 1) ctx.addIssue({ code: "custom", path: ["axes"], message: `at most one time axis is allowed, got ${count(0)} (${describe})` });
  if (count(1) > 1) {
    ctx.addIssue({ code: "custom", path: ["axes"], message: `at most one channel or custom axis is allowed, got ${count(1)} (${describe})` });
  }
  const bad = ranks.findIndex((r, i) => i > 0 && r < ranks[i - 1]);
  if (bad > 0) {
    ctx.addIssue({
      code: "custom",
      path: ["axes", bad],
      message: `axis "${axes[bad].name}" (${RANK_NAMES[ranks[bad]]}) is out of order: axes must be time first, then channel or custom, then space (${describe})`,
    });
  }
}

/**
 * Checks a `coordinateTransformations` list: exactly one `scale` first, at most one `translation`
 * after it, each with one number per axis. The multiscale-level list may also hold `identity`
 * entries (which carry no vector) and then need not contain a scale at all.
 */
function checkTransforms(list: TransformMetadata[], nAxes: number, base: (string | number)[], ctx: z.RefinementCtx, topLevel: boolean): void {
  if (list.length === 0) {
    ctx.addIssue({ code: "custom", path: base, message: "expected at least one transformation (a scale)" });
    return;
  }
  let scales = 0;
  let translations = 0;
  list.forEach((t, i) => {
    const at = [...base, i];
    if (t.type === "identity") {
      if (!topLevel) ctx.addIssue({ code: "custom", path: [...at, "type"], message: `"identity" is not allowed here (expected scale, then optional translation)` });
      return;
    }
    if (t.type !== "scale" && t.type !== "translation") {
      ctx.addIssue({ code: "custom", path: [...at, "type"], message: `unsupported transformation type "${t.type}" (expected scale or translation)` });
      return;
    }
    const vector = t[t.type];
    if (vector === undefined) {
      if (t.path !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [...at, "path"],
          message: `${t.type} stored in a binary file ("path") is not supported; write the values inline`,
          params: UNSUPPORTED,
        });
      } else {
        ctx.addIssue({ code: "custom", path: [...at, t.type], message: `missing (a ${t.type} transformation needs a "${t.type}" array)` });
      }
    } else if (vector.length !== nAxes) {
      ctx.addIssue({ code: "custom", path: [...at, t.type], message: `expected ${nAxes} number${nAxes === 1 ? "" : "s"}, got ${vector.length}` });
    }
    if (t.type === "scale") {
      scales++;
      if (scales > 1) ctx.addIssue({ code: "custom", path: at, message: "more than one scale transformation" });
      else if (translations > 0) ctx.addIssue({ code: "custom", path: at, message: "the scale must come before the translation" });
    } else {
      translations++;
      if (translations > 1) ctx.addIssue({ code: "custom", path: at, message: "more than one translation transformation" });
    }
  });
  if (scales === 0 && (!topLevel || translations > 0)) {
    ctx.addIssue({ code: "custom", path: base, message: "expected exactly one scale transformation, found none" });
  }
}

function checkMultiscale(ms: MultiscaleMetadata, ctx: z.RefinementCtx): void {
  checkAxes(ms.axes, ctx);
  const n = ms.axes.length;
  ms.datasets.forEach((d, i) => {
    if (d.path === "") ctx.addIssue({ code: "custom", path: ["datasets", i, "path"], message: "must be a non-empty array path" });
    checkTransforms(d.coordinateTransformations, n, ["datasets", i, "coordinateTransformations"], ctx, false);
  });
  if (ms.coordinateTransformations !== undefined) {
    checkTransforms(ms.coordinateTransformations, n, ["coordinateTransformations"], ctx, true);
  }
}

/**
 * The `major.minor` release a version string belongs to: `"0.4"` for `0.4`, `0.4.1`,
 * `0.4-dev-spatialdata` or `0.4rc1`; `undefined` when the string does not start with one. Writers
 * such as SpatialData tag pre-release or vendor variants this way while writing the base layout,
 * so the library reads them by their base version and notes the difference.
 */
export function baseVersion(version: string): string | undefined {
  return /^(\d+\.\d+)(?!\d)/.exec(version.trim())?.[1];
}

/** The NGFF releases this library reads (each also in its variants, by {@link baseVersion}). */
const SUPPORTED_NGFF_VERSIONS: readonly string[] = ["0.4", "0.5"];

/** Whether `version` belongs to a release this library reads (`0.4`, `0.4-dev-spatialdata`, `0.5-rc2`, …). */
function isSupportedVersion(version: string): boolean {
  const base = baseVersion(version);
  return base !== undefined && SUPPORTED_NGFF_VERSIONS.includes(base);
}

/**
 * Refuses a document whose declared NGFF version belongs to no release the library reads, before
 * the schema runs: NGFF 0.1–0.3 have no `axes` objects or `coordinateTransformations`, and 0.6
 * development documents (RFC-5) describe geometry with `coordinateSystems`, so validating them
 * against the 0.4/0.5 schema only yields misleading "missing" fields. The version is looked up
 * where the layout keeps it (`ome.version`; else `version` of every `multiscales` entry); a
 * missing or non-string version is left to the schema, and so is a known version in the other
 * layout (0.5 under `multiscales`, which the schema refuses with a hint).
 *
 * @throws CellMapError `UNSUPPORTED` naming the field, the version found, the supported ones, and
 *   how to read a level as a bare array with a voxel size
 */
function checkDeclaredVersion(attrs: Record<string, unknown>, path: string): void {
  let found: { field: string; version: string; entry: unknown } | undefined;
  if (isRecord(attrs.ome) && "multiscales" in attrs.ome) {
    const { version, multiscales } = attrs.ome;
    if (typeof version === "string" && !isSupportedVersion(version)) {
      found = { field: "ome.version", version, entry: Array.isArray(multiscales) ? multiscales[0] : undefined };
    }
  } else if (Array.isArray(attrs.multiscales)) {
    for (const [i, ms] of (attrs.multiscales as unknown[]).entries()) {
      const version = isRecord(ms) ? ms.version : undefined;
      if (typeof version === "string" && !isSupportedVersion(version)) {
        found = { field: `multiscales[${i}].version`, version, entry: ms };
        break;
      }
    }
  }
  if (!found) return;
  const datasets = isRecord(found.entry) && Array.isArray(found.entry.datasets) ? found.entry.datasets : [];
  const first: unknown = datasets[0];
  const level = isRecord(first) && typeof first.path === "string" && first.path !== "" ? first.path : "<level path>";
  const array = `${path.replace(/\/+$/, "")}/${level}`;
  throw new CellMapError(
    "UNSUPPORTED",
    `unsupported OME-NGFF metadata: ${found.field}: unsupported NGFF version "${found.version}" ` +
      `(this library reads ${SUPPORTED_NGFF_VERSIONS.join(" and ")}, and their variants such as 0.4-dev-spatialdata or 0.5-rc2); ` +
      `to read a level anyway, open its array as a bare array with a voxel size: ` +
      `CellMapImage.open({ path: ${JSON.stringify(array)}, voxelSize: [z, y, x] }), or cellmap-data info ${array} --voxel-size z,y,x`,
    path,
  );
}

/** A note for a version string that is not exactly its base version, or none. */
function versionNote(version: string | undefined, base: string): string[] {
  return version !== undefined && version !== base ? [`NGFF version "${version}" read as ${base}`] : [];
}

/** A multiscale entry of an NGFF 0.4 document (`version` optional but, if present, `0.4`). */
export const multiscaleSchema04 = multiscaleShape.superRefine((ms, ctx) => {
  if (ms.version !== undefined && baseVersion(ms.version) !== "0.4") {
    const hint = baseVersion(ms.version) === "0.5" ? `; NGFF 0.5 metadata belongs under "ome"` : "";
    ctx.addIssue({ code: "custom", path: ["version"], message: `unsupported NGFF version "${ms.version}" (expected "0.4"${hint})`, params: UNSUPPORTED });
  }
  checkMultiscale(ms, ctx);
});

/** A multiscale entry of an NGFF 0.5 document (the version lives in `ome.version`). */
export const multiscaleSchema05 = multiscaleShape.superRefine(checkMultiscale);

/** NGFF 0.4 group attributes (`.zattrs`): `{ multiscales: [...] }`. */
export const imageSchema04 = z.looseObject({ multiscales: z.array(multiscaleSchema04).min(1) });

/** NGFF 0.5 group attributes (`zarr.json` `attributes`): `{ ome: { version: "0.5", multiscales: [...] } }`. */
export const imageSchema05 = z.looseObject({
  ome: z.looseObject({ version: z.string(), multiscales: z.array(multiscaleSchema05).min(1) }).superRefine((ome, ctx) => {
    if (baseVersion(ome.version) !== "0.5") {
      ctx.addIssue({ code: "custom", path: ["version"], message: `unsupported NGFF version "${ome.version}" (expected "0.5")`, params: UNSUPPORTED });
    }
  }),
});

/** The validated multiscales of a group, whichever NGFF layout they came in. */
export interface NgffImageMetadata {
  version: "0.4" | "0.5";
  /** Non-fatal observations about the metadata (a version read by its base), for `problems`. */
  notes: string[];
  /** Field path of the `multiscales` array inside the attributes (for messages). */
  field: "multiscales" | "ome.multiscales";
  multiscales: MultiscaleMetadata[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function describeValue(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "array";
  return typeof x;
}

/** Error map for parsing: short, field-oriented messages (the field path is prepended later). */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === "invalid_type") {
    return iss.input === undefined ? `missing (expected ${iss.expected})` : `expected ${iss.expected}, got ${describeValue(iss.input)}`;
  }
  if (iss.code === "too_small" && iss.origin === "array") {
    return `expected at least ${String(iss.minimum)} ${iss.minimum === 1 ? "entry" : "entries"}, got ${Array.isArray(iss.input) ? iss.input.length : "?"}`;
  }
  return undefined;
};

/** Formats a zod issue path as `multiscales[0].datasets[1].path`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$@][\w$@-]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || "(root)";
}

/**
 * Turns a zod error into one `CellMapError` listing up to five issues as `field.path: problem`.
 * The code is `UNSUPPORTED` only when every issue is an unsupported-but-valid feature.
 */
export function zodToCellMapError(err: z.ZodError, path: string): CellMapError {
  const issues = err.issues;
  const unsupported = issues.every((i) => i.code === "custom" && (i.params as { unsupported?: boolean } | undefined)?.unsupported);
  const code: CellMapErrorCode = unsupported ? "UNSUPPORTED" : "INVALID_METADATA";
  const shown = issues.slice(0, 5).map((i) => `${formatFieldPath(i.path)}: ${i.message}`);
  if (issues.length > 5) shown.push(`(+${issues.length - 5} more)`);
  const what = unsupported ? "unsupported OME-NGFF metadata" : "invalid OME-NGFF metadata";
  return new CellMapError(code, `${what}: ${shown.join("; ")}`, path, { cause: err });
}

/**
 * Validates the `multiscales` of group attributes. NGFF 0.5 (`ome.multiscales`, version in
 * `ome.version`) is used when present, else NGFF 0.4 (`multiscales`, version in each entry,
 * missing version read as 0.4). Both layouts are accepted whatever the zarr format, since the
 * geometry means the same either way. A declared version of another release (0.1–0.3, 0.6 …) is
 * refused before the schema runs, saying how to read a level as a bare array instead.
 *
 * @param attrs group attributes (`.zattrs` for zarr v2, `zarr.json` `attributes` for v3)
 * @param path document path, used in error messages
 * @throws CellMapError `INVALID_METADATA` (or `UNSUPPORTED` for e.g. NGFF 0.2, 0.3, 0.6.dev1) naming the field
 */
export function validateImageMetadata(attrs: unknown, path: string): NgffImageMetadata {
  if (!isRecord(attrs)) {
    throw new CellMapError("INVALID_METADATA", `group attributes must be a JSON object, got ${describeValue(attrs)}`, path);
  }
  checkDeclaredVersion(attrs, path);
  if (isRecord(attrs.ome) && "multiscales" in attrs.ome) {
    const r = imageSchema05.safeParse(attrs, { error: errorMap });
    if (!r.success) throw zodToCellMapError(r.error, path);
    return { version: "0.5", notes: versionNote(r.data.ome.version, "0.5"), field: "ome.multiscales", multiscales: r.data.ome.multiscales };
  }
  if ("multiscales" in attrs) {
    const r = imageSchema04.safeParse(attrs, { error: errorMap });
    if (!r.success) throw zodToCellMapError(r.error, path);
    const versions = [...new Set(r.data.multiscales.map((m) => m.version))];
    return { version: "0.4", notes: versions.flatMap((v) => versionNote(v, "0.4")), field: "multiscales", multiscales: r.data.multiscales };
  }
  throw new CellMapError("INVALID_METADATA", `no multiscales: the group attributes have neither "multiscales" (NGFF 0.4) nor "ome.multiscales" (NGFF 0.5)`, path);
}
