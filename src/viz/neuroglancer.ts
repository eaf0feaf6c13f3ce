/**
 * Neuroglancer state and link for looking at a sample: the raw image and label layers, centred
 * on a position given in nm (z y x). Neuroglancer reads OME-Zarr directly (`zarr://` / `zarr2://`
 * sources over http(s); local files must be served, e.g. by `npx http-server`).
 */

/** One layer of the state. */
export interface NeuroglancerLayer {
  name: string;
  /** Location of the multiscale group (URL, or a local path that will be shown as-is). */
  path: string;
  kind: "image" | "segmentation";
}

/** Source URL Neuroglancer understands for an OME-Zarr group. */
export function neuroglancerSource(location: string, zarrFormat: 2 | 3 = 2): string {
  const url = /^s3:\/\//.test(location) ? location : /^https?:\/\//.test(location) ? location : `file://${location}`;
  return `${zarrFormat === 3 ? "zarr3" : "zarr2"}://${url}`;
}

/** The viewer state (JSON) centred on `centerNm` (z y x), zoomed to `voxelNm` per screen pixel. */
export function neuroglancerState(layers: NeuroglancerLayer[], centerNm: number[], voxelNm = 8, zarrFormat: 2 | 3 = 2): Record<string, unknown> {
  // Neuroglancer's position is in the dimensions' units; declare z y x in nm.
  return {
    dimensions: { z: [1e-9, "m"], y: [1e-9, "m"], x: [1e-9, "m"] },
    position: centerNm,
    crossSectionScale: voxelNm / 1,
    projectionScale: voxelNm * 256,
    layers: layers.map((l) => ({
      type: l.kind,
      name: l.name,
      source: neuroglancerSource(l.path, zarrFormat),
      ...(l.kind === "segmentation" ? { segments: ["1"] } : {}),
    })),
    layout: "4panel",
  };
}

/** A shareable link: the state JSON in the URL fragment of a Neuroglancer deployment. */
export function neuroglancerLink(state: Record<string, unknown>, base = "https://neuroglancer-demo.appspot.com/"): string {
  return `${base}#!${encodeURIComponent(JSON.stringify(state))}`;
}
