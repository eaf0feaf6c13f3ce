/**
 * Builds the WebAssembly gather kernels (`src/kernels/gather-wasm.ts`) from the WebAssembly
 * text written out below, with wabt (a dev dependency). Run `npm run build:kernels` after
 * editing; `test/kernels.test.ts` fails when the committed module is not what this script makes.
 *
 * Why WebAssembly: the read path's one copy per voxel (chunk cache → batch, widening to
 * float32) bounds the loader. Measured on the 2-core dev machine: a 64^3 uint8 → float32 box
 * gather runs at 0.4–0.7 Gvoxel/s as a JS loop (0.3 with `TypedArray#set` per row), 3.5 Gvoxel/s
 * with these 128-bit SIMD rows. No library offers strided widening gathers on shared memory.
 *
 * Every kernel copies a zn × yn × xn box: source row (z, y) starts at `src + z*s0 + y*s1` and
 * holds xn contiguous elements; destination row starts at `dst + z*d0 + y*d1` (float32).
 * Addresses and strides are bytes. A row runs SIMD steps, then one overlapping step that ends
 * exactly at the row's end (rewriting a few voxels with the same values), then scalar voxels
 * only for rows shorter than one step.
 */
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

interface Kind {
  name: string;
  /** Source bytes per element (log2). */
  shift: number;
  /** Elements per SIMD step. */
  step: number;
  /** WAT of one step: reads v128 `$v` at `$sp`, writes float32 at `$dp`. */
  body: string;
  /** Scalar load of one element at `$sp` as i32, or float for f32. */
  scalar: string;
}

const store = (offset: number, expr: string) => `(v128.store offset=${offset} align=4 (local.get $dp) ${expr})`;
const widen8 = (sign: "u" | "s") => `
        (local.set $h (i16x8.extend_low_i8x16_${sign} (local.get $v)))
        ${store(0, `(f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_${sign} (local.get $h)))`)}
        ${store(16, `(f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_${sign} (local.get $h)))`)}
        (local.set $h (i16x8.extend_high_i8x16_${sign} (local.get $v)))
        ${store(32, `(f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_${sign} (local.get $h)))`)}
        ${store(48, `(f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_${sign} (local.get $h)))`)}`;
const widen16 = (sign: "u" | "s") => `
        ${store(0, `(f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_${sign} (local.get $v)))`)}
        ${store(16, `(f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_${sign} (local.get $v)))`)}`;

const KINDS: Kind[] = [
  { name: "u8", shift: 0, step: 16, body: widen8("u"), scalar: "(f32.convert_i32_s (i32.load8_u (local.get $sp)))" },
  { name: "i8", shift: 0, step: 16, body: widen8("s"), scalar: "(f32.convert_i32_s (i32.load8_s (local.get $sp)))" },
  { name: "u16", shift: 1, step: 8, body: widen16("u"), scalar: "(f32.convert_i32_s (i32.load16_u align=1 (local.get $sp)))" },
  { name: "i16", shift: 1, step: 8, body: widen16("s"), scalar: "(f32.convert_i32_s (i32.load16_s align=1 (local.get $sp)))" },
  { name: "f32", shift: 2, step: 4, body: `\n        ${store(0, "(local.get $v)")}`, scalar: "(f32.load align=1 (local.get $sp))" },
];

function rowFunc(k: Kind): string {
  // $sp/$dp: element i of the source/destination row.
  const at = `
        (local.set $sp (i32.add (local.get $s) (i32.shl (local.get $i) (i32.const ${k.shift}))))
        (local.set $dp (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $v (v128.load align=1 (local.get $sp)))`;
  return `
  (func $row_${k.name} (param $s i32) (param $d i32) (param $n i32)
    (local $i i32) (local $sp i32) (local $dp i32) (local $v v128) (local $h v128)
    (block $done
      (loop $simd
        (br_if $done (i32.gt_s (i32.add (local.get $i) (i32.const ${k.step})) (local.get $n)))${at}${k.body}
        (local.set $i (i32.add (local.get $i) (i32.const ${k.step})))
        (br $simd)))
    (if (i32.and (i32.lt_s (local.get $i) (local.get $n)) (i32.ge_s (local.get $n) (i32.const ${k.step})))
      (then
        (local.set $i (i32.sub (local.get $n) (i32.const ${k.step})))${at}${k.body}
        (local.set $i (local.get $n))))
    (block $end
      (loop $tail
        (br_if $end (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $sp (i32.add (local.get $s) (i32.shl (local.get $i) (i32.const ${k.shift}))))
        (f32.store align=4 (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 2))) ${k.scalar})
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))`;
}

function boxFunc(k: Kind): string {
  return `
  (func (export "gather_${k.name}") (param $src i32) (param $dst i32) (param $s0 i32) (param $s1 i32) (param $d0 i32) (param $d1 i32) (param $zn i32) (param $yn i32) (param $xn i32)
    (local $z i32) (local $y i32)
    (block $zd (loop $zl (br_if $zd (i32.ge_s (local.get $z) (local.get $zn)))
      (local.set $y (i32.const 0))
      (block $yd (loop $yl (br_if $yd (i32.ge_s (local.get $y) (local.get $yn)))
        (call $row_${k.name}
          (i32.add (local.get $src) (i32.add (i32.mul (local.get $z) (local.get $s0)) (i32.mul (local.get $y) (local.get $s1))))
          (i32.add (local.get $dst) (i32.add (i32.mul (local.get $z) (local.get $d0)) (i32.mul (local.get $y) (local.get $d1))))
          (local.get $xn))
        (local.set $y (i32.add (local.get $y) (i32.const 1))) (br $yl)))
      (local.set $z (i32.add (local.get $z) (i32.const 1))) (br $zl))))`;
}

/**
 * Resampling passes over a region (float32) in the same memory; all index tables are i32 and
 * weights f64, arithmetic in f64 exactly as the JS forms in `src/image/resample.ts` (so results
 * are bit-identical): a blend `v0 * (1 - w) + v1 * w` only where `w != 0`.
 */
const get = (t: string, base: string, i: string, shift: number) => `(${t}.load (i32.add (local.get ${base}) (i32.shl (local.get ${i}) (i32.const ${shift}))))`;
const RESAMPLE = `
  ;; pass 1: tmp[(ia*nb + ib)*n2 + k] = blend of region[base + c0[k]], region[base + c1[k]] (c0/c1 byte offsets)
  (func (export "lin_x") (param $region i32) (param $sa i32) (param $sb i32) (param $na i32) (param $nb i32)
      (param $c0 i32) (param $c1 i32) (param $wc i32) (param $n2 i32) (param $tmp i32)
    (local $ia i32) (local $ib i32) (local $k i32) (local $base i32) (local $o i32) (local $w f64) (local $v f64)
    (block $ad (loop $al (br_if $ad (i32.ge_s (local.get $ia) (local.get $na)))
      (local.set $ib (i32.const 0))
      (block $bd (loop $bl (br_if $bd (i32.ge_s (local.get $ib) (local.get $nb)))
        (local.set $base (i32.add (local.get $region) (i32.add (i32.mul (local.get $ia) (local.get $sa)) (i32.mul (local.get $ib) (local.get $sb)))))
        (local.set $o (i32.add (local.get $tmp) (i32.shl (i32.mul (i32.add (i32.mul (local.get $ia) (local.get $nb)) (local.get $ib)) (local.get $n2)) (i32.const 3))))
        (local.set $k (i32.const 0))
        (block $kd (loop $kl (br_if $kd (i32.ge_s (local.get $k) (local.get $n2)))
          (local.set $w ${get("f64", "$wc", "$k", 3)})
          (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $base) ${get("i32", "$c0", "$k", 2)}))))
          (if (f64.ne (local.get $w) (f64.const 0))
            (then (local.set $v (f64.add (f64.mul (local.get $v) (f64.sub (f64.const 1) (local.get $w)))
              (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $base) ${get("i32", "$c1", "$k", 2)}))) (local.get $w))))))
          (f64.store (i32.add (local.get $o) (i32.shl (local.get $k) (i32.const 3))) (local.get $v))
          (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $kl)))
        (local.set $ib (i32.add (local.get $ib) (i32.const 1))) (br $bl)))
      (local.set $ia (i32.add (local.get $ia) (i32.const 1))) (br $al))))

  ;;  pass 2: tmp2[(ia*n1 + j)*n2 + k] = blend of rows b0[j], b1[j] of tmp (row indices)
  (func (export "lin_y") (param $tmp i32) (param $na i32) (param $nb i32) (param $n1 i32) (param $n2 i32)
      (param $b0 i32) (param $b1 i32) (param $wb i32) (param $tmp2 i32)
    (local $ia i32) (local $j i32) (local $k i32) (local $r0 i32) (local $r1 i32) (local $o i32) (local $w f64) (local $v f64)
    (block $ad (loop $al (br_if $ad (i32.ge_s (local.get $ia) (local.get $na)))
      (local.set $j (i32.const 0))
      (block $jd (loop $jl (br_if $jd (i32.ge_s (local.get $j) (local.get $n1)))
        (local.set $w ${get("f64", "$wb", "$j", 3)})
        (local.set $r0 (i32.add (local.get $tmp) (i32.shl (i32.mul (i32.add (i32.mul (local.get $ia) (local.get $nb)) ${get("i32", "$b0", "$j", 2)}) (local.get $n2)) (i32.const 3))))
        (local.set $r1 (i32.add (local.get $tmp) (i32.shl (i32.mul (i32.add (i32.mul (local.get $ia) (local.get $nb)) ${get("i32", "$b1", "$j", 2)}) (local.get $n2)) (i32.const 3))))
        (local.set $o (i32.add (local.get $tmp2) (i32.shl (i32.mul (i32.add (i32.mul (local.get $ia) (local.get $n1)) (local.get $j)) (local.get $n2)) (i32.const 3))))
        (local.set $k (i32.const 0))
        (block $kd (loop $kl (br_if $kd (i32.ge_s (local.get $k) (local.get $n2)))
          (local.set $v ${get("f64", "$r0", "$k", 3)})
          (if (f64.ne (local.get $w) (f64.const 0))
            (then (local.set $v (f64.add (f64.mul (local.get $v) (f64.sub (f64.const 1) (local.get $w))) (f64.mul ${get("f64", "$r1", "$k", 3)} (local.get $w))))))
          (f64.store (i32.add (local.get $o) (i32.shl (local.get $k) (i32.const 3))) (local.get $v))
          (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $kl)))
        (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
      (local.set $ia (i32.add (local.get $ia) (i32.const 1))) (br $al))))

  ;; pass 3: out[(i*n1 + j)*n2 + k] (float32) = blend of planes a0[i], a1[i] of tmp2, or pad where not valid
  (func (export "lin_z") (param $tmp2 i32) (param $n0 i32) (param $n1 i32) (param $n2 i32)
      (param $a0 i32) (param $a1 i32) (param $wa i32) (param $av i32) (param $bv i32) (param $cv i32) (param $pad f64) (param $out i32)
    (local $i i32) (local $j i32) (local $k i32) (local $r0 i32) (local $r1 i32) (local $o i32) (local $w f64) (local $v f64) (local $rv i32)
    (local.set $o (local.get $out))
    (block $id (loop $il (br_if $id (i32.ge_s (local.get $i) (local.get $n0)))
      (local.set $w ${get("f64", "$wa", "$i", 3)})
      (local.set $j (i32.const 0))
      (block $jd (loop $jl (br_if $jd (i32.ge_s (local.get $j) (local.get $n1)))
        (local.set $rv (i32.and ${get("i32", "$av", "$i", 2)} ${get("i32", "$bv", "$j", 2)}))
        (local.set $r0 (i32.add (local.get $tmp2) (i32.shl (i32.mul (i32.add (i32.mul ${get("i32", "$a0", "$i", 2)} (local.get $n1)) (local.get $j)) (local.get $n2)) (i32.const 3))))
        (local.set $r1 (i32.add (local.get $tmp2) (i32.shl (i32.mul (i32.add (i32.mul ${get("i32", "$a1", "$i", 2)} (local.get $n1)) (local.get $j)) (local.get $n2)) (i32.const 3))))
        (local.set $k (i32.const 0))
        (block $kd (loop $kl (br_if $kd (i32.ge_s (local.get $k) (local.get $n2)))
          (local.set $v (local.get $pad))
          (if (i32.and (local.get $rv) ${get("i32", "$cv", "$k", 2)})
            (then
              (local.set $v ${get("f64", "$r0", "$k", 3)})
              (if (f64.ne (local.get $w) (f64.const 0))
                (then (local.set $v (f64.add (f64.mul (local.get $v) (f64.sub (f64.const 1) (local.get $w))) (f64.mul ${get("f64", "$r1", "$k", 3)} (local.get $w))))))))
          (f32.store (local.get $o) (f32.demote_f64 (local.get $v)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $kl)))
        (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il))))

  ;; nearest: out[(i*n1 + j)*n2 + k] = region[a0[i] + b0[j] + c0[k]] (byte offsets), or pad where not valid
  (func (export "nearest") (param $region i32) (param $a0 i32) (param $b0 i32) (param $c0 i32) (param $n0 i32) (param $n1 i32) (param $n2 i32)
      (param $av i32) (param $bv i32) (param $cv i32) (param $pad f32) (param $out i32)
    (local $i i32) (local $j i32) (local $k i32) (local $base i32) (local $o i32) (local $rv i32)
    (local.set $o (local.get $out))
    (block $id (loop $il (br_if $id (i32.ge_s (local.get $i) (local.get $n0)))
      (local.set $j (i32.const 0))
      (block $jd (loop $jl (br_if $jd (i32.ge_s (local.get $j) (local.get $n1)))
        (local.set $rv (i32.and ${get("i32", "$av", "$i", 2)} ${get("i32", "$bv", "$j", 2)}))
        (local.set $base (i32.add (local.get $region) (i32.add ${get("i32", "$a0", "$i", 2)} ${get("i32", "$b0", "$j", 2)})))
        (local.set $k (i32.const 0))
        (block $kd (loop $kl (br_if $kd (i32.ge_s (local.get $k) (local.get $n2)))
          (f32.store (local.get $o)
            (select (f32.load (i32.add (local.get $base) ${get("i32", "$c0", "$k", 2)})) (local.get $pad)
              (i32.and (local.get $rv) ${get("i32", "$cv", "$k", 2)})))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $kl)))
        (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il))))`;

/**
 * Sampling a rotated grid straight from a region kept in the source element type (no float32
 * copy of the enlarged window first). One set per source kind: uint8, int8, uint16, int16 and
 * float32 (the float32 set also serves regions other types were widened into).
 *
 * Arithmetic is the JS reference's (`sampleGeneral` in `src/image/resample.ts`) operation for
 * operation, in f64, so nearest is bit-identical and linear too: a point (i, j, k) is
 * `f = (f0 + i·di + j·dj) + k·dk` per world axis; outside the level (pad on) it is the pad
 * value; else it is clamped into the level; nearest takes JS `Math.round`; linear blends
 * `v0·(1 − w) + v1·w`, x first, then y, then z, and keeps `v0` where `w` is 0.
 *
 * - `zrot_*`: grids whose world z depends on the output z alone and whose world y/x do not
 *   (rotations about z, mirrors, y/x transposes: the common EM augmentation). The y/x map of one
 *   section is computed once per sample (`src/image/rotated.ts`) and applied to every output
 *   section; per output voxel that is one table entry and one load (nearest), or four loads and
 *   three blends (linear).
 * - `gen_*`: any other affine grid, evaluated per point along each output row.
 */
interface Source {
  name: string;
  /** Element of `addr` as i32 (integer sources). */
  i32?: (addr: string) => string;
  /** Element of `addr` as f64. */
  f64: (addr: string) => string;
  /** Element of `addr` as f32 (bit-exact copy for float32). */
  f32: (addr: string) => string;
}
const SOURCES: Source[] = [
  { name: "u8", i32: (a) => `(i32.load8_u ${a})`, f64: (a) => `(f64.convert_i32_u (i32.load8_u ${a}))`, f32: (a) => `(f32.convert_i32_u (i32.load8_u ${a}))` },
  { name: "i8", i32: (a) => `(i32.load8_s ${a})`, f64: (a) => `(f64.convert_i32_s (i32.load8_s ${a}))`, f32: (a) => `(f32.convert_i32_s (i32.load8_s ${a}))` },
  {
    name: "u16",
    i32: (a) => `(i32.load16_u align=1 ${a})`,
    f64: (a) => `(f64.convert_i32_u (i32.load16_u align=1 ${a}))`,
    f32: (a) => `(f32.convert_i32_u (i32.load16_u align=1 ${a}))`,
  },
  {
    name: "i16",
    i32: (a) => `(i32.load16_s align=1 ${a})`,
    f64: (a) => `(f64.convert_i32_s (i32.load16_s align=1 ${a}))`,
    f32: (a) => `(f32.convert_i32_s (i32.load16_s align=1 ${a}))`,
  },
  { name: "f32", f64: (a) => `(f64.promote_f32 (f32.load align=1 ${a}))`, f32: (a) => `(f32.load align=1 ${a})` },
];
const L = (n: string) => `(local.get ${n})`;
const blend = (v0: string, v1: string, w: string) => `(f64.add (f64.mul ${v0} (f64.sub (f64.const 1) ${w})) (f64.mul ${v1} ${w}))`;
/** `v0` where `w` is 0, else the blend (both sides evaluated: no branch on the weight). */
const blendOrKeep = (v0: string, v1: string, w: string, tmp: string) => `(local.set ${tmp} ${v0}) (select ${L(tmp)} ${blend(L(tmp), v1, w)} (f64.eq ${w} (f64.const 0)))`;
/** Fills `n` float32 values at `$o` with `pad` (advancing `$o`). */
const fillPad = (n: string, pad: string) => `
          (local.set $e (i32.add ${L("$o")} (i32.shl ${n} (i32.const 2))))
          (block $fd (loop $fl (br_if $fd (i32.ge_u ${L("$o")} ${L("$e")}))
            (f32.store ${L("$o")} ${pad})
            (local.set $o (i32.add ${L("$o")} (i32.const 4))) (br $fl)))`;

/** Start of a nearest section loop: section i's plane ($b), or padding for all of it. */
const NEAREST_SECTION = `
    (block $id (loop $il (br_if $id (i32.ge_s ${L("$i")} ${L("$n0")}))
      (local.set $b (i32.load (i32.add ${L("$ztab")} (i32.shl ${L("$i")} (i32.const 2)))))
      (if (i32.lt_s ${L("$b")} (i32.const 0))
        (then ${fillPad(L("$n12"), L("$pad"))})
        (else
          (local.set $b (i32.add ${L("$region")} ${L("$b")}))
          (local.set $mp ${L("$map")})`;

/** Start of a linear section loop: section i's planes ($b0, $b1), $wz, or padding for all of it. */
const LINEAR_SECTION = `
    (block $id (loop $il (br_if $id (i32.ge_s ${L("$i")} ${L("$n0")}))
      (local.set $e (i32.add ${L("$ztab")} (i32.mul ${L("$i")} (i32.const 24))))
      (local.set $b0 (i32.add ${L("$region")} (i32.load ${L("$e")})))
      (local.set $b1 (i32.add ${L("$region")} (i32.load offset=4 ${L("$e")})))
      (local.set $wz (f64.load offset=16 ${L("$e")}))
      (if (i32.eqz (i32.load offset=8 ${L("$e")}))
        (then ${fillPad(L("$n12"), `(f32.demote_f64 ${L("$pad")})`)})
        (else
          (local.set $mp ${L("$map")})`;

function zrotFuncs(t: Source): string {
  // linear: bilinear at plane base b of one map entry (o, dx, dy, wx, wy in locals). Integer
  // sources hold no NaN, infinity or -0, so a zero-weight blend equals the value kept.
  const keep = t.name === "f32";
  const blend1 = (v0: string, v1: string, w: string, tmp: string) => (keep ? `(block (result f64) ${blendOrKeep(v0, v1, w, tmp)})` : blend(v0, v1, w));
  const lerp1 = (a: string, tmp: string) => blend1(t.f64(a), t.f64(`(i32.add ${a} ${L("$dx")})`), L("$wx"), tmp);
  const lerp2 = (b: string, tmp: string, tmp2: string) =>
    `(block (result f64) (local.set ${tmp2} ${lerp1(`(i32.add ${b} ${L("$m")})`, tmp)}) ${blend1(L(tmp2), lerp1(`(i32.add (i32.add ${b} ${L("$m")}) ${L("$dy")})`, tmp), L("$wy"), tmp)})`;
  return `
  ;; nearest. ztab: per output section i32 byte offset of its region plane, or -1 (padding);
  ;; map: per (j, k) i32 byte offset inside the plane, or -1 (padding). out: n0 × n12 float32.
  (func (export "zrot_nearest_${t.name}") (param $region i32) (param $ztab i32) (param $n0 i32) (param $map i32) (param $n12 i32) (param $pad f32) (param $out i32)
    (local $i i32) (local $b i32) (local $m i32) (local $o i32) (local $e i32) (local $mp i32) (local $me i32)
    (local.set $o ${L("$out")})
    (local.set $me (i32.add ${L("$map")} (i32.shl ${L("$n12")} (i32.const 2))))
${NEAREST_SECTION}
          (block $pd (loop $pl (br_if $pd (i32.ge_u ${L("$mp")} ${L("$me")}))
            (local.set $m (i32.load ${L("$mp")}))
            (f32.store ${L("$o")} (select ${t.f32(`(i32.add ${L("$b")} (select ${L("$m")} (i32.const 0) (i32.ge_s ${L("$m")} (i32.const 0))))`)} ${L("$pad")} (i32.ge_s ${L("$m")} (i32.const 0))))
            (local.set $o (i32.add ${L("$o")} (i32.const 4)))
            (local.set $mp (i32.add ${L("$mp")} (i32.const 4))) (br $pl)))))
      (local.set $i (i32.add ${L("$i")} (i32.const 1))) (br $il))))

  ;; linear. ztab: per output section 24 bytes: i32 z0 plane offset, i32 z1 plane offset, i32
  ;; valid (0: padding), i32 unused, f64 wz. map: per (j, k) 32 bytes: i32 offset of (y0, x0),
  ;; i32 x1 − x0 and y1 − y0 in bytes, i32 valid, f64 wy, f64 wx.
  (func (export "zrot_linear_${t.name}") (param $region i32) (param $ztab i32) (param $n0 i32) (param $map i32) (param $n12 i32) (param $pad f64) (param $out i32)
    (local $i i32) (local $b0 i32) (local $b1 i32) (local $wz f64) (local $o i32) (local $e i32) (local $mp i32) (local $me i32)
    (local $m i32) (local $dx i32) (local $dy i32) (local $wx f64) (local $wy f64) (local $v f64) (local $u f64) (local $t0 f64) (local $t1 f64)
    (local.set $o ${L("$out")})
    (local.set $me (i32.add ${L("$map")} (i32.shl ${L("$n12")} (i32.const 5))))
${LINEAR_SECTION}
          (block $pd (loop $pl (br_if $pd (i32.ge_u ${L("$mp")} ${L("$me")}))
            (if (i32.load offset=12 ${L("$mp")})
              (then
                (local.set $m (i32.load ${L("$mp")}))
                (local.set $dx (i32.load offset=4 ${L("$mp")}))
                (local.set $dy (i32.load offset=8 ${L("$mp")}))
                (local.set $wy (f64.load offset=16 ${L("$mp")}))
                (local.set $wx (f64.load offset=24 ${L("$mp")}))
                (local.set $v ${lerp2(L("$b0"), "$t0", "$t1")})
                (if (f64.ne ${L("$wz")} (f64.const 0))
                  (then
                    (local.set $u ${lerp2(L("$b1"), "$t0", "$t1")})
                    (local.set $v ${blend(L("$v"), L("$u"), L("$wz"))})))
                (f32.store ${L("$o")} (f32.demote_f64 ${L("$v")})))
              (else (f32.store ${L("$o")} (f32.demote_f64 ${L("$pad")}))))
            (local.set $o (i32.add ${L("$o")} (i32.const 4)))
            (local.set $mp (i32.add ${L("$mp")} (i32.const 32))) (br $pl)))))
      (local.set $i (i32.add ${L("$i")} (i32.const 1))) (br $il))))`;
}

/**
 * Nearest section sampling of an integer source, four pixels per step: the four offsets are one
 * vector load, the four values one int → float32 conversion and one store, the padding one
 * select. Bit-identical to zrot_nearest (integers up to 16 bits are exact in float32).
 * Same tables as zrot_nearest.
 */
function zrotNearest4Func(t: Source): string {
  const ld = (laneIdx: number) => t.i32!(`(i32.add ${L("$b")} (i32x4.extract_lane ${laneIdx} ${L("$mc")}))`);
  return `
  (func (export "zrot_nearest4_${t.name}") (param $region i32) (param $ztab i32) (param $n0 i32) (param $map i32) (param $n12 i32) (param $pad f32) (param $out i32)
    (local $i i32) (local $b i32) (local $m i32) (local $o i32) (local $e i32) (local $mp i32) (local $me i32) (local $m4 i32)
    (local $mv v128) (local $mc v128) (local $iv v128) (local $padv v128) (local $zero v128)
    (local.set $padv (f32x4.splat ${L("$pad")}))
    (local.set $o ${L("$out")})
    (local.set $me (i32.add ${L("$map")} (i32.shl ${L("$n12")} (i32.const 2))))
    (local.set $m4 (i32.add ${L("$map")} (i32.shl (i32.and ${L("$n12")} (i32.const -4)) (i32.const 2))))
${NEAREST_SECTION}
          (block $vd (loop $vl (br_if $vd (i32.ge_u ${L("$mp")} ${L("$m4")}))
            (local.set $mv (v128.load align=4 ${L("$mp")}))
            (local.set $mc (i32x4.max_s ${L("$mv")} ${L("$zero")}))
            (local.set $iv (i32x4.splat ${ld(0)}))
            (local.set $iv (i32x4.replace_lane 1 ${L("$iv")} ${ld(1)}))
            (local.set $iv (i32x4.replace_lane 2 ${L("$iv")} ${ld(2)}))
            (local.set $iv (i32x4.replace_lane 3 ${L("$iv")} ${ld(3)}))
            (v128.store align=4 ${L("$o")} (v128.bitselect (f32x4.convert_i32x4_s ${L("$iv")}) ${L("$padv")} (i32x4.ge_s ${L("$mv")} ${L("$zero")})))
            (local.set $o (i32.add ${L("$o")} (i32.const 16)))
            (local.set $mp (i32.add ${L("$mp")} (i32.const 16))) (br $vl)))
          (block $pd (loop $pl (br_if $pd (i32.ge_u ${L("$mp")} ${L("$me")}))
            (local.set $m (i32.load ${L("$mp")}))
            (f32.store ${L("$o")} (select ${t.f32(`(i32.add ${L("$b")} (select ${L("$m")} (i32.const 0) (i32.ge_s ${L("$m")} (i32.const 0))))`)} ${L("$pad")} (i32.ge_s ${L("$m")} (i32.const 0))))
            (local.set $o (i32.add ${L("$o")} (i32.const 4)))
            (local.set $mp (i32.add ${L("$mp")} (i32.const 4))) (br $pl)))))
      (local.set $i (i32.add ${L("$i")} (i32.const 1))) (br $il))))`;
}

/**
 * Linear section sampling of an integer source, two pixels per step in f64x2 lanes, as one sum
 * of four weighted taps `w00·t00 + w01·t01 + w10·t10 + w11·t11` (the weights are the products
 * of the reference's blend weights). In f64 this differs from the reference's three blends by a
 * few units of the f64 result at most, far below half a float32 ulp: the float32 results are
 * equal or 1 ulp apart (the tolerance `test/rotated.test.ts` checks). Measured on the dev
 * machine: 4.3 against 7.5 ns per voxel in the loader (aug, raw 64^3).
 * Map of n pixels (n rounded up to even), per pair q of pixels 2q and 2q+1: 8 i32 (offset of
 * (y0, x0) of both, x1 − x0 of both, y1 − y0 of both, 2 unused) then 4 f64x2 weights
 * (w00, w01, w10, w11) then an i64x2 mask (all ones: a pixel with data; zeros: padding): 112
 * bytes. The z table is zrot_linear's.
 */
function zrotPairFunc(t: Source): string {
  const lane = (side: 0 | 1, tap: string) => t.f64(`(i32.add ${L(`$a${side}`)} ${tap})`);
  const vec = (tap0: string, tap1: string) => `(f64x2.replace_lane 1 (f64x2.splat ${lane(0, tap0)}) ${lane(1, tap1)})`;
  const taps = (b: string) => `
              (local.set $a0 (i32.add ${b} (i32.load ${L("$mp")})))
              (local.set $a1 (i32.add ${b} (i32.load offset=4 ${L("$mp")})))
              (f64x2.add
                (f64x2.add (f64x2.mul ${vec("(i32.const 0)", "(i32.const 0)")} (v128.load offset=32 ${L("$mp")}))
                           (f64x2.mul ${vec(L("$dx0"), L("$dx1"))} (v128.load offset=48 ${L("$mp")})))
                (f64x2.add (f64x2.mul ${vec(L("$dy0"), L("$dy1"))} (v128.load offset=64 ${L("$mp")}))
                           (f64x2.mul ${vec(`(i32.add ${L("$dy0")} ${L("$dx0")})`, `(i32.add ${L("$dy1")} ${L("$dx1")})`)} (v128.load offset=80 ${L("$mp")}))))`;
  return `
  (func (export "zrot_linear4_${t.name}") (param $region i32) (param $ztab i32) (param $n0 i32) (param $map i32) (param $n12 i32) (param $pad f64) (param $out i32)
    (local $i i32) (local $b0 i32) (local $b1 i32) (local $wz f64) (local $o i32) (local $e i32) (local $mp i32) (local $me i32) (local $q i32) (local $pairs i32)
    (local $a0 i32) (local $a1 i32) (local $dx0 i32) (local $dx1 i32) (local $dy0 i32) (local $dy1 i32) (local $v v128) (local $padv v128)
    (local.set $padv (f64x2.splat ${L("$pad")}))
    (local.set $pairs (i32.shr_u (i32.add ${L("$n12")} (i32.const 1)) (i32.const 1)))
    (local.set $me (i32.add ${L("$map")} (i32.mul ${L("$pairs")} (i32.const 112))))
    (local.set $o ${L("$out")})
${LINEAR_SECTION}
          (local.set $q (i32.const 0))
          (block $pd (loop $pl (br_if $pd (i32.ge_u ${L("$mp")} ${L("$me")}))
            (local.set $dx0 (i32.load offset=8 ${L("$mp")}))
            (local.set $dx1 (i32.load offset=12 ${L("$mp")}))
            (local.set $dy0 (i32.load offset=16 ${L("$mp")}))
            (local.set $dy1 (i32.load offset=20 ${L("$mp")}))
            (local.set $v ${taps(L("$b0"))})
            (if (f64.ne ${L("$wz")} (f64.const 0))
              (then
                (local.set $v (f64x2.add (f64x2.mul ${L("$v")} (f64x2.splat (f64.sub (f64.const 1) ${L("$wz")})))
                  (f64x2.mul ${taps(L("$b1"))} (f64x2.splat ${L("$wz")}))))))
            (local.set $v (f32x4.demote_f64x2_zero (v128.bitselect ${L("$v")} ${L("$padv")} (v128.load offset=96 ${L("$mp")}))))
            ;; the second pixel of the last pair of an odd count is not written
            (if (i32.lt_u (i32.add (i32.shl ${L("$q")} (i32.const 1)) (i32.const 1)) ${L("$n12")})
              (then (v128.store64_lane align=4 0 ${L("$o")} ${L("$v")}) (local.set $o (i32.add ${L("$o")} (i32.const 8))))
              (else (v128.store32_lane align=4 0 ${L("$o")} ${L("$v")}) (local.set $o (i32.add ${L("$o")} (i32.const 4)))))
            (local.set $q (i32.add ${L("$q")} (i32.const 1)))
            (local.set $mp (i32.add ${L("$mp")} (i32.const 112))) (br $pl)))))
      (local.set $i (i32.add ${L("$i")} (i32.const 1))) (br $il))))`;
}

/**
 * Table P (f64): f0[3] di[3] dj[3] dk[3] (N-1)[3] (N-0.5+eps)[3] (-0.5-eps) pad.
 * Table Q (i32): lo[3] hi[3] stride-bytes[3] padOn.
 */
const fP = (i: number) => `(f64.load offset=${i * 8} (local.get $P))`;
const iQ = (i: number) => `(i32.load offset=${i * 4} (local.get $Q))`;
/** Table P/Q entries held in locals (V8 neither inlines calls nor keeps loads from shared memory in registers). */
const TABLE_LOCALS = `
    (local $f0z f64) (local $f0y f64) (local $f0x f64) (local $diz f64) (local $diy f64) (local $dix f64)
    (local $djz f64) (local $djy f64) (local $djx f64) (local $dkz f64) (local $dky f64) (local $dkx f64)
    (local $mz f64) (local $my f64) (local $mx f64) (local $uz f64) (local $uy f64) (local $ux f64) (local $lb f64) (local $padv f64)
    (local $loz i32) (local $loy i32) (local $lox i32) (local $hiz i32) (local $hiy i32) (local $hix i32) (local $sz i32) (local $sy i32) (local $sx i32) (local $padOn i32)`;
const LOAD_TABLES = ["$f0z", "$f0y", "$f0x", "$diz", "$diy", "$dix", "$djz", "$djy", "$djx", "$dkz", "$dky", "$dkx", "$mz", "$my", "$mx", "$uz", "$uy", "$ux", "$lb", "$padv"]
  .map((n, i) => `(local.set ${n} ${fP(i)})`)
  .concat(["$loz", "$loy", "$lox", "$hiz", "$hiy", "$hix", "$sz", "$sy", "$sx", "$padOn"].map((n, i) => `(local.set ${n} ${iQ(i)})`))
  .join(" ");
const AX = ["z", "y", "x"];
/** `v` clamped to [0, max] (the reference's `v < 0 ? 0 : v > max ? max : v`; coordinates are never NaN). */
const clampF = (v: string, max: string) => `(f64.max (f64.const 0) (f64.min ${v} ${max}))`;
/** JS `Math.round` of local `c` (>= 0) as i32 (uses local $r). */
const roundI = (c: string) => `(i32.add (i32.trunc_f64_s (local.tee $r (f64.floor ${L(c)}))) (f64.ge (f64.sub ${L(c)} ${L("$r")}) (f64.const 0.5)))`;
/** Byte offset of index `v` along `axis`, clamped into the window (uses local $q). */
const clampOff = (v: string, axis: number) => {
  const lo = L(`$lo${AX[axis]}`);
  const hi = L(`$hi${AX[axis]}`);
  return `(i32.mul (i32.sub (select ${lo} (select ${hi} (local.tee $q ${v}) (i32.gt_s ${L("$q")} ${hi})) (i32.lt_s ${L("$q")} ${lo})) ${lo}) ${L(`$s${AX[axis]}`)})`;
};

/** The general-grid kernels: linear for source kind `t`; with `t` null, the nearest offset map (kind-free). */
function generalFuncs(t: Source | null): string {
  const rowStart = (a: string) =>
    `(f64.add (f64.add ${L(`$f0${a}`)} (f64.mul (f64.convert_i32_s (local.get $i)) ${L(`$di${a}`)})) (f64.mul (f64.convert_i32_s (local.get $j)) ${L(`$dj${a}`)}))`;
  const atK = (a: string, kf: string) => `(f64.add ${L(`$r${a}`)} (f64.mul ${kf} ${L(`$dk${a}`)}))`;
  // Integer sources hold no NaN, infinity or -0, so a zero-weight blend equals the value kept.
  const keep = t?.name === "f32";
  const blend1 = (v0: string, v1: string, w: string, tmp: string) => (keep ? `(block (result f64) ${blendOrKeep(v0, v1, w, tmp)})` : blend(v0, v1, w));
  const lerp1 = (a: string) => blend1(t!.f64(`(i32.add ${a} (local.get $xa))`), t!.f64(`(i32.add ${a} (local.get $xb))`), L("$wx"), "$t0");
  const lerp2 = (za: string) =>
    `(block (result f64) (local.set $t1 ${lerp1(`(i32.add ${za} (local.get $ya))`)}) ${blend1(L("$t1"), lerp1(`(i32.add ${za} (local.get $yb))`), L("$wy"), "$t2")})`;
  const outside = (a: string) => `(i32.or (f64.lt ${L(`$f${a}`)} ${L("$lb")}) (f64.gt ${L(`$f${a}`)} ${L(`$u${a}`)}))`;
  const fs = (kf: string) => `
          (local.set $fz ${atK("z", kf)})
          (local.set $fy ${atK("y", kf)})
          (local.set $fx ${atK("x", kf)})`;
  /** Whether the point at $kf lies in [lo, hi - reach] on every axis (no clamp, no pad). */
  const interior = (kf: string) => `(block (result i32) ${fs(kf)}
          ${isInterior})`;
  /** Narrows [$ka, $kb] (from the bounds of axis a; $dk may be 0) so every k in it is interior along a. */
  const narrow = (a: string) => `
        (if (f64.eq ${L(`$dk${a}`)} (f64.const 0))
          (then (if (i32.or (f64.lt ${L(`$r${a}`)} ${L(`$l${a}f`)}) (f64.gt ${L(`$r${a}`)} ${L(`$h${a}f`)})) (then (local.set $kb (i32.const -1)))))
          (else
            (local.set $t0 (f64.div (f64.sub ${L(`$l${a}f`)} ${L(`$r${a}`)}) ${L(`$dk${a}`)}))
            (local.set $t1 (f64.div (f64.sub ${L(`$h${a}f`)} ${L(`$r${a}`)}) ${L(`$dk${a}`)}))
            (if (f64.gt ${L("$t0")} ${L("$t1")}) (then (local.set $t2 ${L("$t0")}) (local.set $t0 ${L("$t1")}) (local.set $t1 ${L("$t2")})))
            (local.set $t0 (f64.max (f64.const -1) (f64.min (f64.const 1e9) (f64.ceil ${L("$t0")}))))
            (local.set $t1 (f64.max (f64.const -1) (f64.min (f64.const 1e9) (f64.floor ${L("$t1")}))))
            (if (f64.gt (f64.convert_i32_s ${L("$ka")}) ${L("$t0")}) (then) (else (local.set $ka (i32.trunc_f64_s ${L("$t0")}))))
            (if (f64.lt (f64.convert_i32_s ${L("$kb")}) ${L("$t1")}) (then) (else (local.set $kb (i32.trunc_f64_s ${L("$t1")}))))))`;
  // Per voxel, the full reference path: padding test, clamp into the level, window clamps.
  // The full path at ($fz, $fy, $fx): padding test, clamp into the level, window clamps.
  const fullPath = (body: (clamp: boolean) => string) => `
          (if (i32.and ${L("$padOn")} (i32.or (i32.or ${outside("z")} ${outside("y")}) ${outside("x")}))
            (then ${t ? `(f32.store (local.get $o) (f32.demote_f64 ${L("$padv")}))` : `(i32.store (local.get $o) (i32.const -1))`})
            (else
              (local.set $cz ${clampF(L("$fz"), L("$mz"))})
              (local.set $cy ${clampF(L("$fy"), L("$my"))})
              (local.set $cx ${clampF(L("$fx"), L("$mx"))})${body(true)}))`;
  // Whether ($fz, $fy, $fx) lies in [lo, hi - reach] on every axis (every tap inside, no pad).
  const isInterior = `(i32.and (i32.and
            (i32.and (f64.ge ${L("$fz")} ${L("$lzf")}) (f64.le ${L("$fz")} ${L("$hzf")}))
            (i32.and (f64.ge ${L("$fy")} ${L("$lyf")}) (f64.le ${L("$fy")} ${L("$hyf")})))
            (i32.and (f64.ge ${L("$fx")} ${L("$lxf")}) (f64.le ${L("$fx")} ${L("$hxf")})))`;
  // The bounds of isInterior for a body reaching `reach` voxels past its first tap.
  const interiorBounds = (reach: number) => `
    (local.set $lzf (f64.convert_i32_s ${L("$loz")})) (local.set $lyf (f64.convert_i32_s ${L("$loy")})) (local.set $lxf (f64.convert_i32_s ${L("$lox")}))
    (local.set $hzf (f64.convert_i32_s (i32.sub ${L("$hiz")} (i32.const ${reach}))))
    (local.set $hyf (f64.convert_i32_s (i32.sub ${L("$hiy")} (i32.const ${reach}))))
    (local.set $hxf (f64.convert_i32_s (i32.sub ${L("$hix")} (i32.const ${reach}))))`;
  const slowVoxel = (body: (clamp: boolean) => string) => `
          (local.set $kf (f64.convert_i32_s (local.get $k)))${fs(L("$kf"))}${fullPath(body)}
          (local.set $o (i32.add (local.get $o) (i32.const 4)))`;
  // Interior voxels: every tap inside the window, nothing to test or clamp.
  const fastVoxel = (body: (clamp: boolean) => string) => `
          (local.set $kf (f64.convert_i32_s (local.get $k)))${fs(L("$kf"))}
          (local.set $cz (local.get $fz)) (local.set $cy (local.get $fy)) (local.set $cx (local.get $fx))${body(false)}
          (local.set $o (i32.add (local.get $o) (i32.const 4)))`;
  const span = (name: string, from: string, to: string, voxel: string) => `
        (local.set $k ${from})
        (block $${name}d (loop $${name}l (br_if $${name}d (i32.ge_s (local.get $k) ${to}))${voxel}
          (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $${name}l)))`;
  const loop = (reach: number, body: (clamp: boolean) => string) => `
    ${LOAD_TABLES}${interiorBounds(reach)}
    (local.set $o (local.get $out))
    (block $id (loop $il (br_if $id (i32.ge_s (local.get $i) (local.get $n0)))
      (local.set $j (i32.const 0))
      (block $jd (loop $jl (br_if $jd (i32.ge_s (local.get $j) (local.get $n1)))
        (local.set $rz ${rowStart("z")})
        (local.set $ry ${rowStart("y")})
        (local.set $rx ${rowStart("x")})
        ;; the interior span [ka, kb] of this row: bounds per axis, then exact checks at its ends
        ;; (f(k) = r + k·dk is monotonic in k, so the ends decide)
        (local.set $ka (i32.const 0))
        (local.set $kb (i32.sub (local.get $n2) (i32.const 1)))${narrow("z")}${narrow("y")}${narrow("x")}
        (if (i32.lt_s ${L("$ka")} (i32.const 0)) (then (local.set $ka (i32.const 0))))
        (if (i32.gt_s ${L("$kb")} (i32.sub (local.get $n2) (i32.const 1))) (then (local.set $kb (i32.sub (local.get $n2) (i32.const 1)))))
        (block $ad (loop $al
          (br_if $ad (i32.gt_s ${L("$ka")} ${L("$kb")}))
          (br_if $ad ${interior(`(f64.convert_i32_s ${L("$ka")})`)})
          (local.set $ka (i32.add ${L("$ka")} (i32.const 1))) (br $al)))
        (block $bd (loop $bl
          (br_if $bd (i32.gt_s ${L("$ka")} ${L("$kb")}))
          (br_if $bd ${interior(`(f64.convert_i32_s ${L("$kb")})`)})
          (local.set $kb (i32.sub ${L("$kb")} (i32.const 1))) (br $bl)))
        (if (i32.gt_s ${L("$ka")} ${L("$kb")}) (then (local.set $ka (local.get $n2)) (local.set $kb (i32.sub (local.get $n2) (i32.const 1)))))
        ${span("s0", "(i32.const 0)", L("$ka"), slowVoxel(body))}
        ${span("f", L("$ka"), `(i32.add ${L("$kb")} (i32.const 1))`, fastVoxel(body))}
        ${span("s1", `(i32.add ${L("$kb")} (i32.const 1))`, L("$n2"), slowVoxel(body))}
        (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il)))`;
  // Deformed grids (elastic): every voxel adds its displacement Δ (index units; three f32 arrays
  // of n0·n1·n2 from $D: z, y, x) to the affine f. f is then not monotonic along a row, so
  // instead of an interior span each voxel is tested: inside [lo, hi - reach] on every axis it
  // takes the fast path (nothing to clamp or pad, the same values), else the full one.
  const deformedVoxel = (body: (clamp: boolean) => string) => `
          (local.set $kf (f64.convert_i32_s (local.get $k)))${fs(L("$kf"))}
          (local.set $fz (f64.add (local.get $fz) (f64.promote_f32 (f32.load (local.get $dv)))))
          (local.set $fy (f64.add (local.get $fy) (f64.promote_f32 (f32.load (i32.add (local.get $dv) (local.get $nv))))))
          (local.set $fx (f64.add (local.get $fx) (f64.promote_f32 (f32.load (i32.add (local.get $dv) (i32.shl (local.get $nv) (i32.const 1)))))))
          (if ${isInterior}
            (then (local.set $cz (local.get $fz)) (local.set $cy (local.get $fy)) (local.set $cx (local.get $fx))${body(false)})
            (else ${fullPath(body)}))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $dv (i32.add (local.get $dv) (i32.const 4)))`;
  const deformedLoop = (reach: number, body: (clamp: boolean) => string) => `
    ${LOAD_TABLES}${interiorBounds(reach)}
    (local.set $nv (i32.shl (i32.mul (i32.mul (local.get $n0) (local.get $n1)) (local.get $n2)) (i32.const 2)))
    (local.set $o (local.get $out))
    (local.set $dv (local.get $D))
    (block $id (loop $il (br_if $id (i32.ge_s (local.get $i) (local.get $n0)))
      (local.set $j (i32.const 0))
      (block $jd (loop $jl (br_if $jd (i32.ge_s (local.get $j) (local.get $n1)))
        (local.set $rz ${rowStart("z")})
        (local.set $ry ${rowStart("y")})
        (local.set $rx ${rowStart("x")})
        ${span("d", "(i32.const 0)", L("$n2"), deformedVoxel(body))}
        (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il)))`;
  const locals = `(local $i i32) (local $j i32) (local $k i32) (local $o i32) (local $kf f64) (local $rz f64) (local $ry f64) (local $rx f64) (local $dv i32) (local $nv i32)
    (local $fz f64) (local $fy f64) (local $fx f64) (local $cz f64) (local $cy f64) (local $cx f64) (local $r f64) (local $q i32)
    (local $ka i32) (local $kb i32) (local $t0 f64) (local $t1 f64) (local $t2 f64)
    (local $lzf f64) (local $lyf f64) (local $lxf f64) (local $hzf f64) (local $hyf f64) (local $hxf f64)${TABLE_LOCALS}`;
  const off = (v: string, axis: number, clamp: boolean) => (clamp ? clampOff(v, axis) : `(i32.mul (i32.sub ${v} ${L(`$lo${AX[axis]}`)}) ${L(`$s${AX[axis]}`)})`);
  const nearestBody = (clamp: boolean) => `
              (i32.store (local.get $o) (i32.add (i32.add ${off(roundI("$cz"), 0, clamp)} ${off(roundI("$cy"), 1, clamp)}) ${off(roundI("$cx"), 2, clamp)}))`;
  const linearBody = (clamp: boolean) => `
              (local.set $z0 (i32.trunc_f64_s (local.tee $r (f64.floor (local.get $cz)))))
              (local.set $wz (f64.sub (local.get $cz) (local.get $r)))
              (local.set $y0 (i32.trunc_f64_s (local.tee $r (f64.floor (local.get $cy)))))
              (local.set $wy (f64.sub (local.get $cy) (local.get $r)))
              (local.set $x0 (i32.trunc_f64_s (local.tee $r (f64.floor (local.get $cx)))))
              (local.set $wx (f64.sub (local.get $cx) (local.get $r)))
              (local.set $za (i32.add (local.get $region) ${off("(local.get $z0)", 0, clamp)}))
              (local.set $zb (i32.add (local.get $region) ${off("(i32.add (local.get $z0) (i32.const 1))", 0, clamp)}))
              (local.set $ya ${off("(local.get $y0)", 1, clamp)})
              (local.set $yb ${off("(i32.add (local.get $y0) (i32.const 1))", 1, clamp)})
              (local.set $xa ${off("(local.get $x0)", 2, clamp)})
              (local.set $xb ${off("(i32.add (local.get $x0) (i32.const 1))", 2, clamp)})
              (local.set $v ${lerp2(L("$za"))})
              (if (f64.ne (local.get $wz) (f64.const 0))
                (then
                  (local.set $u ${lerp2(L("$zb"))})
                  (local.set $v ${blend(L("$v"), L("$u"), L("$wz"))})))
              (f32.store (local.get $o) (f32.demote_f64 (local.get $v)))`;
  if (!t) {
    return `
  ;; nearest, any affine grid: the byte offset of every output voxel's sample in the region, or
  ;; -1 (padding); the zrot_nearest gathers then read it as one section, once per array.
  (func (export "gen_nearest_map") (param $P i32) (param $Q i32) (param $n0 i32) (param $n1 i32) (param $n2 i32) (param $out i32)
    ${locals}${loop(0, nearestBody)})
  (func (export "gen_nearest_map_deformed") (param $P i32) (param $Q i32) (param $n0 i32) (param $n1 i32) (param $n2 i32) (param $out i32) (param $D i32)
    ${locals}${deformedLoop(0, nearestBody)})`;
  }
  return `
  (func (export "gen_linear_${t.name}") (param $region i32) (param $P i32) (param $Q i32) (param $n0 i32) (param $n1 i32) (param $n2 i32) (param $out i32)
    ${locals}
    (local $wz f64) (local $wy f64) (local $wx f64) (local $za i32) (local $zb i32) (local $ya i32) (local $yb i32) (local $xa i32) (local $xb i32)
    (local $z0 i32) (local $y0 i32) (local $x0 i32) (local $v f64) (local $u f64)${loop(1, linearBody)})
  (func (export "gen_linear_deformed_${t.name}") (param $region i32) (param $P i32) (param $Q i32) (param $n0 i32) (param $n1 i32) (param $n2 i32) (param $out i32) (param $D i32)
    ${locals}
    (local $wz f64) (local $wy f64) (local $wx f64) (local $za i32) (local $zb i32) (local $ya i32) (local $yb i32) (local $xa i32) (local $xb i32)
    (local $z0 i32) (local $y0 i32) (local $x0 i32) (local $v f64) (local $u f64)${deformedLoop(1, linearBody)})`;
}

const ROTATED = `${SOURCES.map((t) => zrotFuncs(t) + (t.i32 ? zrotNearest4Func(t) + zrotPairFunc(t) : "") + generalFuncs(t)).join("")}${generalFuncs(null)}`;

/**
 * Copies a zn × yn box of rows of `bytes` bytes (byte strides): regions kept in their source
 * type. Rows move in 16-byte steps, the last one ending exactly at the row's end (V8 runs
 * `memory.copy` on shared memory as a call out of the module: per row of 64–100 bytes that
 * call cost more than the copy, measured 1.4 GB/s against 6 GB/s for these steps).
 */
const COPY_BOX = `
  (func (export "copy_box") (param $src i32) (param $dst i32) (param $s0 i32) (param $s1 i32) (param $d0 i32) (param $d1 i32) (param $zn i32) (param $yn i32) (param $bytes i32)
    (local $z i32) (local $y i32) (local $s i32) (local $d i32) (local $i i32) (local $last i32)
    (local.set $last (i32.sub (local.get $bytes) (i32.const 16)))
    (block $zd (loop $zl (br_if $zd (i32.ge_s (local.get $z) (local.get $zn)))
      (local.set $s (i32.add (local.get $src) (i32.mul (local.get $z) (local.get $s0))))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $z) (local.get $d0))))
      (local.set $y (i32.const 0))
      (block $yd (loop $yl (br_if $yd (i32.ge_s (local.get $y) (local.get $yn)))
        (if (i32.lt_s (local.get $last) (i32.const 0))
          (then (memory.copy (local.get $d) (local.get $s) (local.get $bytes)))
          (else
            (local.set $i (i32.const 0))
            (block $rd (loop $rl (br_if $rd (i32.ge_s (local.get $i) (local.get $last)))
              (v128.store align=1 (i32.add (local.get $d) (local.get $i)) (v128.load align=1 (i32.add (local.get $s) (local.get $i))))
              (local.set $i (i32.add (local.get $i) (i32.const 16))) (br $rl)))
            (v128.store align=1 (i32.add (local.get $d) (local.get $last)) (v128.load align=1 (i32.add (local.get $s) (local.get $last))))))
        (local.set $s (i32.add (local.get $s) (local.get $s1)))
        (local.set $d (i32.add (local.get $d) (local.get $d1)))
        (local.set $y (i32.add (local.get $y) (i32.const 1))) (br $yl)))
      (local.set $z (i32.add (local.get $z) (i32.const 1))) (br $zl))))`;

/**
 * The last pass of a separable cubic B-spline (the elastic field, `transforms/elastic.ts`): section
 * i of `out` (f32, `plane` values) is `w0·p[f] + w1·p[f+1] + w2·p[f+2] + w3·p[f+3]` of the f32
 * planes `p`, with `f` and the four f64 weights of section i from `tab` (n0 i32 firsts, then 4·n0
 * f64 weights, 8-byte aligned). Two values per step in f64 lanes, summed in the order of the
 * JavaScript reference, so the results are the same bits.
 */
const BSPLINE_Z = `
  (func (export "bspline_z") (param $out i32) (param $planes i32) (param $tab i32) (param $n0 i32) (param $plane i32)
    (local $i i32) (local $q i32) (local $f i32) (local $wt i32) (local $pb i32) (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $d i32)
    (local $w0 f64) (local $w1 f64) (local $w2 f64) (local $w3 f64) (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $pairs i32)
    (local.set $pb (i32.shl (local.get $plane) (i32.const 2)))
    (local.set $wt (i32.add (local.get $tab) (i32.and (i32.add (i32.shl (local.get $n0) (i32.const 2)) (i32.const 7)) (i32.const -8))))
    (local.set $pairs (i32.and (local.get $plane) (i32.const -2)))
    (block $id (loop $il (br_if $id (i32.ge_s (local.get $i) (local.get $n0)))
      (local.set $f (i32.load (i32.add (local.get $tab) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $w0 (f64.load (i32.add (local.get $wt) (i32.shl (local.get $i) (i32.const 5)))))
      (local.set $w1 (f64.load offset=8 (i32.add (local.get $wt) (i32.shl (local.get $i) (i32.const 5)))))
      (local.set $w2 (f64.load offset=16 (i32.add (local.get $wt) (i32.shl (local.get $i) (i32.const 5)))))
      (local.set $w3 (f64.load offset=24 (i32.add (local.get $wt) (i32.shl (local.get $i) (i32.const 5)))))
      (local.set $s0 (i32.add (local.get $planes) (i32.mul (local.get $f) (local.get $pb))))
      (local.set $s1 (i32.add (local.get $s0) (local.get $pb)))
      (local.set $s2 (i32.add (local.get $s1) (local.get $pb)))
      (local.set $s3 (i32.add (local.get $s2) (local.get $pb)))
      (local.set $d (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $pb))))
      (local.set $v0 (f64x2.splat (local.get $w0)))
      (local.set $v1 (f64x2.splat (local.get $w1)))
      (local.set $v2 (f64x2.splat (local.get $w2)))
      (local.set $v3 (f64x2.splat (local.get $w3)))
      (local.set $q (i32.const 0))
      (block $qd (loop $ql (br_if $qd (i32.ge_s (local.get $q) (local.get $pairs)))
        (v128.store64_lane 0 (i32.add (local.get $d) (i32.shl (local.get $q) (i32.const 2)))
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.add
                (f64x2.add
                  (f64x2.mul (local.get $v0) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $s0) (i32.shl (local.get $q) (i32.const 2))))))
                  (f64x2.mul (local.get $v1) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $s1) (i32.shl (local.get $q) (i32.const 2)))))))
                (f64x2.mul (local.get $v2) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $s2) (i32.shl (local.get $q) (i32.const 2)))))))
              (f64x2.mul (local.get $v3) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $s3) (i32.shl (local.get $q) (i32.const 2)))))))))
        (local.set $q (i32.add (local.get $q) (i32.const 2))) (br $ql)))
      (if (i32.lt_s (local.get $q) (local.get $plane))
        (then
          (f32.store (i32.add (local.get $d) (i32.shl (local.get $q) (i32.const 2)))
            (f32.demote_f64
              (f64.add (f64.add (f64.add
                (f64.mul (local.get $w0) (f64.promote_f32 (f32.load (i32.add (local.get $s0) (i32.shl (local.get $q) (i32.const 2))))))
                (f64.mul (local.get $w1) (f64.promote_f32 (f32.load (i32.add (local.get $s1) (i32.shl (local.get $q) (i32.const 2)))))))
                (f64.mul (local.get $w2) (f64.promote_f32 (f32.load (i32.add (local.get $s2) (i32.shl (local.get $q) (i32.const 2)))))))
                (f64.mul (local.get $w3) (f64.promote_f32 (f32.load (i32.add (local.get $s3) (i32.shl (local.get $q) (i32.const 2)))))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il))))`;

/** The module's text (exported for the test that checks the committed binary). */
export function kernelWat(): string {
  return `;; generated by scripts/build-kernels.ts
(module
  (import "env" "memory" (memory 1 65536 shared))${KINDS.map(rowFunc).join("")}${KINDS.map(boxFunc).join("")}${RESAMPLE}${ROTATED}${COPY_BOX}${BSPLINE_Z}
)
`;
}

/**
 * The LZ4 block decoder (its own, unshared memory: the caller copies the block in and the
 * output out). Returns the bytes written, or a negative code naming the damage, with exactly
 * the checks of the TypeScript decoder (`src/zarr/codecs/lz4-block.ts`), so both paths agree on
 * every input: -1 input ends before the last sequence, -2 truncated literal length, -3 literals
 * past the input end, -4 literals overflow the output, -5 truncated match offset, -6 offset
 * before the output start, -7 truncated match length, -8 match overflows the output or ends in
 * its last 5 bytes, -9 a match follows literals ending in the last 12 bytes of the output (the
 * format's end-of-block rules, which the reference decoder enforces).
 * Measured on the dev machine: 2.5–3x the TypeScript decoder on label chunks.
 */
export function lz4Wat(): string {
  const fail = (code: number) => `(return (i32.const ${code}))`;
  const readLen = (v: string, code: number) => `
        (block $ld (loop $ll
          (if (i32.ge_u (local.get $s) (local.get $se)) (then ${fail(code)}))
          (local.set $b (i32.load8_u (local.get $s)))
          (local.set $s (i32.add (local.get $s) (i32.const 1)))
          (local.set ${v} (i32.add (local.get ${v}) (local.get $b)))
          (br_if $ll (i32.eq (local.get $b) (i32.const 255)))))`;
  return `;; generated by scripts/build-kernels.ts
(module
  (memory (export "memory") 1 65536)
  ;; copy n <= 64 bytes in 16-byte moves (writes up to 15 bytes past dst + n)
  (func $wild (param $d i32) (param $s i32) (param $n i32)
    (local $i i32)
    (loop $l
      (v128.store align=1 (i32.add (local.get $d) (local.get $i)) (v128.load align=1 (i32.add (local.get $s) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  ;; decode src[s0, se) into dst[d0, de); returns bytes written or a negative code
  (func (export "lz4_block") (param $s0 i32) (param $se i32) (param $d0 i32) (param $de i32) (result i32)
    (local $s i32) (local $d i32) (local $token i32) (local $lit i32) (local $len i32) (local $off i32) (local $m i32) (local $b i32) (local $n i32) (local $end i32)
    (local.set $s (local.get $s0))
    (local.set $d (local.get $d0))
    (loop $seq
      (if (i32.ge_u (local.get $s) (local.get $se)) (then ${fail(-1)}))
      (local.set $token (i32.load8_u (local.get $s)))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (local.set $lit (i32.shr_u (local.get $token) (i32.const 4)))
      (if (i32.eq (local.get $lit) (i32.const 15)) (then ${readLen("$lit", -2)}))
      (if (local.get $lit) (then
        (if (i32.gt_u (local.get $lit) (i32.sub (local.get $se) (local.get $s))) (then ${fail(-3)}))
        (if (i32.gt_u (local.get $lit) (i32.sub (local.get $de) (local.get $d))) (then ${fail(-4)}))
        ;; up to 64 bytes with room to spare: 16-byte moves (the last may run past; the bytes
        ;; past the literal are rewritten by what follows); longer: a bulk copy
        (if (i32.and (i32.le_u (local.get $lit) (i32.const 64)) (i32.ge_u (i32.sub (local.get $de) (local.get $d)) (i32.add (local.get $lit) (i32.const 16))))
          (then (call $wild (local.get $d) (local.get $s) (local.get $lit)))
          (else (memory.copy (local.get $d) (local.get $s) (local.get $lit))))
        (local.set $s (i32.add (local.get $s) (local.get $lit)))
        (local.set $d (i32.add (local.get $d) (local.get $lit)))))
      ;; the last sequence has literals only
      (if (i32.eq (local.get $s) (local.get $se)) (then (return (i32.sub (local.get $d) (local.get $d0)))))
      (if (i32.lt_u (i32.sub (local.get $de) (local.get $d)) (i32.const 12)) (then ${fail(-9)}))
      (if (i32.lt_u (i32.sub (local.get $se) (local.get $s)) (i32.const 2)) (then ${fail(-5)}))
      (local.set $off (i32.load16_u align=1 (local.get $s)))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      (if (i32.or (i32.eqz (local.get $off)) (i32.gt_u (local.get $off) (i32.sub (local.get $d) (local.get $d0)))) (then ${fail(-6)}))
      (local.set $len (i32.add (i32.and (local.get $token) (i32.const 15)) (i32.const 4)))
      (if (i32.eq (local.get $len) (i32.const 19)) (then ${readLen("$len", -7)}))
      (if (i32.gt_u (local.get $len) (i32.sub (i32.sub (local.get $de) (local.get $d)) (i32.const 5))) (then ${fail(-8)}))
      (local.set $m (i32.sub (local.get $d) (local.get $off)))
      (local.set $end (i32.add (local.get $d) (local.get $len)))
      (if (i32.ge_u (local.get $off) (local.get $len))
        (then
          ;; non-overlapping: 16-byte moves for matches up to 64 bytes whose source lies 16+ bytes
          ;; back (each move reads only bytes already final), room permitting; else a bulk copy
          (if (i32.and (i32.and (i32.le_u (local.get $len) (i32.const 64)) (i32.ge_u (local.get $off) (i32.const 16)))
                (i32.ge_u (i32.sub (local.get $de) (local.get $d)) (i32.add (local.get $len) (i32.const 16))))
            (then (call $wild (local.get $d) (local.get $m) (local.get $len)))
            (else (memory.copy (local.get $d) (local.get $m) (local.get $len)))))
        (else (if (i32.eq (local.get $off) (i32.const 1))
          (then (memory.fill (local.get $d) (i32.load8_u (local.get $m)) (local.get $len)))
          (else (if (i32.le_u (local.get $len) (i32.const 32))
            (then
              ;; short overlapping match: byte by byte (it replicates the pattern)
              (block $bd (loop $bl
                (br_if $bd (i32.ge_u (local.get $d) (local.get $end)))
                (i32.store8 (local.get $d) (i32.load8_u (local.get $m)))
                (local.set $d (i32.add (local.get $d) (i32.const 1)))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))
                (br $bl))))
          (else
            ;; overlapping: repeat the period; pieces double in size and never overlap
            (block $od (loop $ol
              (br_if $od (i32.ge_u (local.get $d) (local.get $end)))
              (local.set $n (i32.sub (local.get $d) (local.get $m)))
              (if (i32.gt_u (local.get $n) (i32.sub (local.get $end) (local.get $d))) (then (local.set $n (i32.sub (local.get $end) (local.get $d)))))
              (memory.copy (local.get $d) (local.get $m) (local.get $n))
              (local.set $d (i32.add (local.get $d) (local.get $n)))
              (br $ol)))))))))
      (local.set $d (local.get $end))
      (br $seq))
    (unreachable))
)
`;
}

/** Compiles {@link kernelWat} (or another module's text) with wabt. */
export async function compileKernels(text: string = kernelWat()): Promise<Uint8Array> {
  const wabt = await (await import("wabt")).default();
  const features = { simd: true, threads: true, bulk_memory: true };
  const mod = wabt.parseWat("kernels.wat", text, features);
  try {
    (mod.validate as (f: object) => void)(features);
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

/** The TypeScript module holding a binary as base64 constant `name`. */
export function kernelModuleSource(bytes: Uint8Array, name = "GATHER_WASM_BASE64", what = "The gather kernels'"): string {
  const b64 = Buffer.from(bytes).toString("base64");
  const lines = b64.match(/.{1,100}/g) ?? [];
  return `// Generated by scripts/build-kernels.ts (npm run build:kernels): do not edit.
/** ${what} WebAssembly binary, base64 (${bytes.length} bytes). */
export const ${name} =
${lines.map((l) => `  "${l}"`).join(" +\n")};
`;
}

/** The generated files: path (from the repository root) → contents. */
export async function generatedKernelFiles(): Promise<Record<string, string>> {
  return {
    "src/kernels/gather-wasm.ts": kernelModuleSource(await compileKernels()),
    "src/kernels/lz4-wasm.ts": kernelModuleSource(await compileKernels(lz4Wat()), "LZ4_WASM_BASE64", "The LZ4 block decoder's"),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  for (const [file, text] of Object.entries(await generatedKernelFiles())) {
    const out = new URL(`../${file}`, import.meta.url);
    fs.writeFileSync(out, text);
    console.log(`wrote ${fileURLToPath(out)}`);
  }
}
