/**
 * Validated NGFF multiscales → the plain {@link Multiscale} model: spatial axes only, voxel sizes
 * and voxel-0 positions in nanometres, multiscale-level transforms folded into every level.
 */
import { CellMapError } from "../errors.js";
import type { Axis, Level, Multiscale } from "./model.js";
import { isSpatialAxis, validateImageMetadata, type AxisMetadata, type TransformMetadata } from "./schema.js";
import { isSpatialUnit, unitToNm } from "./units.js";

/** Options of {@link parseMultiscales}. */
export interface ParseMultiscalesOptions {
  /** Document path (group location), used in error messages. */
  path: string;
  /** Zarr format of the group the attributes came from. */
  zarrFormat: 2 | 3;
  /** Which entry of `multiscales` to use (default 0, as CellMap does). */
  index?: number;
}

/**
 * Removes binary floating-point noise from unit conversion and composition (0.008 µm → 8 nm, not
 * 8.000000000000002), so that exact comparisons of voxel sizes (level choice) behave. Twelve
 * significant digits keep far more precision than any voxel size or offset needs.
 */
function clean(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(12));
}

/** Scale and translation vectors (all axes) of a validated transform list; identity is skipped. */
function vectors(list: readonly TransformMetadata[] | undefined, n: number): { scale: number[]; translation: number[] } {
  const scale = list?.find((t) => t.type === "scale")?.scale ?? new Array<number>(n).fill(1);
  const translation = list?.find((t) => t.type === "translation")?.translation ?? new Array<number>(n).fill(0);
  return { scale, translation };
}

/**
 * Parses OME-NGFF multiscales metadata into the plain model.
 *
 * `attrs` is the group's `.zattrs` object (zarr v2: `multiscales`, NGFF 0.4 or version-less 0.4-like
 * documents) or its `zarr.json` `attributes` (zarr v3: `ome.multiscales`, NGFF 0.5); either layout
 * is accepted with either format. Levels keep `datasets` order and are checked to be finest first
 * on every spatial axis. Per level and spatial axis, with the dataset's scale `s` and translation
 * `t` and the multiscale-level scale `S` and translation `T`:
 * `world(i) = S·(s·i + t) + T`, so `Level.scale = S·s` and `Level.translation = S·t + T`,
 * converted to nm with the axis unit. A spatial axis without a unit of length (none, blank, or one
 * such as `pixel`) is read in nm; `units` stands in for a missing `unit`; both are noted in
 * `Multiscale.notes`, as is 0.4 metadata on a Zarr v3 group.
 *
 * @throws CellMapError `INVALID_METADATA` naming `opts.path` and the offending field, `UNSUPPORTED`
 *   for unsupported versions or features, `INVALID_ARGUMENT` for an out-of-range `index`
 */
export function parseMultiscales(attrs: unknown, opts: ParseMultiscalesOptions): Multiscale {
  const { path, zarrFormat } = opts;
  const doc = validateImageMetadata(attrs, path);
  const index = opts.index ?? 0;
  if (!Number.isInteger(index) || index < 0 || index >= doc.multiscales.length) {
    throw new CellMapError("INVALID_ARGUMENT", `multiscale index ${index} is out of range (the document has ${doc.multiscales.length} multiscales)`, path);
  }
  const ms = doc.multiscales[index];
  const field = `${doc.field}[${index}]`;
  const n = ms.axes.length;

  const spatialDims = ms.axes.flatMap((a, d) => (isSpatialAxis(a) ? [d] : []));
  const spatialUnits = spatialDims.map((d) => spatialUnit(ms.axes[d]));
  const axes: Axis[] = ms.axes.map((a, d) => {
    const k = spatialDims.indexOf(d);
    const unit = k >= 0 ? spatialUnits[k].unit : a.unit;
    return { name: a.name, ...(a.type !== undefined && { type: a.type }), ...(unit !== undefined && { unit }) };
  });
  const toNm = spatialUnits.map((u) => unitToNm(u.unit, path));

  const top = vectors(ms.coordinateTransformations, n);
  const levels: Level[] = ms.datasets.map((ds, i) => {
    const own = vectors(ds.coordinateTransformations, n);
    const scale = spatialDims.map((d, k) => clean(toNm[k] * top.scale[d] * own.scale[d]));
    const translation = spatialDims.map((d, k) => clean(toNm[k] * (top.scale[d] * own.translation[d] + top.translation[d])));
    scale.forEach((s, k) => {
      if (!(s > 0)) {
        const composed = ms.coordinateTransformations ? " (after the multiscale-level scale)" : "";
        throw new CellMapError(
          "INVALID_METADATA",
          `invalid OME-NGFF metadata: ${field}.datasets[${i}].coordinateTransformations: voxel size on space axis "${ms.axes[spatialDims[k]].name}" must be positive, got ${s}${composed}`,
          path,
        );
      }
    });
    return { path: ds.path, index: i, scale, translation };
  });

  checkFinestFirst(
    levels,
    spatialDims.map((d) => ms.axes[d].name),
    field,
    path,
  );
  const layout =
    doc.field === "multiscales" && zarrFormat === 3
      ? [`NGFF 0.4 metadata ("multiscales" in the group attributes) on a Zarr v3 group, read as 0.4; the NGFF spec pairs 0.4 with Zarr v2 and 0.5 (under "ome") with Zarr v3`]
      : [];
  return {
    version: doc.version,
    notes: [...doc.notes, ...layout, ...spatialUnits.flatMap((u) => u.notes)],
    ...(typeof ms.name === "string" && { name: ms.name }),
    axes,
    spatialAxes: spatialDims.map((d) => ms.axes[d].name),
    spatialDims,
    levels,
    zarrFormat,
  };
}

/**
 * The unit a spatial axis's geometry is read in, and the notes that takes. A `unit` that is a
 * length is used as written; one that is not (`pixel`, as IDR writes; `second`) is read like a
 * missing unit, as nanometres. A missing `unit` falls back to `units` (a misspelling seen in
 * published data) when that is a length. The note texts for nanometres assumed all contain
 * "has no unit", which `CellMapImage.open` turns into one `CELLMAP_NO_UNIT` warning.
 */
function spatialUnit(axis: AxisMetadata): { unit: string | undefined; notes: string[] } {
  const { name } = axis;
  if (axis.unit !== undefined && axis.unit.trim() !== "") {
    if (isSpatialUnit(axis.unit)) return { unit: axis.unit, notes: [] };
    return { unit: undefined, notes: [`axis ${name} has no unit of length (unit "${axis.unit}"); assuming nanometer`] };
  }
  const misspelt = axis.units;
  if (typeof misspelt === "string" && misspelt.trim() !== "") {
    if (isSpatialUnit(misspelt)) {
      return { unit: misspelt, notes: [`axis ${name} has "units" instead of "unit"; reading "${misspelt}" as its unit`] };
    }
    return { unit: undefined, notes: [`axis ${name} has no unit of length ("units" instead of "unit", and "${misspelt}" is not a length); assuming nanometer`] };
  }
  return { unit: undefined, notes: [`axis ${name} has no unit; assuming nanometer`] };
}

/** Levels must not get finer along any spatial axis (equal sizes are allowed). */
function checkFinestFirst(levels: Level[], names: string[], field: string, path: string): void {
  for (let i = 1; i < levels.length; i++) {
    const prev = levels[i - 1];
    const cur = levels[i];
    const k = cur.scale.findIndex((s, a) => s < prev.scale[a]);
    if (k >= 0) {
      throw new CellMapError(
        "INVALID_METADATA",
        `invalid OME-NGFF metadata: ${field}.datasets: levels must be ordered finest first, but datasets[${i}] ("${cur.path}") has voxel size ${cur.scale[k]} nm on axis "${names[k]}", finer than datasets[${i - 1}] ("${prev.path}") with ${prev.scale[k]} nm`,
        path,
      );
    }
  }
}
