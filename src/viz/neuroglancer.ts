/**
 * Neuroglancer state and link for looking at a sample: the raw image and label layers, centred
 * on a world position. Neuroglancer reads OME-Zarr directly (`zarr2://` / `zarr3://` sources
 * over http(s)); a hosted Neuroglancer cannot open local files, so the command line serves them
 * (`cellmap-data neuroglancer --serve`, see `src/cli/neuroglancer.ts`).
 *
 * Coordinate space ({@link neuroglancerView}): the global dimensions are the image's *spatial*
 * axes only, named as in the metadata, in storage order (a `c,y,x` image gives `y, x`: Neuroglancer
 * turns a channel axis into the layer-local dimension `c'`, so it never appears in the global
 * space, and a 2-D image needs no `z`). Axes with a unit are declared in nanometres
 * (`[1e-9, "m"]`, the library's world unit, so `position` is in nm); axes without a unit are
 * unitless (`[1, ""]`, as Neuroglancer reads them), with the same numbers. `displayDimensions`
 * puts x across and y down in the xy panel whatever the storage order. Neuroglancer shifts OME
 * voxels by half a voxel so that world coordinates name voxel centres, as in this library, so a
 * world position from the library is used unchanged.
 */
import { CellMapError } from "../errors.js";

/** One layer of the state. */
export interface NeuroglancerLayer {
  name: string;
  /** Location of the multiscale group (URL, or a local path that will be shown as-is). */
  path: string;
  kind: "image" | "segmentation";
  /** Zarr format of this layer (default: the state's). */
  zarrFormat?: 2 | 3;
}

/** The global coordinate space: spatial axis names and whether each is in nm or unitless. */
export interface NeuroglancerSpace {
  axes: string[];
  /** Per axis: `"nm"` (declared `[1e-9, "m"]`) or `""` (unitless, `[1, ""]`). Default all nm. */
  units?: Array<"nm" | "">;
}

/** The geometry {@link neuroglancerView} needs; `cellmap-data info`'s `ImageInfo` has it. */
export interface ImageGeometry {
  axes: ReadonlyArray<{ name: string; type?: string; unit?: string }>;
  spatialAxes: readonly string[];
  levels: ReadonlyArray<{ shape: number[]; scale: number[]; translation: number[]; zarrFormat: 2 | 3 }>;
}

/** Where to look: coordinate space, position, zoom and format of an image. */
export interface NeuroglancerView {
  space: Required<NeuroglancerSpace>;
  /** Position per space axis (nm, or the axis's own numbers when unitless). */
  center: number[];
  /** In-plane voxel size of level 0: the zoom giving one voxel per screen pixel. */
  voxelNm: number;
  zarrFormat: 2 | 3;
}

/** Source URL Neuroglancer understands for an OME-Zarr group. */
function neuroglancerSource(location: string, zarrFormat: 2 | 3 = 2): string {
  const url = /^s3:\/\//.test(location) ? location : /^https?:\/\//.test(location) ? location : `file://${location}`;
  return `${zarrFormat === 3 ? "zarr3" : "zarr2"}://${url}`;
}

/**
 * The coordinate space and default centre of an image (see the module comment). `center`, when
 * given, must have one value per spatial axis (storage order) and replaces the image centre.
 * Throws a plain `Error` naming the expected axes when it does not.
 */
export function neuroglancerView(info: ImageGeometry, center?: readonly number[]): NeuroglancerView {
  const s0 = info.levels[0];
  if (!s0) throw new CellMapError("INVALID_METADATA", "image has no readable level");
  let axes: string[];
  let units: Array<"nm" | "">;
  let dims: number[];
  let scale: number[];
  let translation: number[];
  if (info.axes.length && info.spatialAxes.length) {
    // Spatial dims: where the spatial axes sit among all axes (channel/time axes may come first).
    dims = info.spatialAxes.map((a) => info.axes.findIndex((x) => x.name === a));
    if (dims.some((d) => d < 0)) dims = info.spatialAxes.map((_, i) => s0.shape.length - info.spatialAxes.length + i);
    axes = [...info.spatialAxes];
    units = dims.map((d) => (info.axes[d]?.unit ? "nm" : ""));
    scale = s0.scale;
    translation = s0.translation;
  } else {
    // A bare array: Neuroglancer names its dimensions d0, d1, … and puts voxel i at [i, i+1).
    dims = s0.shape.map((_, i) => i);
    axes = dims.map((i) => `d${i}`);
    units = dims.map(() => "");
    scale = s0.scale.length === dims.length ? s0.scale : dims.map(() => 1);
    translation = s0.translation.length === dims.length ? s0.translation : scale.map((s) => s / 2);
  }
  let c: number[];
  if (center) {
    if (center.length !== axes.length || center.some((v) => !Number.isFinite(v))) {
      throw new CellMapError("INVALID_ARGUMENT", `--center must be ${axes.length} numbers ${axes.join(",")} (world units, nm)`, "center");
    }
    c = [...center];
  } else {
    c = dims.map((d, a) => translation[a] + ((s0.shape[d] - 1) * scale[a]) / 2);
  }
  return { space: { axes, units }, center: c, voxelNm: scale[scale.length - 1] ?? 8, zarrFormat: s0.zarrFormat };
}

/**
 * The viewer state (JSON) centred on `centerNm` (one value per axis of `space`, default z y x
 * in nm), zoomed to `voxelNm` per screen pixel. Layers use their own `zarrFormat`, else `zarrFormat`.
 */
export function neuroglancerState(layers: NeuroglancerLayer[], centerNm: number[], voxelNm = 8, zarrFormat: 2 | 3 = 2, space?: NeuroglancerSpace): Record<string, unknown> {
  const axes = space?.axes ?? (centerNm.length === 2 ? ["y", "x"] : ["z", "y", "x"]);
  if (axes.length !== centerNm.length) throw new CellMapError("INVALID_ARGUMENT", `position has ${centerNm.length} values for ${axes.length} axes (${axes.join(",")})`, "center");
  const units = space?.units ?? axes.map(() => "nm" as const);
  const dimensions = Object.fromEntries(axes.map((a, i) => [a, units[i] === "" ? [1, ""] : [1e-9, "m"]]));
  const spatial3d = axes.length >= 3;
  return {
    dimensions,
    // x across, y down (and z as the third) in the xy panel, whatever the storage order.
    displayDimensions: [...axes].reverse().slice(0, 3),
    position: centerNm,
    crossSectionScale: voxelNm,
    ...(spatial3d ? { projectionScale: voxelNm * 256 } : {}),
    layers: layers.map((l) => ({
      type: l.kind,
      name: l.name,
      source: neuroglancerSource(l.path, l.zarrFormat ?? zarrFormat),
      ...(l.kind === "segmentation" ? { segments: ["1"] } : {}),
    })),
    layout: spatial3d ? "4panel" : "xy",
  };
}

/** A shareable link: the state JSON in the URL fragment of a Neuroglancer deployment. */
export function neuroglancerLink(state: Record<string, unknown>, base = "https://neuroglancer-demo.appspot.com/"): string {
  return `${base}#!${encodeURIComponent(JSON.stringify(state))}`;
}
