//! Multi-Similarity loss with its mining rule (Wang et al., CVPR 2019).

use crate::loss;

/// Multi-Similarity loss: each anchor weighs its hard positives and hard negatives by a
/// log-sum-exp over their similarities, after mining the pairs that violate the other
/// side's hardest similarity by a margin ε.
///
/// ```text
/// P_i = { j ∈ pos(i) : S_ij < 1 − 1e-5 }             (official; all of pos(i) with pml_style)
/// N_i = neg(i)
/// P̃_i = { j ∈ P_i : S_ij − ε < max_{k∈N_i} S_ik }     Ñ_i = { k ∈ N_i : S_ik + ε > min_{j∈P_i} S_ij }
/// l_i = (1/α)·ln(1 + Σ_{P̃_i} e^{−α(S_ij − λ)}) + (1/β)·ln(1 + Σ_{Ñ_i} e^{β(S_ik − λ)})
/// official: l_i = 0 when P̃_i or Ñ_i is empty (the anchor is skipped)
/// L = (1/N) Σ_i l_i                                    (skipped anchors count in N)
/// ```
///
/// The mining thresholds are constants to the gradient (they only select pairs). Each
/// `ln(1 + Σ e^x)` is computed as `softplus(logsumexp(x))`, stable for any similarity and
/// 0 over an empty set. An anchor without any positive is skipped (the official code
/// fails on `min` of an empty set). Its derived gradient with respect to `S` is the GPW
/// weight of each mined pair, which `pair_weights` returns.
///
/// **Defaults** follow the official code: α = 2 (`SCALE_POS`), β = 40 (`SCALE_NEG`),
/// λ = 0.5 (`thresh`), ε = 0.1 (`margin`). With `pml_style = true` the loss follows
/// pytorch-metric-learning's `MultiSimilarityMiner` + `MultiSimilarityLoss`: the self-pair
/// is dropped by index rather than by value (an exact duplicate positive with S = 1 is kept),
/// and the positive and negative terms count independently (an anchor with mined
/// positives but no mined negatives still gets its positive term). PML's default β is 50;
/// set it with `with_beta(50.0)`.
///
/// **Reference:** Wang, Han, Huang, Dong, Scott. *Multi-Similarity Loss with General Pair
/// Weighting for Deep Metric Learning.* CVPR 2019. **Official code:**
/// `MalongTech/research-ms-loss`, `ret_benchmark/losses/multi_similarity_loss.py`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<4, 3>, f64, _> = dev.tensor([[1.0, 0.1, 0.0], [0.9, 0.3, 0.1], [0.1, 1.0, 0.2], [0.2, 0.8, 0.4]]);
/// let loss = MultiSimilarity::default().forward(e.leaky_trace(), &[0, 0, 1, 1]);
/// assert!(loss.array() >= 0.0);
/// let grads = loss.backward();
/// ```
#[loss(pairs, paper = "Multi-Similarity (Wang et al., CVPR 2019)")]
pub fn multi_similarity(
    s: Similarity,
    y: Labels,
    #[hyper(default = 2.0, positive, doc = "α: scale of the positive pairs")] alpha: f64,
    #[hyper(default = 40.0, positive, doc = "β: scale of the negative pairs")] beta: f64,
    #[hyper(default = 0.5, doc = "λ: the similarity margin")] lambda: f64,
    #[hyper(default = 0.1, nonnegative, doc = "ε: the mining margin")] epsilon: f64,
    #[hyper(
        default = false,
        doc = "follow pytorch-metric-learning's rules instead of the official code"
    )]
    pml_style: bool,
) -> PerAnchor {
    let hardest_pos = min(pos(i).filter(|j| pml_style || s[i][j] < 1.0 - 1e-5), |j| {
        s[i][j]
    });
    let hardest_neg = max(neg(i), |j| s[i][j]);
    let mined_pos = sum(
        pos(i).filter(|j| (pml_style || s[i][j] < 1.0 - 1e-5) && s[i][j] - epsilon < hardest_neg),
        |j| exp(-alpha * (s[i][j] - lambda)),
    );
    let mined_neg = sum(neg(i).filter(|j| s[i][j] + epsilon > hardest_pos), |j| {
        exp(beta * (s[i][j] - lambda))
    });
    let has_pos = max(
        pos(i).filter(|j| (pml_style || s[i][j] < 1.0 - 1e-5) && s[i][j] - epsilon < hardest_neg),
        |j| 1.0,
    );
    let has_neg = max(neg(i).filter(|j| s[i][j] + epsilon > hardest_pos), |j| 1.0);
    let l = ln(1.0 + mined_pos) / alpha + ln(1.0 + mined_neg) / beta;
    select(pml_style || (has_pos > 0.0 && has_neg > 0.0), l, 0.0)
}
