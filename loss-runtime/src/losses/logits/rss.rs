//! The non-robust special case of RSS (Saberi et al., ICLR 2024): supervised
//! cross-entropy on the labelled samples plus self-training on out-of-domain unlabelled
//! samples against the model's own hard pseudo-labels.

use crate::loss;

#[cfg(test)]
mod tests;

/// RSS self-training (the non-robust case, γ, γ′ → ∞): cross-entropy against the labels
/// on the labelled rows, plus `λ` times cross-entropy against the model's own arg-max on
/// the unlabelled rows.
///
/// ```text
/// CE(z, c) = logsumexp_k z[k] − z[c]
/// L = mean_{i labelled} CE(zᵢ, yᵢ)  +  λ · mean_{i unlabelled} CE(zᵢ, argmax_k zᵢ[k])
///   = mean_{labelled} CE(zᵢ, yᵢ)    +  λ · mean_{unlabelled} ( logsumexp_k zᵢ[k] − max_k zᵢ[k] )
/// ```
///
/// The pseudo-label is piecewise constant in the logits, so it carries no gradient (the
/// paper treats `h_θ(X′)` as a constant): the self-training term's gradient is that of
/// cross-entropy against fixed targets, which is the gradient of `logsumexp − max` (the
/// max hands its adjoint to the arg-max). A group that is empty adds 0.
///
/// **Call:** `loss.forward((logits, labelled), &labels)` with `logits` `[N, C]`, the 0/1
/// mask `labelled` `[N]` and `labels` `[N]` (an unlabelled row's label is not read; pass
/// any class).
///
/// **Reference:** Saberi, Najafi, Heidari, Movasaghinia, Motahari, Khalaj. *Out-Of-Domain
/// Unlabeled Data Improves Generalization*, ICLR 2024. The paper's estimator is robust: a
/// Wasserstein-DRO loss that maximises over the *inputs* with the model inside the loss,
/// which no loss head can express, and no code or settings were released. This is its
/// non-robust special case, with logistic (cross-entropy) ℓ.
///
/// **Defaults:** `λ = 1` (a placeholder: the paper's value is unknown).
#[loss(
    logits,
    paper = "Out-Of-Domain Unlabeled Data Improves Generalization (Saberi et al., ICLR 2024)"
)]
pub fn rss_self_training(
    z: Logits,
    y: Labels,
    labelled: Mask<samples>,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "λ: the weight of the unlabelled term"
    )]
    lambda: f64,
) -> Scalar {
    mean(samples.filter(|i| labelled[i] > 0.5), |i| {
        logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
    }) + lambda
        * mean(samples.filter(|i| labelled[i] < 0.5), |i| {
            logsumexp(classes, |k| z[i][k]) - max(classes, |k| z[i][k])
        })
}
