/**
 * A deterministic prediction-writing job shared by the writer kill test: the same tiles with the
 * same values whether run in the test process, in a child process that gets killed, or resumed.
 * Values depend on world position and on the tile (so blending weights matter).
 */
import { ImageWriter } from "../../src/writer/image-writer.js";

/** The job's writer options (blended, with a pyramid, raw chunks so sizes are checkable). */
export function jobOptions(dir: string, resume = false) {
  return {
    path: dir,
    scale: [8, 4, 4],
    bounds: { z: [0, 8 * 16], y: [40, 40 + 4 * 40], x: [-20, -20 + 4 * 41] },
    writeShape: [8, 12, 12],
    overlap: 2,
    blend: "linear" as const,
    compressor: null,
    pyramid: 1,
    resume,
  };
}

/** Value of tile `t` at world position `p` (nm). */
export function jobValue(t: number, p: number[]): number {
  return Math.fround(p[0] * 0.25 + p[1] * 0.5 + p[2] + 0.125 * (t % 7));
}

/** Writes every pending tile in order, calling `onTile` after each; then finalizes (unless told not to). */
export async function runJob(dir: string, opts: { resume?: boolean; onTile?: (id: number) => void; finalize?: boolean } = {}): Promise<ImageWriter> {
  const w = await ImageWriter.open(jobOptions(dir, opts.resume ?? false));
  const [P0, P1, P2] = w.writeShape;
  const buf = new Float32Array(P0 * P1 * P2);
  for (const id of w.pendingTiles()) {
    const t = w.tile(id);
    let i = 0;
    for (let z = 0; z < P0; z++) {
      for (let y = 0; y < P1; y++) {
        for (let x = 0; x < P2; x++) {
          const idx = [z, y, x];
          buf[i++] = jobValue(
            id,
            idx.map((v, a) => w.translation[a] + (t.windowStart[a] + v) * w.scale[a]),
          );
        }
      }
    }
    await w.writeTile(id, buf);
    opts.onTile?.(id);
  }
  if (opts.finalize ?? true) await w.finalize();
  return w;
}
