//! LDR-KL (Zhu, Ying & Yang, ICML 2023): a label-distributionally-robust loss, the
//! worst case over label distributions near uniform, on normalised logits.

use crate::loss;

/// LDR-KL: the largest expected margin violation over all label distributions, each
/// charged λ times its KL divergence from uniform, which gives a temperature-λ
/// log-mean-exp of the margin-shifted logit gaps; it moves from a Crammer–Singer hinge
/// (λ → 0) to the mean gap (λ → ∞).
///
/// ```text
/// paper:  ψ_λ(f, y) = max_{p ∈ Δ_C} Σ_k p_k·(f_k − f_y + c·[k ≠ y]) − λ·KL(p ‖ 1/C)
///                   = λ · ln( (1/C) Σ_k exp((f_k − f_y + c·[k ≠ y]) / λ) )
///
/// here, on the official code's normalised logits:
///   f̄[i][k] = softplus(z[i][k]) / mean_m softplus(z[i][m])
///   d[i][k] = ( c·[k ≠ y[i]] + f̄[i][k] − f̄[i][y[i]] ) / λ
///   Lᵢ      = λ · ( logsumexp_k d[i][k] − ln C )
///   L       = (1/N) Σᵢ Lᵢ
/// ```
///
/// For every λ, `mean_k d·λ ≤ Lᵢ ≤ max_k d·λ` (Jensen), with the mean as λ → ∞ and the
/// max, `max(0, max_{k≠y}(c + f̄_k − f̄_y))`, as λ → 0. The logits enter only through
/// `f̄`, so a row's scale matters (softplus is not homogeneous) but `f̄` sums to C.
///
/// **Conventions.** The loss is smooth. The log-mean-exp is a max-shifted `logsumexp`
/// minus `ln C`, so a small λ (1e-3, gaps / λ in the thousands) does not overflow. The
/// normalisation is computed in the log domain, `f̄_k = exp(ln softplus(z_k) −
/// ln mean_m softplus(z_m))` with `ln softplus(x)` taken as `x` below −40 (exact to
/// e⁻⁴⁰/2), so a row whose softplus values all underflow (every logit below about −745
/// in f64, −103 in f32) still has its exact, finite normalised logits.
///
/// **Reference:** Zhu, Ying, Yang. *Label Distributionally Robust Losses for Multi-class
/// Classification: Consistency, Robustness and Adaptivity.* ICML 2023. **Official code:**
/// `Optimization-AI/ICML2023_LDR`, `loss.py::LDRLoss_V1` (hyper-parameters in
/// `experiment.py`). Differences: none in value where the official code is finite; where
/// its `softplus(f) / mean(softplus(f))` divides 0 by 0 (a row of logits below about
/// −745 in f64) it gives NaN, and the log-domain form here gives the exact limit. The
/// paper defines ψ_λ on raw scores; the official code (followed here) first maps the
/// logits through softplus and divides by the row mean, without an epsilon. The code's max-shift is detached, which does not
/// change the value or the gradient of a log-sum-exp; here the shift is the one inside
/// `logsumexp`. The adaptive ALDR-KL, which keeps a λ per training sample, is not this
/// loss.
///
/// **Defaults:** the released runs' `experiment.py` values, margin `c = 0.1` and
/// `λ = 10`; the class `LDRLoss_V1` itself defaults to `c = 2`, `λ = 1`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let loss = LdrKl::default().forward(z.leaky_trace(), &[0, 2]);
/// // a small λ is safe and tends to the hinge on the normalised logits
/// let hinge = LdrKl::default().with_lambda(1e-3).forward(z.clone(), &[0, 2]);
/// assert!(hinge.array().is_finite());
/// let grads = loss.backward();
/// ```
#[loss(logits, paper = "LDR-KL (Zhu, Ying & Yang, ICML 2023)")]
pub fn ldr_kl(
    z: Logits,
    y: Labels,
    #[hyper(
        default = 0.1,
        doc = "c: the margin added to every class but the label's"
    )]
    margin: f64,
    #[hyper(
        default = 10.0,
        positive,
        doc = "λ: the KL regularisation strength (the temperature)"
    )]
    lambda: f64,
) -> PerSample {
    // ln softplus(x), exact; below −40 it is x to within e⁻⁴⁰/2, and never ln 0
    let classes_count = len(classes);
    let log_scale = logsumexp(classes, |k| {
        select(z[i][k] < -40.0, z[i][k], ln(softplus(max(z[i][k], -40.0))))
    }) - ln(classes_count);
    let target = exp(select(
        z[i][y[i]] < -40.0,
        z[i][y[i]],
        ln(softplus(max(z[i][y[i]], -40.0))),
    ) - log_scale);
    let gaps = logsumexp(classes, |k| {
        let log_softplus = select(z[i][k] < -40.0, z[i][k], ln(softplus(max(z[i][k], -40.0))));
        (select(k == y[i], 0.0, margin) + exp(log_softplus - log_scale) - target) / lambda
    });
    lambda * (gaps - ln(classes_count))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient, Tolerance};
    use crate::testing::*;

    /// The gaps `d·λ = c·[k ≠ y] + f̄_k − f̄_y` of one row, with plain loops.
    fn gaps(row: &[f64], label: usize, margin: f64) -> Vec<f64> {
        let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let scale = row.iter().map(|&v| softplus(v)).sum::<f64>() / row.len() as f64;
        let target = softplus(row[label]) / scale;
        (0..row.len())
            .map(|k| {
                let c = if k == label { 0.0 } else { margin };
                c + softplus(row[k]) / scale - target
            })
            .collect()
    }

    /// The official computation: `λ·(ln mean_k exp(d_k − m) + m)` with `m = max_k d_k`.
    fn naive(z: &[f64], c: usize, y: &[usize], margin: f64, lambda: f64) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let d: Vec<f64> = gaps(&z[i * c..(i + 1) * c], y[i], margin)
                .into_iter()
                .map(|g| g / lambda)
                .collect();
            let m = d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mean = d.iter().map(|v| (v - m).exp()).sum::<f64>() / c as f64;
            total += lambda * (mean.ln() + m);
        }
        total / n as f64
    }

    fn tensor(z: &[f64], c: usize) -> Tensor<(usize, usize), f64, Cpu> {
        let dev: Cpu = Default::default();
        dev.tensor_from_vec(z.to_vec(), (z.len() / c, c))
    }

    fn value(margin: f64, lambda: f64, z: &[f64], c: usize, y: &[usize]) -> f64 {
        let loss = LdrKl::new().with_margin(margin).with_lambda(lambda);
        logits_value::<f64, _>(&loss, z, c, y).unwrap()
    }

    #[test]
    fn value_matches_the_official_computation() {
        let mut rng = Rng::new(1301);
        for (n, c, scale) in [(1, 2, 1.0), (4, 3, 3.0), (9, 10, 20.0)] {
            let (z, y) = random_logits(&mut rng, n, c, scale);
            for (margin, lambda) in [(0.1, 10.0), (2.0, 1.0), (0.5, 0.1), (1.0, 1e-3)] {
                let got = value(margin, lambda, &z, c, &y);
                let want = naive(&z, c, &y, margin, lambda);
                assert_close(got, want, 1e-12, 1e-14, &format!("c={margin} λ={lambda}"));
            }
        }
    }

    /// Jensen: between the mean gap and the max gap for every λ, tending to the max as
    /// λ → 0 (without overflow at λ = 1e-3) and to the mean as λ → ∞.
    #[test]
    fn bounds_and_limits_in_lambda() {
        let mut rng = Rng::new(1302);
        let (n, c, margin) = (6, 5, 0.3);
        let (z, y) = random_logits(&mut rng, n, c, 4.0);
        let (mut mean_gap, mut max_gap) = (0.0, 0.0);
        for i in 0..n {
            let g = gaps(&z[i * c..(i + 1) * c], y[i], margin);
            mean_gap += g.iter().sum::<f64>() / c as f64 / n as f64;
            max_gap += g.iter().cloned().fold(f64::NEG_INFINITY, f64::max) / n as f64;
        }
        for lambda in [1e-3, 0.1, 1.0, 10.0, 1e3] {
            let v = value(margin, lambda, &z, c, &y);
            assert!(v.is_finite());
            assert!(
                v >= mean_gap - 1e-12 && v <= max_gap + 1e-12,
                "λ={lambda}: {v}"
            );
        }
        // λ·ln C is the largest the log-mean-exp can fall below the max
        let small = value(margin, 1e-3, &z, c, &y);
        assert!(
            max_gap - small <= 1e-3 * (c as f64).ln() + 1e-12,
            "λ = 1e-3: {small}"
        );
        assert_close(
            value(margin, 1e6, &z, c, &y),
            mean_gap,
            0.0,
            1e-5,
            "λ = 1e6",
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(1303);
        for (n, c) in [(1, 2), (3, 4), (5, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 3.0);
            for (margin, lambda) in [(0.1, 10.0), (2.0, 1.0), (0.5, 0.2)] {
                let loss = LdrKl::new().with_margin(margin).with_lambda(lambda);
                let report = gradient(&loss, &tensor(&z, c), &y[..], Tolerance::default()).unwrap();
                assert!(
                    report.passed() && report.kinks == 0,
                    "c={margin} λ={lambda}: {report}"
                );
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(1304);
        for (n, c) in [(2, 3), (8, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 5.0);
            check_logits_precisions(&LdrKl::new(), &z, c, &y, 1e-4);
            let sharp = LdrKl::new().with_margin(1.0).with_lambda(0.05);
            check_logits_precisions(&sharp, &z, c, &y, 1e-4);
        }
    }

    /// Rows whose softplus values all underflow (the official code's 0/0): the
    /// normalised logits are `exp(z_k − ln mean_m e^{z_m})` there, exactly.
    #[test]
    fn rows_of_very_negative_logits_keep_their_exact_value() {
        let z = [-1000.0, -1001.0, -1003.0, -2e4, -2e4 + 2.0, -2e4 - 1.0];
        let y = [0usize, 1];
        let (margin, lambda) = (0.1, 1.0);
        let mut want = 0.0;
        for i in 0..2 {
            let row = &z[i * 3..(i + 1) * 3];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mean = row.iter().map(|v| (v - m).exp()).sum::<f64>() / 3.0;
            let bar: Vec<f64> = row.iter().map(|v| (v - m).exp() / mean).collect();
            let mean_exp = (0..3)
                .map(|k| {
                    let c = if k == y[i] { 0.0 } else { margin };
                    ((c + bar[k] - bar[y[i]]) / lambda).exp()
                })
                .sum::<f64>()
                / 3.0;
            want += lambda * mean_exp.ln() / 2.0;
        }
        let loss = LdrKl::new().with_margin(margin).with_lambda(lambda);
        let (v, g) = logits_value_and_grad::<f64, _>(&loss, &z, 3, &y);
        assert_close(v, want, 1e-12, 0.0, "f64 value");
        assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
        let (v, g) = logits_value_and_grad::<f32, _>(&loss, &z, 3, &y);
        // f32 spaces numbers near 2e4 by 2e-3, which bounds how close it can get
        assert_close(v, want, 0.0, 1e-2, "f32 value");
        assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    }

    /// The λ = 1e-3 case the naive `ln(mean(exp(..)))` overflows on: value and gradient
    /// stay finite, in both precisions.
    #[test]
    fn small_lambda_does_not_overflow() {
        let z = [4.0, -3.0, 0.5, 9.0, -8.0, 0.0];
        let loss = LdrKl::new().with_margin(1.0).with_lambda(1e-3);
        let (v, g) = logits_value_and_grad::<f64, _>(&loss, &z, 3, &[1, 2]);
        assert_close(v, naive(&z, 3, &[1, 2], 1.0, 1e-3), 1e-12, 0.0, "f64 value");
        assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
        let (v, g) = logits_value_and_grad::<f32, _>(&loss, &z, 3, &[1, 2]);
        assert!(
            v.is_finite() && g.iter().all(|g| g.is_finite()),
            "{v} {g:?}"
        );
    }
}
