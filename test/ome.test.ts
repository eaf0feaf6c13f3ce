import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zarr from "zarrita";
import { FileSystemStore } from "@zarrita/storage";
import { CellMapError } from "../src/errors.js";
import { parseMultiscales, readMultiscale, unitToNm, isSpatialUnit } from "../src/ome/index.js";

type Json = Record<string, unknown>;

const ax = (name: string, type?: string, unit?: string): Json => ({
  name,
  ...(type !== undefined && { type }),
  ...(unit !== undefined && { unit }),
});
const ds = (p: string, scale: number[], translation?: number[]): Json => ({
  path: p,
  coordinateTransformations: [{ type: "scale", scale }, ...(translation ? [{ type: "translation", translation }] : [])],
});
const v04 = (ms: Json): Json => ({ multiscales: [{ version: "0.4", ...ms }] });
const zyxNm = [ax("z", "space", "nanometer"), ax("y", "space", "nanometer"), ax("x", "space", "nanometer")];

/** Asserts `fn` throws a CellMapError with `code` whose message contains every `parts` string. */
function throwsCellMap(fn: () => unknown, code: string, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CellMapError, `expected CellMapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `message lacks ${JSON.stringify(p)}: ${err.message}`);
    return true;
  });
}

async function rejectsCellMap(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CellMapError, `expected CellMapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const part of parts) assert.ok(err.message.includes(part), `message lacks ${JSON.stringify(part)}: ${err.message}`);
    return true;
  });
}

describe("unitToNm", () => {
  it("converts full names, spellings and abbreviations", () => {
    const cases: Array<[string | undefined, number]> = [
      [undefined, 1],
      ["", 1],
      ["nanometer", 1],
      ["nm", 1],
      ["nanometre", 1],
      ["nanometers", 1],
      ["micrometer", 1000],
      ["um", 1000],
      ["µm", 1000],
      ["μm", 1000],
      ["micron", 1000],
      ["microns", 1000],
      ["angstrom", 0.1],
      ["A", 0.1],
      ["Å", 0.1],
      ["\u212B", 0.1],
      ["picometer", 1e-3],
      ["attometer", 1e-9],
      ["millimeter", 1e6],
      ["mm", 1e6],
      ["centimeter", 1e7],
      ["meter", 1e9],
      ["m", 1e9],
      ["Meter", 1e9],
      ["kilometer", 1e12],
      ["Mm", 1e15],
      ["yottameter", 1e33],
      ["yoctometer", 1e-15],
      ["inch", 2.54e7],
      ["foot", 3.048e8],
      ["feet", 3.048e8],
      ["yard", 9.144e8],
      ["mile", 1.609344e12],
      ["parsec", 3.0856775814913673e25],
    ];
    for (const [unit, nm] of cases) assert.equal(unitToNm(unit, "g"), nm, String(unit));
  });

  it("keeps SI prefix case: mm is milli, Mm is mega; pm pico, Pm peta", () => {
    assert.equal(unitToNm("mm", "g"), 1e6);
    assert.equal(unitToNm("Mm", "g"), 1e15);
    assert.equal(unitToNm("pm", "g"), 1e-3);
    assert.equal(unitToNm("Pm", "g"), 1e24);
  });

  it("rejects unknown units naming the unit and path", () => {
    for (const unit of ["pixel", "second", "toString", "constructor", "MM"]) {
      assert.equal(isSpatialUnit(unit), false, unit);
      throwsCellMap(() => unitToNm(unit, "data.zarr/raw"), "INVALID_METADATA", `"${unit}"`, "[data.zarr/raw]");
    }
  });
});

describe("parseMultiscales geometry", () => {
  it("zyx in micrometer → nm, with exact values", () => {
    const attrs = v04({
      name: "raw",
      axes: [ax("z", "space", "micrometer"), ax("y", "space", "micrometer"), ax("x", "space", "micrometer")],
      datasets: [ds("s0", [0.008, 0.004, 0.004], [0.002, 0.1, 0]), ds("s1", [0.016, 0.008, 0.008], [0.006, 0.102, 0.002])],
    });
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2 });
    assert.equal(m.version, "0.4");
    assert.equal(m.name, "raw");
    assert.equal(m.zarrFormat, 2);
    assert.deepEqual(m.spatialAxes, ["z", "y", "x"]);
    assert.deepEqual(m.spatialDims, [0, 1, 2]);
    assert.deepEqual(m.levels, [
      { path: "s0", index: 0, scale: [8, 4, 4], translation: [2, 100, 0] },
      { path: "s1", index: 1, scale: [16, 8, 8], translation: [6, 102, 2] },
    ]);
  });

  it("composes multiscale-level scale then translation: world = S·(s·i + t) + T", () => {
    const attrs = v04({
      axes: zyxNm,
      datasets: [ds("s0", [1, 2, 3], [10, 20, 30]), ds("s1", [2, 4, 6], [11, 21, 31])],
      coordinateTransformations: [
        { type: "scale", scale: [2, 3, 4] },
        { type: "translation", translation: [100, 200, 300] },
      ],
    });
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2 });
    assert.deepEqual(m.levels[0].scale, [2, 6, 12]);
    assert.deepEqual(m.levels[0].translation, [2 * 10 + 100, 3 * 20 + 200, 4 * 30 + 300]);
    assert.deepEqual(m.levels[1].scale, [4, 12, 24]);
    assert.deepEqual(m.levels[1].translation, [2 * 11 + 100, 3 * 21 + 200, 4 * 31 + 300]);
    // Voxel i of level 1 along z: S*(s*i + t) + T
    const i = 5;
    assert.equal(m.levels[1].translation[0] + i * m.levels[1].scale[0], 2 * (2 * i + 11) + 100);
  });

  it("applies the unit after composition and accepts identity at the multiscale level", () => {
    const attrs = v04({
      axes: [ax("y", "space", "micrometer"), ax("x", "space", "micrometer")],
      datasets: [ds("0", [0.5, 0.25], [1, 2])],
      coordinateTransformations: [{ type: "identity" }, { type: "scale", scale: [2, 2] }, { type: "translation", translation: [0.5, 0] }],
    });
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2 });
    assert.deepEqual(m.levels[0].scale, [1000, 500]);
    assert.deepEqual(m.levels[0].translation, [2500, 4000]);
  });

  it("cyx: channel first, spatial dims 1 and 2; missing translation = 0", () => {
    const attrs = v04({
      axes: [ax("c", "channel"), ax("y", "space", "nanometer"), ax("x", "space", "nanometer")],
      datasets: [ds("0", [1, 4, 4]), ds("1", [1, 8, 8])],
    });
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2 });
    assert.deepEqual(m.spatialAxes, ["y", "x"]);
    assert.deepEqual(m.spatialDims, [1, 2]);
    assert.deepEqual(m.axes, [
      { name: "c", type: "channel" },
      { name: "y", type: "space", unit: "nanometer" },
      { name: "x", type: "space", unit: "nanometer" },
    ]);
    assert.deepEqual(
      m.levels.map((l) => l.scale),
      [
        [4, 4],
        [8, 8],
      ],
    );
    assert.deepEqual(
      m.levels.map((l) => l.translation),
      [
        [0, 0],
        [0, 0],
      ],
    );
  });

  it("tczyx with mixed units; time/channel scales are ignored", () => {
    const attrs = {
      ome: {
        version: "0.5",
        multiscales: [
          {
            axes: [ax("t", "time", "second"), ax("c", "channel"), ax("z", "space", "micrometer"), ax("y", "space", "nm"), ax("x", "space", "Å")],
            datasets: [ds("0", [60, 1, 0.5, 4, 40], [5, 0, 1, 2, 30])],
          },
        ],
      },
    };
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 3 });
    assert.equal(m.version, "0.5");
    assert.equal(m.zarrFormat, 3);
    assert.deepEqual(m.spatialAxes, ["z", "y", "x"]);
    assert.deepEqual(m.spatialDims, [2, 3, 4]);
    assert.deepEqual(m.levels[0].scale, [500, 4, 4]);
    assert.deepEqual(m.levels[0].translation, [1000, 2, 3]);
  });

  it("untyped x/y/z axes are spatial; missing unit means nm", () => {
    const attrs = v04({ axes: [ax("z"), ax("y"), ax("x")], datasets: [ds("s0", [8, 8, 8], [4, 4, 4])] });
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2 });
    assert.deepEqual(m.spatialDims, [0, 1, 2]);
    assert.deepEqual(m.levels[0].scale, [8, 8, 8]);
  });

  it("a spatial unit that is not a length (IDR's pixel) is read as nm and noted like a missing one", () => {
    const attrs = v04({
      axes: [ax("c", "channel"), ax("z", "space", "micrometer"), ax("y", "space", "pixel"), ax("x", "space", "pixel")],
      datasets: [ds("0", [1, 0.5, 4, 4], [0, 1, 2, 2])],
    });
    const m = parseMultiscales(attrs, { path: "idr.zarr", zarrFormat: 2 });
    assert.deepEqual(m.levels[0].scale, [500, 4, 4]);
    assert.deepEqual(m.levels[0].translation, [1000, 2, 2]);
    assert.deepEqual(m.notes, [`axis y has no unit of length (unit "pixel"); assuming nanometer`, `axis x has no unit of length (unit "pixel"); assuming nanometer`]);
    for (const note of m.notes) assert.match(note, /has no unit/, "CellMapImage.open warns for it (CELLMAP_NO_UNIT)");
    assert.deepEqual(
      m.axes.map((a) => a.unit),
      [undefined, "micrometer", undefined, undefined],
      "no length unit on y and x, as if missing",
    );
    for (const unit of ["second", "MM", "toString"]) {
      const one = v04({ axes: [ax("z", "space", "nm"), ax("y", "space", "nm"), ax("x", "space", unit)], datasets: [ds("s0", [2, 2, 2])] });
      const p = parseMultiscales(one, { path: "g", zarrFormat: 2 });
      assert.deepEqual([p.levels[0].scale, p.notes], [[2, 2, 2], [`axis x has no unit of length (unit "${unit}"); assuming nanometer`]], unit);
    }
  });

  it("a misspelt `units` key stands in for a missing `unit` when it is a length, with a note naming it", () => {
    const axes = [
      { name: "z", type: "space", units: "micrometer" },
      { name: "y", type: "space", unit: "nanometer", units: "micrometer" },
      { name: "x", type: "space", units: "pixel" },
    ];
    const m = parseMultiscales(v04({ axes, datasets: [ds("s0", [0.008, 8, 8])] }), { path: "g", zarrFormat: 2 });
    assert.deepEqual(m.levels[0].scale, [8, 8, 8], "z in micrometer from `units`; y keeps its `unit`; x in nm");
    assert.deepEqual(
      m.axes.map((a) => a.unit),
      ["micrometer", "nanometer", undefined],
    );
    assert.deepEqual(m.notes, [
      `axis z has "units" instead of "unit"; reading "micrometer" as its unit`,
      `axis x has no unit of length ("units" instead of "unit", and "pixel" is not a length); assuming nanometer`,
    ]);
  });

  it("version-less 0.4-like documents are read as 0.4; `index` picks a multiscale", () => {
    const attrs = {
      multiscales: [
        { axes: zyxNm, datasets: [ds("a", [1, 1, 1])] },
        { name: "second", axes: zyxNm, datasets: [ds("b", [2, 2, 2])] },
      ],
    };
    assert.equal(parseMultiscales(attrs, { path: "g", zarrFormat: 2 }).version, "0.4");
    const m = parseMultiscales(attrs, { path: "g", zarrFormat: 2, index: 1 });
    assert.equal(m.name, "second");
    assert.equal(m.levels[0].path, "b");
    throwsCellMap(() => parseMultiscales(attrs, { path: "g", zarrFormat: 2, index: 2 }), "INVALID_ARGUMENT", "index 2");
  });

  it("accepts equal voxel sizes on consecutive levels", () => {
    const attrs = v04({ axes: zyxNm, datasets: [ds("s0", [8, 8, 8]), ds("s1", [8, 8, 8]), ds("s2", [8, 16, 16])] });
    assert.equal(parseMultiscales(attrs, { path: "g", zarrFormat: 2 }).levels.length, 3);
  });
});

describe("parseMultiscales errors", () => {
  const parse =
    (attrs: unknown, zarrFormat: 2 | 3 = 2) =>
    () =>
      parseMultiscales(attrs, { path: "data.zarr/raw", zarrFormat });

  it("names the document and the field for a wrong vector length", () => {
    const attrs = v04({ axes: zyxNm, datasets: [ds("s0", [4, 4, 4]), ds("s1", [8, 8])] });
    throwsCellMap(parse(attrs), "INVALID_METADATA", "multiscales[0].datasets[1].coordinateTransformations[0].scale: expected 3 numbers, got 2", "[data.zarr/raw]");
  });

  it("reports levels that are not finest-first", () => {
    const attrs = v04({ axes: zyxNm, datasets: [ds("s0", [4, 4, 4]), ds("s1", [8, 8, 8]), ds("s2", [16, 4, 16])] });
    throwsCellMap(parse(attrs), "INVALID_METADATA", "finest first", 'datasets[2] ("s2")', 'axis "y"', "4 nm", 'datasets[1] ("s1")');
  });

  it("rejects bad axis orders and counts", () => {
    const bad: Array<[Json[], string]> = [
      [[ax("y", "space"), ax("x", "space"), ax("c", "channel")], `axes[2]: axis "c" (channel/custom) is out of order`],
      [[ax("z", "space"), ax("t", "time"), ax("y", "space"), ax("x", "space")], `axes[1]: axis "t" (time) is out of order`],
      [[ax("c", "channel"), ax("t", "time"), ax("y", "space"), ax("x", "space")], `axes[1]: axis "t" (time) is out of order`],
      [[ax("y", "space"), ax("y", "space")], `axes[1].name: duplicate axis name "y"`],
      [[ax("w", "space"), ax("z", "space"), ax("y", "space"), ax("x", "space")], "axes: expected 2 or 3 space axes, got 4"],
      [[ax("c", "channel"), ax("x", "space")], "axes: expected 2 or 3 space axes, got 1"],
      [[ax("c", "channel"), ax("a", "angle"), ax("y", "space"), ax("x", "space")], "axes: at most one channel or custom axis"],
    ];
    for (const [axes, msg] of bad) {
      const n = axes.length;
      throwsCellMap(parse(v04({ axes, datasets: [ds("0", new Array(n).fill(1))] })), "INVALID_METADATA", `multiscales[0].${msg}`);
    }
  });

  it("rejects bad transformation lists", () => {
    const cases: Array<[Json[], string]> = [
      [
        [
          { type: "translation", translation: [0, 0, 0] },
          { type: "scale", scale: [1, 1, 1] },
        ],
        "coordinateTransformations[1]: the scale must come before the translation",
      ],
      [[{ type: "translation", translation: [0, 0, 0] }], "expected exactly one scale transformation, found none"],
      [[{ type: "scale", scale: [1, 1, 1] }, { type: "identity" }], `coordinateTransformations[1].type: "identity" is not allowed here`],
      [[{ type: "scale", scale: [1, 1, 1] }, { type: "affine" }], `unsupported transformation type "affine"`],
      [
        [
          { type: "scale", scale: [1, 1, 1] },
          { type: "translation", translation: [0, 0, 0] },
          { type: "translation", translation: [0, 0, 0] },
        ],
        "more than one translation",
      ],
      [[], "expected at least one transformation"],
      [[{ type: "scale", scale: [1, 0, 1] }], `voxel size on space axis "y" must be positive, got 0`],
    ];
    for (const [list, msg] of cases) {
      throwsCellMap(parse(v04({ axes: zyxNm, datasets: [{ path: "s0", coordinateTransformations: list }] })), "INVALID_METADATA", "multiscales[0].datasets[0].", msg);
    }
  });

  it("rejects a wrong-length multiscale-level transformation", () => {
    const attrs = v04({ axes: zyxNm, datasets: [ds("s0", [1, 1, 1])], coordinateTransformations: [{ type: "scale", scale: [1, 1] }] });
    throwsCellMap(parse(attrs), "INVALID_METADATA", "multiscales[0].coordinateTransformations[0].scale: expected 3 numbers, got 2");
  });

  it("reports unsupported features and versions as UNSUPPORTED", () => {
    throwsCellMap(
      parse(v04({ axes: zyxNm, datasets: [{ path: "s0", coordinateTransformations: [{ type: "scale", path: "scale.bin" }] }] })),
      "UNSUPPORTED",
      "multiscales[0].datasets[0].coordinateTransformations[0].path",
      "not supported",
    );
    throwsCellMap(
      parse({ multiscales: [{ version: "0.3", axes: zyxNm, datasets: [ds("s0", [1, 1, 1])] }] }),
      "UNSUPPORTED",
      `multiscales[0].version: unsupported NGFF version "0.3"`,
    );
    throwsCellMap(
      parse({ ome: { version: "0.6", multiscales: [{ axes: zyxNm, datasets: [ds("s0", [1, 1, 1])] }] } }, 3),
      "UNSUPPORTED",
      `ome.version: unsupported NGFF version "0.6"`,
    );
  });

  it("refuses NGFF 0.1-0.3 and 0.6 documents by their version, saying how to read a level as a bare array", () => {
    const hints = ["0.4 and 0.5", "voxelSize", "--voxel-size", "[data.zarr/raw]"];
    // 0.1 / 0.2: no axes, no coordinateTransformations
    for (const version of ["0.1", "0.2"]) {
      const attrs = { multiscales: [{ version, name: "img", datasets: [{ path: "0" }, { path: "1" }], type: "gaussian" }] };
      throwsCellMap(
        parse(attrs),
        "UNSUPPORTED",
        `multiscales[0].version: unsupported NGFF version "${version}"`,
        `path: "data.zarr/raw/0"`,
        "info data.zarr/raw/0 --voxel-size",
        ...hints,
      );
    }
    // 0.3: axes as names
    throwsCellMap(
      parse({ multiscales: [{ version: "0.3", axes: ["z", "y", "x"], datasets: [{ path: "s0" }] }] }),
      "UNSUPPORTED",
      `unsupported NGFF version "0.3"`,
      "data.zarr/raw/s0",
      ...hints,
    );
    // 0.6.dev1 (RFC-5): coordinate systems instead of axes
    const rfc5 = {
      ome: {
        version: "0.6.dev1",
        multiscales: [
          {
            coordinateSystems: [{ name: "physical", axes: zyxNm }],
            datasets: [{ path: "s0", coordinateTransformations: [{ type: "scale", scale: [4, 4, 4], input: "s0", output: "physical" }] }],
          },
        ],
      },
    };
    throwsCellMap(parse(rfc5, 3), "UNSUPPORTED", `ome.version: unsupported NGFF version "0.6.dev1"`, "data.zarr/raw/s0", ...hints);
    // the first unsupported entry is named; an entry without datasets still gets the hint
    throwsCellMap(
      parse({ multiscales: [{ version: "0.4", axes: zyxNm, datasets: [ds("a", [1, 1, 1])] }, { version: "0.2" }] }),
      "UNSUPPORTED",
      `multiscales[1].version: unsupported NGFF version "0.2"`,
      "data.zarr/raw/<level path>",
    );
  });

  it("names the field of type errors and missing fields", () => {
    throwsCellMap(
      parse(v04({ axes: zyxNm, datasets: [{ path: 0, coordinateTransformations: [] }] })),
      "INVALID_METADATA",
      "multiscales[0].datasets[0].path: expected string, got number",
    );
    throwsCellMap(parse(v04({ axes: zyxNm })), "INVALID_METADATA", "multiscales[0].datasets: missing (expected array)");
    throwsCellMap(
      parse({ ome: { version: "0.5", multiscales: [{ axes: zyxNm, datasets: [] }] } }, 3),
      "INVALID_METADATA",
      "ome.multiscales[0].datasets: expected at least 1 entry, got 0",
    );
  });

  it("still refuses a unit that is not a string, and axes that are missing or not objects", () => {
    const axes = [ax("z", "space", "nm"), ax("y", "space", "nm"), { name: "x", type: "space", unit: 5 }];
    throwsCellMap(parse(v04({ axes, datasets: [ds("s0", [1, 1, 1])] })), "INVALID_METADATA", "multiscales[0].axes[2].unit: expected string, got number", "[data.zarr/raw]");
    throwsCellMap(parse(v04({ datasets: [ds("s0", [1, 1, 1])] })), "INVALID_METADATA", "multiscales[0].axes: missing");
    throwsCellMap(parse(v04({ axes: ["z", "y", "x"], datasets: [ds("s0", [1, 1, 1])] })), "INVALID_METADATA", "multiscales[0].axes[0]: expected object, got string");
    // A supported version (or a variant of one) does not turn broken metadata into UNSUPPORTED.
    throwsCellMap(parse({ multiscales: [{ version: "0.4-dev-spatialdata", datasets: [ds("s0", [1, 1, 1])] }] }), "INVALID_METADATA", "multiscales[0].axes: missing");
  });

  it("rejects documents without multiscales and non-object attributes", () => {
    throwsCellMap(parse({ foo: 1 }), "INVALID_METADATA", "no multiscales", "[data.zarr/raw]");
    throwsCellMap(parse({ ome: { version: "0.5", "bioformats2raw.layout": 3 } }, 3), "INVALID_METADATA", "no multiscales");
    throwsCellMap(parse(null), "INVALID_METADATA", "JSON object");
  });
});

describe("readMultiscale", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cm-"));
  const write = (rel: string, json: unknown) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), typeof json === "string" ? json : JSON.stringify(json));
  };
  const attrs04 = v04({ axes: zyxNm, datasets: [ds("s0", [4, 4, 4], [2, 2, 2]), ds("s1", [8, 8, 8], [4, 4, 4])] });
  write("v2.zarr/.zgroup", { zarr_format: 2 });
  write("v2.zarr/raw/.zgroup", { zarr_format: 2 });
  write("v2.zarr/raw/.zattrs", attrs04);
  write("v2.zarr/plain/.zgroup", { zarr_format: 2 });
  write("v2.zarr/broken/.zgroup", { zarr_format: 2 });
  write("v2.zarr/broken/.zattrs", "{ not json");
  write("v3.zarr/zarr.json", { zarr_format: 3, node_type: "group", attributes: {} });
  write("v3.zarr/em/zarr.json", {
    zarr_format: 3,
    node_type: "group",
    attributes: {
      ome: {
        version: "0.5",
        multiscales: [{ axes: [ax("c", "channel"), ax("y", "space", "micrometer"), ax("x", "space", "micrometer")], datasets: [ds("s0", [1, 0.004, 0.004])] }],
      },
    },
  });
  // ngff-zarr: NGFF 0.4 metadata (no "ome" key) on a zarr v3 group
  write("v3.zarr/ngff04/zarr.json", { zarr_format: 3, node_type: "group", attributes: attrs04 });
  write("v3.zarr/arr/zarr.json", {
    zarr_format: 3,
    node_type: "array",
    shape: [2, 2],
    data_type: "uint8",
    chunk_grid: { name: "regular", configuration: { chunk_shape: [2, 2] } },
    chunk_key_encoding: { name: "default" },
    fill_value: 0,
    codecs: [{ name: "bytes" }],
    attributes: {},
  });
  const root = zarr.root(new FileSystemStore(dir));

  it("reads a zarr v2 group (.zgroup + .zattrs)", async () => {
    const m = await readMultiscale(root, "v2.zarr/raw");
    assert.equal(m.zarrFormat, 2);
    assert.equal(m.version, "0.4");
    assert.deepEqual(
      m.levels.map((l) => [l.path, l.scale, l.translation]),
      [
        ["s0", [4, 4, 4], [2, 2, 2]],
        ["s1", [8, 8, 8], [4, 4, 4]],
      ],
    );
  });

  it("reads a zarr v3 group (zarr.json attributes.ome)", async () => {
    const m = await readMultiscale(root, "v3.zarr/em");
    assert.equal(m.zarrFormat, 3);
    assert.equal(m.version, "0.5");
    assert.deepEqual(m.spatialDims, [1, 2]);
    assert.deepEqual(m.levels[0].scale, [4, 4]);
  });

  it("reads NGFF 0.4 metadata on a zarr v3 group, noting that the spec pairs 0.4 with zarr v2", async () => {
    const m = await readMultiscale(root, "v3.zarr/ngff04");
    assert.equal(m.zarrFormat, 3);
    assert.equal(m.version, "0.4");
    assert.deepEqual(
      m.levels.map((l) => [l.path, l.scale, l.translation]),
      [
        ["s0", [4, 4, 4], [2, 2, 2]],
        ["s1", [8, 8, 8], [4, 4, 4]],
      ],
    );
    assert.equal(m.notes.length, 1, m.notes.join("; "));
    assert.match(m.notes[0], /^NGFF 0\.4 metadata .* on a Zarr v3 group, read as 0\.4; the NGFF spec pairs 0\.4 with Zarr v2/);
    assert.deepEqual((await readMultiscale(root, "v2.zarr/raw")).notes, [], "no note for 0.4 on zarr v2");
    assert.deepEqual((await readMultiscale(root, "v3.zarr/em")).notes, [], "no note for 0.5 on zarr v3");
  });

  it("accepts a location that already points at the group", async () => {
    const m = await readMultiscale(root.resolve("v2.zarr/raw"), "");
    assert.equal(m.levels.length, 2);
  });

  it("missing group → NOT_FOUND naming the path", async () => {
    await rejectsCellMap(readMultiscale(root, "v2.zarr/nope"), "NOT_FOUND", "[v2.zarr/nope]");
    await rejectsCellMap(readMultiscale(root, "v3.zarr/arr"), "NOT_FOUND", "found an array", "[v3.zarr/arr]");
    await rejectsCellMap(readMultiscale(root, "v3.zarr/arr", { id: "file:///x/v3.zarr/arr" }), "NOT_FOUND", "[file:///x/v3.zarr/arr]");
  });

  it("group without multiscales → INVALID_METADATA 'no multiscales'", async () => {
    await rejectsCellMap(readMultiscale(root, "v2.zarr/plain"), "INVALID_METADATA", "no multiscales", "[v2.zarr/plain]");
    await rejectsCellMap(readMultiscale(root, "v3.zarr"), "INVALID_METADATA", "no multiscales", "[v3.zarr]");
  });

  it("malformed .zattrs → INVALID_METADATA", async () => {
    await rejectsCellMap(readMultiscale(root, "v2.zarr/broken"), "INVALID_METADATA", "[v2.zarr/broken]");
  });
});
