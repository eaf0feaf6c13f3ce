/** `cellmap-data info`: describe a multiscale image (levels, geometry, chunks, codecs, problems). */
import * as zarr from "zarrita";
import type { Readable } from "@zarrita/storage";
import { CellMapError } from "../errors.js";
import type { Multiscale } from "../ome/model.js";
import { bareArrayMultiscale, type BareArrayGeometry } from "../ome/bare.js";
import { readMultiscale } from "../ome/read.js";
import type { HttpStoreOptions } from "../store/http.js";
import { openStore } from "../store/open.js";
import { describeZarrArray, openZarrArray, type ZarrArrayDescription } from "../zarr/array.js";

/** One level as reported by `info`. */
interface LevelInfo {
  /** Array path inside the image (`""` for a bare array). */
  path: string;
  /** Voxel size (nm) per spatial axis; empty for a bare array described without a voxel size. */
  scale: number[];
  translation: number[];
  shape: number[];
  chunks: number[];
  dtype: string;
  codecs: string[];
  zarrFormat: 2 | 3;
}

/** The report of {@link describeImage}. */
export interface ImageInfo {
  location: string;
  /** `multiscale`: an OME-NGFF image group; `array`: a bare Zarr array (no multiscales). */
  kind: "multiscale" | "array";
  /** NGFF version the metadata was read as; `none` for a bare array. */
  version: string;
  axes: Multiscale["axes"];
  spatialAxes: string[];
  levels: LevelInfo[];
  problems: string[];
  /** A bioformats2raw root: its series (paths, OME-XML names) and the one described. */
  series?: { all: { path: string; name?: string }[]; chosen: number };
}

/**
 * Reads the metadata of every level (no voxel reads) and collects problems instead of failing on
 * them. `http` configures remote reads (timeouts, retries).
 */
export async function describeImage(location: string, signal?: AbortSignal, http?: HttpStoreOptions, bare?: BareArrayGeometry, series?: number): Promise<ImageInfo> {
  const { store, location: loc } = openStore(location, http);
  const root = zarr.root(store);
  if (bare) {
    const a = await describeZarrArray(root, "", loc, signal);
    return describeBareArray(loc, a, bareArrayMultiscale(a.shape.length, bare, a.zarrFormat, loc));
  }
  let ms: Multiscale;
  try {
    ms = await readMultiscale(root, "", { id: loc, signal, series });
  } catch (err) {
    if (!(err instanceof CellMapError && err.code === "NOT_FOUND")) throw err;
    let a: ZarrArrayDescription;
    try {
      a = await describeZarrArray(root, "", loc, signal);
    } catch (arrayErr) {
      // Nothing there at all: the group's "not found" says so. An array that cannot be described: why.
      throw arrayErr instanceof CellMapError && arrayErr.code === "NOT_FOUND" ? err : arrayErr;
    }
    return describeBareArray(loc, a);
  }
  return describeLevels(root, loc, ms, "multiscale", signal);
}

/**
 * The report of a bare array: its layout, the geometry `ms` gives it (from `--voxel-size`; none
 * without), and under *problems* the missing voxel size and whatever makes it unreadable.
 */
function describeBareArray(loc: string, a: ZarrArrayDescription, ms?: Multiscale): ImageInfo {
  const level = ms?.levels[0];
  return {
    location: loc,
    kind: "array",
    version: "none",
    axes: ms?.axes ?? [],
    spatialAxes: ms?.spatialAxes ?? [],
    levels: [
      { path: "", scale: level?.scale ?? [], translation: level?.translation ?? [], shape: a.shape, chunks: a.chunks, dtype: a.dtype, codecs: a.codecs, zarrFormat: a.zarrFormat },
    ],
    problems: [
      ...(ms ? ms.notes : ["bare array: no multiscales metadata, so no voxel size; give one (info --voxel-size, CellMapImage.open({ voxelSize })) to read it as an image"]),
      ...a.problems,
    ],
  };
}

async function describeLevels(root: zarr.Location<Readable>, loc: string, ms: Multiscale, kind: ImageInfo["kind"], signal?: AbortSignal): Promise<ImageInfo> {
  const problems: string[] = [...ms.notes];
  const levels: LevelInfo[] = [];
  for (const l of ms.levels) {
    try {
      const a = await openZarrArray(root, l.path, l.path ? `${loc}/${l.path}` : loc, signal);
      levels.push({ path: l.path, scale: l.scale, translation: l.translation, shape: a.shape, chunks: a.chunks, dtype: a.dtype, codecs: a.codecs, zarrFormat: a.zarrFormat });
      if (a.shape.length !== ms.axes.length) problems.push(`${l.path}: array has ${a.shape.length} dims, metadata declares ${ms.axes.length} axes`);
    } catch (err) {
      if (err instanceof CellMapError && err.code === "ABORTED") throw err;
      problems.push(`${l.path}: ${err instanceof CellMapError ? err.message : String(err)}`);
    }
  }
  for (let i = 1; i < levels.length; i++) {
    const a = levels[i - 1],
      b = levels[i];
    // NGFF convention for mean-downsampling: translation_b = translation_a + (scale_b - scale_a) / 2
    b.translation.forEach((t, d) => {
      const expect = a.translation[d] + (b.scale[d] - a.scale[d]) / 2;
      if (Math.abs(t - expect) > 1e-6 * Math.max(1, Math.abs(expect)) && Math.abs(t - a.translation[d]) > 1e-9) {
        problems.push(`${b.path}: translation ${t} on ${ms.spatialAxes[d]} is neither ${expect} (centred downsampling) nor ${a.translation[d]}`);
      }
    });
  }
  return { location: loc, kind, version: ms.version, axes: ms.axes, spatialAxes: ms.spatialAxes, levels, problems, ...(ms.series && { series: ms.series }) };
}

/** Human-readable rendering of {@link ImageInfo}. */
export function formatImageInfo(info: ImageInfo): string {
  const axes = info.axes.map((a) => `${a.name}${a.type ? `:${a.type}` : ""}${a.unit ? `[${a.unit}]` : ""}`).join(" ");
  const head = info.kind === "array" ? `  bare zarr array (no multiscales)${axes ? `, axes ${axes}` : ""}` : `  OME-NGFF ${info.version}, axes ${axes}`;
  const lines = [`${info.location}`, head];
  if (info.series) {
    lines.push(`  bioformats2raw layout, ${info.series.all.length} series (this is ${info.series.all[info.series.chosen].path}; --series N for another):`);
    info.series.all.forEach((s, i) => lines.push(`    ${i === info.series!.chosen ? "*" : " "} ${s.path}${s.name ? `  "${s.name}"` : ""}`));
  }
  if (info.spatialAxes.length) lines.push(`  spatial axes (nm): ${info.spatialAxes.join("")}`);
  for (const l of info.levels) {
    const voxel = l.scale.length
      ? `voxel ${l.scale.map((v) => +v.toFixed(4)).join("x")} nm  origin [${l.translation.map((v) => +v.toFixed(3)).join(", ")}] nm`
      : "voxel size unknown";
    lines.push(`  ${(l.path || ".").padEnd(4)} ${voxel}  shape [${l.shape}]  chunks [${l.chunks}]  ${l.dtype}  zarr v${l.zarrFormat}  ${l.codecs.join(" > ")}`);
  }
  lines.push(info.problems.length ? `  problems:\n${info.problems.map((p) => `    - ${p}`).join("\n")}` : "  problems: none");
  return lines.join("\n");
}
