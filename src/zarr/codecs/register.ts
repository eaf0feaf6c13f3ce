/**
 * Plugs the fast codecs into zarrita's codec registry (and takes them out again).
 *
 * zarrita's registry is module state, so it is per thread: every worker_thread that reads
 * zarr data must call {@link registerFastCodecs} itself.
 *
 * "zarrita's WASM codecs" ({@link registerWasmCodecs}, `CELLMAP_CODECS=wasm`) are zarrita's
 * defaults behind the damage checks of `checked.ts` (numcodecs' WASM blosc does not report
 * damage). Both choices install a crc32c codec that verifies its checksum (shard indexes).
 */

import { registry } from "zarrita";
import { BloscCodec } from "./blosc/codec.js";
import { checkedWasmCodec, Crc32cCodec, type RegistryCodecClass } from "./checked.js";
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

// zarrita's loaders behind the damage checks (encoding with the fast codecs), one stable loader
// per name (loaded on first use).
const wasm = new Map<string, RegistryLoader | undefined>();
for (const [family, names] of Object.entries(FAMILIES) as [Family, readonly string[]][]) {
  for (const name of names) {
    const d = defaults.get(name);
    if (!d) continue;
    let checked: Promise<RegistryCodecClass> | undefined;
    const loader = () => (checked ??= Promise.resolve(d()).then((C) => checkedWasmCodec(family, name, C as unknown as RegistryCodecClass, entryFor(family, name))));
    wasm.set(name, loader as unknown as RegistryLoader);
  }
}

// The verifying crc32c codec (zarrita's drops the checksum unread), for every choice.
const crc32cLoader = (() => Crc32cCodec) as unknown as RegistryLoader;

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
 * this thread. Idempotent. When the environment variable `CELLMAP_CODECS=wasm` is set (escape
 * hatch back to zarrita's codecs) it does what {@link registerWasmCodecs} does instead.
 */
export function registerFastCodecs(): void {
  if (process.env.CELLMAP_CODECS === "wasm") {
    registerWasmCodecs();
    return;
  }
  chosen = true;
  for (const [name, loader] of fast) registry.set(name, loader as unknown as RegistryLoader);
  registry.set("crc32c", crc32cLoader);
}

/**
 * Puts zarrita's default codecs back for the names {@link registerFastCodecs} replaces, each
 * behind the checks of `checked.ts` so that damaged chunks raise `CORRUPT_CHUNK` instead of
 * decoding to zeros or stale bytes. Encoding (the writer) still uses the fast codecs' encoders.
 */
export function registerWasmCodecs(): void {
  chosen = true;
  for (const name of ALL_NAMES) {
    const d = wasm.get(name);
    if (d) registry.set(name, d);
    else registry.delete(name);
  }
  registry.set("crc32c", crc32cLoader);
}

/**
 * Whether this thread decodes the v2 compressor `id` (`blosc`, `zstd`, `lz4`, …) with the fast
 * codecs, i.e. whether a decode that goes around zarrita (the direct decode into cache slots)
 * matches what zarrita would do.
 */
export function fastCodecActive(id: string): boolean {
  const name = `numcodecs.${id}`;
  const f = fast.get(name);
  return f !== undefined && registry.get(name) === (f as unknown);
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
    else if (current.every((l, i) => l === wasm.get(names[i]) || l === defaults.get(names[i]))) out[family] = defaultName[family];
    else out[family] = "custom";
  }
  out["blosc-zstd"] = out.blosc === "ts" ? zstd : out.blosc;
  return out;
}
