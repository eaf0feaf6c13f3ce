/**
 * The displacement of a sample grid (elastic deformation and section misalignment, drawn in
 * `transforms/`): what the image reader needs of it, as types, so that the transforms layer can
 * provide it and the kernels can consume it.
 */

/**
 * A smooth displacement of the sample grid (elastic deformation, `transforms/elastic.ts`): the
 * output offset `o` (nm from the centre) samples `centre + A·(o + d(o))`.
 */
export interface Displacement {
  /** Bound on |d| per axis (nm, z y x): how far the read window must reach. */
  readonly maxDisplacement: readonly number[];
  /**
   * `Σ_a weights[a]·d_a` at every voxel of a patch of `shape` voxels of `scale` nm (C order), or
   * null where it is 0 everywhere (no axis with weight moves).
   */
  field(shape: readonly number[], scale: readonly number[], weights: readonly number[]): Float32Array | null;
  /**
   * The same field before its last (z) pass, when it is a separable B-spline: `planes` (planes
   * of the output's y·x, one per control z), and per output section the first plane and four
   * weights. `field` equals `Σ_r w[4i+r]·planes[first[i]+r]` summed in that order in f64. The
   * kernels run the last pass in the scratch arena. Absent or null: use `field`.
   */
  separable?(shape: readonly number[], scale: readonly number[], weights: readonly number[]): SeparableField | null;
}

/** A B-spline field before its z pass (see {@link Displacement.separable}). */
export interface SeparableField {
  planes: Float32Array;
  first: Int32Array;
  w: Float64Array;
}
