//! AnyLoss: confusion-matrix metrics turned into losses (Han, Moniz & Chawla, KDD 2024).
//!
//! Every loss here is `1 − metric(TP, FP, FN, TN)` over the *soft* confusion matrix of the
//! whole batch. Each prediction `p` is first amplified, `a = A(p) = σ(L·(p − ½))`, which
//! pushes it towards 0 or 1 while keeping a gradient; then `TP = Σ y·a`, `FP = Σ (1−y)·a`,
//! `FN = Σ y·(1−a)`, `TN = Σ (1−y)·(1−a)`. The confusion matrix is a statistic of the batch,
//! so the value depends on the batch size and class mix; it is one scalar per batch, not a
//! mean of per-sample terms.
//!
//! Family hyper-parameters (added to every loss here): `amplification` (L, default 73,
//! as in the official notebooks; the 102-dataset notebook uses 30) and `amplify` (default
//! `true`; `false` gives the paper's "pure" variant `a = p`). Predictions may be
//! probabilities or, wrapped in [`FromLogits`](crate::FromLogits), logits — the
//! amplification still applies to `σ(logit)`.
//!
//! **Official code:** `doheonhan/anyloss_extension`, `AnyLoss_Code.ipynb` (`confusion_matrix`,
//! `Any_Fbeta`, `Any_Gmean`, `Any_BAccu`) and the 102-tabular-datasets notebook (`Any_Accu`).
//! Differences: the official code takes N from the configured batch size, so its TN is off
//! on a final partial batch; we use the real N, which agrees on every full batch.
//!
//! **Gradient in float32:** `dA/dp = L·A·(1−A)` is computed as `L·σ(x)·σ(−x)`, so it stays
//! tiny but non-zero in both tails, where the official `A(1−A)` rounds to exactly zero on
//! the high side.

use crate::loss;

/// AnyLoss accuracy: `1 − (TP + TN)/N`.
///
/// ```text
/// L = 1 − (TP + TN) / N
/// ```
///
/// No epsilon (N ≥ 1). Its gradient has the closed form
/// `∂L/∂p_i = −(2y_i − 1)/N · L·A(1−A)`.
///
/// **Reference:** Han, Moniz, Chawla. *AnyLoss: Transforming Classification Metrics into
/// Loss Functions.* KDD 2024. **Official code:** `Any_Accu` in the 102-tabular-datasets
/// notebook of `doheonhan/anyloss_extension`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let p: Tensor<Rank1<4>, f32, _> = dev.tensor([0.9, 0.2, 0.8, 0.1]);
/// let y: Tensor<Rank1<4>, f32, _> = dev.tensor([1.0, 0.0, 1.0, 0.0]);
/// let loss = AnylossAccuracy::default().forward(p.leaky_trace(), &y);
/// assert!(loss.array() < 0.01);
/// ```
#[loss(binary, paper = "AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_accuracy(cm: SoftConfusion) -> Scalar {
    1.0 - (cm.tp + cm.tn) / cm.n
}

/// AnyLoss F-β: `1 − (1+β²)·TP / ((1+β²)·TP + β²·FN + FP + ε)`.
///
/// ```text
/// L = 1 − (1 + β²)·TP / (β²·(TP + FN) + TP + FP + ε)
/// ```
///
/// The denominator is the official `β²·y1 + Σa + ε`. With no positive in the batch and
/// nothing predicted positive the loss is exactly 1 with a zero gradient.
///
/// Computed divided through by `1 + β²`, as `1 − TP / (w·(TP + FN) + (1 − w)·(TP + FP + ε))`
/// with `w = β²/(1 + β²)`, so that every finite β works in `f32` and `f64` (at β = 1e20,
/// `β²` alone overflows `f32`): a huge β gives `1 − recall`, a tiny one `1 − precision`.
/// Where the denominator underflows to 0 (no positive, and `(1 − w)·ε` below the dtype's
/// range), `TP` is 0 too and the loss is 1.
///
/// **Reference:** Han, Moniz, Chawla, KDD 2024. **Official code:** `Any_Fbeta` in
/// `AnyLoss_Code.ipynb`. We require `ε > 0` (the spec allows 0): with ε = 0 a batch
/// without positives would divide 0 by 0.
#[loss(binary, paper = "AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_fbeta(
    cm: SoftConfusion,
    #[hyper(
        default = 1.0,
        positive,
        doc = "β: weight of recall relative to precision"
    )]
    beta: f64,
    #[hyper(
        default = 1e-5,
        positive,
        doc = "ε in the denominator (official: 1e-5)"
    )]
    epsilon: f64,
) -> Scalar {
    // divided through by 1 + β², so that no term overflows at any finite β
    let b2 = beta * beta;
    let recall_weight = 1.0 / (1.0 + 1.0 / b2);
    let precision_weight = 1.0 / (1.0 + b2);
    let d = recall_weight * cm.pos + precision_weight * (cm.tp + cm.fp + epsilon);
    1.0 - if d > 0.0 { cm.tp / d } else { 0.0 }
}

/// AnyLoss F1: `1 − 2·TP / (2·TP + FP + FN + ε)` (F-β with β = 1).
///
/// ```text
/// L = 1 − 2·TP / (2·TP + FP + FN + ε)
/// ```
///
/// **Reference:** Han, Moniz, Chawla, KDD 2024. **Official code:** `Any_Fbeta` with β = 1
/// in `AnyLoss_Code.ipynb`. `ε > 0` is required, as for [`AnylossFbeta`].
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let p: Tensor<Rank1<3>, f64, _> = dev.tensor([0.7, 0.4, 0.2]);
/// let y: Tensor<Rank1<3>, f64, _> = dev.tensor([1.0, 1.0, 0.0]);
/// let loss = AnylossF1::default().with_amplification(5.0).forward(p.leaky_trace(), &y);
/// assert!(loss.array() > 0.0 && loss.array() < 1.0);
/// let grads = loss.backward();
/// ```
#[loss(binary, paper = "AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_f1(
    cm: SoftConfusion,
    #[hyper(
        default = 1e-5,
        positive,
        doc = "ε in the denominator (official: 1e-5)"
    )]
    epsilon: f64,
) -> Scalar {
    1.0 - 2.0 * cm.tp / (2.0 * cm.tp + cm.fp + cm.fn_ + epsilon)
}

/// AnyLoss G-mean, in the squared form the official code uses: `1 − TPR·TNR`.
///
/// ```text
/// L = 1 − TP·TN / (y1·y0 + ε)        y1 = TP + FN, y0 = FP + TN
/// ```
///
/// The official `Any_Gmean` takes no square root, so this is `1 − G²`, not `1 − G`; we
/// follow the code. A single-class batch gives exactly 1 with a zero gradient.
///
/// **Reference:** Han, Moniz, Chawla, KDD 2024. **Official code:** `Any_Gmean` in
/// `AnyLoss_Code.ipynb`. `ε > 0` is required (the spec allows 0).
#[loss(binary, paper = "AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_gmean(
    cm: SoftConfusion,
    #[hyper(
        default = 1e-5,
        positive,
        doc = "ε in the denominator (official: 1e-5)"
    )]
    epsilon: f64,
) -> Scalar {
    1.0 - cm.tp * cm.tn / (cm.pos * cm.neg + epsilon)
}

/// AnyLoss balanced accuracy: `1 − ½(TPR + TNR)`.
///
/// ```text
/// L = 1 − (y0·TP + y1·TN) / (2·y1·y0 + ε)
/// ```
///
/// A single-class batch gives exactly 1 with a zero gradient.
///
/// **Reference:** Han, Moniz, Chawla, KDD 2024. **Official code:** `Any_BAccu` in
/// `AnyLoss_Code.ipynb`. `ε > 0` is required (the spec allows 0).
#[loss(binary, paper = "AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_balanced_accuracy(
    cm: SoftConfusion,
    #[hyper(
        default = 1e-5,
        positive,
        doc = "ε in the denominator (official: 1e-5)"
    )]
    epsilon: f64,
) -> Scalar {
    1.0 - (cm.neg * cm.tp + cm.pos * cm.tn) / (2.0 * cm.pos * cm.neg + epsilon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Kernel;

    /// The official epsilon.
    const S: f64 = 1e-5;

    // Naive formulas, as the spec writes them, over the loop-summed confusion matrix.

    fn accuracy(c: &Confusion) -> f64 {
        1.0 - (c.tp + c.tn) / c.n
    }
    fn fbeta(c: &Confusion, beta: f64) -> f64 {
        let b2 = beta * beta;
        1.0 - (1.0 + b2) * c.tp / (b2 * c.y1 + c.sum_a + S)
    }
    fn fbeta_half(c: &Confusion) -> f64 {
        fbeta(c, 0.5)
    }
    fn fbeta_one(c: &Confusion) -> f64 {
        fbeta(c, 1.0)
    }
    fn fbeta_two(c: &Confusion) -> f64 {
        fbeta(c, 2.0)
    }
    fn f1(c: &Confusion) -> f64 {
        1.0 - 2.0 * c.tp / (2.0 * c.tp + c.fp + c.fn_ + S)
    }
    fn gmean(c: &Confusion) -> f64 {
        1.0 - c.tp * c.tn / (c.y1 * c.y0 + S)
    }
    fn balanced_accuracy(c: &Confusion) -> f64 {
        1.0 - (c.y0 * c.tp + c.y1 * c.tn) / (2.0 * c.y1 * c.y0 + S)
    }

    fn fbeta_loss(beta: f64) -> AnylossFbeta {
        AnylossFbeta::new().with_beta(beta)
    }

    #[test]
    fn values_match_naive_loops() {
        check_binary_values(&AnylossAccuracy::new(), accuracy);
        check_binary_values(&fbeta_loss(0.5), fbeta_half);
        check_binary_values(&fbeta_loss(1.0), fbeta_one);
        check_binary_values(&fbeta_loss(2.0), fbeta_two);
        check_binary_values(&AnylossF1::new(), f1);
        check_binary_values(&AnylossGmean::new(), gmean);
        check_binary_values(&AnylossBalancedAccuracy::new(), balanced_accuracy);
    }

    /// TP + FN = y1, FP + TN = y0, TP + FP + FN + TN = N, seen through the values: the
    /// losses (which derive FP, FN, TN from TP, Σa and y1) equal formulas written with
    /// the four cells summed independently wherever the spec writes y1, y0, N or Σa.
    #[test]
    fn confusion_identities_hold_through_values() {
        fn accuracy_cells(c: &Confusion) -> f64 {
            1.0 - (c.tp + c.tn) / (c.tp + c.fp + c.fn_ + c.tn)
        }
        fn fbeta2_cells(c: &Confusion) -> f64 {
            1.0 - 5.0 * c.tp / (5.0 * c.tp + 4.0 * c.fn_ + c.fp + S)
        }
        fn gmean_cells(c: &Confusion) -> f64 {
            1.0 - c.tp * c.tn / ((c.tp + c.fn_) * (c.fp + c.tn) + S)
        }
        fn balanced_cells(c: &Confusion) -> f64 {
            let (y1, y0) = (c.tp + c.fn_, c.fp + c.tn);
            1.0 - (y0 * c.tp + y1 * c.tn) / (2.0 * y1 * y0 + S)
        }
        check_binary_values(&AnylossAccuracy::new(), accuracy_cells);
        check_binary_values(&fbeta_loss(2.0), fbeta2_cells);
        check_binary_values(&AnylossGmean::new(), gmean_cells);
        check_binary_values(&AnylossBalancedAccuracy::new(), balanced_cells);
    }

    /// F-β at any finite β, in f32 and f64: finite, equal to the naive formula where f64
    /// holds it, and to its limits `1 − recall` / `1 − precision` beyond.
    #[test]
    fn fbeta_is_finite_and_right_at_extreme_betas() {
        use dfdx::prelude::*;
        fn value<E: Dtype + crate::Real>(beta: f64, p: &[f64], y: &[f64]) -> (f64, Vec<f64>)
        where
            Cpu: Device<E>,
        {
            let dev: Cpu = Default::default();
            let pt = dev.tensor_from_vec(
                p.iter().map(|&v| <E as crate::Real>::from_f64(v)).collect(),
                (p.len(),),
            );
            let yt = dev.tensor_from_vec(
                y.iter().map(|&v| <E as crate::Real>::from_f64(v)).collect(),
                (y.len(),),
            );
            let loss = fbeta_loss(beta).with_amplify(false);
            let out = crate::Loss::try_forward(&loss, pt.leaky_trace(), &yt)
                .unwrap_or_else(|e| panic!("β = {beta}: {e}"));
            let v = out.array().to_f64();
            let g = out
                .backward()
                .get(&pt)
                .as_vec()
                .into_iter()
                .map(|g| g.to_f64())
                .collect();
            (v, g)
        }
        let (p, y) = ([0.9, 0.2, 0.6, 0.4], [1.0, 0.0, 1.0, 1.0]);
        let c = confusion(&p, &y);
        let naive = |beta: f64| {
            let b2 = beta * beta;
            1.0 - (1.0 + b2) * c.tp / (b2 * c.y1 + c.sum_a + S)
        };
        let (recall, precision) = (1.0 - c.tp / c.y1, 1.0 - c.tp / (c.sum_a + S));
        for beta in [1e-30, 1e-10, 1e-3, 1.0, 1e3, 1e10, 1e19, 1e20, 1e30, 1e38] {
            let want = if beta < 1e-10 { precision } else { naive(beta) };
            let (v32, g32) = value::<f32>(beta, &p, &y);
            assert!((v32 - want).abs() < 1e-6, "f32 β = {beta}: {v32} vs {want}");
            assert!(g32.iter().all(|g| g.is_finite()), "f32 β = {beta}: {g32:?}");
            let (v64, g64) = value::<f64>(beta, &p, &y);
            assert!(
                (v64 - want).abs() < 1e-12,
                "f64 β = {beta}: {v64} vs {want}"
            );
            assert!(g64.iter().all(|g| g.is_finite()));
        }
        for beta in [1e100, 1e200, 1e300] {
            let (v64, _) = value::<f64>(beta, &p, &y);
            assert!(
                (v64 - recall).abs() < 1e-12,
                "f64 β = {beta}: {v64} vs {recall}"
            );
        }
        // no positive and nothing predicted: exactly 1 at any β
        for beta in [1e20, 1e30, 1e38] {
            assert_eq!(value::<f32>(beta, &[0.0, 0.0], &[0.0, 0.0]).0, 1.0);
            assert_eq!(value::<f64>(beta * 1e200, &[0.0, 0.0], &[0.0, 0.0]).0, 1.0);
        }
    }

    #[test]
    fn gradients_match_finite_differences_and_the_chain_rule() {
        check_binary_gradients(&AnylossAccuracy::new(), accuracy);
        check_binary_gradients(&fbeta_loss(0.5), fbeta_half);
        check_binary_gradients(&fbeta_loss(2.0), fbeta_two);
        check_binary_gradients(&AnylossF1::new(), f1);
        check_binary_gradients(&AnylossGmean::new(), gmean);
        check_binary_gradients(&AnylossBalancedAccuracy::new(), balanced_accuracy);
    }

    #[test]
    fn f32_agrees_with_f64() {
        check_binary_precisions(&AnylossAccuracy::new(), 1e-4);
        check_binary_precisions(&fbeta_loss(2.0), 1e-4);
        check_binary_precisions(&AnylossF1::new(), 1e-4);
        check_binary_precisions(&AnylossGmean::new(), 1e-4);
        check_binary_precisions(&AnylossBalancedAccuracy::new(), 1e-4);
    }

    #[test]
    fn invariant_under_permutation_of_samples() {
        check_binary_permutation(&AnylossAccuracy::new());
        check_binary_permutation(&fbeta_loss(0.5));
        check_binary_permutation(&AnylossF1::new());
        check_binary_permutation(&AnylossGmean::new());
        check_binary_permutation(&AnylossBalancedAccuracy::new());
    }

    /// Spec: G-mean and balanced accuracy are exactly 1 with a zero gradient on a batch
    /// of either single class; F-β (and F1) on a batch without positives.
    #[test]
    fn single_class_batches_are_exactly_one_with_zero_gradient() {
        for class in [0.0, 1.0] {
            check_single_class(&AnylossGmean::new(), class);
            check_single_class(&AnylossBalancedAccuracy::new(), class);
        }
        check_single_class(&fbeta_loss(0.5), 0.0);
        check_single_class(&fbeta_loss(2.0), 0.0);
        check_single_class(&AnylossF1::new(), 0.0);
    }

    /// With `amplify = false` and hard predictions each loss is 1 − the textbook metric,
    /// computed here from integer counts (up to the epsilon).
    #[test]
    fn hard_predictions_without_amplification_give_one_minus_the_textbook_metric() {
        let mut rng = Rng::new(21);
        for n in [2usize, 3, 10, 25] {
            for _ in 0..5 {
                let y = mixed_targets(&mut rng, n);
                let p = mixed_targets(&mut rng, n); // hard predictions, both values present
                let (tp, fp, fn_, tn) = hard_counts(&p, &y);
                let (tpr, tnr) = (tp / (tp + fn_), tn / (tn + fp));
                let fb = |b: f64| (1.0 + b * b) * tp / ((1.0 + b * b) * tp + b * b * fn_ + fp);
                let what = format!("p={p:?} y={y:?}");
                let accuracy = (tp + tn) / n as f64;
                // no epsilon in accuracy: exact up to rounding
                let v = pure_value(&AnylossAccuracy::new(), &p, &y);
                assert_close(v, 1.0 - accuracy, 0.0, 1e-15, &what);
                for beta in [0.5, 1.0, 2.0] {
                    let v = pure_value(&fbeta_loss(beta), &p, &y);
                    assert_close(v, 1.0 - fb(beta), 0.0, 1e-5, &what);
                }
                let v = pure_value(&AnylossF1::new(), &p, &y);
                assert_close(v, 1.0 - fb(1.0), 0.0, 1e-5, &what);
                // the squared G-mean, as the official code computes it
                let v = pure_value(&AnylossGmean::new(), &p, &y);
                assert_close(v, 1.0 - tpr * tnr, 0.0, 1e-5, &what);
                let v = pure_value(&AnylossBalancedAccuracy::new(), &p, &y);
                assert_close(v, 1.0 - 0.5 * (tpr + tnr), 0.0, 1e-5, &what);
            }
        }
    }

    /// Spec: balanced accuracy equals 1 − ½(TP/y1 + TN/y0) within O(s/(y1·y0)).
    #[test]
    fn balanced_accuracy_is_the_mean_of_the_soft_rates() {
        let mut rng = Rng::new(22);
        for (amp, pred) in SETTINGS {
            let loss = with_amp(AnylossBalancedAccuracy::new(), amp);
            for n in [2usize, 6, 30] {
                let x = random_preds(&mut rng, n, pred);
                let y = mixed_targets(&mut rng, n);
                let c = confusion(&amplified_batch(&x, pred, amp), &y);
                let v = binary_value::<f64, _>(&loss, &x, &y, pred).unwrap();
                let rates = 1.0 - 0.5 * (c.tp / c.y1 + c.tn / c.y0);
                assert_close(v, rates, 0.0, 2.0 * S / (c.y1 * c.y0), "balanced accuracy");
            }
        }
    }

    /// Spec: `∂L/∂p_i = −(2y_i − 1)/N · L·A(1−A)` for the accuracy loss.
    #[test]
    fn accuracy_gradient_has_the_closed_form() {
        let mut rng = Rng::new(23);
        for scale in [1.0, 5.0, 73.0] {
            let loss = AnylossAccuracy::new().with_amplification(scale);
            for n in [2usize, 7, 20] {
                // keep L(p − ½) moderate so A(1 − A) has full relative precision
                let width = (6.0 / scale).min(0.5);
                let p: Vec<f64> = (0..n).map(|_| 0.5 + rng.range(-width, width)).collect();
                let y = mixed_targets(&mut rng, n);
                let (_, g) = binary_value_and_grad::<f64, _>(&loss, &p, &y, Pred::Probs);
                for i in 0..n {
                    let a = 1.0 / (1.0 + (-scale * (p[i] - 0.5)).exp());
                    let want = -(2.0 * y[i] - 1.0) / n as f64 * scale * a * (1.0 - a);
                    assert_close(
                        g[i],
                        want,
                        1e-10,
                        0.0,
                        &format!("L={scale} p={p:?} y={y:?} [{i}]"),
                    );
                }
            }
        }
    }

    /// Spec: A(½) = ½ for every L, so a batch of ½ (or logits 0) has accuracy loss ½ and
    /// accuracy gradient `−(2y_i − 1)/N · L/4`.
    #[test]
    fn amplification_maps_one_half_to_one_half() {
        let y = [1.0, 0.0, 0.0, 1.0, 1.0];
        for scale in [0.1, 1.0, 5.0, 73.0, 1000.0] {
            let loss = AnylossAccuracy::new().with_amplification(scale);
            for pred in [Pred::Probs, Pred::Logits] {
                let x = vec![if pred == Pred::Probs { 0.5 } else { 0.0 }; 5];
                let (v64, g64) = binary_value_and_grad::<f64, _>(&loss, &x, &y, pred);
                let (v32, _) = binary_value_and_grad::<f32, _>(&loss, &x, &y, pred);
                assert_eq!(v64, 0.5, "L={scale} {pred:?}");
                assert_eq!(v32, 0.5, "L={scale} {pred:?}");
                let dp_dx = if pred == Pred::Probs { 1.0 } else { 0.25 };
                for i in 0..5 {
                    let want = -(2.0 * y[i] - 1.0) / 5.0 * scale / 4.0 * dp_dx;
                    assert_close(
                        g64[i],
                        want,
                        1e-14,
                        0.0,
                        &format!("L={scale} {pred:?} [{i}]"),
                    );
                }
            }
        }
    }

    /// The module doc: `dA/dp` is computed as `L·σ(x)·σ(−x)`, so in f32 it stays non-zero
    /// on the high side where `A` rounds to 1 (p ≳ 0.74 at L = 73), and it agrees with the
    /// f64 gradient relatively.
    #[test]
    fn f32_gradient_stays_non_zero_in_both_tails() {
        let loss = AnylossAccuracy::new();
        let p = [0.9, 0.1, 0.8, 0.2, 0.95];
        let y = [1.0, 0.0, 0.0, 1.0, 1.0];
        assert_eq!(
            1.0f32 / (1.0 + (-73.0f32 * 0.4).exp()),
            1.0,
            "A rounds to 1 at p = 0.9"
        );
        let (_, g32) = binary_value_and_grad::<f32, _>(&loss, &p, &y, Pred::Probs);
        let p32: Vec<f64> = p.iter().map(|&v| v as f32 as f64).collect();
        let (_, g64) = binary_value_and_grad::<f64, _>(&loss, &p32, &y, Pred::Probs);
        for i in 0..5 {
            assert!(g32[i] != 0.0, "f32 gradient [{i}] is zero at p = {}", p[i]);
            assert_close(
                g32[i],
                g64[i],
                1e-3,
                0.0,
                &format!("f32 tail gradient [{i}]"),
            );
        }
    }

    #[test]
    fn f1_is_fbeta_with_beta_one() {
        let mut rng = Rng::new(24);
        for (amp, pred) in SETTINGS {
            let x = extreme_preds(&mut rng, 9, pred);
            let y = mixed_targets(&mut rng, 9);
            let f1 = with_amp(AnylossF1::new(), amp);
            let fb = with_amp(fbeta_loss(1.0), amp);
            let (v1, g1) = binary_value_and_grad::<f64, _>(&f1, &x, &y, pred);
            let (v2, g2) = binary_value_and_grad::<f64, _>(&fb, &x, &y, pred);
            assert_close(v1, v2, 1e-14, 1e-15, "F1 vs F-β(1) value");
            for i in 0..9 {
                assert_close(g1[i], g2[i], 1e-12, 1e-300, "F1 vs F-β(1) gradient");
            }
        }
    }

    /// Larger β weighs recall more: missing a positive costs F-β(2) more than a false
    /// alarm does, and the reverse for F-β(½).
    #[test]
    fn beta_weighs_recall_against_precision() {
        let y = [1.0, 1.0, 0.0, 0.0];
        let missed_positive = [1.0, 0.0, 0.0, 0.0];
        let false_alarm = [1.0, 1.0, 1.0, 0.0];
        let v = |beta: f64, p: &[f64]| pure_value(&fbeta_loss(beta), p, &y);
        assert!(v(2.0, &missed_positive) > v(2.0, &false_alarm));
        assert!(v(0.5, &missed_positive) < v(0.5, &false_alarm));
    }

    #[test]
    fn defaults_follow_the_spec() {
        let f = AnylossFbeta::default();
        assert_eq!(
            (f.beta, f.epsilon, f.amplification, f.amplify),
            (1.0, 1e-5, 73.0, true)
        );
        assert_eq!(AnylossF1::new().epsilon, 1e-5);
        assert_eq!(AnylossGmean::new().epsilon, 1e-5);
        assert_eq!(AnylossBalancedAccuracy::new().epsilon, 1e-5);
        let acc = AnylossAccuracy::new();
        assert_eq!((acc.amplification, acc.amplify), (73.0, true));
        assert_eq!(acc.hyper("amplification"), Some(73.0));
        assert_eq!(acc.hyper("amplify"), Some(1.0));
        assert_eq!(acc.hyper("epsilon"), None, "accuracy has no epsilon");
        // the builders and `set_hyper` agree
        assert_eq!(
            with_amp(AnylossGmean::new(), AMP5),
            AnylossGmean::new()
                .with_amplification(5.0)
                .with_amplify(true)
        );
        assert_eq!(
            with_amp(AnylossGmean::new(), PURE),
            AnylossGmean::new().with_amplify(false)
        );
    }
}
