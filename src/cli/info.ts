/** `cellmap-data info`: describe a multiscale image (levels, geometry, chunks, codecs, problems). */
import * as zarr from "zarrita";
import { CellMapError } from "../errors.js";
import type { Multiscale } from "../ome/model.js";
import { readMultiscale } from "../ome/read.js";
import type { HttpStoreOptions } from "../store/http.js";
import { openStore } from "../store/open.js";
import { openZarrArray } from "../zarr/array.js";

/** One level as reported by `info`. */
export interface LevelInfo {
  path: string;
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
  version: string;
  axes: Multiscale["axes"];
  spatialAxes: string[];
  levels: LevelInfo[];
  problems: string[];
}

/**
 * Reads the metadata of every level (no voxel reads) and collects problems instead of failing on
 * them. `http` configures remote reads (timeouts, retries).
 */
export async function describeImage(location: string, signal?: AbortSignal, http?: HttpStoreOptions): Promise<ImageInfo> {
  const { store, location: loc } = openStore(location, http);
  const root = zarr.root(store);
  const ms = await readMultiscale(root, "", { id: loc, signal });
  const problems: string[] = [...ms.notes];
  const levels: LevelInfo[] = [];
  for (const l of ms.levels) {
    try {
      const a = await openZarrArray(root, l.path, `${loc}/${l.path}`, signal);
      levels.push({ path: l.path, scale: l.scale, translation: l.translation, shape: a.shape, chunks: a.chunks, dtype: a.dtype, codecs: a.codecs, zarrFormat: a.zarrFormat });
      if (a.shape.length !== ms.axes.length) problems.push(`${l.path}: array has ${a.shape.length} dims, metadata declares ${ms.axes.length} axes`);
    } catch (err) {
      if (err instanceof CellMapError && err.code === "ABORTED") throw err;
      problems.push(`${l.path}: ${err instanceof CellMapError ? err.message : String(err)}`);
    }
  }
  for (let i = 1; i < levels.length; i++) {
    const a = levels[i - 1], b = levels[i];
    // NGFF convention for mean-downsampling: translation_b = translation_a + (scale_b - scale_a) / 2
    b.translation.forEach((t, d) => {
      const expect = a.translation[d] + (b.scale[d] - a.scale[d]) / 2;
      if (Math.abs(t - expect) > 1e-6 * Math.max(1, Math.abs(expect)) && Math.abs(t - a.translation[d]) > 1e-9) {
        problems.push(`${b.path}: translation ${t} on ${ms.spatialAxes[d]} is neither ${expect} (centred downsampling) nor ${a.translation[d]}`);
      }
    });
  }
  return { location: loc, version: ms.version, axes: ms.axes, spatialAxes: ms.spatialAxes, levels, problems };
}

/** Human-readable rendering of {@link ImageInfo}. */
export function formatImageInfo(info: ImageInfo): string {
  const lines = [
    `${info.location}`,
    `  OME-NGFF ${info.version}, axes ${info.axes.map((a) => `${a.name}${a.type ? `:${a.type}` : ""}${a.unit ? `[${a.unit}]` : ""}`).join(" ")}`,
    `  spatial axes (nm): ${info.spatialAxes.join("")}`,
  ];
  for (const l of info.levels) {
    lines.push(
      `  ${l.path.padEnd(4)} voxel ${l.scale.map((v) => +v.toFixed(4)).join("x")} nm  origin [${l.translation.map((v) => +v.toFixed(3)).join(", ")}] nm  shape [${l.shape}]  chunks [${l.chunks}]  ${l.dtype}  zarr v${l.zarrFormat}  ${l.codecs.join(" > ")}`,
    );
  }
  lines.push(info.problems.length ? `  problems:\n${info.problems.map((p) => `    - ${p}`).join("\n")}` : "  problems: none");
  return lines.join("\n");
}
