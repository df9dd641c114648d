//! The Z-loss (de Brébisson & Vincent, 2016): a softplus of the standardised target
//! logit.

use crate::loss;

/// Z-loss: standardise each logit row to zero mean and unit variance, then penalise the
/// target's standardised score with a softplus, so that only the logits' ranks and
/// relative spread matter, not their offset or scale.
///
/// ```text
/// μᵢ  = (1/C) Σ_k z[i][k]
/// σᵢ² = (1/C) Σ_k (z[i][k] − μᵢ)²                  (population variance, divisor C)
/// ζᵢ  = (z[i][y[i]] − μᵢ) / sqrt(σᵢ² + var_eps)
/// L   = (1/N) Σᵢ (1/a) · softplus( a·(b − ζᵢ) )
/// ```
///
/// With `var_eps = 0` the loss is invariant to adding a constant to a row of logits and
/// to multiplying it by a positive constant; each row of its gradient therefore sums to 0
/// and is orthogonal to the row itself (Euler's identity). A negative factor is not an
/// invariance: it flips the sign of ζ. `|ζᵢ| ≤ sqrt(C − 1)`, with equality for a logit row
/// that is one-hot on the target, so `b` should stay below `sqrt(C − 1)`. As `a → ∞` the
/// loss tends to the hinge `max(0, b − ζᵢ)`.
///
/// **Conventions.** The loss is smooth wherever `σᵢ² + var_eps > 0`; `softplus` is
/// computed without overflow. The variance is the mean of squared deviations (two
/// passes), not `E[z²] − μ²`, so there is no cancellation. A **constant logit row** has
/// `σᵢ = 0` and no standardised score: with the default `var_eps = 0` the loss refuses
/// the batch with [`LossError::Requirement`](crate::LossError::Requirement) naming the
/// sample (a `require` in the definition). The paper has no epsilon; `var_eps > 0`
/// makes such rows finite (`ζ = 0` there) at the price of exact scale invariance.
///
/// **Reference:** de Brébisson, Vincent. *The Z-loss: a shift and scale invariant
/// classification loss belonging to the Spherical Family.* arXiv 1604.08859, 2016.
/// **Official code:** none for the loss itself (the authors' `factored_output_layer`
/// implements the spherical family's fast output layer, and its example trains with
/// MSE). The formula follows the paper as restated by public summaries: the population
/// standard deviation and the `(1/a)·softplus(a(b − ζ))` form; those agree with the
/// spec. The paper tunes `a` and `b` per task and the values it used (Penn Treebank, One
/// Billion Word) could not be checked here. Differences: `var_eps` is an addition (0
/// reproduces the paper); the spherical family's class-count-independent training is an
/// output-layer optimisation, not part of the loss.
///
/// **Defaults:** `a = 1`, `b = 3` (illustrative, not the paper's tuned values; `b = 3`
/// needs `C ≥ 10` to be reachable), `var_eps = 0`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let loss = ZLoss::default().with_b(1.0).forward(z.leaky_trace(), &[0, 2]);
/// // the same loss for logits shifted and scaled by a positive factor
/// let moved = ZLoss::default().with_b(1.0).forward(z.clone() * 7.0 + 3.0, &[0, 2]);
/// assert!((loss.array() - moved.array()).abs() < 1e-12);
/// let grads = loss.backward();
/// ```
#[loss(
    logits,
    paper = "Z-loss (de Brébisson & Vincent, arXiv 1604.08859, 2016)"
)]
pub fn z_loss(
    z: Logits,
    y: Labels,
    #[hyper(default = 1.0, positive, doc = "a: the sharpness of the softplus")] a: f64,
    #[hyper(
        default = 3.0,
        doc = "b: the target offset for the standardised score (keep it below sqrt(C − 1))"
    )]
    b: f64,
    #[hyper(
        default = 0.0,
        nonnegative,
        doc = "added to each row's variance; 0 (the paper) refuses constant rows"
    )]
    var_eps: f64,
) -> PerSample {
    let mu = mean(classes, |k| z[i][k]);
    let var = mean(classes, |k| sq(z[i][k] - mu));
    require(
        var + var_eps > 0.0,
        "the logits of this sample are all equal (zero variance); set `var_eps` > 0 to allow it",
    );
    let score = (z[i][y[i]] - mu) / sqrt(var + var_eps);
    softplus(a * (b - score)) / a
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient, Tolerance};
    use crate::testing::*;

    /// The Z-loss with plain loops: two-pass mean and variance, `ln(1 + e^x)` written
    /// stably by hand.
    fn naive(z: &[f64], c: usize, y: &[usize], a: f64, b: f64, var_eps: f64) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let mu = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
            let score = (row[y[i]] - mu) / (var + var_eps).sqrt();
            let x = a * (b - score);
            let softplus = x.max(0.0) + (-x.abs()).exp().ln_1p();
            total += softplus / a;
        }
        total / n as f64
    }

    fn tensor(z: &[f64], c: usize) -> Tensor<(usize, usize), f64, Cpu> {
        let dev: Cpu = Default::default();
        dev.tensor_from_vec(z.to_vec(), (z.len() / c, c))
    }

    #[test]
    fn value_matches_a_naive_loop() {
        let mut rng = Rng::new(901);
        for (n, c, scale) in [(1, 2, 1.0), (4, 3, 3.0), (7, 10, 50.0), (3, 5, 1e4)] {
            let (z, y) = random_logits(&mut rng, n, c, scale);
            for (a, b, eps) in [(1.0, 3.0, 0.0), (0.3, 0.5, 0.0), (4.0, 1.0, 0.1)] {
                let loss = ZLoss::new().with_a(a).with_b(b).with_var_eps(eps);
                let got = logits_value::<f64, _>(&loss, &z, c, &y).unwrap();
                let want = naive(&z, c, &y, a, b, eps);
                assert_close(got, want, 1e-12, 1e-14, &format!("a={a} b={b} z={z:?}"));
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(902);
        for (n, c) in [(1, 2), (3, 4), (5, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 3.0);
            for loss in [
                ZLoss::new(),
                ZLoss::new().with_a(5.0).with_b(0.5),
                ZLoss::new().with_var_eps(0.5),
            ] {
                let report = gradient(&loss, &tensor(&z, c), &y[..], Tolerance::default()).unwrap();
                assert!(report.passed() && report.kinks == 0, "{report}");
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(903);
        for (n, c) in [(2, 3), (8, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 5.0);
            check_logits_precisions(&ZLoss::new(), &z, c, &y, 1e-4);
            check_logits_precisions(&ZLoss::new().with_a(3.0).with_b(1.0), &z, c, &y, 1e-4);
        }
    }

    /// The paper's two invariances, on the value and on the gradient: per row the
    /// gradient sums to 0 (shift) and `Σ_k z_k ∂L/∂z_k = 0` (scale, Euler's identity);
    /// a negative factor changes the value.
    #[test]
    fn shift_and_positive_scale_do_not_change_the_loss() {
        let mut rng = Rng::new(904);
        let (n, c) = (6, 7);
        let (z, y) = random_logits(&mut rng, n, c, 4.0);
        let loss = ZLoss::new().with_b(1.5);
        let (v, g) = logits_value_and_grad::<f64, _>(&loss, &z, c, &y);
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let grow = &g[i * c..(i + 1) * c];
            let sum: f64 = grow.iter().sum();
            let euler: f64 = row.iter().zip(grow).map(|(z, g)| z * g).sum();
            assert!(sum.abs() < 1e-14, "row {i}: gradient sums to {sum}");
            assert!(euler.abs() < 1e-13, "row {i}: Σ z·∂L/∂z = {euler}");
        }
        let moved: Vec<f64> = z
            .iter()
            .enumerate()
            .map(|(j, v)| v * (0.01 + (j / c) as f64 * 20.0) - 5.0 + (j / c) as f64)
            .collect();
        let vm = logits_value::<f64, _>(&loss, &moved, c, &y).unwrap();
        assert_close(vm, v, 1e-12, 0.0, "shifted and scaled rows");
        let flipped: Vec<f64> = z.iter().map(|v| -v).collect();
        let vf = logits_value::<f64, _>(&loss, &flipped, c, &y).unwrap();
        assert!(
            (vf - v).abs() > 1e-3,
            "a negative scale is not an invariance"
        );
    }

    /// `z = (0, 1)` with target 1 standardises to ζ = 1; a one-hot row on the target
    /// reaches the bound `ζ = sqrt(C − 1)`.
    #[test]
    fn known_values_and_the_bound() {
        let (a, b) = (2.0f64, 3.0);
        let loss = ZLoss::new().with_a(a).with_b(b);
        let got = logits_value::<f64, _>(&loss, &[0.0, 1.0], 2, &[1]).unwrap();
        assert_close(got, (a * (b - 1.0)).exp().ln_1p() / a, 1e-15, 0.0, "ζ = 1");
        let c = 10;
        let mut onehot = vec![-2.0; c];
        onehot[4] = 5.0;
        let got = logits_value::<f64, _>(&loss, &onehot, c, &[4]).unwrap();
        let top = (c as f64 - 1.0).sqrt();
        assert_close(
            got,
            (a * (b - top)).exp().ln_1p() / a,
            1e-14,
            0.0,
            "ζ = sqrt(C − 1)",
        );
        let mut rng = Rng::new(905);
        let (z, y) = random_logits(&mut rng, 20, c, 10.0);
        let floor = (a * (b - top)).exp().ln_1p() / a;
        for i in 0..20 {
            let row = &z[i * c..(i + 1) * c];
            let v = logits_value::<f64, _>(&loss, row, c, &y[i..=i]).unwrap();
            assert!(v >= floor - 1e-15, "row {i}: {v} below the bound {floor}");
        }
    }

    /// As `a → ∞` the loss tends to the hinge `max(0, b − ζ)`.
    #[test]
    fn large_a_tends_to_the_hinge() {
        let mut rng = Rng::new(906);
        let (n, c, b) = (5, 6, 0.8);
        let (z, y) = random_logits(&mut rng, n, c, 3.0);
        let mut hinge = 0.0;
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let mu = row.iter().sum::<f64>() / c as f64;
            let sd = (row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64).sqrt();
            hinge += (b - (row[y[i]] - mu) / sd).max(0.0) / n as f64;
        }
        let loss = ZLoss::new().with_a(1e6).with_b(b);
        let got = logits_value::<f64, _>(&loss, &z, c, &y).unwrap();
        assert_close(got, hinge, 0.0, 1e-6, "a = 1e6");
    }

    /// A constant row has no standardised score: a `Requirement` error naming the sample
    /// with `var_eps = 0`; finite with `var_eps > 0`, where ζ = 0.
    #[test]
    fn a_constant_row_is_refused_without_var_eps() {
        let z = [1.0, 2.0, 0.5, 3.0, 3.0, 3.0];
        let err = logits_value::<f64, _>(&ZLoss::new(), &z, 3, &[0, 1]).unwrap_err();
        assert!(
            matches!(
                err,
                crate::LossError::Requirement {
                    loss: "z_loss",
                    sample: Some(1),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("var_eps"), "{err}");
        let loss = ZLoss::new().with_var_eps(1e-3);
        let got = logits_value::<f64, _>(&loss, &z, 3, &[0, 1]).unwrap();
        assert_close(
            got,
            naive(&z, 3, &[0, 1], 1.0, 3.0, 1e-3),
            1e-14,
            0.0,
            "var_eps",
        );
        let (_, g) = logits_value_and_grad::<f64, _>(&loss, &z, 3, &[0, 1]);
        assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    }
}
