/**
 * SIMD helpers shared by the kernels.
 *
 * `madd` is the multiply-add of the score micro-kernel and the exp
 * polynomial. The relaxed build (compiled with `--enable relaxed-simd`) uses
 * `f32x4.relaxed_madd`, which the relaxed SIMD proposal lets an engine fuse or
 * not, so results may differ between machines in the last bit. V8 11.3 (Node
 * 20.20) emitted vfmadd231ps on a Xeon Sapphire Rapids (--print-wasm-code).
 * The plain build always rounds twice, after the multiply and after the add.
 */

/** Returns a * b + c per lane. */
// @ts-ignore: decorator
@inline export function madd(a_f32x4: v128, b_f32x4: v128, c_f32x4: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a_f32x4, b_f32x4, c_f32x4);
  } else {
    return f32x4.add(f32x4.mul(a_f32x4, b_f32x4), c_f32x4);
  }
}

/**
 * Returns the four lane sums of `a`, `b`, `c` and `d` in one f32x4:
 * lane i is the sum of the four lanes of the i-th argument.
 */
// @ts-ignore: decorator
@inline export function sumLanes4(
  a_f32x4: v128,
  b_f32x4: v128,
  c_f32x4: v128,
  d_f32x4: v128,
): v128 {
  // Pairs lanes (0, 2) and (1, 3) of two vectors at a time, then folds again.
  const ab_f32x4 = f32x4.add(
    v128.shuffle<f32>(a_f32x4, b_f32x4, 0, 4, 1, 5),
    v128.shuffle<f32>(a_f32x4, b_f32x4, 2, 6, 3, 7),
  );
  const cd_f32x4 = f32x4.add(
    v128.shuffle<f32>(c_f32x4, d_f32x4, 0, 4, 1, 5),
    v128.shuffle<f32>(c_f32x4, d_f32x4, 2, 6, 3, 7),
  );
  return f32x4.add(
    v128.shuffle<f32>(ab_f32x4, cd_f32x4, 0, 1, 4, 5),
    v128.shuffle<f32>(ab_f32x4, cd_f32x4, 2, 3, 6, 7),
  );
}
