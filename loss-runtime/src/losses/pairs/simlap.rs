//! SimLAP / Hydra (Wu et al., 2024): contrastive learning in which each anchor is paired
//! with an arbitrary class whose samples become its positives, through a gate on the
//! anchor's features that depends on the class pair.

use crate::loss;

#[cfg(test)]
mod tests;

/// SimLAP: a multi-positive InfoNCE whose positives are the samples of the anchor's
/// *paired* class `y₂`, whose negatives are the samples of neither its own class `y₁` nor
/// `y₂`, and whose anchors are gated by the model.
///
/// With `a_i = g_i² ⊙ ẑ_i` (the gate output squared times the normalised anchor) and
/// `k̂_j` the normalised candidates, `ℓ_ij = a_i·k̂_j / τ` (metric `Dot`):
///
/// ```text
/// P_i = { j : y_all_j = y₂_i }                    (positives: pos(i) with y₂ as the labels)
/// N_i = { j : y_all_j ∉ {y₁_i, y₂_i} }            (negatives)
/// t_ij = ln( e^{ℓ_ij} + Σ_{k∈N_i} e^{ℓ_ik} ) − ℓ_ij = softplus( logsumexp_{k∈N_i} ℓ_ik − ℓ_ij )
/// L = Σ_i Σ_{j∈P_i} t_ij / Σ_i |P_i|                       (default: over all positive pairs)
/// L = (1/B) Σ_i Σ_{j∈P_i} t_ij / (|P_i| + 1e-6)              (per_anchor)
/// ```
///
/// The official code centres each row of logits first (`ℓ − mean_j ℓ`); `t_ij` does not
/// change under a shift of row `i`, so the centring (detached or not, the two official
/// versions' difference) changes neither the value nor the gradient, and the
/// log-sum-exp here is max-shifted instead. A batch without any positive pair gives 0
/// (the official global mean divides 0 by 0); an anchor without negatives contributes 0
/// per pair (`t = 0`), as in the code.
///
/// **Call:** `loss.forward((WithRefs(a, k), same_class), &PairLabels { labels: &y2,
/// ref_labels: &y_all })`, with `a = g² ⊙ normalize(z₁)` `[B, D]` and `k = normalize(k₂)`
/// `[N, D]` computed on the model side (the gate `g ∈ (0, 1)^{B×D}` is the model's label-pair
/// network; in the official code `k₂` is the batch itself, so `a` and `k` share `z₁`'s
/// tape), `y2` from [`pair_classes`], and `same_class` the `[B, N]` 0/1 mask
/// `[y₁_i = y_all_j]` from [`same_class_mask`].
///
/// **Reference:** Wu et al. *Rethinking Positive Pairs in Contrastive Learning*,
/// arXiv 2410.18200, 2024 (v1 names the method Hydra). **Official code:** `erow/vitookit`,
/// `vitookit/evaluation/simlap.py` (`multipos_ce_loss`, `SimLAP.disparate_loss`), the
/// default here; `erow/FastSSL` `model/simlap.py` averages per anchor (`per_anchor`) and
/// detaches the centre. Not part of the loss: the online linear probe the training adds.
///
/// **Defaults:** τ = 0.1 (scale 10), the global mean over positive pairs.
#[loss(
    pairs,
    metric = Dot,
    paper = "Rethinking Positive Pairs in Contrastive Learning (SimLAP / Hydra, Wu et al., 2024)"
)]
pub fn simlap(
    s: Similarity,
    y: Labels,
    same_class: Mask<samples, refs>,
    #[hyper(
        default = 0.1,
        positive,
        doc = "τ: the temperature (the official scale is 1/τ)"
    )]
    tau: f64,
    #[hyper(
        default = false,
        doc = "average per anchor first, with FastSSL's `+1e-6` (otherwise the mean over all positive pairs)"
    )]
    per_anchor: bool,
) -> Scalar {
    let pairs = sum(samples, |i| len(pos(i)));
    sum(samples, |i| {
        let weight = select(
            per_anchor,
            1.0 / (len(samples) * (len(pos(i)) + 1e-6)),
            1.0 / max(pairs, 1.0),
        );
        weight
            * sum(pos(i), |j| {
                softplus(
                    logsumexp(neg(i).filter(|k| same_class[i][k] == 0.0), |k| {
                        s[i][k] / tau
                    }) - s[i][j] / tau,
                )
            })
    })
}

/// How [`pair_classes`] picks each anchor's paired class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pairing {
    /// The batch's labels in a random order (the official default).
    #[default]
    Arbitrary,
    /// Each anchor's own class: SimLAP becomes a supervised contrastive loss.
    Identical,
    /// A uniformly random class other than the anchor's own.
    Distinct,
}

/// SimLAP's paired classes `y₂` for the anchors' labels `y₁`, drawn from the caller's
/// generator (reproducible with a seeded one). `classes` is the number of classes, needed
/// by [`Pairing::Distinct`] (which draws `(y₁ + U{1..C−1}) mod C`; with one class it keeps
/// `y₁`, the only class there is).
pub fn pair_classes<R: rand::Rng + ?Sized>(
    rng: &mut R,
    labels: &[usize],
    pairing: Pairing,
    classes: usize,
) -> Vec<usize> {
    use rand::seq::SliceRandom;
    match pairing {
        Pairing::Arbitrary => {
            let mut y2 = labels.to_vec();
            y2.shuffle(rng);
            y2
        }
        Pairing::Identical => labels.to_vec(),
        Pairing::Distinct if classes < 2 => labels.to_vec(),
        Pairing::Distinct => labels
            .iter()
            .map(|&y| (y + rng.gen_range(1..classes)) % classes)
            .collect(),
    }
}

/// The `[B, N]` 0/1 mask `[labels_i = ref_labels_j]`, row-major: SimLAP's `same_class`.
pub fn same_class_mask<E: crate::Real>(labels: &[usize], ref_labels: &[usize]) -> Vec<E> {
    labels
        .iter()
        .flat_map(|&a| {
            ref_labels
                .iter()
                .map(move |&b| <E as crate::Real>::from_f64(if a == b { 1.0 } else { 0.0 }))
        })
        .collect()
}
