/**
 * Images written by SpatialData (`../shared/conformance/viv`): NGFF `0.4-dev-spatialdata` (zarr v2,
 * blosc-lz4) and `0.5-dev-spatialdata` (zarr v3, zstd), 2-D with a channel axis, float64, axes
 * without units. They must open by their base version, report what is unusual under `problems`,
 * and read every channel exactly as zarrita reads the stored array.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import { FileSystemStore } from "@zarrita/storage";
import { describeImage } from "../src/cli/info.js";
import { CellMapImage } from "../src/image/image.js";
import { neuroglancerPlan, planState } from "../src/cli/neuroglancer.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const vivRoot = path.resolve(here, "../../shared/conformance/viv");
if (!fs.existsSync(vivRoot)) throw new Error(`viv conformance data not found at ${vivRoot}`);

for (const [name, base] of [
  ["blobs_image_v04.ome.zarr", "0.4"],
  ["blobs_image_v05.ome.zarr", "0.5"],
] as const) {
  describe(`viv/${name}`, () => {
    const dir = path.join(vivRoot, name);
    it("info reads it by its base version and lists the notes under problems", async () => {
      const info = await describeImage(dir);
      assert.equal(info.version, base);
      assert.deepEqual(info.problems, [
        `NGFF version "${base}-dev-spatialdata" read as ${base}`,
        "axis y has no unit; assuming nanometer",
        "axis x has no unit; assuming nanometer",
      ]);
      assert.deepEqual(
        info.levels.map((l) => [l.path, l.shape, l.dtype]),
        [["0", [3, 12, 12], "float64"]],
      );
    });

    it("neuroglancer: a unitless 2-D view of the spatial axes, centred", async () => {
      const st = planState(await neuroglancerPlan(dir, []));
      assert.deepEqual(st.dimensions, { y: [1, ""], x: [1, ""] });
      assert.deepEqual(st.position, [5.5, 5.5]);
      assert.equal((st.layers as Array<{ source: string }>)[0].source, `zarr${base === "0.4" ? 2 : 3}://file://${dir}`);
    });

    it("every channel reads exactly as the stored array", async () => {
      const arr = await zarr.open(zarr.root(new FileSystemStore(dir)).resolve("0"), { kind: "array" });
      const all = (await zarr.get(arr)) as { data: Float64Array };
      for (let c = 0; c < 3; c++) {
        const img = await CellMapImage.open({ path: dir, targetScale: [1, 1], targetVoxelShape: [12, 12], axisOrder: "yx", channel: c });
        const patch = await img.read([5.5, 5.5]);
        assert.deepEqual(patch.shape, [12, 12]);
        const want = Float32Array.from(all.data.subarray(c * 144, (c + 1) * 144));
        assert.deepEqual(Array.from(patch.data), Array.from(want), `channel ${c}`);
      }
    });
  });
}
