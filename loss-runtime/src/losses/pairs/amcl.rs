//! AMCL (Wang, Koniusz, Gedeon & Zheng, ECCV 2024): contrastive learning with one
//! temperature per pair and projection head, produced by a small network on the model
//! side and regularised by `Ω(τ) = (d/2)·ln τ + 1/τ`. The loss takes the temperatures as
//! differentiable inputs; with several heads, call it once per head and add the results.

use dfdx::prelude::*;

use crate::core::tape::read;
use crate::{loss, Real};

#[cfg(test)]
mod tests;

/// AMCL as its released code trains it (the default AMCL loss; [`AmclPaper`] is the
/// paper's Eq. 2.1), for one projection head.
///
/// For `B` positive pairs `(z1_b, z2_b)` with cosine similarity `sim_b` and the pair
/// temperatures `τ_a` (the temperature network's output for pair `a`):
///
/// ```text
/// L = (1/B²) Σ_a Σ_b softplus(−2·sim_b / τ_a)  +  β · (1/B) Σ_a ( (B/2)·ln τ_a + 1/τ_a )
/// ```
///
/// **Call:** `loss.forward((WithRefs(z1, z2), tau), &PairLabels { labels: &ids, ref_labels:
/// &ids })` with `z1, z2: [B, d]`, `tau: [B]` (traced: the temperature network trains
/// through it) and `ids = 0..B`, so that the positive of row `b` is row `b` of `z2`. A row
/// whose label is not shared by exactly one reference is refused, as is a temperature
/// `τ ≤ 0`. With `C` heads the official loss is the sum of `C` calls.
///
/// **What the code computes, and how it departs from the paper.** The official
/// `AdaptiveTemperature` divides the `[B]` similarities by the `[B, 1]` temperatures, which
/// broadcasts to `[B, B]`: every pair's similarity over every pair's temperature (above, the
/// double sum). Each entry goes through `−ln(e^s/(e^s + e^{−s})) = softplus(−2s)`; there
/// are no negatives and no hardest-negative term, and the regulariser's factor is the
/// broadcast's width `B/2` where the paper has `d′/2`. This loss reproduces that
/// computation (after the one-line fix the code needs to construct: its per-head
/// temperatures are an `nn.ModuleList` of parameters, which raises; they are unused).
/// The code exponentiates directly, which overflows once `|s| ≳ 88` in f32 (τ can be
/// 1e-5); `softplus` gives the same value wherever the code's is finite, and a finite one
/// everywhere.
///
/// **Reference:** Wang, Koniusz, Gedeon, Zheng. *Adaptive Multi-head Contrastive
/// Learning*, ECCV 2024. **Official code:** `LeiWangR/cl`,
/// `src/amcl_components/adaptive_temperature.py::AdaptiveTemperature.forward` and
/// `src/models.py::AMCLSimCLRModel.training_step`.
///
/// **Defaults:** β = 0.1. Model side (not part of the loss): 3 heads of width 128,
/// temperatures `1e-5 + (2 − 1e-5)·σ(MLP([z1; z2]))` with a 128-unit hidden layer.
#[loss(
    pairs,
    metric = Cosine,
    paper = "Adaptive Multi-head Contrastive Learning (Wang et al., ECCV 2024)"
)]
pub fn amcl(
    s: Similarity,
    y: Labels,
    tau: Traced<samples>,
    #[hyper(
        default = 0.1,
        nonnegative,
        doc = "β: the weight of the temperature regulariser"
    )]
    beta: f64,
) -> PerAnchor {
    require(
        len(pos(i)) == 1.0,
        "each row of z1 needs exactly one positive in z2: give pair b the label b on both sides",
    );
    require(
        tau[i] > 0.0,
        "a pair temperature is not positive (the official network keeps them in [1e-5, 2])",
    );
    let pairs_count = len(samples);
    let fit = mean(samples, |b| {
        softplus(-2.0 * mean(pos(b), |p| s[b][p]) / tau[i])
    });
    fit + beta * (pairs_count / 2.0 * ln(tau[i]) + 1.0 / tau[i])
}

/// AMCL as the paper states it (Eq. 2.1 of the official README's Table 2, the
/// SimCLR/MoCo form), for one projection head: each anchor's positive and its hardest
/// negative, each over its own pair temperature, with the regulariser `Ω`.
///
/// For the `2N` rows of `Views([2, N, d])` (both views of `N` images; `S` cosine, `p` the
/// other view, `n*` the most similar row of another image):
///
/// ```text
/// Ω(τ) = (d′/2)·ln τ + 1/τ
/// ℓ_i  = −S_ip / τ⁺_i + S_in* / τ⁻_i + β·Ω(τ⁺_i) − β·Ω(τ⁻_i)
/// L    = (1/2N) Σ_i ℓ_i
/// ```
///
/// The hardest negative is a max: its gradient reaches `S_in*` only. Its temperature
/// `τ⁻_i = τ(i, n*)` needs `n*` first: [`hardest_negatives`] mines it (no gradient), then
/// the model evaluates its temperature network on the mined pairs.
///
/// **Call:** `loss.forward((Views(z), tau_pos, tau_neg), &SelfSupervised)` with
/// `tau_pos, tau_neg: [2N]` in the rows' order (view-major), both traced. A temperature
/// `τ ≤ 0`, or a row without a positive or a negative, is refused. With `C` heads the
/// paper's loss is the sum of `C` calls.
///
/// **Unverified, and unbounded.** The batching (the 2N SimCLR anchors) and the reduction
/// (the mean over anchors, the heads summed) are not spelled out by the equation; they are
/// the SimCLR convention the paper builds on. The released code does not implement this
/// equation (see [`Amcl`]). The loss is unbounded below: where `S_in* < β` the negative
/// term falls without bound as `τ⁻ → 0`, so the temperature network's lower limit is what
/// keeps it finite; expect negative values.
///
/// **Reference:** as [`Amcl`]. **Defaults:** β = 0.1, `d′ = 128` (the projection width;
/// set `dim` to yours).
#[loss(
    pairs,
    metric = Cosine,
    paper = "Adaptive Multi-head Contrastive Learning (Wang et al., ECCV 2024)"
)]
pub fn amcl_paper(
    s: Similarity,
    y: Labels,
    tau_pos: Traced<samples>,
    tau_neg: Traced<samples>,
    #[hyper(
        default = 0.1,
        nonnegative,
        doc = "β: the weight of the temperature regulariser"
    )]
    beta: f64,
    #[hyper(
        default = 128.0,
        positive,
        doc = "d′: the projection width, Ω's factor d′/2"
    )]
    dim: f64,
) -> PerAnchor {
    require(
        len(pos(i)) > 0.0 && len(neg(i)) > 0.0,
        "every row needs a positive (the other view) and a negative (another item)",
    );
    require(
        tau_pos[i] > 0.0 && tau_neg[i] > 0.0,
        "a pair temperature is not positive (the official network keeps them in [1e-5, 2])",
    );
    let omega_pos = dim / 2.0 * ln(tau_pos[i]) + 1.0 / tau_pos[i];
    let omega_neg = dim / 2.0 * ln(tau_neg[i]) + 1.0 / tau_neg[i];
    -mean(pos(i), |p| s[i][p]) / tau_pos[i]
        + max(neg(i), |n| s[i][n]) / tau_neg[i]
        + beta * (omega_pos - omega_neg)
}

/// The hardest negative of every row of `Views([V, N, d])`, for [`AmclPaper`]'s
/// two-stage temperatures: the row (view-major, `v·N + n`) of another item with the largest
/// cosine similarity, the first on ties. Computed without a tape, in f64.
///
/// Returns `None` when there is only one item (no row has a negative).
pub fn hardest_negatives<V: Dim, N: Dim, D: Dim, E: Dtype + Real, T>(
    views: &Tensor<(V, N, D), E, Cpu, T>,
) -> Option<Vec<usize>> {
    let (v, n, d) = (
        views.shape().0.size(),
        views.shape().1.size(),
        views.shape().2.size(),
    );
    if n < 2 {
        return None;
    }
    let values: Vec<f64> = read(views).into_iter().map(Real::to_f64).collect();
    let row = |a: usize| &values[a * d..(a + 1) * d];
    let norms: Vec<f64> = (0..v * n)
        .map(|a| row(a).iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12))
        .collect();
    let cosine = |a: usize, b: usize| {
        let dot: f64 = row(a).iter().zip(row(b)).map(|(x, y)| x * y).sum();
        dot / (norms[a] * norms[b])
    };
    let hardest = (0..v * n)
        .map(|a| {
            let mut best = (f64::NEG_INFINITY, usize::MAX);
            for b in (0..v * n).filter(|b| b % n != a % n) {
                let c = cosine(a, b);
                if c > best.0 || best.1 == usize::MAX {
                    best = (c, b);
                }
            }
            best.1
        })
        .collect();
    Some(hardest)
}
