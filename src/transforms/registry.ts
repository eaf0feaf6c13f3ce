/**
 * Rebuilding transforms from their JSON specs, e.g. inside a worker thread. Built-ins are data
 * (`{ type, params }`) and rebuild synchronously with {@link transformFromSpec}; user transforms
 * are `{ type: "module", module, export, params }` and need the async {@link loadTransform},
 * which imports the module (anywhere in a Compose/PerClass tree).
 */
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { CellMapError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import type { Tensor } from "../tensor.js";
import { GaussianBlur, type GaussianBlurParams } from "./augment/blur.js";
import { checkTransform, Compose, PerClass } from "./augment/compose.js";
import { DefectAugment } from "./augment/defects.js";
import { IntensityScaleShift } from "./augment/scale-shift.js";
import { RandomContrast, RandomGamma } from "./augment/intensity.js";
import { GaussianNoise } from "./augment/noise.js";
import { Normalize, ToDtype } from "./augment/normalize.js";
import { Binarize, NaNtoNum } from "./augment/threshold.js";
import { Affinities } from "./targets/affinities.js";
import { DistanceTransform } from "./targets/distance.js";
import type { TransformSpec, ValueTransform } from "./types.js";
import { parseOrThrow } from "./validate.js";

type Params = Record<string, unknown> | undefined;

/** Constructors of the built-in leaf transforms, keyed by spec `type`. */
const LEAVES: Record<string, (p: Params) => ValueTransform> = {
  Normalize: (p) => new Normalize(p),
  ToDtype: (p) => new ToDtype(p),
  GaussianNoise: (p) => new GaussianNoise(p),
  RandomContrast: (p) => new RandomContrast(p as never),
  RandomGamma: (p) => new RandomGamma(p as never),
  GaussianBlur: (p) => new GaussianBlur(p as unknown as GaussianBlurParams),
  Binarize: (p) => new Binarize(p),
  DefectAugment: (p) => new DefectAugment(p as never),
  IntensityScaleShift: (p) => new IntensityScaleShift(p as never),
  NaNtoNum: (p) => new NaNtoNum(p),
  DistanceTransform: (p) => new DistanceTransform(p as never),
  Affinities: (p) => new Affinities(p as never),
};

/** Spec `type`s that {@link transformFromSpec} understands (plus `"module"` for {@link loadTransform}). */
export const BUILTIN_TRANSFORMS: readonly string[] = [...Object.keys(LEAVES), "Compose", "PerClass"];

const specSchema = z.looseObject({ type: z.string().min(1), params: z.unknown().optional() });
const composeParams = z.strictObject({ transforms: z.array(z.unknown()) });
const perClassParams = z.strictObject({ transforms: z.record(z.string(), z.unknown()), classes: z.array(z.string()).optional() });
const moduleSpec = z.strictObject({ type: z.literal("module"), module: z.string().min(1), export: z.string().min(1).default("default"), params: z.unknown().optional() });

function checkSpec(spec: unknown, where: string): TransformSpec {
  const s = parseOrThrow(specSchema, spec, where);
  if (s.type !== "module") {
    const extra = Object.keys(s).filter((k) => k !== "type" && k !== "params");
    if (extra.length) throw new CellMapError("INVALID_ARGUMENT", `unknown key(s) ${extra.map((k) => JSON.stringify(k)).join(", ")} in ${where}`, where);
  }
  return s;
}

/**
 * Rebuilds a built-in transform (or a Compose/PerClass tree of them) from its `toJSON()` spec.
 * Throws `INVALID_ARGUMENT` naming the unknown type or bad parameter, and for `"module"` specs,
 * which must go through {@link loadTransform}.
 */
export function transformFromSpec(spec: TransformSpec | unknown, where = "transform"): ValueTransform {
  const s = checkSpec(spec, where);
  const params = s.params as Params;
  switch (s.type) {
    case "module":
      throw new CellMapError("INVALID_ARGUMENT", `${where} is a module transform; load it with the async loadTransform()`, where);
    case "Compose": {
      const p = parseOrThrow(composeParams, params, `${where}.params`);
      return new Compose(p.transforms.map((c, i) => transformFromSpec(c, `${where}.params.transforms[${i}]`)));
    }
    case "PerClass": {
      const p = parseOrThrow(perClassParams, params, `${where}.params`);
      const map: Record<string, ValueTransform> = {};
      for (const [k, c] of Object.entries(p.transforms)) map[k] = transformFromSpec(c, `${where}.params.transforms.${k}`);
      return new PerClass(map, p.classes);
    }
    default: {
      const make = LEAVES[s.type];
      if (!make) {
        throw new CellMapError(
          "INVALID_ARGUMENT",
          `unknown transform type ${JSON.stringify(s.type)} in ${where} (known: ${BUILTIN_TRANSFORMS.join(", ")}, module)`,
          `${where}.type`,
        );
      }
      return make(params);
    }
  }
}

/**
 * Like {@link transformFromSpec} but also resolves user transforms
 * `{ type: "module", module: "/abs/file.js" | "file:///…", export: "name", params }` anywhere in
 * the tree, by dynamic `import()`. The export is either a class (`new Export(params)`) or a
 * factory (`await Export(params)`) producing a {@link ValueTransform}; the result is wrapped so
 * that its `toJSON()` returns the module spec again (it can be re-sent to other workers).
 */
export async function loadTransform(spec: TransformSpec | unknown, where = "transform"): Promise<ValueTransform> {
  const s = checkSpec(spec, where);
  if (s.type === "module") return loadModuleTransform(s, where);
  if (s.type === "Compose") {
    const p = parseOrThrow(composeParams, s.params, `${where}.params`);
    return new Compose(await Promise.all(p.transforms.map((c, i) => loadTransform(c, `${where}.params.transforms[${i}]`))));
  }
  if (s.type === "PerClass") {
    const p = parseOrThrow(perClassParams, s.params, `${where}.params`);
    const map: Record<string, ValueTransform> = {};
    for (const [k, c] of Object.entries(p.transforms)) map[k] = await loadTransform(c, `${where}.params.transforms.${k}`);
    return new PerClass(map, p.classes);
  }
  return transformFromSpec(s, where);
}

/** A user transform loaded from a module; serialises back to its module spec. */
export class ModuleTransform implements ValueTransform {
  constructor(
    readonly spec: TransformSpec,
    readonly inner: ValueTransform,
  ) {}
  apply(t: Tensor, rng: Rng): Tensor {
    return this.inner.apply(t, rng);
  }
  toJSON(): TransformSpec {
    return { ...this.spec };
  }
}

async function loadModuleTransform(raw: TransformSpec, where: string): Promise<ValueTransform> {
  const s = parseOrThrow(moduleSpec, raw, where);
  let url: string;
  if (s.module.startsWith("file:")) url = s.module;
  else if (isAbsolute(s.module)) url = pathToFileURL(s.module).href;
  else {
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `${where}.module must be an absolute path or a file: URL (workers resolve nothing relative), got ${JSON.stringify(s.module)}`,
      `${where}.module`,
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new CellMapError("NOT_FOUND", `cannot import transform module ${s.module}: ${(err as Error).message}`, `${where}.module`, { cause: err });
  }
  const exp = mod[s.export];
  if (typeof exp !== "function") {
    throw new CellMapError("INVALID_ARGUMENT", `module ${s.module} has no function/class export ${JSON.stringify(s.export)}`, `${where}.export`);
  }
  const made: unknown = isClass(exp) ? new (exp as new (p: unknown) => unknown)(s.params) : await (exp as (p: unknown) => unknown)(s.params);
  checkTransform(made, `${where} (${s.module}#${s.export})`);
  const spec: TransformSpec = { type: "module", module: s.module, export: s.export };
  if (s.params !== undefined) spec.params = s.params;
  return new ModuleTransform(spec, made);
}

function isClass(f: Function): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(f)) || (typeof f.prototype === "object" && f.prototype !== null && typeof f.prototype.apply === "function");
}
