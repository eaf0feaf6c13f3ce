/**
 * A realistic synthetic CellMap-style dataset, generated locally so the demo, the benchmark and
 * the tests never need a download: an EM-like uint8 raw volume at 4 nm with a 2x pyramid, and
 * label crops at 8 nm (offset like real crops) for a few organelles, written as OME-NGFF.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeOmePyramid } from "../writer/pyramid.js";

/** A sphere in world coordinates (nm). */
interface Blob {
  c: [number, number, number];
  r: number;
}

/** What {@link writeSyntheticDataset} produced. */
export interface SyntheticDataset {
  root: string;
  rawPath: string;
  /** Ground-truth crop paths in the bracket syntax, e.g. `.../crop1/[mito,nuc]`. */
  crops: string[];
  classes: string[];
  /** Datasplit CSV listing the crops (train and validate rows). */
  csvPath: string;
}

/** Options of {@link writeSyntheticDataset}. */
export interface SyntheticOptions {
  /** Raw s0 edge length in voxels (default 256 at 4 nm). */
  size?: number;
  /** Seed of the organelle layout (default 1). */
  seed?: number;
  /** Zarr format (default 2, NGFF 0.4). */
  format?: 2 | 3;
}

function hash(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}

/** Writes the dataset under `root` (skips work when it already exists with the same options). */
export async function writeSyntheticDataset(root: string, opts: SyntheticOptions = {}): Promise<SyntheticDataset> {
  const size = opts.size ?? 256;
  const seed = opts.seed ?? 1;
  const format = opts.format ?? 2;
  const s0 = 4;
  const extent = size * s0;
  const zarrRoot = path.join(root, "jrc_synthetic.zarr");
  const rawPath = path.join(zarrRoot, "recon-1", "em", "fibsem-uint8");
  const gt = path.join(zarrRoot, "recon-1", "labels", "groundtruth");
  const classes = ["mito", "er", "nuc"];
  const stamp = path.join(root, ".complete.json");
  const key = JSON.stringify({ size, seed, format, v: 2 });

  // Organelles: one nucleus, several mitochondria, thin ER sheets.
  let k = seed * 7919;
  const rnd = () => hash(k++);
  const nuc: Blob = { c: [extent * 0.5, extent * 0.3, extent * 0.7], r: extent * 0.18 };
  const mitos: Blob[] = Array.from({ length: 14 }, () => ({
    c: [rnd() * extent, rnd() * extent, rnd() * extent] as [number, number, number],
    r: 40 + rnd() * 70,
  }));
  const erPlanes = Array.from({ length: 5 }, () => ({ n: [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5], d: rnd() * extent }));
  erPlanes.forEach((p) => {
    const l = Math.hypot(...p.n);
    p.n = p.n.map((v) => v / l);
  });
  const inside = (b: Blob, w: number[]) => (w[0] - b.c[0]) ** 2 + (w[1] - b.c[1]) ** 2 + (w[2] - b.c[2]) ** 2 <= b.r * b.r;
  const labelAt = (cls: string, w: number[]): number => {
    if (cls === "nuc") return inside(nuc, w) ? 1 : 0;
    if (cls === "mito") return mitos.some((m) => inside(m, w)) && !inside(nuc, w) ? 1 : 0;
    // ER: thin sheets (12 nm thick) outside nucleus and mitochondria
    if (inside(nuc, w) || mitos.some((m) => inside(m, w))) return 0;
    return erPlanes.some((p) => Math.abs(p.n[0] * w[0] + p.n[1] * w[1] + p.n[2] * w[2] - p.d) % 180 < 12) ? 1 : 0;
  };

  // Crops as fractions of the volume (lo corner, edge), so every size gets several samples per
  // crop; real crops also start at arbitrary 8 nm offsets, not at the volume origin.
  const vox8 = extent / 8;
  const crops = [
    { name: "crop1", lo: [0.1, 0.12, 0.08], n: [0.72, 0.7, 0.75], classes: ["mito", "er", "nuc"] },
    { name: "crop2", lo: [0.35, 0.25, 0.3], n: [0.55, 0.6, 0.62], classes: ["mito", "nuc"] },
    { name: "crop3", lo: [0.5, 0.45, 0.2], n: [0.4, 0.45, 0.5], classes: ["mito", "er"] },
  ].map((c) => ({
    ...c,
    lo: c.lo.map((f) => Math.round(f * vox8) * 8),
    n: c.n.map((f) => Math.max(4, Math.round(f * vox8))),
  }));
  const cropPaths = crops.map((c) => path.join(gt, c.name, `[${c.classes.join(",")}]`));
  const csvPath = path.join(root, "datasplit.csv");
  const result: SyntheticDataset = { root, rawPath, crops: cropPaths, classes, csvPath };
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === key) return result;
  fs.rmSync(zarrRoot, { recursive: true, force: true });

  // Raw: membranes darken voxels near organelle surfaces; smooth texture plus noise; EM contrast.
  const raw0 = new Uint8Array(size ** 3);
  let o = 0;
  for (let z = 0; z < size; z++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const w = [(z + 0.5) * s0, (y + 0.5) * s0, (x + 0.5) * s0];
        let v = 150 + 18 * Math.sin(w[0] / 90) * Math.cos(w[1] / 70) + 10 * Math.sin(w[2] / 50 + w[0] / 130);
        const dn = Math.hypot(w[0] - nuc.c[0], w[1] - nuc.c[1], w[2] - nuc.c[2]) - nuc.r;
        if (dn < 0) v -= 25;
        if (Math.abs(dn) < 10) v -= 70;
        for (const m of mitos) {
          const dm = Math.hypot(w[0] - m.c[0], w[1] - m.c[1], w[2] - m.c[2]) - m.r;
          if (dm < 0) v -= 45 + 15 * Math.sin(w[0] / 12);
          if (Math.abs(dm) < 8) v -= 60;
        }
        v += (hash(o * 2654435761 + seed) - 0.5) * 40;
        raw0[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  const half = size / 2;
  const raw1 = new Uint8Array(half ** 3);
  o = 0;
  for (let z = 0; z < half; z++)
    for (let y = 0; y < half; y++)
      for (let x = 0; x < half; x++) {
        let s = 0;
        for (let d = 0; d < 8; d++) s += raw0[((2 * z + (d >> 2)) * size + 2 * y + ((d >> 1) & 1)) * size + 2 * x + (d & 1)];
        raw1[o++] = Math.round(s / 8);
      }
  const chunks = [64, 64, 64].map((c) => Math.min(c, size));
  await writeOmePyramid(rawPath, {
    format,
    dtype: "uint8",
    root: zarrRoot,
    codec: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 },
    levels: [
      { shape: [size, size, size], scale: [s0, s0, s0], translation: [s0 / 2, s0 / 2, s0 / 2], chunks, data: raw0 },
      { shape: [half, half, half], scale: [8, 8, 8], translation: [4, 4, 4], chunks: chunks.map((c) => Math.min(c, half)), data: raw1 },
    ],
  });

  // Label crops at 8 nm, sampled at voxel centres; counts stored as real CellMap crops do.
  for (const c of crops) {
    for (const cls of c.classes) {
      const n = c.n;
      const t = c.lo.map((v) => v + 4);
      const data = new Uint8Array(n[0] * n[1] * n[2]);
      let fg = 0;
      let i = 0;
      for (let z = 0; z < n[0]; z++)
        for (let y = 0; y < n[1]; y++)
          for (let x = 0; x < n[2]; x++) {
            const v = labelAt(cls, [t[0] + z * 8, t[1] + y * 8, t[2] + x * 8]);
            data[i++] = v;
            fg += v;
          }
      await writeOmePyramid(path.join(gt, c.name, cls), {
        format,
        dtype: "uint8",
        root: zarrRoot,
        codec: { id: "zstd", level: 3 },
        levels: [{ shape: n, scale: [8, 8, 8], translation: t, chunks: n.map((v) => Math.min(v, 32)), data }],
        attrs: { cellmap: { annotation: { complement_counts: { absent: data.length - fg } } } },
      });
    }
  }
  const csv = cropPaths.map((p, i) => {
    const rel = path.relative(zarrRoot, p);
    return `"${i < 2 ? "train" : "validate"}","${zarrRoot}","recon-1/em/fibsem-uint8","${zarrRoot}","${rel}"`;
  });
  fs.writeFileSync(csvPath, csv.join("\n") + "\n");
  fs.writeFileSync(stamp, key);
  return result;
}
