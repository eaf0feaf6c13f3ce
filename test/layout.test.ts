/**
 * Groups that hold images: bioformats2raw roots are followed to a series (with the OME-XML
 * names), HCS plates and wells are refused naming what to give instead.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { describeImage, formatImageInfo } from "../src/cli/info.js";
import { neuroglancerPlan } from "../src/cli/neuroglancer.js";
import { CellMapError } from "../src/errors.js";
import { CellMapImage } from "../src/image/image.js";
import { omeImageNames } from "../src/ome/layout.js";
import { writeOmePyramid } from "../src/writer/pyramid.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cm-layout-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A v2 group with these attributes. */
function group(dir: string, attrs: object): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ".zgroup"), JSON.stringify({ zarr_format: 2 }));
  fs.writeFileSync(path.join(dir, ".zattrs"), JSON.stringify(attrs));
}

/** An 8^3 image whose every voxel holds `value`. */
function image(dir: string, value: number): Promise<unknown> {
  return writeOmePyramid(dir, {
    format: 2,
    dtype: "uint8",
    levels: [{ shape: [8, 8, 8], scale: [4, 4, 4], translation: [2, 2, 2], chunks: [8, 8, 8], data: () => value }],
  });
}

const OME_XML = `<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">
  <Image ID="Image:0" Name="cell A"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="8" SizeY="8" SizeZ="8" SizeC="1" SizeT="1"/></Image>
  <Image ID="Image:1" Name="cell B &amp; C"><Pixels ID="Pixels:1" DimensionOrder="XYZCT" Type="uint8" SizeX="8" SizeY="8" SizeZ="8" SizeC="1" SizeT="1"/></Image>
</OME>`;

describe("bioformats2raw layout", async () => {
  const root = path.join(tmp, "b2r.zarr");
  group(root, { "bioformats2raw.layout": 3 });
  group(path.join(root, "OME"), { series: ["0", "1"] });
  fs.writeFileSync(path.join(root, "OME", "METADATA.ome.xml"), OME_XML);
  await image(path.join(root, "0"), 10);
  await image(path.join(root, "1"), 20);

  it("CellMapImage.open follows the root to series 0, or the series asked for", async () => {
    const first = await CellMapImage.open({ path: root, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] });
    assert.deepEqual(Array.from((await first.read([16, 16, 16])).data), new Array(8).fill(10));
    assert.equal(first.scaleLevel.path, "0/s0");
    assert.match(first.multiscale.notes.join("\n"), /bioformats2raw layout: read series 0 \("cell A"\) of 2 \(0 \("cell A"\), 1 \("cell B & C"\)\); give series to read another/);
    const second = await CellMapImage.open({ path: root, series: 1, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] });
    assert.deepEqual(Array.from((await second.read([16, 16, 16])).data), new Array(8).fill(20));
    await assert.rejects(CellMapImage.open({ path: root, series: 2, targetScale: [4, 4, 4], targetVoxelShape: [2, 2, 2] }), (e: unknown) => {
      assert.ok(e instanceof CellMapError && e.code === "INVALID_ARGUMENT");
      assert.match(e.message, /series 2 is out of range: this bioformats2raw root has 2 \(0 \("cell A"\), 1 \("cell B & C"\)\)/);
      return true;
    });
  });

  it("info lists the series with their OME-XML names and describes the one asked for", async () => {
    const info = await describeImage(root);
    assert.deepEqual(info.series, {
      all: [
        { path: "0", name: "cell A" },
        { path: "1", name: "cell B & C" },
      ],
      chosen: 0,
    });
    assert.deepEqual(
      info.levels.map((l) => l.path),
      ["0/s0"],
    );
    assert.ok(info.problems.some((p) => /read series 0/.test(p)));
    const text = formatImageInfo(await describeImage(root, undefined, undefined, undefined, 1));
    assert.match(text, /bioformats2raw layout, 2 series \(this is 1; --series N for another\)/);
    assert.match(text, /\* 1 {2}"cell B & C"/);
  });

  it("neuroglancer points at the series' own image group", async () => {
    const plan = await neuroglancerPlan(root, []);
    assert.equal(plan.layers[0].path, path.join(root, "0"));
  });

  it("without an OME group: the series are the groups 0, 1, … that exist; one series needs no note", async () => {
    const bare = path.join(tmp, "b2r-noome.zarr");
    group(bare, { "bioformats2raw.layout": 3 });
    await image(path.join(bare, "0"), 7);
    const img = await CellMapImage.open({ path: bare, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] });
    assert.deepEqual(Array.from((await img.read([10, 10, 10])).data), [7]);
    assert.ok(!img.multiscale.notes.some((n) => /bioformats2raw/.test(n)));
    const empty = path.join(tmp, "b2r-empty.zarr");
    group(empty, { "bioformats2raw.layout": 3 });
    await assert.rejects(CellMapImage.open({ path: empty, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }), /bioformats2raw layout without images/);
  });

  it("series on an image that is not a bioformats2raw root is an error", async () => {
    await assert.rejects(
      CellMapImage.open({ path: path.join(root, "0"), series: 1, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }),
      /series 1 given, but this group is one image/,
    );
  });

  it("OME-XML names by image ID, entities decoded", () => {
    const names = omeImageNames(`<OME><Image Name="second" ID="Image:1"/><Image ID="Image:0" Name="a &lt;b&gt;"/></OME>`);
    assert.deepEqual([...names.entries()].sort(), [
      [0, "a <b>"],
      [1, "second"],
    ]);
  });
});

describe("HCS plates and wells", () => {
  it("a plate or a well is refused naming the image to give instead", async () => {
    const plate = path.join(tmp, "plate.zarr");
    group(plate, {
      plate: {
        version: "0.4",
        rows: [{ name: "A" }, { name: "B" }],
        columns: [{ name: "1" }],
        wells: [
          { path: "A/1", rowIndex: 0, columnIndex: 0 },
          { path: "B/1", rowIndex: 1, columnIndex: 0 },
        ],
      },
    });
    await assert.rejects(CellMapImage.open({ path: plate, targetScale: [4, 4, 4], targetVoxelShape: [1, 1, 1] }), (e: unknown) => {
      assert.ok(e instanceof CellMapError && e.code === "UNSUPPORTED");
      assert.match(e.message, /this is an OME-NGFF plate, not an image: give one field of a well, e\.g\. .*plate\.zarr\/A\/1\/0 \(wells: A\/1, B\/1\)/);
      return true;
    });
    const well = path.join(tmp, "well.zarr");
    group(well, { ome: { version: "0.5", well: { images: [{ path: "0" }, { path: "1" }] } } });
    await assert.rejects(describeImage(well), /this is an OME-NGFF well, not an image: give one of its fields, e\.g\. .*well\.zarr\/0 \(fields: 0, 1\)/);
  });
});
