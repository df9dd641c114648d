//! The scalar type the generated kernels are written against: `f32` or `f64`.
//!
//! Every generated kernel is generic over [`Real`], so one definition gives an `f32` and an
//! `f64` kernel. The numerically delicate primitives (sigmoid, softplus, the online
//! logsumexp) are written here once, in their stable forms.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// A floating-point scalar the kernels compute in (`f32` or `f64`).
pub trait Real:
    Copy
    + Debug
    + Display
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Send
    + Sync
    + 'static
{
    /// The type's name (`f32`, `f64`), for messages.
    const NAME: &'static str;
    /// The smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// The largest finite value.
    const MAX: Self;
    /// Converts from `f64`, rounding to the nearest representable value.
    fn from_f64(x: f64) -> Self;
    /// Widens (or copies) to `f64`.
    fn to_f64(self) -> f64;
    /// Converts a count.
    #[inline(always)]
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// `0`.
    #[inline(always)]
    fn zero() -> Self {
        Self::from_f64(0.0)
    }
    /// `1`.
    #[inline(always)]
    fn one() -> Self {
        Self::from_f64(1.0)
    }
    /// `eˣ`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + x)`, accurate for small `x`.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Integer power.
    fn powi(self, n: i32) -> Self;
    /// Real power.
    fn powf(self, y: Self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Cosine (radians).
    fn cos(self) -> Self;
    /// Sine (radians).
    fn sin(self) -> Self;
    /// Arc cosine, in `[0, π]`; NaN outside `[−1, 1]`.
    fn acos(self) -> Self;
    /// `eˣ − 1`, accurate for small `x`.
    fn exp_m1(self) -> Self;
    /// Rounds half away from zero.
    fn round(self) -> Self;
    /// Largest integer not above.
    fn floor(self) -> Self;
    /// Smallest integer not below.
    fn ceil(self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// `+∞`.
    fn infinity() -> Self;

    /// `-1`, `0` or `1` (zero at zero, unlike `f64::signum`).
    #[inline(always)]
    fn sign(self) -> Self {
        if self > Self::zero() {
            Self::one()
        } else if self < Self::zero() {
            -Self::one()
        } else {
            Self::zero()
        }
    }
    /// `1 / (1 + e⁻ˣ)`, computed without overflow for any `x`: with `e = e^{-|x|}`, it is
    /// `1 / (1 + e)` for `x ≥ 0` and `e / (1 + e)` below (one `exp`, no branch).
    #[inline(always)]
    fn sigmoid(self) -> Self {
        let e = (-self.abs()).exp();
        let s = Self::one() / (Self::one() + e);
        if self >= Self::zero() {
            s
        } else {
            e * s
        }
    }
    /// `ln(1 + eˣ)`, computed as `max(x, 0) + ln_1p(e^{-|x|})`.
    #[inline(always)]
    fn softplus(self) -> Self {
        self.relu() + (-self.abs()).exp().ln_1p()
    }
    /// `max(x, 0)`.
    #[inline(always)]
    fn relu(self) -> Self {
        if self > Self::zero() {
            self
        } else {
            Self::zero()
        }
    }
    /// The larger of two values (the first one on ties and NaN).
    #[inline(always)]
    fn max2(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    /// The smaller of two values (the first one on ties and NaN).
    #[inline(always)]
    fn min2(self, other: Self) -> Self {
        if other < self {
            other
        } else {
            self
        }
    }
    /// `min(max(x, lo), hi)`.
    #[inline(always)]
    fn clamp_to(self, lo: Self, hi: Self) -> Self {
        self.max2(lo).min2(hi)
    }
    /// `1.0` for true, `0.0` for false.
    #[inline(always)]
    fn from_bool(b: bool) -> Self {
        if b {
            Self::one()
        } else {
            Self::zero()
        }
    }
}

macro_rules! impl_real {
    ($t:ty, $exp:path) => {
        impl Real for $t {
            const NAME: &'static str = stringify!($t);
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline(always)]
            fn powf(self, y: Self) -> Self {
                <$t>::powf(self, y)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn round(self) -> Self {
                <$t>::round(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn infinity() -> Self {
                <$t>::INFINITY
            }
        }
    };
}
impl_real!(f32, crate::core::math::exp_f32);
impl_real!(f64, crate::core::math::exp_f64);

/// Online, max-shifted `ln Σ eˣ` accumulator (one pass, one `exp` per element).
///
/// An empty accumulator finishes at `-∞`, the logsumexp of the empty set.
#[derive(Clone, Copy, Debug)]
pub struct LogSumExp<R> {
    max: R,
    sum: R,
}

impl<R: Real> Default for LogSumExp<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Real> LogSumExp<R> {
    /// An empty accumulator.
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            max: -R::infinity(),
            sum: R::zero(),
        }
    }
    /// Adds `x` to the set.
    #[inline(always)]
    pub fn push(&mut self, x: R) {
        if x > self.max {
            self.sum = self.sum * (self.max - x).exp() + R::one();
            self.max = x;
        } else {
            self.sum += (x - self.max).exp();
        }
    }
    /// `ln Σ eˣ` over the values pushed.
    #[inline(always)]
    pub fn finish(self) -> R {
        if self.sum > R::zero() {
            self.max + self.sum.ln()
        } else {
            -R::infinity()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_at_both_ends() {
        assert_eq!(Real::sigmoid(-1000.0f64), 0.0);
        assert_eq!(Real::sigmoid(1000.0f64), 1.0);
        assert!((Real::sigmoid(0.3f64) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
        // tiny but non-zero on the far negative side
        assert!(Real::sigmoid(-50.0f32) > 0.0);
    }

    #[test]
    fn softplus_matches_definition_and_does_not_overflow() {
        for x in [-30.0f64, -1.0, 0.0, 0.5, 20.0] {
            assert!((Real::softplus(x) - (1.0 + x.exp()).ln()).abs() < 1e-12);
        }
        assert_eq!(Real::softplus(1000.0f64), 1000.0);
    }

    #[test]
    fn online_logsumexp_matches_two_pass() {
        let xs = [3.0f64, -2.0, 700.0, 699.5, 0.0];
        let mut acc = LogSumExp::new();
        xs.iter().for_each(|&x| acc.push(x));
        let m = 700.0;
        let naive = m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        assert!((acc.finish() - naive).abs() < 1e-12);
        assert_eq!(LogSumExp::<f64>::new().finish(), f64::NEG_INFINITY);
    }
}
