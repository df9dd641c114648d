//! General Pair Weighting (GPW) forms of four earlier pair losses, written over the
//! similarity matrix as in the Multi-Similarity paper (Wang et al., CVPR 2019), Section 3.
//!
//! The paper's point: for a pair loss `L(S)`, the gradient `w_ij = ∂L/∂S_ij` is the weight
//! the loss gives the pair `(i, j)`. Each loss here is written in its similarity form, so
//! its derived gradient with respect to `S` (what `pair_weights` returns) is that weight.
//! They are as written in the MS paper, Section 3, with defaults that are illustrative
//! (the MS paper does not fix them). `S` is a similarity, larger = closer: use them with
//! `Metric::Cosine` (the default) or `Metric::Dot`; with a distance metric the signs of
//! the formulas no longer mean what they say.

use crate::loss;

/// Contrastive loss in its similarity form: every positive pair is pulled together with
/// weight 1, every negative pair more similar than λ is pushed apart with weight 1.
///
/// ```text
/// l_i = Σ_{j∈pos(i)} (−S_ij) + Σ_{k∈neg(i)} [S_ik − λ]_+
/// L   = (1/N) Σ_i l_i
/// ```
///
/// **GPW weights:** `∂L/∂S_ij = −1/N` on positive pairs, `+1/N` on negative pairs with
/// `S_ik > λ`, 0 elsewhere (the hinge's kink at `S_ik = λ` takes slope 0).
///
/// **Reduction:** mean over the N anchors (the paper sums over pairs; this divides that
/// sum by N). Anchors without positives or negatives contribute the terms they have. The
/// loss is not bounded below: it falls as positives grow more similar. **Defaults:**
/// λ = 0.5 (illustrative).
///
/// **Reference:** Hadsell, Chopra, LeCun. *Dimensionality Reduction by Learning an
/// Invariant Mapping.* CVPR 2006; this similarity form as written in Wang, Han, Huang,
/// Dong, Scott, *Multi-Similarity Loss with General Pair Weighting for Deep Metric
/// Learning*, CVPR 2019, Section 3.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.8], [0.8, 1.0]]);
/// // one class: each anchor has one positive with S = 0.8
/// let loss = GpwContrastive::default().forward(Similarities(s), &[0, 0]);
/// assert!((loss.array() + 0.8).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the contrastive loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_contrastive(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.5, doc = "λ: negatives more similar than λ are pushed apart")] lambda: f64,
) -> PerAnchor {
    sum(pos(i), |j| -s[i][j]) + sum(neg(i), |k| relu(s[i][k] - lambda))
}

/// Triplet loss in its similarity form, over every valid triplet of the batch: a negative
/// must be less similar to the anchor than a positive, by the margin λ.
///
/// ```text
/// T = { (a, p, n) : p ∈ pos(a), n ∈ neg(a) }      (all valid triplets)
/// L = (1/|T|) Σ_{(a,p,n)∈T} [S_an − S_ap + λ]_+   (L = 0 when T is empty)
/// ```
///
/// **GPW weights:** each active triplet (`S_an − S_ap + λ > 0`) puts `+1/|T|` on its
/// negative pair and `−1/|T|` on its positive pair; a pair's weight sums over its
/// triplets. A triplet exactly at the margin is inactive (slope 0).
///
/// **Reduction:** mean over all valid triplets, inactive ones included (not over the
/// active ones only). A batch with no valid triplet (every label different, or a single
/// class) gives 0 with a zero gradient. Cost: O(N·M²) per batch. **Defaults:** λ = 0.1
/// (illustrative).
///
/// **Reference:** Schroff, Kalenichenko, Philbin. *FaceNet.* CVPR 2015 (with
/// similarities instead of distances); this form as written in Wang et al., *Multi-
/// Similarity Loss with General Pair Weighting*, CVPR 2019, Section 3.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<3, 3>, f64, _> =
///     dev.tensor([[1.0, 0.5, 0.55], [0.5, 1.0, 0.2], [0.55, 0.2, 1.0]]);
/// // two valid triplets, (0, 1, 2) with loss 0.55 − 0.5 + 0.1 and (1, 0, 2) with 0
/// let loss = GpwTriplet::default().forward(Similarities(s), &[0, 0, 1]);
/// assert!((loss.array() - 0.075).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the triplet loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_triplet(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.1, doc = "λ: the margin between S_an and S_ap")] lambda: f64,
) -> Scalar {
    let total = sum(samples, |i| {
        sum(pos(i), |j| sum(neg(i), |k| relu(s[i][k] - s[i][j] + lambda)))
    });
    let triplets = sum(samples, |i| sum(pos(i), |j| 1.0) * sum(neg(i), |k| 1.0));
    select(triplets > 0.0, total / max(triplets, 1.0), 0.0)
}

/// Triplet loss with batch-hard mining: each anchor keeps only its least similar positive
/// and its most similar negative.
///
/// ```text
/// l_i = [ max_{k∈neg(i)} S_ik − min_{j∈pos(i)} S_ij + λ ]_+   (0 if pos(i) or neg(i) is empty)
/// L   = (1/N) Σ_i l_i
/// ```
///
/// **GPW weights:** for an active anchor, `+1/N` on its hardest negative and `−1/N` on its
/// hardest positive; 0 elsewhere. Ties go to the first index (the lowest `j`), and an
/// anchor exactly at the margin is inactive.
///
/// **Reduction:** mean over all N anchors: anchors without a positive or without a
/// negative, and inactive anchors, count in N with 0 (this is not the "mean over non-zero
/// anchors" some implementations use). **Defaults:** λ = 0.1 (illustrative).
///
/// **Reference:** Hermans, Beyer, Leibe. *In Defense of the Triplet Loss for Person
/// Re-Identification.* 2017 (batch-hard mining); the similarity form as written in Wang
/// et al., *Multi-Similarity Loss with General Pair Weighting*, CVPR 2019, Section 3.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<3, 3>, f64, _> =
///     dev.tensor([[1.0, 0.5, 0.55], [0.5, 1.0, 0.2], [0.55, 0.2, 1.0]]);
/// // anchor 0: 0.55 − 0.5 + 0.1; anchor 1: 0; anchor 2 has no positive: 0
/// let loss = GpwTripletBatchHard::default().forward(Similarities(s), &[0, 0, 1]);
/// assert!((loss.array() - 0.05).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the batch-hard triplet loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_triplet_batch_hard(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.1, doc = "λ: the margin between S_an and S_ap")] lambda: f64,
) -> PerAnchor {
    let hardest_pos = min(pos(i), |j| s[i][j]);
    let hardest_neg = max(neg(i), |k| s[i][k]);
    let positives = sum(pos(i), |j| 1.0);
    let negatives = sum(neg(i), |k| 1.0);
    select(
        positives > 0.0 && negatives > 0.0,
        relu(hardest_neg - hardest_pos + lambda),
        0.0,
    )
}

/// Binomial deviance loss in its similarity form: a softplus on every pair, averaged
/// within the positives and within the negatives of each anchor.
///
/// ```text
/// l_i = (1/|pos(i)|) Σ_{j∈pos(i)} ln(1 + e^{α(λ − S_ij)}) + (1/|neg(i)|) Σ_{k∈neg(i)} ln(1 + e^{β(S_ik − λ)})
/// L   = (1/N) Σ_i l_i
/// ```
///
/// An empty set's mean is 0, so an anchor without positives (negatives) has no positive
/// (negative) term. Each `ln(1 + eˣ)` is an overflow-free softplus.
///
/// **GPW weights:** sigmoids, `−α·σ(α(λ − S_ij)) / (N·|pos(i)|)` on a positive pair,
/// `+β·σ(β(S_ik − λ)) / (N·|neg(i)|)` on a negative one.
///
/// **Reduction:** mean over the N anchors. **Defaults:** α = 2, β = 50, λ = 0.5
/// (illustrative).
///
/// **Reference:** Yi, Lei, Liao, Li. *Deep Metric Learning for Person Re-identification.*
/// ICPR 2014; this form as written in Wang et al., *Multi-Similarity Loss with General
/// Pair Weighting*, CVPR 2019, Section 3.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.5], [0.5, 1.0]]);
/// // one class, S = λ on the only positive: ln 2 for both anchors
/// let loss = GpwBinomialDeviance::default().forward(Similarities(s), &[3, 3]);
/// assert!((loss.array() - 2f64.ln()).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the binomial deviance loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_binomial_deviance(
    s: Similarity,
    y: Labels,
    #[hyper(default = 2.0, positive, doc = "α: scale of the positive pairs")] alpha: f64,
    #[hyper(default = 50.0, positive, doc = "β: scale of the negative pairs")] beta: f64,
    #[hyper(default = 0.5, doc = "λ: the similarity margin")] lambda: f64,
) -> PerAnchor {
    mean(pos(i), |j| softplus(alpha * (lambda - s[i][j])))
        + mean(neg(i), |k| softplus(beta * (s[i][k] - lambda)))
}

/// Lifted structure loss in its similarity form: a log-sum-exp over the positives (of
/// `λ − S`) plus a log-sum-exp over the negatives (of `S`), hinged at 0.
///
/// ```text
/// l_i = [ ln Σ_{j∈pos(i)} e^{λ − S_ij} + ln Σ_{k∈neg(i)} e^{S_ik} ]_+   (0 if pos(i) or neg(i) is empty)
/// L   = (1/N) Σ_i l_i
/// ```
///
/// Both sums are max-shifted log-sum-exps. An anchor missing either set contributes 0
/// (not −∞), with a zero gradient.
///
/// **GPW weights:** softmax weights within each set: for an active anchor (the bracket
/// > 0), `−softmax_j(λ − S_ij)/N` on its positives and `+softmax_k(S_ik)/N` on its
/// negatives; 0 for an inactive one (the hinge's kink takes slope 0).
///
/// **Reduction:** mean over the N anchors (the paper sums over anchors). **Defaults:**
/// λ = 1 (illustrative).
///
/// **Reference:** Oh Song, Xiang, Jegelka, Savarese. *Deep Metric Learning via Lifted
/// Structured Feature Embedding.* CVPR 2016; this per-anchor similarity form as written
/// in Wang et al., *Multi-Similarity Loss with General Pair Weighting*, CVPR 2019,
/// Section 3.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<3, 3>, f64, _> =
///     dev.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]]);
/// // anchor 0: [(1 − 0.5) + 0]_+; anchor 1: [(1 − 0.5) + 0.2]_+; anchor 2: no positive
/// let loss = GpwLiftedStructure::default().forward(Similarities(s), &[0, 0, 1]);
/// assert!((loss.array() - 1.2 / 3.0).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the lifted structure loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_lifted_structure(
    s: Similarity,
    y: Labels,
    #[hyper(default = 1.0, doc = "λ: the margin inside the positive log-sum-exp")] lambda: f64,
) -> PerAnchor {
    let positive = logsumexp(pos(i), |j| lambda - s[i][j]);
    let negative = logsumexp(neg(i), |k| s[i][k]);
    let positives = sum(pos(i), |j| 1.0);
    let negatives = sum(neg(i), |k| 1.0);
    select(
        positives > 0.0 && negatives > 0.0,
        relu(positive + negative),
        0.0,
    )
}
