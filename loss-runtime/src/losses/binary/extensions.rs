//! Metrics beyond the AnyLoss paper, built on the same soft confusion matrix.
//!
//! These are **extensions**, not results of the paper: AnyLoss' point is that *any*
//! confusion-matrix metric becomes a loss, and these two are common targets.

use crate::loss;

/// Matthews correlation coefficient as a loss: `1 − MCC` over the soft confusion matrix
/// (an extension of AnyLoss, not from the paper).
///
/// ```text
/// L = 1 − (TP·TN − FP·FN) / sqrt((TP+FP)·(TP+FN)·(TN+FP)·(TN+FN) + ε)
/// ```
///
/// Ranges over `[0, 2]` (MCC is in `[−1, 1]`). `ε > 0` keeps the square root away from
/// zero when a batch has one class, where the loss is exactly 1 with a zero gradient.
#[loss(binary, paper = "extension of AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_mcc(
    cm: SoftConfusion,
    #[hyper(default = 1e-5, positive, doc = "ε under the square root")] epsilon: f64,
) -> Scalar {
    let denominator =
        sqrt((cm.tp + cm.fp) * (cm.tp + cm.fn_) * (cm.tn + cm.fp) * (cm.tn + cm.fn_) + epsilon);
    1.0 - (cm.tp * cm.tn - cm.fp * cm.fn_) / denominator
}

/// Jaccard index (intersection over union) as a loss: `1 − TP / (TP + FP + FN)` over the
/// soft confusion matrix (an extension of AnyLoss, not from the paper).
///
/// ```text
/// L = 1 − TP / (TP + FP + FN + ε)
/// ```
#[loss(binary, paper = "extension of AnyLoss (Han, Moniz & Chawla, KDD 2024)")]
pub fn anyloss_jaccard(
    cm: SoftConfusion,
    #[hyper(default = 1e-5, positive, doc = "ε in the denominator")] epsilon: f64,
) -> Scalar {
    1.0 - cm.tp / (cm.tp + cm.fp + cm.fn_ + epsilon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    /// The default epsilon.
    const S: f64 = 1e-5;

    // Naive formulas over the loop-summed confusion matrix.

    fn mcc(c: &Confusion) -> f64 {
        let d = (c.tp + c.fp) * (c.tp + c.fn_) * (c.tn + c.fp) * (c.tn + c.fn_);
        1.0 - (c.tp * c.tn - c.fp * c.fn_) / (d + S).sqrt()
    }
    fn jaccard(c: &Confusion) -> f64 {
        1.0 - c.tp / (c.tp + c.fp + c.fn_ + S)
    }

    #[test]
    fn values_match_naive_loops() {
        check_binary_values(&AnylossMcc::new(), mcc);
        check_binary_values(&AnylossJaccard::new(), jaccard);
    }

    #[test]
    fn gradients_match_finite_differences_and_the_chain_rule() {
        check_binary_gradients(&AnylossMcc::new(), mcc);
        check_binary_gradients(&AnylossJaccard::new(), jaccard);
    }

    #[test]
    fn f32_agrees_with_f64() {
        check_binary_precisions(&AnylossMcc::new(), 1e-4);
        check_binary_precisions(&AnylossJaccard::new(), 1e-4);
    }

    #[test]
    fn invariant_under_permutation_of_samples() {
        check_binary_permutation(&AnylossMcc::new());
        check_binary_permutation(&AnylossJaccard::new());
    }

    /// The doc of `AnylossMcc`: a single-class batch gives exactly 1 with a zero gradient.
    /// Jaccard does too on a batch without positives (TP vanishes identically).
    #[test]
    fn single_class_batches_are_exactly_one_with_zero_gradient() {
        check_single_class(&AnylossMcc::new(), 0.0);
        check_single_class(&AnylossMcc::new(), 1.0);
        check_single_class(&AnylossJaccard::new(), 0.0);
    }

    /// With `amplify = false` and hard predictions: 1 − the textbook MCC and Jaccard index
    /// from integer counts (up to the epsilon).
    #[test]
    fn hard_predictions_without_amplification_give_one_minus_the_textbook_metric() {
        let mut rng = Rng::new(31);
        for n in [2usize, 4, 11, 30] {
            for _ in 0..5 {
                let y = mixed_targets(&mut rng, n);
                let p = mixed_targets(&mut rng, n);
                let (tp, fp, fn_, tn) = hard_counts(&p, &y);
                let what = format!("p={p:?} y={y:?}");
                let textbook_mcc =
                    (tp * tn - fp * fn_) / ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
                let v = pure_value(&AnylossMcc::new(), &p, &y);
                assert_close(v, 1.0 - textbook_mcc, 0.0, 1e-5, &what);
                let v = pure_value(&AnylossJaccard::new(), &p, &y);
                assert_close(v, 1.0 - tp / (tp + fp + fn_), 0.0, 1e-5, &what);
            }
        }
    }

    /// MCC spans [−1, 1], so the loss spans [0, 2]: perfect hard predictions give ≈ 0,
    /// inverted ones ≈ 2.
    #[test]
    fn mcc_loss_ranges_over_zero_to_two() {
        let y = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let inverted: Vec<f64> = y.iter().map(|v| 1.0 - v).collect();
        let best = pure_value(&AnylossMcc::new(), &y, &y);
        let worst = pure_value(&AnylossMcc::new(), &inverted, &y);
        assert_close(best, 0.0, 0.0, 1e-5, "perfect predictions");
        assert_close(worst, 2.0, 0.0, 1e-5, "inverted predictions");
        let mut rng = Rng::new(32);
        for (amp, pred) in SETTINGS {
            let loss = with_amp(AnylossMcc::new(), amp);
            let x = extreme_preds(&mut rng, 12, pred);
            let y = mixed_targets(&mut rng, 12);
            let v = binary_value::<f64, _>(&loss, &x, &y, pred).unwrap();
            assert!((0.0..=2.0).contains(&v), "{v} outside [0, 2]");
        }
    }

    #[test]
    fn defaults_follow_the_docs() {
        let (m, j) = (AnylossMcc::default(), AnylossJaccard::default());
        assert_eq!((m.epsilon, m.amplification, m.amplify), (1e-5, 73.0, true));
        assert_eq!((j.epsilon, j.amplification, j.amplify), (1e-5, 73.0, true));
    }
}
