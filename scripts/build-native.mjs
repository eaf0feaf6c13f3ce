// Builds native/remap.c (the zero-copy path of serve's shared-memory transport) with the
// node-gyp npm ships. Optional: when it cannot be built (no compiler, not Linux) it says so in
// one line and the transport copies batches instead. Run by `npm install` / `npm ci`.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
if (process.platform !== "linux") {
  console.log("build-native: not Linux; serve's shared memory copies batches");
  process.exit(0);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !fs.existsSync(gyp)) {
  try {
    gyp = createRequire(path.join(path.dirname(process.execPath), "../lib/node_modules/npm/package.json")).resolve("node-gyp/bin/node-gyp.js");
  } catch {
    gyp = undefined;
  }
}
if (!gyp) {
  console.log("build-native: node-gyp not found; serve's shared memory copies batches");
  process.exit(0);
}
// Build against the running Node's own headers when it has them (no download).
const prefix = path.resolve(path.dirname(process.execPath), "..");
const nodedir = process.env.npm_config_nodedir || (fs.existsSync(path.join(prefix, "include/node/node_api.h")) ? prefix : undefined);
const r = spawnSync(process.execPath, [gyp, "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: root, encoding: "utf8" });
if (r.status !== 0) {
  console.log(`build-native: could not build native/remap.c (${(r.stderr || r.stdout).trim().split("\n").pop()}); serve's shared memory copies batches`);
} else {
  console.log("build-native: built build/Release/cellmap_remap.node");
}
