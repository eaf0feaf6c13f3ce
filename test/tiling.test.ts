import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CellMapError } from "../src/errors.js";
import { axisContributors, axisFootprint, coreRange, gridFromBounds, makeTiling, tileAxis, tileBox, tileCoords, tileId } from "../src/writer/tiling.js";
import { accumulateTile, axisNormaliser, normaliseRegion, windowWeights, type BlendMode } from "../src/writer/blend.js";
import { downsample, downsampledShape } from "../src/writer/downsample.js";

/** (size, window, halo) with 2·halo < window. */
const axisArb = fc
  .record({ size: fc.integer({ min: 1, max: 300 }), window: fc.integer({ min: 1, max: 64 }), h: fc.nat({ max: 40 }) })
  .map(({ size, window, h }) => ({ size, window, halo: Math.min(h, Math.floor((window - 1) / 2)) }));

test("tileAxis: cores partition the axis, none dropped, each inside its window", () => {
  fc.assert(
    fc.property(axisArb, ({ size, window, halo }) => {
      const ax = tileAxis(size, window, halo);
      assert.equal(ax.starts.length, ax.count);
      assert.equal(ax.count, Math.ceil(size / ax.core));
      let next = 0;
      for (let k = 0; k < ax.count; k++) {
        const [lo, hi] = coreRange(ax, k);
        assert.equal(lo, next, "cores are contiguous");
        assert.ok(hi > lo, "no empty core");
        assert.ok(ax.starts[k] <= lo && hi <= ax.starts[k] + window, "core inside window");
        next = hi;
      }
      assert.equal(next, size, "the far edge is covered");
    }),
    { numRuns: 500 },
  );
});

test("tileAxis: windows stay inside the grid when it is at least one window long, and give halo context", () => {
  fc.assert(
    fc.property(axisArb, ({ size, window, halo }) => {
      const ax = tileAxis(size, window, halo);
      if (size >= window) {
        for (const s of ax.starts) assert.ok(s >= 0 && s + window <= size, `window [${s}, ${s + window}) inside [0, ${size})`);
        for (let k = 0; k < ax.count; k++) {
          const [lo, hi] = coreRange(ax, k);
          // Every core voxel has `halo` voxels of context on both sides (or the grid edge).
          assert.ok(ax.starts[k] <= Math.max(0, lo - halo));
          assert.ok(ax.starts[k] + window >= Math.min(size, hi + halo));
        }
        // Starts are non-decreasing: tiles are in spatial order.
        for (let k = 1; k < ax.count; k++) assert.ok(ax.starts[k] >= ax.starts[k - 1]);
      } else {
        assert.equal(ax.count, 1);
        assert.equal(ax.core, size);
        assert.ok(ax.starts[0] <= 0 && ax.starts[0] + window >= size, "single window covers the grid");
        // Centred within half a voxel.
        assert.ok(Math.abs(-ax.starts[0] - (ax.starts[0] + window - size)) <= 1);
      }
    }),
    { numRuns: 500 },
  );
});

test("makeTiling: every voxel of an n-d grid lies in exactly one core; ids round trip", () => {
  const ndArb = fc.integer({ min: 1, max: 3 }).chain((n) =>
    fc.array(
      axisArb.filter((a) => a.size <= 24),
      { minLength: n, maxLength: n },
    ),
  );
  fc.assert(
    fc.property(ndArb, (axes) => {
      const t = makeTiling(
        axes.map((a) => a.size),
        axes.map((a) => a.window),
        axes.map((a) => a.halo),
      );
      const size = axes.map((a) => a.size);
      const total = size.reduce((p, v) => p * v, 1);
      const hits = new Uint8Array(total);
      const strides = size.map((_, i) => size.slice(i + 1).reduce((p, v) => p * v, 1));
      for (let id = 0; id < t.count; id++) {
        assert.equal(tileId(t, tileCoords(t, id)), id);
        const b = tileBox(t, id);
        const ext = b.coreStart.map((s, a) => b.coreEnd[a] - s);
        const n = ext.reduce((p, v) => p * v, 1);
        for (let j = 0; j < n; j++) {
          let rest = j;
          let off = 0;
          for (let a = ext.length - 1; a >= 0; a--) {
            off += (b.coreStart[a] + (rest % ext[a])) * strides[a];
            rest = Math.floor(rest / ext[a]);
          }
          hits[off]++;
        }
      }
      assert.ok(
        hits.every((h) => h === 1),
        "each voxel in exactly one core",
      );
    }),
    { numRuns: 200 },
  );
});

test("footprints and contributors agree with window/core intersection", () => {
  fc.assert(
    fc.property(axisArb, ({ size, window, halo }) => {
      const ax = tileAxis(size, window, halo);
      const contrib = axisContributors(ax);
      for (let j = 0; j < ax.count; j++) {
        const [a, b] = axisFootprint(ax, j);
        for (let k = 0; k < ax.count; k++) {
          const [lo, hi] = coreRange(ax, k);
          const meets = ax.starts[j] < hi && ax.starts[j] + window > lo;
          assert.equal(k >= a && k <= b, meets);
          assert.equal(contrib[k].includes(j), meets);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test("tileAxis rejects bad halos and sizes", () => {
  assert.throws(
    () => tileAxis(10, 8, 4),
    (e: unknown) => e instanceof CellMapError && e.code === "INVALID_ARGUMENT",
  );
  assert.throws(() => tileAxis(0, 8, 0), CellMapError);
  assert.throws(() => tileAxis(10, 8, -1), CellMapError);
  assert.throws(
    () => tileCoords(makeTiling([10], [4], [0]), 3),
    (e: unknown) => e instanceof CellMapError && e.code === "OUT_OF_RANGE",
  );
});

test("gridFromBounds covers the bounds with the fewest voxels; translation is voxel 0's centre", () => {
  fc.assert(
    fc.property(fc.double({ min: -1e5, max: 1e5, noNaN: true }), fc.double({ min: 0.5, max: 5000, noNaN: true }), fc.constantFrom(1, 2, 3.5, 4, 8, 16), (lo, width, s) => {
      const g = gridFromBounds([lo], [lo + width], [s]);
      const n = g.shape[0];
      assert.ok(n >= 1);
      assert.ok(n * s >= width * (1 - 1e-9), "covers");
      if (n > 1) assert.ok((n - 1) * s < width, "no extra voxel");
      assert.equal(g.translation[0], lo + s / 2);
    }),
  );
  assert.deepEqual(gridFromBounds([0, 100], [256, 164], [8, 4]).shape, [32, 16]);
  assert.throws(() => gridFromBounds([5], [5], [1]), CellMapError);
});

test("blend weights: positive, symmetric; linear weights sum to 1 between unshifted windows", () => {
  for (const mode of ["linear", "gaussian"] as BlendMode[]) {
    for (const [P, H] of [
      [16, 4],
      [9, 2],
      [64, 8],
      [5, 0],
    ]) {
      const w = windowWeights(P, H, mode);
      for (let i = 0; i < P; i++) {
        assert.ok(w[i] > 0);
        assert.ok(Math.abs(w[i] - w[P - 1 - i]) < 1e-15);
      }
    }
  }
  // Where every window touching a voxel sits at its regular place (k·core - H, not shifted
  // inward at an edge), the linear weights form a partition of unity (when the ramps on the two
  // sides of a window do not meet, i.e. window >= 4·halo; elsewhere the normaliser handles it).
  fc.assert(
    fc.property(
      axisArb.filter((a) => a.window >= 4 * a.halo),
      ({ size, window, halo }) => {
        const ax = tileAxis(size, window, halo);
        const norm = axisNormaliser(ax, windowWeights(window, halo, "linear"));
        let checked = 0;
        for (let i = 0; i < size; i++) {
          assert.ok(norm[i] > 0);
          const regular = ax.starts.every((s, k) => {
            const r = k * ax.core - halo;
            const touches = (i >= r && i < r + window) || (i >= s && i < s + window);
            return !touches || s === r;
          });
          if (regular && ax.count > 1) {
            assert.ok(Math.abs(norm[i] - 1) < 1e-12, `W(${i}) = ${norm[i]}`);
            checked++;
          }
        }
        return checked >= 0;
      },
    ),
    { numRuns: 300 },
  );
});

test("blending constant windows gives the constant exactly (float32)", () => {
  fc.assert(
    fc.property(
      fc.array(
        axisArb.filter((a) => a.size <= 20 && a.window <= 12),
        { minLength: 3, maxLength: 3 },
      ),
      fc.constantFrom<BlendMode>("linear", "gaussian"),
      fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
      (axes, mode, value) => {
        const t = makeTiling(
          axes.map((a) => a.size),
          axes.map((a) => a.window),
          axes.map((a) => a.halo),
        );
        const weights = t.axes.map((ax) => windowWeights(ax.window, ax.halo, mode));
        const norm = t.axes.map((ax, a) => axisNormaliser(ax, weights[a]));
        const size = axes.map((a) => a.size);
        const acc = new Float64Array(size[0] * size[1] * size[2]);
        const window = axes.map((a) => a.window);
        const pred = new Float32Array(window[0] * window[1] * window[2]).fill(value);
        for (let id = 0; id < t.count; id++) {
          accumulateTile(acc, [1, ...size], [0, 0, 0], size, pred, [1, ...window], tileBox(t, id).windowStart, weights);
        }
        normaliseRegion(acc, [1, ...size], [0, 0, 0], size, norm);
        const out = Float32Array.from(acc);
        for (let i = 0; i < out.length; i++) assert.ok(Object.is(out[i], Math.fround(value)) || out[i] === Math.fround(value), `voxel ${i}: ${out[i]} vs ${value}`);
      },
    ),
    { numRuns: 150 },
  );
});

test("downsample: mean and mode over 2x blocks, partial edge blocks, channels kept", () => {
  // [C=2, z=1, y=3, x=3]
  const src = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 2, 1, 2, 2, 5, 5, 5]);
  const m = downsample(src, [2, 1, 3, 3], [1, 2, 2], "mean");
  assert.deepEqual(m.shape, [2, 1, 2, 2]);
  assert.deepEqual(Array.from(m.data), [3, 4.5, 7.5, 9, 1.25, 2, 5, 5]);
  const mo = downsample(src, [2, 1, 3, 3], [1, 2, 2], "mode");
  assert.deepEqual(Array.from(mo.data), [1, 3, 7, 9, 1, 2, 5, 5]); // ties -> smallest
  assert.deepEqual(downsampledShape([5, 4, 1], [2, 2, 2]), [3, 2, 1]);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.float({ noNaN: true, min: -100, max: 100 }), (z, y, x, v) => {
      const s = new Float32Array(z * y * x).fill(v);
      for (const method of ["mean", "mode"] as const) {
        const d = downsample(s, [1, z, y, x], [2, 2, 2], method);
        assert.deepEqual(d.shape, [1, Math.ceil(z / 2), Math.ceil(y / 2), Math.ceil(x / 2)]);
        for (const o of d.data) assert.ok(Math.abs(o - Math.fround(v)) <= 1e-5 * Math.max(1, Math.abs(v)));
      }
    }),
  );
});
