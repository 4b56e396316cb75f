/**
 * Vectorised exp for f32x4, used for the CX terms exp(alpha * a).
 *
 * Algorithm: range reduction x = n ln2 + r with n = nearest(x / ln2) and
 * |r| <= ln2 / 2. ln2 is split into a 9-bit head and a tail (Cody and Waite)
 * so that n * LN2_HI is exact. exp(r) comes from a degree-5 polynomial, and
 * 2^n is built in the exponent bits. The coefficients minimise the maximum
 * relative error on [-ln2/2, ln2/2] with P0 = P1 = 1 fixed. They were found
 * by a linear program in float64 on 4001 points and rounded to float32. The
 * fit alone is within 7.5e-8.
 *
 * Product: x = alpha * s is never rounded as a whole. alpha arrives as
 * alphaHigh (at most 12 significant bits) plus alphaLow, and s is split into
 * its top 12 significand bits and the rest, so the large part of the product
 * is exact and only terms below 2^-11 |x| are rounded. Rounding x itself
 * would cost up to |x| * 2^-24 relative error, 4.8e-6 at |x| = 80.
 *
 * Accuracy: all arithmetic is float32. Against Math.exp over [-80, 80]
 * (2^22 grid points plus 1.3e7 random ones) the largest relative error
 * measured was 2.0e-7 for the plain build and 1.9e-7 for the relaxed one.
 * test/wasm-kernel.test.ts asserts < 2.5e-7 on both.
 *
 * Domain: |alpha * s| <= 87, where 2^n is a normal float32. There is no
 * clamp (it would cost two instructions per vector in the CX epilogue):
 * outside the domain the result is wrong but nothing traps. The host keeps
 * |alpha| <= 80, and a cosine of float32 unit vectors exceeds 1 by at most
 * the summation error, about D * 6e-8 in the worst case (0.00025 at D = 4096).
 */
import { madd } from './simd';

/** log2(e), rounded to float32 where it scales a float32. */
export const LOG2E: f64 = 1.4426950408889634;
/** Head of ln2 with 9 significant bits: n * LN2_HI is exact for |n| < 2^15. */
const LN2_HI: f32 = 0.693359375;
/** ln2 - LN2_HI. */
const LN2_LO: f32 = -2.1219444005469057e-4;
/** 1.5 * 2^23: adding it rounds a float32 of magnitude below 2^22 to an integer. */
const ROUNDING_SHIFT: f32 = 12582912.0;
/** Keeps the sign, the exponent and the top 11 stored significand bits of a float32. */
const HIGH_BITS_MASK: i32 = 0xfffff000;

// Coefficients of exp(r) = sum P_i r^i on [-ln2/2, ln2/2].
const P0: f32 = 1.0;
const P1: f32 = 1.0;
const P2: f32 = 0.49999043345451355;
const P3: f32 = 0.16666939854621887;
const P4: f32 = 0.04190804436802864;
const P5: f32 = 0.008325664326548576;

/**
 * Returns exp(alpha * s) per lane, where alpha = alphaHigh + alphaLow,
 * alphaHigh has at most 12 significant bits and alphaLog2e is alpha * log2(e)
 * in float32 (see the file header).
 */
// @ts-ignore: decorator
@inline export function expProduct_f32x4(
  s_f32x4: v128,
  alphaHigh_f32x4: v128,
  alphaLow_f32x4: v128,
  alphaLog2e_f32x4: v128,
): v128 {
  // Adding 1.5 * 2^23 rounds alpha * s / ln2 to the nearest integer n and leaves
  // n in the low significand bits, which saves a float-to-int conversion. An n
  // off by one near a rounding tie only widens |r| by a few ulp.
  const shifted_f32x4 = madd(s_f32x4, alphaLog2e_f32x4, f32x4.splat(ROUNDING_SHIFT));
  const n_f32x4 = f32x4.sub(shifted_f32x4, f32x4.splat(ROUNDING_SHIFT));

  // r = alpha * s - n ln2, with the head sHigh * alphaHigh - n * LN2_HI exact
  // (12 x 12 significant bits, then a cancelling subtraction) and three small
  // corrections.
  const sHigh_f32x4 = v128.and(s_f32x4, i32x4.splat(HIGH_BITS_MASK));
  const sLow_f32x4 = f32x4.sub(s_f32x4, sHigh_f32x4);
  let r_f32x4 = madd(n_f32x4, f32x4.splat(-LN2_HI), f32x4.mul(sHigh_f32x4, alphaHigh_f32x4));
  r_f32x4 = madd(sLow_f32x4, alphaHigh_f32x4, r_f32x4);
  r_f32x4 = madd(s_f32x4, alphaLow_f32x4, r_f32x4);
  r_f32x4 = madd(n_f32x4, f32x4.splat(-LN2_LO), r_f32x4);

  let p_f32x4 = madd(f32x4.splat(P5), r_f32x4, f32x4.splat(P4));
  p_f32x4 = madd(p_f32x4, r_f32x4, f32x4.splat(P3));
  p_f32x4 = madd(p_f32x4, r_f32x4, f32x4.splat(P2));
  p_f32x4 = madd(p_f32x4, r_f32x4, f32x4.splat(P1));
  p_f32x4 = madd(p_f32x4, r_f32x4, f32x4.splat(P0));

  // The bits of shifted_f32x4 are 0x4B400000 + n; shifting left by 23 drops
  // the 0x4B400000 part, so (bits + 127) << 23 is the float32 2^n. |n| <= 126
  // inside the domain keeps the biased exponent n + 127 in [1, 253].
  const scale_f32x4 = i32x4.shl(i32x4.add(shifted_f32x4, i32x4.splat(127)), 23);
  return f32x4.mul(p_f32x4, scale_f32x4);
}

/**
 * Writes exp(alpha * src[i]) to dst[i] for `count` float32 values, `count` a
 * multiple of 4, with alpha = alphaHigh + alphaLow split as for the scoring
 * kernel. Exposes the kernel's exp to tests; the scoring path inlines it.
 */
export function expBatch(src: usize, dst: usize, count: i32, alphaHigh: f32, alphaLow: f32): void {
  const alphaHigh_f32x4 = f32x4.splat(alphaHigh);
  const alphaLow_f32x4 = f32x4.splat(alphaLow);
  const alphaLog2e_f32x4 = f32x4.splat(<f32>((<f64>alphaHigh + <f64>alphaLow) * LOG2E));
  for (let i = 0; i < count; i += 4) {
    const offset = <usize>i << 2;
    const s_f32x4 = v128.load(src + offset);
    v128.store(
      dst + offset,
      expProduct_f32x4(s_f32x4, alphaHigh_f32x4, alphaLow_f32x4, alphaLog2e_f32x4),
    );
  }
}
