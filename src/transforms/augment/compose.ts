/** Combinators: a sequence of transforms, and a per-class mapping over channels. */
import { CellMapError } from "../../errors.js";
import type { Rng } from "../../util/rng.js";
import type { Tensor } from "../../tensor.js";
import type { TransformSpec, ValueTransform } from "../types.js";

/**
 * Applies transforms in order, `y = tₙ(…t₂(t₁(x)))`, all drawing from the same `rng` (so the
 * result is still a function of the sample's seed). Returns whatever the last transform returns.
 */
export class Compose implements ValueTransform {
  readonly transforms: readonly ValueTransform[];
  constructor(transforms: readonly ValueTransform[]) {
    if (!Array.isArray(transforms)) throw new CellMapError("INVALID_ARGUMENT", "Compose expects an array of transforms", "Compose.transforms");
    transforms.forEach((t, i) => checkTransform(t, `Compose.transforms[${i}]`));
    this.transforms = [...transforms];
  }
  apply(t: Tensor, rng: Rng): Tensor {
    let x = t;
    for (const tr of this.transforms) x = tr.apply(x, rng);
    return x;
  }
  toJSON(): TransformSpec {
    return { type: "Compose", params: { transforms: this.transforms.map((t) => t.toJSON()) } };
  }
}

/** Throws unless `t` looks like a {@link ValueTransform}. */
export function checkTransform(t: unknown, where: string): asserts t is ValueTransform {
  if (typeof t !== "object" || t === null || typeof (t as ValueTransform).apply !== "function") {
    throw new CellMapError("INVALID_ARGUMENT", `${where} is not a transform (needs an apply(tensor, rng) method)`, where);
  }
}

/**
 * Per-target mapping `{ className: transform }`. Channel `c` of a `[nClasses, …]` target tensor
 * is transformed by `transforms[classes[c]]` (channels of classes without an entry are left as
 * they are), in channel order with the shared `rng`. Each channel is handed over as a view on
 * the tensor's buffer; a transform that returns a different buffer of the same size is copied
 * back. In place: returns `t`. A dataset that applies transforms per class image before stacking
 * can use {@link PerClass.forClass} instead and needs no `classes`.
 */
export class PerClass implements ValueTransform {
  readonly transforms: Readonly<Record<string, ValueTransform>>;
  readonly classes: readonly string[] | undefined;

  constructor(transforms: Record<string, ValueTransform>, classes?: readonly string[]) {
    if (typeof transforms !== "object" || transforms === null || Array.isArray(transforms)) {
      throw new CellMapError("INVALID_ARGUMENT", "PerClass expects an object { className: transform }", "PerClass.transforms");
    }
    for (const [k, t] of Object.entries(transforms)) checkTransform(t, `PerClass.transforms.${k}`);
    if (classes) {
      const unknown = Object.keys(transforms).filter((k) => !classes.includes(k));
      if (unknown.length) {
        throw new CellMapError(
          "INVALID_ARGUMENT",
          `PerClass has transforms for unknown class(es) ${unknown.map((k) => JSON.stringify(k)).join(", ")} (classes: ${classes.join(", ")})`,
          "PerClass.transforms",
        );
      }
    }
    this.transforms = { ...transforms };
    this.classes = classes ? [...classes] : undefined;
  }

  /** The same mapping bound to a channel order (validates the class names). */
  withClasses(classes: readonly string[]): PerClass {
    return new PerClass({ ...this.transforms }, classes);
  }

  /** The transform of one class, if any. */
  forClass(name: string): ValueTransform | undefined {
    return Object.hasOwn(this.transforms, name) ? this.transforms[name] : undefined;
  }

  apply(t: Tensor, rng: Rng): Tensor {
    const classes = this.classes;
    if (!classes) throw new CellMapError("INVALID_ARGUMENT", "PerClass.apply needs the channel class order (use withClasses)", "PerClass.classes");
    if (t.shape.length < 1 || t.shape[0] !== classes.length) {
      throw new CellMapError("INVALID_ARGUMENT", `PerClass expects ${classes.length} class channels first, got shape [${t.shape}]`, "PerClass");
    }
    const per = t.data.length / classes.length;
    classes.forEach((name, c) => {
      const tr = this.forClass(name);
      if (!tr) return;
      const view: Tensor = { data: t.data.subarray(c * per, (c + 1) * per), shape: t.shape.slice(1), sourceDtype: t.sourceDtype };
      const out = tr.apply(view, rng);
      if (out.data.length !== per) {
        throw new CellMapError(
          "INVALID_ARGUMENT",
          `PerClass transform for ${JSON.stringify(name)} changed the channel size (${per} -> ${out.data.length})`,
          `PerClass.transforms.${name}`,
        );
      }
      if (out.data !== view.data) t.data.set(out.data, c * per);
    });
    return t;
  }

  toJSON(): TransformSpec {
    const transforms: Record<string, TransformSpec> = {};
    for (const [k, tr] of Object.entries(this.transforms)) transforms[k] = tr.toJSON();
    return { type: "PerClass", params: this.classes ? { transforms, classes: [...this.classes] } : { transforms } };
  }
}
