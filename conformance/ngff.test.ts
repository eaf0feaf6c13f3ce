/**
 * OME-NGFF conformance: the upstream JSON-schema test suites (`tests/image_suite.json`,
 * `tests/strict_image_suite.json`) and example documents (`examples/`) for NGFF 0.4 and 0.5, run
 * through `parseMultiscales` (schema + prose rules + units + level order).
 *
 * Only multiscale images are in scope: the label, plate, well, bioformats2raw and `ome` series
 * examples describe no image geometry and are skipped. `omero` metadata is not validated (see
 * src/ome/schema.ts), and the few places where the JSON schema and the spec text disagree are
 * listed in DEVIATIONS with the reason; those cases assert our documented behaviour instead.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { CellMapError } from "../src/errors.js";
import { parseMultiscales } from "../src/ome/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const conformanceRoot = path.resolve(repoRoot, "../shared/conformance");
const ngffRoot = path.join(conformanceRoot, "ngff");
if (!fs.existsSync(ngffRoot)) {
  throw new Error(`NGFF conformance data not found at ${ngffRoot} (expected ../shared/conformance next to the repository)`);
}

interface SuiteCase {
  description: string;
  data: unknown;
  valid: boolean;
}

/**
 * Cases where our result differs from the suite on purpose, keyed `version/suite#index`.
 * `expect` is what we assert instead of the suite's `valid`; `marker` must occur in the case's JSON,
 * so that a reordered upstream suite cannot silently shift a deviation onto another case.
 */
const DEVIATIONS: Record<string, { expect: boolean; marker: string; reason: string }> = {
  "0.4/image_suite#0": {
    expect: false,
    marker: '"scale":[0.13,0.13]',
    reason: "scale [0.13, 0.13] for 3 axes (t,y,x): the spec says the scale MUST have one entry per axis; the 0.4 JSON schema cannot check lengths (the 0.5 suite fixed this case)",
  },
  "0.4/image_suite#11": {
    expect: true,
    marker: '"omero"',
    reason: "only the omero block is invalid (color is a number); omero is display metadata the reader does not validate",
  },
  "0.4/image_suite#27": {
    expect: true,
    marker: '"omero"',
    reason: "only the omero block is invalid (window.end is a string); omero is display metadata the reader does not validate",
  },
  "0.5/image_suite#10": {
    expect: true,
    marker: '"omero"',
    reason: "only the omero block is invalid (color is a number); omero is display metadata the reader does not validate",
  },
  "0.5/image_suite#25": {
    expect: true,
    marker: '"omero"',
    reason: "only the omero block is invalid (window.end is a string); omero is display metadata the reader does not validate",
  },
};

/** Removes `//` and `/* *\/` comments outside JSON strings (the examples are commented JSON). */
function stripJsonComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
    } else out += c;
  }
  return out;
}

function accepts(doc: unknown, version: string, where: string): { ok: true } | { ok: false; error: CellMapError } {
  try {
    parseMultiscales(doc, { path: where, zarrFormat: version === "0.4" ? 2 : 3 });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof CellMapError)) throw err; // anything else is a bug, not a rejection
    return { ok: false, error: err };
  }
}

/** Short summary of a case for the test name (descriptions are all "TBD" upstream). */
function summarize(data: unknown): string {
  const s = JSON.stringify(data);
  return s.length > 70 ? `${s.slice(0, 67)}...` : s;
}

for (const version of ["0.4", "0.5"]) {
  const dir = path.join(ngffRoot, version);
  describe(`NGFF ${version}`, () => {
    for (const suite of ["image_suite", "strict_image_suite"]) {
      const file = path.join(dir, "tests", `${suite}.json`);
      const { tests } = JSON.parse(fs.readFileSync(file, "utf8")) as { tests: SuiteCase[] };
      describe(suite, () => {
        tests.forEach((tc, i) => {
          const key = `${version}/${suite}#${i}`;
          const deviation = DEVIATIONS[key];
          const expected = deviation ? deviation.expect : tc.valid;
          const label = `#${i} ${tc.description}: ${tc.valid ? "valid" : "invalid"}${deviation ? ` (deviation: we ${expected ? "accept" : "reject"})` : ""} ${summarize(tc.data)}`;
          it(label, (t) => {
            if (deviation) {
              t.diagnostic(`deviation from the suite: ${deviation.reason}`);
              assert.ok(JSON.stringify(tc.data).includes(deviation.marker), `deviation ${key} no longer matches its case`);
            }
            const r = accepts(tc.data, version, key);
            if (expected) assert.ok(r.ok, `expected accept, got: ${r.ok ? "" : r.error.message}`);
            else {
              assert.ok(!r.ok, "expected reject, but the document was accepted");
              assert.ok(["INVALID_METADATA", "UNSUPPORTED"].includes(r.error.code), r.error.message);
              assert.ok(r.error.message.includes(`[${key}]`), `message should name the document: ${r.error.message}`);
            }
          });
        });
      });
    }

    describe("examples", () => {
      const exampleDir = path.join(dir, "examples");
      for (const sub of fs.readdirSync(exampleDir).sort()) {
        for (const name of fs.readdirSync(path.join(exampleDir, sub)).sort()) {
          if (!name.endsWith(".json") || name.startsWith(".")) continue;
          const file = path.join(exampleDir, sub, name);
          const json = JSON.parse(stripJsonComments(fs.readFileSync(file, "utf8"))) as Record<string, unknown>;
          // 0.5 examples are whole zarr.json documents; 0.4 examples are .zattrs contents.
          const attrs = (json.zarr_format === 3 ? json.attributes : json) as Record<string, unknown>;
          const ome = attrs.ome as Record<string, unknown> | undefined;
          const isImage = "multiscales" in attrs || (ome !== undefined && "multiscales" in ome);
          it(`${sub}/${name}`, { skip: isImage ? false : "not a multiscales image (label/plate/well/bf2raw/series metadata)" }, () => {
            const r = accepts(attrs, version, `${version}/examples/${sub}/${name}`);
            assert.ok(r.ok, r.ok ? "" : r.error.message);
          });
        }
      }
    });
  });
}
