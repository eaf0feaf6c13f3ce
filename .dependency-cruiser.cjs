/**
 * The import rules of `src/` (run by `npm run lint`): no import circles; the layers of
 * docs/architecture.md, each importing only the layers below it; and no import of another
 * layer's internals (`INTERNALS`). Type-only imports count.
 *
 * Layers, lowest first (a folder of `src/`, or a file at its top):
 */
const LAYERS = [
  ["util", "errors.ts", "warnings.ts", "tensor.ts", "options"],
  ["kernels"],
  ["store"],
  ["zarr"],
  ["plane"],
  ["ome", "geometry"],
  ["image"],
  ["transforms"],
  ["sampling"],
  ["dataset"],
  ["loader"],
  ["writer"],
  ["config"],
  ["net", "viz"],
  ["serve", "demo"],
  ["cli", "index.ts", "entry"],
];

const path = (name) => (name.endsWith(".ts") ? `^src/${name.replace(".", "\\.")}$` : `^src/${name}/`);
const paths = (names) => names.map(path);

/** One rule per layer: it may not import any layer above it. */
const upward = LAYERS.slice(0, -1).map((names, i) => ({
  name: `layer-${names[0]}`,
  severity: "error",
  comment: `${names.join(", ")} may import only the layers below it (docs/architecture.md), not ${LAYERS.slice(i + 1).flat().join(", ")}`,
  from: { path: paths(names) },
  to: { path: paths(LAYERS.slice(i + 1).flat()) },
}));

/**
 * Each layer's internals: modules only their own folder imports. Other layers reach the layer
 * through its other modules (for zarr/write, its index).
 */
const INTERNALS = {
  kernels: ["gather-wasm.ts"],
  store: ["transport.ts"],
  zarr: ["codecs/(?!register\\.ts$)", "direct.ts", "float16.ts", "write/(?!index\\.ts$)"],
  plane: ["chunk-cache.ts", "lock.ts"],
  ome: ["layout.ts", "parse.ts", "schema.ts", "units.ts"],
  image: ["counts.ts", "grid.ts", "resample.ts", "rotated.ts"],
  transforms: ["validate.ts", "targets/edt.ts"],
  dataset: ["csv.ts", "description.ts"],
  loader: ["batch-pool.ts", "iterator.ts", "memory.ts", "order.ts", "pool.ts", "reclaim.ts", "sampling.ts", "worker.ts"],
  writer: ["blend-store.ts", "blend.ts", "downsample.ts", "ome-metadata.ts", "resume.ts", "tile-plan.ts", "tiling.ts"],
  config: ["schema.ts"],
  options: ["introspect.ts"],
  viz: ["font.ts"],
};

const internal = Object.entries(INTERNALS).map(([layer, files]) => ({
  name: `internal-${layer}`,
  severity: "error",
  comment: `${files.join(", ")} of ${layer}/ are its internals: only ${layer}/ imports them`,
  from: { path: "^src/", pathNot: `^src/${layer}/` },
  to: { path: files.map((f) => `^src/${layer}/${f.replace(/\.ts$/, "\\.ts$")}`) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "no import circles (type-only imports included)", from: { path: "^src/" }, to: { circular: true } },
    ...upward,
    ...internal,
    {
      name: "no-unknown-layer",
      severity: "error",
      comment: "every module of src/ belongs to a layer of .dependency-cruiser.cjs (add a new folder to LAYERS)",
      from: { path: "^src/", pathNot: paths(LAYERS.flat()) },
      to: {},
    },
    {
      name: "cli-only-from-cli",
      severity: "error",
      comment: "the command line is the top: nothing in the library imports it",
      from: { path: "^src/", pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".mjs", ".cjs"],
    },
  },
};
