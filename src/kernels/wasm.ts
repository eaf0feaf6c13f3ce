/**
 * The few WebAssembly JS-API members the data plane uses, typed locally: the package's
 * declarations then need neither the DOM lib nor a newer `@types/node` from their consumers.
 */

/** A `WebAssembly.Memory` (shared: its `buffer` is a SharedArrayBuffer). */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/** `globalThis.WebAssembly`. */
export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };

/** `Atomics.waitAsync` (ES2024; in Node since 16). */
export const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
