import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chooseLevel, intersectBoxes, levelBoundingBox, samplingBox } from "../src/geometry/level.js";
import { axisAligned } from "../src/image/resample.js";

describe("chooseLevel", () => {
  const levels = [
    [4, 4, 4],
    [8, 8, 8],
    [16, 16, 16],
  ];
  it("picks the coarsest level not coarser than the request", () => {
    assert.equal(chooseLevel(levels, [4, 4, 4]), 0);
    assert.equal(chooseLevel(levels, [6, 6, 6]), 0);
    assert.equal(chooseLevel(levels, [8, 8, 8]), 1);
    assert.equal(chooseLevel(levels, [15.9, 15.9, 15.9]), 1);
    assert.equal(chooseLevel(levels, [100, 100, 100]), 2);
  });
  it("falls back to s0 when the request is finer than s0", () => {
    assert.equal(chooseLevel(levels, [2, 2, 2]), 0);
  });
  it("respects every axis (anisotropic)", () => {
    const an = [
      [40, 4, 4],
      [40, 8, 8],
      [80, 16, 16],
    ];
    assert.equal(chooseLevel(an, [40, 8, 8]), 1);
    assert.equal(chooseLevel(an, [16, 16, 16]), 0);
  });
  it("uses a relative tolerance of 1e-3", () => {
    assert.equal(chooseLevel(levels, [7.995, 7.995, 7.995]), 1);
    assert.equal(chooseLevel(levels, [7.9, 7.9, 7.9]), 0);
  });
});

describe("boxes", () => {
  it("bounding box is the span of voxel centres +- half a voxel", () => {
    const b = levelBoundingBox([10, 20, 30], [8, 4, 2], [100, 0, -5]);
    assert.deepEqual(b.lo, [96, -2, -6]);
    assert.deepEqual(b.hi, [100 + 9 * 8 + 4, 19 * 4 + 2, -5 + 29 * 2 + 1]);
  });
  it("sampling box keeps every sample inside the voxel-centre span", () => {
    const b = samplingBox([128], [8], [0], [64], [8], false)!;
    assert.deepEqual(b.lo, [31.5 * 8]);
    assert.deepEqual(b.hi, [127 * 8 - 31.5 * 8]);
  });
  it("small image: single centre with pad, null without", () => {
    assert.deepEqual(samplingBox([10], [8], [0], [100], [8], true), { lo: [36], hi: [36] });
    assert.equal(samplingBox([10], [8], [0], [100], [8], false), null);
  });
  it("intersection", () => {
    assert.deepEqual(
      intersectBoxes([
        { lo: [0, 0], hi: [10, 10] },
        { lo: [5, -1], hi: [20, 8] },
      ]),
      { lo: [5, 0], hi: [10, 8] },
    );
    assert.equal(
      intersectBoxes([
        { lo: [0], hi: [1] },
        { lo: [2], hi: [3] },
      ]),
      null,
    );
    assert.equal(intersectBoxes([{ lo: [0], hi: [1] }, null]), null);
  });
});

describe("axisAligned", () => {
  it("decomposes signed permutations and rejects rotations", () => {
    assert.deepEqual(axisAligned(null), { perm: [0, 1, 2], sign: [1, 1, 1] });
    assert.deepEqual(
      axisAligned([
        [1, 0, 0],
        [0, 0, -1],
        [0, 1, 0],
      ]),
      { perm: [0, 2, 1], sign: [1, 1, -1] },
    );
    const c = Math.cos(0.3),
      s = Math.sin(0.3);
    assert.equal(
      axisAligned([
        [1, 0, 0],
        [0, c, -s],
        [0, s, c],
      ]),
      null,
    );
  });
});
