//! EnsLoss (Dai, 2024): a binary classification loss defined through a random calibrated
//! derivative, drawn afresh for every batch, and the seeded helper that makes the draws.

use crate::core::draws::standard_normal_draws;
use crate::loss;
use crate::Real;

/// EnsLoss: instead of one fixed loss, every batch trains on a *random* convex, calibrated
/// loss, given only through its derivative; averaging over these random losses acts like
/// an ensemble of losses and keeps the network from over-fitting any single one.
///
/// The derivative at each sample's margin is built from standard normal draws `εᵢ`, one
/// per sample (a declared input, made by [`ensloss_draws`]):
///
/// ```text
/// mᵢ   = z[i][y[i]] − z[i][1 − y[i]]                    (the margin: y·f with f = z₁ − z₀)
/// T(e) = max(−BC⁻¹_λ(e), −1),  BC⁻¹_λ(e) = eᵉ (λ = 0), max(1 + λe, 0)^{1/λ} (λ ≠ 0)
/// rᵢ   = #{j : mⱼ < mᵢ} + #{j < i : mⱼ = mᵢ}           (i's rank among the margins, stable)
/// gᵢ   = T(ε₍ᵣᵢ₎),  ε₍ᵣ₎ the r-th largest draw           (= sort_ascending(T(ε))[rᵢ])
/// gᵢ  ← gᵢ / mᵢ   where mᵢ > 1                         (a faster-decaying tail)
/// gᵢ  ← gᵢ − 1e-6                                       (strictly negative)
/// L    = (1/N) Σᵢ detach(gᵢ) · mᵢ                       ⇒  ∂L/∂mᵢ = gᵢ/N
/// ```
///
/// So the sample with the smallest margin gets the most negative slope: the slopes do not
/// decrease with the margin (a convex loss), are negative everywhere (calibrated), and lie
/// in `[−1 − 1e-6, 0)`. With λ = 0 about half of the draws saturate at −1, so the
/// worse-classified half of the batch gets hinge-like slopes −1 and the rest `−e^{ε}`.
///
/// **The value is a surrogate.** `L` is not a loss value: only its gradient means anything
/// (`∂L/∂z[i][y[i]] = gᵢ/N`, `∂L/∂z[i][1 − y[i]] = −gᵢ/N`). Do not log it or compare it
/// across batches. The gradient is the one `#[loss]` derives from the surrogate: `gᵢ` is
/// under `detach`, so the ranks and the draws carry no gradient.
///
/// **Randomness.** The loss itself holds no state and no generator: pass the draws. Call
/// [`ensloss_draws`] once per step with a generator you own; two steps whose generators
/// are seeded alike get the same draws, hence the same loss and gradient. Only the set of
/// draws matters, not their order.
///
/// **Conventions.** Ties among margins are broken by sample index (a stable sort); ties
/// among draws give equal slopes. The binary problem is written on two logits columns
/// (labels 0/1); a model with one score `f` per sample passes the rows `[0, f]`, and
/// `∂L/∂f` is then the paper's `gᵢ·yᵢ/N`. Any other number of columns is refused
/// ([`LossError::Requirement`](crate::LossError::Requirement)). The cost is O(N²) per
/// batch (ranks of margins and of draws), fine for batch sizes in the thousands.
///
/// **Reference:** Ben Dai. *EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing
/// Overfitting in Classification.* 2024. **Official code:** `statmlben/ensLoss`,
/// `losses.py::ensLoss.forward` (one `torch.randn(B)` per batch), `train.py`. Differences:
/// the official loss takes one score per sample; here two logits columns, the same
/// gradient for `f = z₁ − z₀` (see above); the official argsort is not stable, this one is;
/// the official trainer's schedule re-drawing λ is switched off in its image runs, so λ is
/// a fixed hyper-parameter here; the draws come from the caller, not a global generator.
///
/// **Defaults:** λ = 0 (the official runs).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// use rand::{rngs::StdRng, SeedableRng};
/// let dev: Cpu = Default::default();
/// // scores f = [2.0, -0.5, 0.3] as rows [0, f]; labels 1, 1, 0
/// let z: Tensor<Rank2<3, 2>, f64, _> = dev.tensor([[0.0, 2.0], [0.0, -0.5], [0.0, 0.3]]);
/// let draws: Vec<f64> = ensloss_draws(&mut StdRng::seed_from_u64(7), 3);
/// let loss = EnsLoss::default().forward((z.leaky_trace(), &draws[..]), &[1, 1, 0]);
/// let g = loss.backward().get(&z).as_vec();
/// // every slope is negative: the label's logit gets a negative gradient, so a descent
/// // step raises each margin
/// assert!(g[1] < 0.0 && g[3] < 0.0 && g[4] < 0.0);
/// assert!(g[0] > 0.0 && g[2] > 0.0 && g[5] > 0.0);
/// // the same seed gives the same draws
/// assert_eq!(draws, ensloss_draws::<f64, _>(&mut StdRng::seed_from_u64(7), 3));
/// ```
#[loss(
    logits,
    paper = "EnsLoss (Dai, 2024); the value is a surrogate, only its gradient is meaningful"
)]
pub fn ens_loss(
    z: Logits,
    y: Labels,
    draws: Given<samples>,
    #[hyper(
        default = 0.0,
        doc = "λ, the Box–Cox exponent of the slope distribution (0: −exp(ε))"
    )]
    lambda: f64,
) -> PerSample {
    require(
        len(classes) == 2.0,
        "EnsLoss is binary: the logits need exactly 2 columns",
    );
    let margin = 2.0 * z[i][y[i]] - sum(classes, |k| z[i][k]);
    let rank = len(samples.filter(|j| {
        2.0 * z[j][y[j]] - sum(classes, |k| z[j][k]) < margin
            || (2.0 * z[j][y[j]] - sum(classes, |k| z[j][k]) == margin && j < i)
    }));
    let draw = max(
        samples.filter(|m| len(samples.filter(|l| draws[l] >= draws[m])) > rank),
        |m| draws[m],
    );
    let exponent = 1.0 / select(lambda == 0.0, 1.0, lambda);
    let inverse_box_cox = select(
        lambda == 0.0,
        exp(draw),
        powf(max(1.0 + lambda * draw, 0.0), exponent),
    );
    let slope = max(-inverse_box_cox, -1.0);
    let tailed = select(margin > 1.0, slope / margin, slope) - 1e-6;
    detach(tailed) * margin
}

/// `n` standard normal draws for [`EnsLoss`]: [`standard_normal_draws`], the seeded
/// helper every loss with random inputs shares. Call it once per training step with a
/// generator you own; the same seed gives the same draws.
///
/// ```
/// use loss_runtime::{ensloss_draws, standard_normal_draws};
/// use rand::{rngs::StdRng, SeedableRng};
/// let a: Vec<f32> = ensloss_draws(&mut StdRng::seed_from_u64(1), 5);
/// let b: Vec<f32> = standard_normal_draws(&mut StdRng::seed_from_u64(1), 5);
/// assert_eq!(a, b);
/// ```
pub fn ensloss_draws<E: Real, R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<E> {
    standard_normal_draws(rng, n)
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::testing::*;
    use crate::{Loss, LossError};

    /// The slopes `g` and the surrogate value, following the official algorithm step by
    /// step on scores `f` and 0/1 targets: transform, sort, assign by a stable argsort of
    /// the margins, divide the tail, shift.
    fn naive(f: &[f64], t: &[usize], eps: &[f64], lambda: f64) -> (Vec<f64>, f64) {
        let n = f.len();
        let margin: Vec<f64> = (0..n)
            .map(|i| if t[i] == 1 { f[i] } else { -f[i] })
            .collect();
        let mut sorted: Vec<f64> = eps
            .iter()
            .map(|&e| {
                let bc = if lambda == 0.0 {
                    e.exp()
                } else {
                    (1.0 + lambda * e).max(0.0).powf(1.0 / lambda)
                };
                (-bc).max(-1.0)
            })
            .collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| margin[a].partial_cmp(&margin[b]).unwrap());
        let mut g = vec![0.0; n];
        for (r, &i) in order.iter().enumerate() {
            g[i] = sorted[r];
        }
        for i in 0..n {
            if margin[i] > 1.0 {
                g[i] /= margin[i];
            }
            g[i] -= 1e-6;
        }
        let value = (0..n).map(|i| g[i] * margin[i]).sum::<f64>() / n as f64;
        (g, value)
    }

    /// Rows `[0, f]`.
    fn rows(f: &[f64]) -> Vec<f64> {
        f.iter().flat_map(|&v| [0.0, v]).collect()
    }

    /// The value and `N·∂L/∂f` (the slopes times the sign of the target).
    fn run<E: Dtype + Real>(
        loss: &EnsLoss,
        f: &[f64],
        t: &[usize],
        eps: &[f64],
    ) -> Result<(f64, Vec<f64>), LossError> {
        let dev: Cpu = Default::default();
        let z: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(to_e(&rows(f)), (f.len(), 2));
        let eps: Vec<E> = to_e(eps);
        let out = loss.try_forward((z.leaky_trace(), &eps[..]), t)?;
        let value = out.array().to_f64();
        let g = out.backward().get(&z).as_vec();
        let n = f.len() as f64;
        Ok((
            value,
            (0..f.len())
                .map(|i| {
                    let (d0, d1) = (g[2 * i].to_f64(), g[2 * i + 1].to_f64());
                    assert!((d0 + d1).abs() < 1e-12, "rows of the gradient sum to 0");
                    d1 * n
                })
                .collect(),
        ))
    }

    fn case(rng: &mut Rng, n: usize) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
        let f: Vec<f64> = (0..n).map(|_| rng.range(-3.0, 3.0)).collect();
        let t: Vec<usize> = (0..n).map(|_| rng.below(2)).collect();
        let eps = ensloss_draws(&mut StdRng::seed_from_u64(rng.next_u64()), n);
        (f, t, eps)
    }

    const LAMBDAS: [f64; 5] = [0.0, 1.0, 0.5, -0.5, 2.0];

    /// Value and derived gradient against the official algorithm, including ties among
    /// the margins (repeated scores) and among the draws.
    #[test]
    fn value_and_gradient_match_the_official_algorithm() {
        let mut rng = Rng::new(2801);
        for n in [1, 2, 7, 33] {
            let (mut f, t, mut eps) = case(&mut rng, n);
            if n > 3 {
                f[3] = f[1];
                eps[2] = eps[0];
            }
            for lambda in LAMBDAS {
                let loss = EnsLoss::new().with_lambda(lambda);
                let (value, slopes) = run::<f64>(&loss, &f, &t, &eps).unwrap();
                let (g, want) = naive(&f, &t, &eps, lambda);
                assert_close(value, want, 1e-12, 1e-15, &format!("n={n} λ={lambda}"));
                for i in 0..n {
                    let sign = if t[i] == 1 { 1.0 } else { -1.0 };
                    // ∂L/∂f_i = g_i·y_i/N, the drawn derivative
                    assert_close(
                        slopes[i],
                        sign * g[i],
                        1e-12,
                        1e-15,
                        &format!("[{i}] λ={lambda}"),
                    );
                }
            }
        }
    }

    /// The slopes lie in [−1 − 1e-6, 0) and do not decrease with the margin (a convex,
    /// calibrated loss); past margin 1 they are at most the undivided slope in size.
    #[test]
    fn slopes_are_negative_bounded_and_non_decreasing() {
        let mut rng = Rng::new(2802);
        for lambda in LAMBDAS {
            let (f, t, eps) = case(&mut rng, 40);
            let (_, slopes) =
                run::<f64>(&EnsLoss::new().with_lambda(lambda), &f, &t, &eps).unwrap();
            let mut pairs: Vec<(f64, f64)> = (0..f.len())
                .map(|i| {
                    let sign = if t[i] == 1 { 1.0 } else { -1.0 };
                    (sign * f[i], sign * slopes[i])
                })
                .collect();
            pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            for &(m, g) in &pairs {
                assert!(
                    (-1.0 - 1e-6..0.0).contains(&g),
                    "λ={lambda}: slope {g} at {m}"
                );
            }
            for w in pairs.windows(2) {
                assert!(w[1].1 >= w[0].1 - 1e-15, "λ={lambda}: {w:?}");
            }
        }
    }

    /// λ = 1: `T(e) = max(−max(1 + e, 0), −1)`, so a draw ≥ 0 saturates and one ≤ −1 gives
    /// slope 0 (then −1e-6).
    #[test]
    fn lambda_one() {
        let f = [0.1, 0.2, 0.3];
        let t = [1, 1, 1];
        let eps = [-2.0, -0.25, 0.5];
        let (_, slopes) = run::<f64>(&EnsLoss::new().with_lambda(1.0), &f, &t, &eps).unwrap();
        let want = [-1.0 - 1e-6, -0.75 - 1e-6, -1e-6];
        for (g, w) in slopes.iter().zip(want) {
            assert_close(*g, w, 1e-12, 1e-15, "λ = 1");
        }
    }

    /// Shuffling the draws changes nothing; shuffling the samples shuffles the slopes with
    /// them (the slopes depend on ranks, not positions).
    #[test]
    fn draw_order_and_sample_order_do_not_matter() {
        let mut rng = Rng::new(2803);
        let (f, t, eps) = case(&mut rng, 12);
        let loss = EnsLoss::new();
        let (value, slopes) = run::<f64>(&loss, &f, &t, &eps).unwrap();
        let shuffled: Vec<f64> = rng.permutation(12).iter().map(|&k| eps[k]).collect();
        let (v2, s2) = run::<f64>(&loss, &f, &t, &shuffled).unwrap();
        assert_eq!((value, &slopes), (v2, &s2));
        let order = rng.permutation(12);
        let fp: Vec<f64> = order.iter().map(|&i| f[i]).collect();
        let tp: Vec<usize> = order.iter().map(|&i| t[i]).collect();
        let (v3, s3) = run::<f64>(&loss, &fp, &tp, &eps).unwrap();
        assert_close(v3, value, 1e-13, 0.0, "permuted value");
        for (k, &i) in order.iter().enumerate() {
            assert_eq!(s3[k], slopes[i]);
        }
    }

    /// The same seed gives the same draws and gradient; another seed generally does not.
    /// The draws look standard normal.
    #[test]
    fn seeded_draws_are_reproducible() {
        let mut rng = Rng::new(2804);
        let (f, t, _) = case(&mut rng, 16);
        let loss = EnsLoss::new();
        let grad = |seed| {
            let eps: Vec<f64> = ensloss_draws(&mut StdRng::seed_from_u64(seed), 16);
            run::<f64>(&loss, &f, &t, &eps).unwrap().1
        };
        assert_eq!(grad(5), grad(5));
        assert_ne!(grad(5), grad(6));
        let many: Vec<f64> = ensloss_draws(&mut StdRng::seed_from_u64(9), 20_001);
        assert_eq!(many.len(), 20_001);
        let mean = many.iter().sum::<f64>() / many.len() as f64;
        let var = many.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / many.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(2805);
        for lambda in LAMBDAS {
            let (f, t, eps) = case(&mut rng, 20);
            let loss = EnsLoss::new().with_lambda(lambda);
            let (v64, g64) = run::<f64>(&loss, &f, &t, &eps).unwrap();
            let (v32, g32) = run::<f32>(&loss, &f, &t, &eps).unwrap();
            assert_close(v32, v64, 1e-5, 1e-6, &format!("λ={lambda}"));
            for (a, b) in g32.iter().zip(&g64) {
                assert_close(*a, *b, 1e-5, 1e-6, &format!("λ={lambda}"));
            }
        }
    }

    #[test]
    fn more_than_two_columns_and_short_draws_are_refused() {
        let dev: Cpu = Default::default();
        let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(vec![0.0; 6], (2, 3));
        let err = EnsLoss::new()
            .try_forward((z, &[0.1, 0.2][..]), &[0, 1][..])
            .unwrap_err();
        assert!(matches!(err, LossError::Requirement { .. }), "{err:?}");
        let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(vec![0.0; 4], (2, 2));
        let err = EnsLoss::new()
            .try_forward((z, &[0.1][..]), &[0, 1][..])
            .unwrap_err();
        assert!(
            matches!(
                err,
                LossError::AxisMismatch {
                    found_in: "draws",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
