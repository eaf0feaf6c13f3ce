/**
 * The import rules of `src/` (run by `npm run lint`): no import circles, and the layers of
 * docs/architecture.md, each importing only the layers below it. Type-only imports count.
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

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "no import circles (type-only imports included)", from: { path: "^src/" }, to: { circular: true } },
    ...upward,
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
