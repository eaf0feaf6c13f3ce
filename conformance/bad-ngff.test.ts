/**
 * Bad NGFF metadata taken from the NGFF conformance suite (../shared/conformance/ngff): each
 * invalid case, written as a group, is INVALID_METADATA or UNSUPPORTED naming the group at every
 * entry point (CellMapImage.open, `info`, CellMapDataset.open). Moved here from
 * test/bad-input.test.ts, since `npm test` must pass in a clone with nothing beside it.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describeImage } from "../src/cli/info.js";
import { CellMapDataset } from "../src/dataset/index.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-bad-ngff-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => path.join(tmp, `${n++}-${name}`);

const conformance = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../shared/conformance/ngff");

function isError(code: string[], ...names: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof CellMapError, `expected a CellMapError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.ok(code.includes(e.code), `code ${e.code}: ${e.message}`);
    for (const s of names) assert.ok(e.message.includes(s), `message should name ${JSON.stringify(s)}: ${e.message}`);
    return true;
  };
}

const open3 = (p: string, extra: Partial<Parameters<typeof CellMapImage.open>[0]> = {}) =>
  CellMapImage.open({ path: p, targetScale: [4, 4, 4], targetVoxelShape: [4, 4, 4], ...extra });

describe("bad NGFF metadata from the conformance suite", () => {
  it("invalid NGFF metadata (conformance suite cases) -> INVALID_METADATA / UNSUPPORTED naming the group", async () => {
    const cases: { version: "0.4" | "0.5"; marker: string }[] = [
      { version: "0.4", marker: '"datasets":[]' },
      { version: "0.4", marker: '"version":"0.3"' },
      { version: "0.4", marker: '"multiscales":[]' },
      { version: "0.4", marker: '"path":0' },
      { version: "0.4", marker: '{"scale":[1,1],"type":"translation"}' },
      { version: "0.5", marker: '"type":"invalid"' },
      { version: "0.5", marker: '"datasets":[]' },
      { version: "0.5", marker: '{"name":"x","type":"space","unit":"micrometer"},{"name":"x"' },
    ];
    for (const { version, marker } of cases) {
      const suite = JSON.parse(fs.readFileSync(path.join(conformance, version, "tests", "image_suite.json"), "utf8")) as {
        tests: { valid: boolean; data: Record<string, unknown> }[];
      };
      const tc = suite.tests.find((t) => !t.valid && JSON.stringify(t.data).includes(marker));
      assert.ok(tc, `no invalid ${version} case contains ${marker}`);
      const dir = fresh(`ngff-${version}`);
      fs.mkdirSync(dir, { recursive: true });
      if (version === "0.4") {
        fs.writeFileSync(path.join(dir, ".zgroup"), JSON.stringify({ zarr_format: 2 }));
        fs.writeFileSync(path.join(dir, ".zattrs"), JSON.stringify(tc.data));
      } else {
        fs.writeFileSync(path.join(dir, "zarr.json"), JSON.stringify({ zarr_format: 3, node_type: "group", attributes: tc.data }));
      }
      const opts = { targetScale: [1, 1], targetVoxelShape: [2, 2], axisOrder: "yx" };
      await assert.rejects(open3(dir, opts), isError(["INVALID_METADATA", "UNSUPPORTED"], dir), `${version} ${marker}`);
      await assert.rejects(describeImage(dir), isError(["INVALID_METADATA", "UNSUPPORTED"], dir));
      await assert.rejects(CellMapDataset.open({ rawPath: dir, inputArrays: { raw: { shape: [2, 2], scale: [1, 1] } } }), isError(["INVALID_METADATA", "UNSUPPORTED"], dir));
    }
  });
});
