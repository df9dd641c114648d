//! Noise-contrastive estimation (Gutmann & Hyvärinen, 2010), the baseline of the
//! compositional NLL paper (Jiang et al., ICML 2023): an unnormalised model learns to tell
//! data from noise of known density.

use crate::loss;

#[cfg(test)]
mod tests;

/// NCE: logistic regression of data against noise, with the model's log-density ratio to
/// the noise as the logit.
///
/// Each row (query) holds the unnormalised log-densities `f(x)` of its `n` data samples
/// (relevant) and its `m` noise samples (irrelevant), and `log_q` the noise density's
/// log at the same points; `ν = m/n`:
///
/// ```text
/// G(x) = f(x) − log q(x) − ln ν
/// Lᵢ   = mean_{x∈data} softplus(−G(x)) + ν · mean_{x'∈noise} softplus(G(x'))
///      = −mean_data ln σ(G) − ν · mean_noise ln σ(−G)
/// L    = (1/Q) Σᵢ Lᵢ
/// ```
///
/// The model's normalising constant is the model's own: NCE's learnable `c` (`log p_m = f −
/// c`) is a bias of `f`, so a model with a bias term learns it. One row is the classic
/// unconditional estimator; several rows fit several models (or conditions) at once. The
/// log-sigmoids are softplus, so no logit overflows.
///
/// **Call:** `loss.forward((f, log_q), &relevance)` with `f, log_q: [Q, n + m]` and
/// `relevance` 1 on the data entries, 0 on the noise entries. A row without data or without
/// noise is refused.
///
/// **Reference:** Gutmann, Hyvärinen. *Noise-contrastive estimation: A new estimation
/// principle for unnormalized statistical models*, AISTATS 2010; the baseline of Jiang et
/// al., *Learning Unnormalized Statistical Models via Compositional Optimization*, ICML 2023.
/// The textbook formula, no official code.
#[loss(
    scores,
    paper = "Learning Unnormalized Statistical Models via Compositional Optimization (Jiang et al., ICML 2023)"
)]
pub fn nce(s: Scores, r: Relevance, log_q: Given<queries, docs>) -> PerQuery {
    require(
        len(relevant(i)) > 0.0 && len(irrelevant(i)) > 0.0,
        "each row needs data entries (relevance 1) and noise entries (relevance 0)",
    );
    let ratio = len(irrelevant(i)) / len(relevant(i));
    mean(relevant(i), |j| softplus(ln(ratio) + log_q[i][j] - s[i][j]))
        + ratio
            * mean(irrelevant(i), |k| {
                softplus(s[i][k] - log_q[i][k] - ln(ratio))
            })
}
