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
/// let loss = GpwContrastive::default().forward(Similarities(s), &[0, 0][..]);
/// assert!((loss.array() + 0.8).abs() < 1e-12);
/// ```
#[loss(
    pairs,
    paper = "General Pair Weighting form of the contrastive loss (Wang et al., CVPR 2019, Section 3)"
)]
pub fn gpw_contrastive(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 0.5,
        doc = "λ: negatives more similar than λ are pushed apart"
    )]
    lambda: f64,
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
/// let loss = GpwTriplet::default().forward(Similarities(s), &[0, 0, 1][..]);
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
        sum(pos(i), |j| {
            sum(neg(i), |k| relu(s[i][k] - s[i][j] + lambda))
        })
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
/// let loss = GpwTripletBatchHard::default().forward(Similarities(s), &[0, 0, 1][..]);
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
/// let loss = GpwBinomialDeviance::default().forward(Similarities(s), &[3, 3][..]);
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
/// let loss = GpwLiftedStructure::default().forward(Similarities(s), &[0, 0, 1][..]);
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

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{assert_close, Rng};
    use crate::testing_pairs::*;
    use crate::Metric;

    // -----------------------------------------------------------------------------------
    // Naive values, with plain loops over explicit pairs and triplets
    // -----------------------------------------------------------------------------------

    /// `(1/N) Σ_i [Σ_{pos} (−S_ij) + Σ_{neg} max(S_ik − λ, 0)]`.
    fn naive_contrastive(p: &Pairs, lambda: f64) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            for j in 0..p.m {
                if p.is_pos(i, j) {
                    total -= p.at(i, j);
                } else if p.is_neg(i, j) {
                    total += (p.at(i, j) - lambda).max(0.0);
                }
            }
        }
        total / p.n as f64
    }

    /// Every valid triplet `(a, p, n)` listed, then `Σ max(S_an − S_ap + λ, 0) / count`.
    fn naive_triplet(p: &Pairs, lambda: f64) -> f64 {
        let mut triplets = Vec::new();
        for a in 0..p.n {
            for pos in 0..p.m {
                for neg in 0..p.m {
                    if p.is_pos(a, pos) && p.is_neg(a, neg) {
                        triplets.push((a, pos, neg));
                    }
                }
            }
        }
        if triplets.is_empty() {
            return 0.0;
        }
        let mut total = 0.0;
        for &(a, pos, neg) in &triplets {
            total += (p.at(a, neg) - p.at(a, pos) + lambda).max(0.0);
        }
        total / triplets.len() as f64
    }

    /// Per anchor: the smallest positive and the largest negative similarity, hinged;
    /// 0 for an anchor missing either; mean over all N anchors.
    fn naive_batch_hard(p: &Pairs, lambda: f64) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            let (mut hardest_pos, mut hardest_neg) = (None::<f64>, None::<f64>);
            for j in 0..p.m {
                let s = p.at(i, j);
                if p.is_pos(i, j) {
                    hardest_pos = Some(hardest_pos.map_or(s, |h| h.min(s)));
                } else if p.is_neg(i, j) {
                    hardest_neg = Some(hardest_neg.map_or(s, |h| h.max(s)));
                }
            }
            if let (Some(sp), Some(sn)) = (hardest_pos, hardest_neg) {
                total += (sn - sp + lambda).max(0.0);
            }
        }
        total / p.n as f64
    }

    /// `ln(1 + eˣ)`, written out.
    fn softplus(x: f64) -> f64 {
        x.exp().ln_1p()
    }

    /// Per anchor: the mean over positives of `ln(1 + e^{α(λ − S)})` plus the mean over
    /// negatives of `ln(1 + e^{β(S − λ)})` (an empty mean is 0); mean over anchors.
    fn naive_binomial(p: &Pairs, alpha: f64, beta: f64, lambda: f64) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            let (mut pos, mut n_pos, mut neg, mut n_neg) = (0.0, 0, 0.0, 0);
            for j in 0..p.m {
                let s = p.at(i, j);
                if p.is_pos(i, j) {
                    pos += softplus(alpha * (lambda - s));
                    n_pos += 1;
                } else if p.is_neg(i, j) {
                    neg += softplus(beta * (s - lambda));
                    n_neg += 1;
                }
            }
            if n_pos > 0 {
                total += pos / n_pos as f64;
            }
            if n_neg > 0 {
                total += neg / n_neg as f64;
            }
        }
        total / p.n as f64
    }

    /// Per anchor: `max(ln Σ_pos e^{λ − S} + ln Σ_neg e^{S}, 0)`, 0 when either set is
    /// empty; mean over anchors.
    fn naive_lifted(p: &Pairs, lambda: f64) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            let (mut pos, mut neg) = (0.0, 0.0);
            let (mut any_pos, mut any_neg) = (false, false);
            for j in 0..p.m {
                let s = p.at(i, j);
                if p.is_pos(i, j) {
                    pos += (lambda - s).exp();
                    any_pos = true;
                } else if p.is_neg(i, j) {
                    neg += s.exp();
                    any_neg = true;
                }
            }
            if any_pos && any_neg {
                total += (pos.ln() + neg.ln()).max(0.0);
            }
        }
        total / p.n as f64
    }

    // -----------------------------------------------------------------------------------
    // The GPW weights as closed forms (the table of the MS paper's Section 3)
    // -----------------------------------------------------------------------------------

    /// `−1/N` on positives, `+1/N` on negatives with `S > λ`.
    fn weights_contrastive(p: &Pairs, lambda: f64) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        let n = p.n as f64;
        for i in 0..p.n {
            for j in 0..p.m {
                if p.is_pos(i, j) {
                    w[i * p.m + j] = -1.0 / n;
                } else if p.is_neg(i, j) && p.at(i, j) > lambda {
                    w[i * p.m + j] = 1.0 / n;
                }
            }
        }
        w
    }

    /// Each active triplet puts `−1/|T|` on `(a, p)` and `+1/|T|` on `(a, n)`.
    fn weights_triplet(p: &Pairs, lambda: f64) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        let mut count = 0usize;
        for a in 0..p.n {
            for pos in 0..p.m {
                for neg in 0..p.m {
                    if p.is_pos(a, pos) && p.is_neg(a, neg) {
                        count += 1;
                    }
                }
            }
        }
        for a in 0..p.n {
            for pos in 0..p.m {
                for neg in 0..p.m {
                    if p.is_pos(a, pos)
                        && p.is_neg(a, neg)
                        && p.at(a, neg) - p.at(a, pos) + lambda > 0.0
                    {
                        w[a * p.m + pos] -= 1.0 / count as f64;
                        w[a * p.m + neg] += 1.0 / count as f64;
                    }
                }
            }
        }
        w
    }

    /// For an active anchor: `−1/N` on its first least similar positive, `+1/N` on its
    /// first most similar negative.
    fn weights_batch_hard(p: &Pairs, lambda: f64) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        for i in 0..p.n {
            let (mut arg_pos, mut arg_neg) = (None::<usize>, None::<usize>);
            for j in 0..p.m {
                if p.is_pos(i, j) && arg_pos.is_none_or(|k| p.at(i, j) < p.at(i, k)) {
                    arg_pos = Some(j);
                }
                if p.is_neg(i, j) && arg_neg.is_none_or(|k| p.at(i, j) > p.at(i, k)) {
                    arg_neg = Some(j);
                }
            }
            if let (Some(jp), Some(jn)) = (arg_pos, arg_neg) {
                if p.at(i, jn) - p.at(i, jp) + lambda > 0.0 {
                    w[i * p.m + jp] = -1.0 / p.n as f64;
                    w[i * p.m + jn] = 1.0 / p.n as f64;
                }
            }
        }
        w
    }

    /// `σ(x)`.
    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// `−α·σ(α(λ − S))/(N·|P_i|)` on positives, `+β·σ(β(S − λ))/(N·|N_i|)` on negatives.
    fn weights_binomial(p: &Pairs, alpha: f64, beta: f64, lambda: f64) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        let n = p.n as f64;
        for i in 0..p.n {
            let n_pos = (0..p.m).filter(|&j| p.is_pos(i, j)).count() as f64;
            let n_neg = (0..p.m).filter(|&j| p.is_neg(i, j)).count() as f64;
            for j in 0..p.m {
                let s = p.at(i, j);
                if p.is_pos(i, j) {
                    w[i * p.m + j] = -alpha * sigmoid(alpha * (lambda - s)) / (n * n_pos);
                } else if p.is_neg(i, j) {
                    w[i * p.m + j] = beta * sigmoid(beta * (s - lambda)) / (n * n_neg);
                }
            }
        }
        w
    }

    /// For an active anchor: `−softmax(λ − S)/N` over its positives, `+softmax(S)/N` over
    /// its negatives.
    fn weights_lifted(p: &Pairs, lambda: f64) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        let n = p.n as f64;
        for i in 0..p.n {
            let (mut pos, mut neg) = (0.0, 0.0);
            for j in 0..p.m {
                if p.is_pos(i, j) {
                    pos += (lambda - p.at(i, j)).exp();
                } else if p.is_neg(i, j) {
                    neg += p.at(i, j).exp();
                }
            }
            if pos == 0.0 || neg == 0.0 || pos.ln() + neg.ln() <= 0.0 {
                continue;
            }
            for j in 0..p.m {
                if p.is_pos(i, j) {
                    w[i * p.m + j] = -(lambda - p.at(i, j)).exp() / pos / n;
                } else if p.is_neg(i, j) {
                    w[i * p.m + j] = p.at(i, j).exp() / neg / n;
                }
            }
        }
        w
    }

    /// Asserts `pair_weights` equals `want` on random batches and reference sets.
    fn check_closed_form<L: PairsLoss<f64>>(loss: &L, want: &dyn Fn(&Pairs) -> Vec<f64>) {
        let mut rng = Rng::new(201);
        for &(n, m, classes) in &[(5, 4, 2), (9, 7, 3), (12, 10, 4)] {
            let y = random_labels(&mut rng, n, classes);
            let s = random_similarities(&mut rng, n, n, true);
            let w = weights::<f64, _>(loss, &s, &y, None).unwrap();
            assert_all_close(&w, &want(&Pairs::batch(&s, &y)), 1e-13, "batch");
            let ry = random_labels(&mut rng, m, classes);
            let s = random_similarities(&mut rng, n, m, false);
            let w = weights::<f64, _>(loss, &s, &y, Some(&ry)).unwrap();
            assert_all_close(&w, &want(&Pairs::refs(&s, &y, &ry)), 1e-13, "refs");
        }
    }

    // -----------------------------------------------------------------------------------
    // The suites every loss shares
    // -----------------------------------------------------------------------------------

    macro_rules! shared_suites {
        ($module:ident, $loss:expr, $naive:expr) => {
            mod $module {
                use super::*;

                #[test]
                fn value_matches_naive_loops() {
                    check_pairs_values(&$loss, &|l, m| l.metric = m, &$naive, 1e-12);
                }

                #[test]
                fn gradient_through_the_similarity_matches_finite_differences() {
                    check_pairs_gradients(&$loss, &|l, m| l.metric = m, 1e-6);
                }

                #[test]
                fn pair_weights_are_the_derived_gradient() {
                    check_pairs_weights(&$loss, 1e-6);
                }

                #[test]
                fn permutation_invariance() {
                    check_pairs_permutation(&$loss);
                }

                #[test]
                fn f32_agrees_with_f64() {
                    check_pairs_precisions(&$loss, 1e-4);
                }

                #[test]
                fn input_errors() {
                    check_pairs_errors(&$loss);
                }
            }
        };
    }

    shared_suites!(contrastive, GpwContrastive::default(), |p: &Pairs| {
        naive_contrastive(p, 0.5)
    });
    shared_suites!(triplet, GpwTriplet::default(), |p: &Pairs| naive_triplet(
        p, 0.1
    ));
    shared_suites!(batch_hard, GpwTripletBatchHard::default(), |p: &Pairs| {
        naive_batch_hard(p, 0.1)
    });
    shared_suites!(binomial, GpwBinomialDeviance::default(), |p: &Pairs| {
        naive_binomial(p, 2.0, 50.0, 0.5)
    });
    shared_suites!(lifted, GpwLiftedStructure::default(), |p: &Pairs| {
        naive_lifted(p, 1.0)
    });

    // -----------------------------------------------------------------------------------
    // Per loss
    // -----------------------------------------------------------------------------------

    #[test]
    fn defaults_are_the_documented_ones() {
        assert_eq!(GpwContrastive::default().lambda, 0.5);
        assert_eq!(GpwTriplet::default().lambda, 0.1);
        assert_eq!(GpwTripletBatchHard::default().lambda, 0.1);
        let b = GpwBinomialDeviance::default();
        assert_eq!((b.alpha, b.beta, b.lambda), (2.0, 50.0, 0.5));
        assert_eq!(GpwLiftedStructure::default().lambda, 1.0);
        assert_eq!(GpwLiftedStructure::default().metric, Metric::Cosine);
    }

    #[test]
    fn non_default_hyper_parameters_reach_the_kernel() {
        let mut rng = Rng::new(202);
        let y = random_labels(&mut rng, 8, 3);
        let s = random_similarities(&mut rng, 8, 8, true);
        let p = Pairs::batch(&s, &y);
        let value = |l: &dyn Fn(&[f64], &[usize]) -> f64| l(&s, &y);
        let close = |got: f64, want: f64, what: &str| assert_close(got, want, 1e-12, 1e-12, what);
        close(
            value(&|s, y| {
                sim_value::<f64, _>(&GpwContrastive::new().with_lambda(-0.2), s, y, None).unwrap()
            }),
            naive_contrastive(&p, -0.2),
            "contrastive",
        );
        close(
            value(&|s, y| {
                sim_value::<f64, _>(&GpwTriplet::new().with_lambda(0.7), s, y, None).unwrap()
            }),
            naive_triplet(&p, 0.7),
            "triplet",
        );
        close(
            value(&|s, y| {
                let l = GpwTripletBatchHard::new().with_lambda(0.0);
                sim_value::<f64, _>(&l, s, y, None).unwrap()
            }),
            naive_batch_hard(&p, 0.0),
            "batch hard",
        );
        close(
            value(&|s, y| {
                let l = GpwBinomialDeviance::new()
                    .with_alpha(3.0)
                    .with_beta(7.0)
                    .with_lambda(0.1);
                sim_value::<f64, _>(&l, s, y, None).unwrap()
            }),
            naive_binomial(&p, 3.0, 7.0, 0.1),
            "binomial",
        );
        close(
            value(&|s, y| {
                let l = GpwLiftedStructure::new().with_lambda(-0.5);
                sim_value::<f64, _>(&l, s, y, None).unwrap()
            }),
            naive_lifted(&p, -0.5),
            "lifted",
        );
    }

    // contrastive -----------------------------------------------------------------------

    /// Weight `−1/N` on every positive, `+1/N` on negatives above λ; a negative exactly
    /// at `S = λ` is at the hinge's kink and gets 0.
    #[test]
    fn contrastive_weights_are_unit_weights() {
        let loss = GpwContrastive::default();
        check_closed_form(&loss, &|p| weights_contrastive(p, 0.5));
        let s = [
            1.0, 0.3, 0.5, 0.75, //
            0.3, 1.0, -0.2, 0.6, //
            0.5, -0.2, 1.0, 0.1, //
            0.75, 0.6, 0.1, 1.0,
        ];
        let y = [0, 0, 1, 1];
        let dev: Cpu = Default::default();
        let w = loss
            .pair_weights(&dev.tensor_from_vec(s.to_vec(), (4, 4)), &y)
            .unwrap()
            .as_vec();
        let q = 0.25;
        #[rustfmt::skip]
        let want = [
            0.0, -q, 0.0, q,
            -q, 0.0, 0.0, q,
            0.0, 0.0, 0.0, -q,
            q, q, -q, 0.0,
        ];
        assert_eq!(w, want);
    }

    /// Contrastive's terms are per pair: a batch where every label differs keeps its
    /// negative terms, a single class its positive terms; negatives all below λ give 0.
    #[test]
    fn contrastive_one_sided_batches() {
        let loss = GpwContrastive::default();
        let mut rng = Rng::new(203);
        let s = random_similarities(&mut rng, 5, 5, true);
        for y in [vec![0, 1, 2, 3, 4], vec![2; 5]] {
            let got = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
            let want = naive_contrastive(&Pairs::batch(&s, &y), 0.5);
            assert_close(got, want, 1e-14, 1e-15, &format!("y={y:?}"));
            assert!(got != 0.0);
        }
        let low: Vec<f64> = s
            .iter()
            .map(|&x| if x < 1.0 { x * 0.4 } else { x })
            .collect();
        let (v, g) = sim_value_and_grad::<f64, _>(&loss, &low, &[0, 1, 2, 3, 4], None);
        assert_eq!(v, 0.0);
        assert!(g.iter().all(|&x| x == 0.0), "{g:?}");
        let (v, g) = emb_value_and_grad::<f64, _>(&loss, &[0.3, -1.2], 2, &[0]);
        assert_eq!((v, g), (0.0, vec![0.0, 0.0]), "a single sample");
    }

    // triplet ---------------------------------------------------------------------------

    #[test]
    fn triplet_weights_count_the_active_triplets() {
        check_closed_form(&GpwTriplet::default(), &|p| weights_triplet(p, 0.1));
    }

    /// The mean is over every valid triplet, inactive ones included; a triplet exactly at
    /// the margin (`S_an − S_ap + λ = 0`) is inactive.
    #[test]
    fn triplet_averages_over_all_valid_triplets() {
        // one anchor, positives {0.75, 0.5}, negatives {0.625, 0.25}, λ = 1/8:
        // (0.75, 0.625): 0; (0.75, 0.25): 0; (0.5, 0.625): 0.25; (0.5, 0.25): −0.125 → 0
        let loss = GpwTriplet::new().with_lambda(0.125);
        let (s, y, ry) = ([0.75, 0.5, 0.625, 0.25], [0], [0, 0, 1, 1]);
        let got = sim_value::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
        assert_eq!(got, 0.25 / 4.0);
        let w = weights::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
        assert_eq!(w, [0.0, -0.25, 0.25, 0.0]);
        // (0.75, 0.625) sits exactly at the margin: inactive, no weight on 0.75
        assert_eq!(0.625 - 0.75 + 0.125, 0.0);
    }

    #[test]
    fn triplet_without_valid_triplets_is_zero() {
        check_no_valid_pairs(&GpwTriplet::default());
        // positives but no negatives in the reference set, and the reverse
        let loss = GpwTriplet::default();
        for ry in [[0, 0, 0], [1, 2, 1]] {
            let s = [0.1, 0.9, -0.4];
            let (v, g) = sim_value_and_grad::<f64, _>(&loss, &s, &[0], Some(&ry));
            assert_eq!((v, g), (0.0, vec![0.0; 3]), "ry={ry:?}");
        }
    }

    // batch hard ------------------------------------------------------------------------

    #[test]
    fn batch_hard_weights_sit_on_the_hardest_pairs() {
        check_closed_form(&GpwTripletBatchHard::default(), &|p| {
            weights_batch_hard(p, 0.1)
        });
    }

    /// Anchors without a positive (a singleton class) count in N with 0; ties go to the
    /// first index.
    #[test]
    fn batch_hard_mean_counts_every_anchor() {
        let loss = GpwTripletBatchHard::default();
        #[rustfmt::skip]
        let s = [
            1.0, 0.25, 0.5, 0.5, 0.0,
            0.25, 1.0, 0.375, -0.5, 0.0,
            0.5, 0.375, 1.0, 0.5, 0.9,
            0.5, -0.5, 0.5, 1.0, 0.2,
            0.0, 0.0, 0.9, 0.2, 1.0,
        ];
        let y = [0, 0, 1, 1, 2];
        // anchor 0: 0.5 − 0.25 + 0.1 (tie between refs 2 and 3: ref 2 takes the weight)
        // anchor 1: 0.375 − 0.25 + 0.1; anchor 2: 0.9 − 0.5 + 0.1; anchor 3: 0.5 − 0.5 + 0.1;
        // anchor 4: no positive
        let want = (0.35 + 0.225 + 0.5 + 0.1) / 5.0;
        let got = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
        assert_close(got, want, 1e-15, 0.0, "mean over 5 anchors");
        let w = weights::<f64, _>(&loss, &s, &y, None).unwrap();
        assert_eq!(&w[..5], &[0.0, -0.2, 0.2, 0.0, 0.0], "first arg-max");
        assert_eq!(&w[20..], &[0.0; 5], "the singleton anchor");
    }

    #[test]
    fn batch_hard_without_valid_pairs_is_zero() {
        check_no_valid_pairs(&GpwTripletBatchHard::default());
    }

    // binomial deviance -----------------------------------------------------------------

    #[test]
    fn binomial_weights_are_sigmoids() {
        check_closed_form(&GpwBinomialDeviance::default(), &|p| {
            weights_binomial(p, 2.0, 50.0, 0.5)
        });
    }

    /// An empty set's mean is 0: every label different leaves the negative terms, a
    /// single class the positive terms, a single sample nothing; all finite.
    #[test]
    fn binomial_one_sided_batches() {
        let loss = GpwBinomialDeviance::default();
        let mut rng = Rng::new(204);
        let s = random_similarities(&mut rng, 5, 5, true);
        for y in [vec![0, 1, 2, 3, 4], vec![2; 5]] {
            let (v, g) = sim_value_and_grad::<f64, _>(&loss, &s, &y, None);
            let want = naive_binomial(&Pairs::batch(&s, &y), 2.0, 50.0, 0.5);
            assert_close(v, want, 1e-14, 1e-15, &format!("y={y:?}"));
            assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
        }
        let (v, g) = emb_value_and_grad::<f64, _>(&loss, &[0.3, -1.2], 2, &[0]);
        assert_eq!((v, g), (0.0, vec![0.0, 0.0]), "a single sample");
    }

    /// β = 50 on similarities far above λ does not overflow: softplus is linear there.
    #[test]
    fn binomial_is_stable_on_large_similarities() {
        let loss = GpwBinomialDeviance::default();
        let (s, y, ry) = ([40.0, -40.0], [0], [1, 0]);
        let (v, g) = sim_value_and_grad::<f32, _>(&loss, &s, &y, Some(&ry));
        // 50·39.5 + 2·40.5 (both in the linear regime)
        assert_close(v, 50.0 * 39.5 + 2.0 * 40.5, 1e-6, 0.0, "value");
        assert_close(g[0], 50.0, 1e-6, 0.0, "negative weight");
        assert_close(g[1], -2.0, 1e-6, 0.0, "positive weight");
    }

    // lifted structure ------------------------------------------------------------------

    #[test]
    fn lifted_weights_are_softmaxes() {
        check_closed_form(&GpwLiftedStructure::default(), &|p| weights_lifted(p, 1.0));
    }

    #[test]
    fn lifted_without_valid_pairs_is_zero() {
        check_no_valid_pairs(&GpwLiftedStructure::default());
    }

    /// An anchor missing a set contributes 0 (not −∞ or NaN) next to active anchors, and
    /// large similarities stay finite (both sums are max-shifted).
    #[test]
    fn lifted_skips_incomplete_anchors_and_is_stable() {
        let loss = GpwLiftedStructure::default();
        let mut rng = Rng::new(205);
        let y = [0, 0, 1, 1, 2];
        let s = random_similarities(&mut rng, 5, 5, true);
        let (v, g) = sim_value_and_grad::<f64, _>(&loss, &s, &y, None);
        assert_close(
            v,
            naive_lifted(&Pairs::batch(&s, &y), 1.0),
            1e-14,
            0.0,
            "value",
        );
        assert!(v > 0.0);
        assert_eq!(&g[20..], &[0.0; 5], "the singleton anchor");
        // similarities of ±800: e^{800} overflows, the log-sum-exps do not
        let big: Vec<f64> = s.iter().map(|x| x * 800.0).collect();
        let (v, g) = sim_value_and_grad::<f64, _>(&loss, &big, &y, None);
        assert!(
            v.is_finite() && g.iter().all(|x| x.is_finite()),
            "{v} {g:?}"
        );
        let mut want = 0.0;
        for i in 0..4 {
            let mut pos = f64::NEG_INFINITY;
            let mut neg = f64::NEG_INFINITY;
            for j in 0..5 {
                if y[j] == y[i] && j != i {
                    pos = pos.max(1.0 - big[i * 5 + j]);
                } else if y[j] != y[i] {
                    neg = neg.max(big[i * 5 + j]);
                }
            }
            // one positive each; the largest negative dominates its sum at this scale
            want += (pos + neg).max(0.0);
        }
        assert_close(v, want / 5.0, 1e-12, 1e-9, "large similarities");
    }
}
