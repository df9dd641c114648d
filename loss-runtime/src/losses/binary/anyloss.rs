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
/// use losskit::prelude::*;
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
    let b2 = beta * beta;
    1.0 - (1.0 + b2) * cm.tp / (b2 * cm.pos + cm.tp + cm.fp + epsilon)
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
/// use losskit::prelude::*;
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
