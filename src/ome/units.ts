/**
 * Spatial units of OME-NGFF axes, as factors to nanometres (the library's world unit).
 */
import { CellMapError } from "../errors.js";

/** Nanometres per unit for every UDUNITS-2 spatial unit name NGFF lists (plus `micron`). Written as
 * decimal literals in nm (not metres × 1e9) so that e.g. `micrometer` is exactly 1000. */
const NANOMETRES: Readonly<Record<string, number>> = {
  yoctometer: 1e-15,
  zeptometer: 1e-12,
  attometer: 1e-9,
  femtometer: 1e-6,
  picometer: 1e-3,
  angstrom: 0.1,
  nanometer: 1,
  micrometer: 1e3,
  micron: 1e3,
  millimeter: 1e6,
  centimeter: 1e7,
  decimeter: 1e8,
  meter: 1e9,
  decameter: 1e10,
  dekameter: 1e10,
  hectometer: 1e11,
  kilometer: 1e12,
  megameter: 1e15,
  gigameter: 1e18,
  terameter: 1e21,
  petameter: 1e24,
  exameter: 1e27,
  zettameter: 1e30,
  yottameter: 1e33,
  inch: 2.54e7,
  foot: 3.048e8,
  yard: 9.144e8,
  mile: 1.609344e12,
  parsec: 3.0856775814913673e25,
};

/**
 * Abbreviations, matched case-sensitively because SI prefixes differ only by case
 * (`mm` is milli, `Mm` is mega; `pm` pico, `Pm` peta).
 */
const ABBREVIATIONS: Readonly<Record<string, string>> = {
  ym: "yoctometer",
  zm: "zeptometer",
  am: "attometer",
  fm: "femtometer",
  pm: "picometer",
  A: "angstrom",
  Å: "angstrom", // U+00C5
  "\u212B": "angstrom", // U+212B ANGSTROM SIGN
  nm: "nanometer",
  um: "micrometer",
  µm: "micrometer", // U+00B5 MICRO SIGN
  μm: "micrometer", // U+03BC GREEK SMALL LETTER MU
  mm: "millimeter",
  cm: "centimeter",
  dm: "decimeter",
  m: "meter",
  dam: "decameter",
  hm: "hectometer",
  km: "kilometer",
  Mm: "megameter",
  Gm: "gigameter",
  Tm: "terameter",
  Pm: "petameter",
  Em: "exameter",
  Zm: "zettameter",
  Ym: "yottameter",
  in: "inch",
  ft: "foot",
  yd: "yard",
  mi: "mile",
  pc: "parsec",
};

/** Irregular plurals and spelling variants of the full names. */
const ALIASES: Readonly<Record<string, string>> = {
  feet: "foot",
  inches: "inch",
  microns: "micron",
  ångström: "angstrom",
  ångstrom: "angstrom",
  angstroem: "angstrom",
};

/** Canonical unit name for `unit`, or undefined when it is not a known spatial unit. */
function canonicalUnit(unit: string): string | undefined {
  if (Object.hasOwn(ABBREVIATIONS, unit)) return ABBREVIATIONS[unit];
  let name = unit.toLowerCase().replace(/metre(s?)$/, "meter$1"); // British spelling
  if (Object.hasOwn(ALIASES, name)) name = ALIASES[name];
  if (Object.hasOwn(NANOMETRES, name)) return name;
  if (name.endsWith("s") && Object.hasOwn(NANOMETRES, name.slice(0, -1))) return name.slice(0, -1); // plural
  return undefined;
}

/** Whether `unit` names a spatial unit {@link unitToNm} can convert. */
export function isSpatialUnit(unit: string): boolean {
  return canonicalUnit(unit.trim()) !== undefined;
}

/**
 * Factor converting a length in `unit` to nanometres (e.g. `micrometer` → 1000).
 *
 * Accepts the UDUNITS-2 spatial unit names NGFF recommends (`angstrom` … `yottameter`, `inch`,
 * `foot`, `yard`, `mile`, `parsec`), British `-metre` spellings, plurals, `micron`, and common
 * abbreviations (`nm`, `um`, `µm`, `μm`, `mm`, `m`, `A`, `Å`, …; abbreviations are case-sensitive).
 *
 * A missing (or blank) unit is taken as nanometres: NGFF makes `unit` optional and CellMap data is
 * written in nanometres, so this is the reading that matches the data the library targets.
 *
 * @param unit unit string from an axis, or undefined when the axis has none
 * @param path document/field path used in the error message
 * @throws CellMapError `INVALID_METADATA` for a unit that is not a known spatial unit
 */
export function unitToNm(unit: string | undefined, path: string): number {
  if (unit === undefined || unit.trim() === "") return 1;
  const name = canonicalUnit(unit.trim());
  if (name === undefined) {
    throw new CellMapError(
      "INVALID_METADATA",
      `unknown spatial unit "${unit}" (expected a UDUNITS-2 length such as nanometer, micrometer, millimeter, meter, angstrom, or nm/um/µm/mm/m)`,
      path,
    );
  }
  return NANOMETRES[name];
}
