/**
 * Plugs the fast codecs into zarrita's codec registry (and takes them out again).
 *
 * zarrita's registry is module state, so it is per thread: every worker_thread that reads
 * zarr data must call {@link registerFastCodecs} itself.
 */

import { registry } from "zarrita";
import { BloscCodec } from "./blosc.js";
import { Lz4Codec } from "./lz4.js";
import type { CodecEntry } from "./shared.js";
import { DeflateCodec } from "./zlib.js";
import { ZstdCodec, zstdBackend } from "./zstd.js";

type Loader = () => Promise<CodecEntry>;
type RegistryLoader = Parameters<typeof registry.set>[1];

/** Codec families we replace, with their v3 and v2 (numcodecs) registry names. */
const FAMILIES = {
  blosc: ["blosc", "numcodecs.blosc"],
  zstd: ["zstd", "numcodecs.zstd"],
  gzip: ["gzip", "numcodecs.gzip"],
  zlib: ["zlib", "numcodecs.zlib"],
  lz4: ["lz4", "numcodecs.lz4"],
} as const;
type Family = keyof typeof FAMILIES;

function entryFor(family: Family, name: string): CodecEntry {
  switch (family) {
    case "blosc":
      return BloscCodec.entry(name);
    case "zstd":
      return ZstdCodec.entry(name);
    case "gzip":
      return DeflateCodec.entry(name, "gzip");
    case "zlib":
      return DeflateCodec.entry(name, "zlib");
    case "lz4":
      return Lz4Codec.entry(name);
  }
}

const ALL_NAMES: string[] = Object.values(FAMILIES).flat();

// zarrita's own loaders, captured before we replace anything.
const defaults = new Map<string, RegistryLoader | undefined>(ALL_NAMES.map((n) => [n, registry.get(n)]));

// One stable loader per name, so registration is idempotent and detectable by identity.
const fast = new Map<string, Loader>();
for (const [family, names] of Object.entries(FAMILIES) as [Family, readonly string[]][]) {
  for (const name of names) {
    const entry = entryFor(family, name);
    fast.set(name, () => Promise.resolve(entry));
  }
}

/** Whether this thread chose its codecs (then {@link installDefaultCodecs} leaves them alone). */
let chosen = false;

/**
 * Installs the fast codecs in this thread unless codecs were already chosen here (with
 * {@link registerFastCodecs} or {@link registerWasmCodecs}). Opening an array calls it, so every
 * thread decodes at native speed by default, without an import side effect.
 */
export function installDefaultCodecs(): void {
  if (!chosen) registerFastCodecs();
}

/**
 * Replaces zarrita's blosc/zstd/gzip/zlib/lz4 codecs (v3 and v2 names) with the fast ones in
 * this thread. Idempotent. A no-op when the environment variable `CELLMAP_CODECS=wasm` is set
 * (escape hatch back to zarrita's defaults).
 */
export function registerFastCodecs(): void {
  chosen = true;
  if (process.env.CELLMAP_CODECS === "wasm") return;
  for (const [name, loader] of fast) registry.set(name, loader as unknown as RegistryLoader);
}

/** Restores zarrita's default codecs for the names {@link registerFastCodecs} replaces. */
export function registerWasmCodecs(): void {
  chosen = true;
  for (const name of ALL_NAMES) {
    const d = defaults.get(name);
    if (d) registry.set(name, d);
    else registry.delete(name);
  }
}

/**
 * Which implementation each codec family uses in this thread, e.g.
 * `{ blosc: "ts", zstd: "zstd-napi", gzip: "node:zlib", zlib: "node:zlib", lz4: "ts" }` after
 * {@link registerFastCodecs}, or `"wasm"` / `"zarrita"` for zarrita's defaults. A family whose
 * registry entries were replaced by someone else reads `"custom"`. `blosc-zstd` tells how
 * zstd-compressed blosc streams are decoded.
 */
export function codecBackends(): Record<string, string> {
  const zstd = zstdBackend();
  const fastName: Record<Family, string> = { blosc: "ts", zstd, gzip: "node:zlib", zlib: "node:zlib", lz4: "ts" };
  const defaultName: Record<Family, string> = { blosc: "wasm", zstd: "wasm", gzip: "zarrita", zlib: "zarrita", lz4: "wasm" };
  const out: Record<string, string> = {};
  for (const [family, names] of Object.entries(FAMILIES) as [Family, readonly string[]][]) {
    const current = names.map((n) => registry.get(n));
    if (current.every((l, i) => l === (fast.get(names[i]) as unknown))) out[family] = fastName[family];
    else if (current.every((l, i) => l === defaults.get(names[i]))) out[family] = defaultName[family];
    else out[family] = "custom";
  }
  out["blosc-zstd"] = out.blosc === "ts" ? zstd : out.blosc;
  return out;
}
