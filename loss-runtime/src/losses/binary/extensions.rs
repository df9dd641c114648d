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
