/**
 * The registry of dataset description kinds: what re-opens a `describe()` output, here and in a
 * loader's worker threads (which import this module and call {@link openDescription}).
 *
 * Built-in kinds are listed in {@link BUILTIN_DESCRIPTION_KINDS}, explicitly, not registered by
 * importing their modules. Other kinds are added with {@link registerDescriptionKind}: the
 * writer's `CellMapDatasetWriter` (its module registers it, since the writer sits above this
 * layer) and users' own dataset classes. A registration is per thread, so a kind that worker
 * threads must re-open either
 * - is registered by a module the worker imports anyway (the writer, via the loader), or
 * - names that module in its description: `describe()` returns `{ kind, module: import.meta.url,
 *   … }` (an absolute path or `file:` URL, as for module transforms), and a thread that does not
 *   know the kind imports `module` once, which must call `registerDescriptionKind(kind, …)`.
 * A registered kind is looked up before the built-ins, so registering a built-in name replaces
 * it (in that thread).
 *
 * `multi.ts` and `subset.ts` re-open their children through the `open` this registry passes
 * them (a {@link DescriptionContext}), so they do not import it.
 */
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { CellMapError } from "../errors.js";
import { CellMapDataset } from "./dataset.js";
import type { CellMapDatasetDescription } from "./description.js";
import { CellMapMultiDataset, type CellMapMultiDatasetDescription } from "./multi.js";
import { CellMapSubset, type CellMapSubsetDescription } from "./subset.js";
import { registeredDescriptionKind, registeredDescriptionKinds, type DatasetDescription, type DatasetLike, type DescriptionOpener, type OpenDescriptionOptions } from "./types.js";

export { registerDescriptionKind, type DescriptionOpener } from "./types.js";

/** The dataset layer's own kinds and how each is re-opened. */
export const BUILTIN_DESCRIPTION_KINDS: ReadonlyMap<string, DescriptionOpener> = new Map<string, DescriptionOpener>([
  ["CellMapDataset", (d, o) => CellMapDataset.fromDescription(d as CellMapDatasetDescription, o)],
  ["CellMapMultiDataset", (d, o) => CellMapMultiDataset.fromDescription(d as CellMapMultiDatasetDescription, o)],
  ["CellMapSubset", (d, o) => CellMapSubset.fromDescription(d as CellMapSubsetDescription, o)],
]);

/** Every kind this thread can re-open: the built-ins, then those registered here. */
export function descriptionKinds(): string[] {
  return [...new Set([...BUILTIN_DESCRIPTION_KINDS.keys(), ...registeredDescriptionKinds()])];
}

function openerOf(kind: string): DescriptionOpener | undefined {
  return registeredDescriptionKind(kind) ?? BUILTIN_DESCRIPTION_KINDS.get(kind);
}

/** Imports the module a description names (it registers the description's kind). */
async function importKindModule(module: string, kind: string): Promise<void> {
  let url: string;
  if (module.startsWith("file:")) url = module;
  else if (isAbsolute(module)) url = pathToFileURL(module).href;
  else {
    throw new CellMapError(
      "INVALID_ARGUMENT",
      `description.module must be an absolute path or a file: URL (workers resolve nothing relative), got ${JSON.stringify(module)}`,
      "description.module",
    );
  }
  try {
    await import(url);
  } catch (err) {
    throw new CellMapError("NOT_FOUND", `cannot import the module of description kind ${JSON.stringify(kind)}, ${module}: ${(err as Error).message}`, "description.module", {
      cause: err,
    });
  }
}

/**
 * Re-opens a dataset, multi-dataset, subset (or any registered kind) from its `describe()`
 * output (e.g. in a worker thread). An unknown kind whose description names a `module` gets that
 * module imported first (see the module header).
 *
 * @throws `INVALID_ARGUMENT` for an unknown kind, naming the known ones.
 */
export async function openDescription(desc: DatasetDescription, opts: OpenDescriptionOptions = {}): Promise<DatasetLike> {
  const kind = (desc as { kind?: unknown })?.kind;
  let open = typeof kind === "string" ? openerOf(kind) : undefined;
  const module = (desc as { module?: unknown })?.module;
  if (!open && typeof kind === "string" && typeof module === "string") {
    await importKindModule(module, kind);
    open = openerOf(kind);
    if (!open)
      throw new CellMapError(
        "INVALID_ARGUMENT",
        `module ${module} did not register description kind ${JSON.stringify(kind)} (call registerDescriptionKind when it loads)`,
        "description.module",
      );
  }
  if (!open) {
    throw new CellMapError("INVALID_ARGUMENT", `unknown dataset description kind ${JSON.stringify(kind)} (known: ${descriptionKinds().join(", ")})`, "description.kind");
  }
  return open(desc, { ...opts, open: (child) => openDescription(child, opts) });
}
