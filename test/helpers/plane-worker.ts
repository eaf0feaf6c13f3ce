/**
 * A thread of the shared-cache test: maps the plane it is given and reads 64 chunks of one
 * array three times over, concurrently, decoding (slowly) on misses; reports how many chunks
 * it decoded itself and a checksum of what it read.
 */
import { parentPort, workerData } from "node:worker_threads";
import { DataPlane, type DataPlaneInit } from "../../src/plane/plane.js";
import type { ZarrArray } from "../../src/zarr/array.js";

const plane = DataPlane.attach((workerData as { init: DataPlaneInit }).init);
const za = { id: "shared", dtype: "uint8", chunks: [64, 64, 64], shape: [512, 512, 512], chunkKey: (c: number[]) => c.join("/") } as unknown as ZarrArray;
let decodes = 0;
let sum = 0;
for (let r = 0; r < 3; r++) {
  await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const c = [i % 4, (i >> 2) % 4, i >> 4];
      const lease = await plane.cache!.get(za, c, async () => {
        decodes++;
        await new Promise((res) => setTimeout(res, 1));
        return { data: new Uint8Array(64 ** 3).fill((c[0] * 16 + c[1] * 4 + c[2]) & 255), shape: [64, 64, 64], stride: [4096, 64, 1] };
      });
      sum += lease.data[1234];
      lease.release();
    }),
  );
}
parentPort!.postMessage({ decodes, sum });
