//! Runtime operators that `#[loss]` definitions call but cannot express as one formula:
//! each is a reduction over an index set whose value a small hand-written routine
//! computes. They are constants to the compiler's chain rule (the DSL only accepts them
//! under `detach(..)`); a loss that needs their derivative writes it with `detach`, as
//! the implicit-function construction of `dexml_soft_topk` does.

use crate::core::real::Real;

/// The threshold `t` with `Σₖ σ(α·(xₖ + t)) = K`, found by bisection.
///
/// The bracket starts at `[−max x − 10/α, −min x + 10/α]` (T. Ahle's soft top-k, as
/// DEXML's `_dist_find_ts`) and is halved at least `iterations` times, and then until it
/// is no wider than `(20/α)·2^−iterations` (or no float lies inside it), so that the
/// threshold's precision, measured in units of `1/α` where the sigmoids change, does not
/// depend on the magnitude of the values: scores of 1e12 get the same relative answer as
/// scores of 1. The midpoint is returned. The left side is increasing in `t`, so a root
/// exists exactly when `0 < K < n`; for `K` outside that range the result is the nearer
/// end of the bracket. An empty set gives 0. The bracket's ends are kept finite (at most
/// the dtype's largest value), whatever α and the values.
///
/// ```
/// use loss_runtime::core::foreign::topk_threshold;
/// let xs = [3.0f64, 1.0, 0.5, -2.0];
/// let t = topk_threshold(&xs, 2.0, 4.0, 60.0);
/// let total: f64 = xs.iter().map(|x| 1.0 / (1.0 + (-4.0 * (x + t)).exp())).sum();
/// assert!((total - 2.0).abs() < 1e-9);
/// ```
pub fn topk_threshold<R: Real>(xs: &[R], k: R, alpha: R, iterations: R) -> R {
    if xs.is_empty() {
        return R::zero();
    }
    let (mut lo_x, mut hi_x) = (xs[0], xs[0]);
    for &x in xs {
        lo_x = lo_x.min2(x);
        hi_x = hi_x.max2(x);
    }
    let half = R::from_f64(0.5);
    let finite = |x: R| x.clamp_to(-R::MAX, R::MAX);
    let margin = finite(R::from_f64(10.0) / alpha);
    let (mut lo, mut hi) = (finite(-hi_x - margin), finite(-lo_x + margin));
    let steps = iterations.to_f64().clamp(0.0, 200.0) as usize;
    // (20/α)·2^−steps, without overflow for a tiny α
    let width = finite(margin * R::from_f64(2.0 * 0.5f64.powi(steps as i32)));
    // enough halvings to go from the widest finite bracket down to any float spacing
    const MAX_STEPS: usize = 4096;
    for step in 0..MAX_STEPS {
        if step >= steps && hi - lo <= width {
            break;
        }
        let mid = lo * half + hi * half;
        if !(mid > lo && mid < hi) {
            break;
        }
        let mut total = R::zero();
        for &x in xs {
            total += (alpha * (x + mid)).sigmoid();
        }
        if total < k {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo * half + hi * half
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft_count(xs: &[f64], t: f64, alpha: f64) -> f64 {
        xs.iter()
            .map(|x| 1.0 / (1.0 + (-alpha * (x + t)).exp()))
            .sum()
    }

    #[test]
    fn bisection_finds_the_root_within_the_bracket_tolerance() {
        let xs = [0.3, -1.2, 2.5, 0.0, 1.1, -0.4, 0.9];
        for k in [1.0, 2.0, 3.5, 6.0] {
            for alpha in [0.5, 2.0, 10.0] {
                let t = topk_threshold(&xs, k, alpha, 60.0);
                assert!(
                    (soft_count(&xs, t, alpha) - k).abs() < 1e-9,
                    "k={k} alpha={alpha}"
                );
            }
        }
    }

    #[test]
    fn fewer_iterations_leave_a_wider_bracket() {
        let xs = [0.3, -1.2, 2.5, 0.0];
        let coarse = topk_threshold(&xs, 2.0, 2.0, 4.0);
        let fine = topk_threshold(&xs, 2.0, 2.0, 60.0);
        assert!(
            (soft_count(&xs, coarse, 2.0) - 2.0).abs() > (soft_count(&xs, fine, 2.0) - 2.0).abs()
        );
    }

    #[test]
    fn hard_top_k_in_the_sharp_limit() {
        let xs = [3.0, 1.0, 0.5, -2.0, 2.0];
        let alpha = 200.0;
        let t = topk_threshold(&xs, 2.0, alpha, 80.0);
        let p: Vec<f64> = xs
            .iter()
            .map(|x| 1.0 / (1.0 + (-alpha * (x + t)).exp()))
            .collect();
        // the two largest are in, the rest out
        assert!(p[0] > 0.99 && p[4] > 0.99);
        assert!(p[1] < 0.01 && p[2] < 0.01 && p[3] < 0.01);
    }

    /// A value far above the others does not cost the others their precision: the
    /// threshold among the small values is found as if the large one were not there
    /// (it is fully in the top set), in f32 and f64, up to the largest scores.
    #[test]
    fn precision_does_not_depend_on_the_largest_value() {
        let rest = [0.5, 0.1, -0.3, 0.2, -1.0];
        let reference = topk_threshold(&rest, 1.0, 2.0, 32.0);
        for big in [1e3, 1e11, 1e12, 1e14, 1e20, 1e30, 1e38] {
            let xs: Vec<f64> = [big].iter().chain(&rest).copied().collect();
            let t = topk_threshold(&xs, 2.0, 2.0, 32.0);
            assert!(
                (t - reference).abs() < 1e-8,
                "f64, {big}: {t} vs {reference}"
            );
            let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            let t32 = topk_threshold(&xs32, 2.0, 2.0, 32.0);
            assert!(
                (f64::from(t32) - reference).abs() < 1e-5,
                "f32, {big}: {t32} vs {reference}"
            );
        }
    }

    #[test]
    fn extreme_alphas_and_values_keep_the_bracket_finite() {
        for alpha in [1e-38f32, 1e-20, 1e20, 1e38] {
            for x in [3e38f32, 1e30, 1.0] {
                let t = topk_threshold(&[x, -x, 0.0], 1.5, alpha, 32.0);
                assert!(t.is_finite(), "α = {alpha}, x = {x}: {t}");
            }
        }
    }

    #[test]
    fn out_of_range_k_and_empty_sets_stay_finite() {
        let xs = [1.0f32, 2.0];
        assert!(topk_threshold(&xs, 5.0, 2.0, 32.0).is_finite());
        assert!(topk_threshold(&xs, 0.0, 2.0, 32.0).is_finite());
        assert_eq!(topk_threshold::<f32>(&[], 1.0, 2.0, 32.0), 0.0);
    }
}
