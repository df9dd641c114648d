//! `eˣ` in straight-line arithmetic, so that the generated loops vectorise.
//!
//! The standard library's `exp` is a call into the C math library: the compiler can
//! neither inline it nor turn a loop of calls into vector instructions, and in the
//! profile of softmax cross-entropy those calls were a third of the time (see
//! `BENCHMARKS.md`). These versions use only additions, multiplications, comparisons and
//! bit operations, with no branch the compiler cannot turn into a select:
//!
//! - range reduction `x = n·ln 2 + r`, `n` an integer and `|r| ≤ ln 2 / 2` (with `ln 2`
//!   split in two parts, so that `n · ln2_hi` is exact);
//! - `eʳ` by its Taylor polynomial, of degree 7 for `f32` and 13 for `f64`: the first
//!   omitted term is below 10⁻⁸ (`f32`) and 5·10⁻¹⁸ (`f64`) of the result, so the error is
//!   the rounding of the evaluation, about one unit in the last place (the tests measure
//!   it against the standard library over the whole range);
//! - `2ⁿ` built from its exponent bits, applied as two factors `2^⌊n/2⌋ · 2^⌈n/2⌉` so that
//!   results that overflow give `+∞` and results below the normal range round once into
//!   the subnormals, then to `0`.
//!
//! `x` is clamped first (NaN passes through the clamp, and the result is NaN); `-∞` gives
//! `0` and `+∞` gives `+∞`.

/// `eˣ` for `f32`, within about one unit in the last place of the correctly rounded value.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // 1.5 · 2²³: adding it rounds a value below 2²² in magnitude to an integer
    const SHIFT: f32 = 12_582_912.0;
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so n · LN2_HI is exact
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // e⁻¹⁰⁴ is below half the least subnormal and e⁸⁹ above the largest finite value;
    // comparisons are false for NaN, which goes on unchanged
    let x = if x < -104.0 { -104.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let t = x * LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n as an integer, from the low bits of t (n ∈ [-150, 129] here)
    let k = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let k1 = k >> 1;
    let k2 = k - k1;
    let s1 = f32::from_bits((k1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((k2.wrapping_add(127) as u32) << 23);
    p * s1 * s2
}

/// `eˣ` for `f64`, within about one unit in the last place of the correctly rounded value.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    // 1.5 · 2⁵²
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO; LN2_HI has its last 32 bits zero, so n · LN2_HI is exact
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = if x < -746.0 { -746.0 } else { x };
    let x = if x > 710.0 { 710.0 } else { x };
    let t = x * LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Horner from the degree-13 coefficient down
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let mut p = C[13];
    p = p * r + C[12];
    p = p * r + C[11];
    p = p * r + C[10];
    p = p * r + C[9];
    p = p * r + C[8];
    p = p * r + C[7];
    p = p * r + C[6];
    p = p * r + C[5];
    p = p * r + C[4];
    p = p * r + C[3];
    p = p * r + C[2];
    p = p * r + C[1];
    p = p * r + C[0];
    // n ∈ [-1077, 1025] here
    let k = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let k1 = k >> 1;
    let k2 = k - k1;
    let s1 = f64::from_bits((k1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((k2.wrapping_add(1023) as u64) << 52);
    p * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite `f32`s of one sign.
    fn ulps32(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i128 - b.to_bits() as i128).unsigned_abs() as u64
    }

    #[test]
    fn f32_is_within_two_ulps_of_std_over_the_whole_range() {
        // every 31st float of each sign up to 110 in magnitude (overflow, subnormal and
        // zero results included)
        let limit = 110.0f32.to_bits();
        let mut worst = (0, 0.0f32);
        for sign in [0u32, 1 << 31] {
            for bits in (0..limit).step_by(31) {
                let x = f32::from_bits(sign | bits);
                let (got, want) = (exp_f32(x), x.exp());
                assert_eq!(
                    got.is_finite(),
                    want.is_finite(),
                    "exp({x}) = {got}, std {want}"
                );
                if want.is_finite() && ulps32(got, want) > worst.0 {
                    worst = (ulps32(got, want), x);
                }
            }
        }
        assert!(worst.0 <= 2, "worst {} ulps at x = {}", worst.0, worst.1);
    }

    #[test]
    fn f64_is_within_two_ulps_of_std_over_the_whole_range() {
        let mut worst = 0;
        for k in 0..2_000_001 {
            let x = -750.0 + 1465.0 * (k as f64) / 2e6 + 1e-7 * (k % 7) as f64;
            let (got, want) = (exp_f64(x), x.exp());
            assert_eq!(
                got.is_finite(),
                want.is_finite(),
                "exp({x}) = {got}, std {want}"
            );
            if want.is_finite() {
                worst = worst.max(ulps64(got, want));
            }
        }
        for k in 0..200_001 {
            let x = -1.0 + (k as f64) / 1e5;
            worst = worst.max(ulps64(exp_f64(x), x.exp()));
        }
        assert!(worst <= 2, "worst {worst} ulps");
    }

    #[test]
    fn special_values() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(exp_f32(88.8), f32::INFINITY);
        assert_eq!(exp_f64(709.9), f64::INFINITY);
        assert!(exp_f32(88.7).is_finite());
        assert!(exp_f64(709.7).is_finite());
        assert_eq!(exp_f32(-104.0), 0.0);
        assert_eq!(exp_f64(-746.0), 0.0);
        // the least subnormal and its neighbours
        assert_eq!(exp_f32(-103.9), (-103.9f32).exp());
        assert_eq!(exp_f64(-744.0), (-744.0f64).exp());
        assert!(exp_f32(-100.0) > 0.0 && exp_f32(-100.0) < f32::MIN_POSITIVE);
        assert!(exp_f64(-740.0) > 0.0 && exp_f64(-740.0) < f64::MIN_POSITIVE);
    }
}
