//! ALDR-KL (Zhu, Ying & Yang, ICML 2023): LDR-KL with an adaptive λ per training sample,
//! kept in the loss's per-sample state.

use crate::loss;

#[cfg(test)]
mod tests;

/// ALDR-KL: [`LdrKl`](crate::LdrKl) whose temperature λ is chosen per training sample,
/// in closed form, by how far the model's label distribution is from uniform, and kept
/// across batches.
///
/// For sample `i` of the batch, with `K` classes and the state `r_i = Λ_i / λ0` (the
/// sample's last λ relative to λ0, read before the call):
///
/// ```text
/// f        = softplus(z) if softplus_first, else z
/// f̄_k      = f_k / mean_m |f_m|                              (the official L1 normalisation)
/// p_k      = (softmax_k(f̄ / (λ0·r_i)) + 1e-5) / (1 + K·1e-5)
/// KL_i     = Σ_k p_k · ln(K·p_k)                              (no gradient)
/// λ_i      = λ0 · (1 − KL_i / (α·ln K)),   r_i ← λ_i / λ0     (written back)
/// Lᵢ       = λ_i · ln( (1/K) Σ_k exp((c·[k ≠ y] + f̄_k − f̄_y) / λ_i) )
///            − (α·ln K / (2λ0)) · (λ_i − λ0)²
/// L        = (1/N) Σᵢ Lᵢ
/// ```
///
/// λ_i maximises `−λ·KL_i − (α ln K/(2λ0))(λ − λ0)²`, so it lies in
/// `[λ0·(1 − 1/α), λ0]`: near λ0 (the mean gap) for a confident-but-uncertain sample,
/// smaller (towards the hinge) the further `p` is from uniform. λ is a constant of the
/// gradient, as in the official code, which detaches it; the quadratic term is part of
/// the value only.
///
/// **Call:** `loss.forward(WithIds(z, &ids), &labels)` with `ids` the batch's dataset
/// ids; size the state once with `with_dataset_size(n)`. The state `ratio` starts at 1
/// (λ = λ0, the official initialisation) and can be read, saved (serde) and reset.
///
/// **Conventions.** The log-mean-exp is a max-shifted `logsumexp`, so a small λ does not
/// overflow. Without softplus an all-zero row has no normalisation (the official code
/// divides 0 by 0): it is a [`LossError::Requirement`](crate::LossError::Requirement)
/// naming the sample, as is a row whose softplus values all underflow (every logit below
/// about −745 in f64, −103 in f32). `α` must exceed 1 (the official code's comment); at
/// `α ≤ 1` λ could reach 0 or below, and the call is refused.
///
/// **Reference:** Zhu, Ying, Yang. *Label Distributionally Robust Losses for Multi-class
/// Classification: Consistency, Robustness and Adaptivity.* ICML 2023. **Official code:**
/// `Optimization-AI/ICML2023_LDR`, `loss.py::ALDRLoss_V1` (hyper-parameters in
/// `experiment.py`). Differences: none in value or state where the official code is
/// finite. The state is stored as `Λ/λ0` rather than Λ, so that its initial value does not
/// depend on a hyper-parameter; `state.get()` gives the ratios. The paper states ψ on raw
/// scores; the code (followed here) normalises each row by its mean absolute value first,
/// and leaves the margin out of the `p` that sets λ. An id repeated within a batch is
/// refused ([`LossError::DuplicateId`](crate::LossError::DuplicateId)), where the official
/// code's indexed write keeps one of the rows.
///
/// **Defaults:** the released runs' `experiment.py` values: margin `c = 0.1`, `λ0 = 10`,
/// `α = 2`, and softplus off (the runs turn it on for CIFAR-100 only). The class
/// `ALDRLoss_V1` itself defaults to `c = 1`, `λ0 = 1`, `α = 1`.
#[loss(logits, paper = "LDR-KL (Zhu, Ying & Yang, ICML 2023)")]
pub fn aldr_kl(
    z: Logits,
    y: Labels,
    #[state(init = 1.0)] ratio: State<samples>,
    #[hyper(
        default = 0.1,
        doc = "c: the margin added to every class but the label's"
    )]
    margin: f64,
    #[hyper(
        default = 10.0,
        positive,
        doc = "λ0: the reference λ, the largest λ can be and its initial value"
    )]
    lambda0: f64,
    #[hyper(
        default = 2.0,
        positive,
        doc = "α (> 1): the strength of the pull of λ towards λ0"
    )]
    alpha: f64,
    #[hyper(
        default = false,
        doc = "map the logits through softplus before normalising them"
    )]
    softplus_first: bool,
) -> PerSample {
    require(
        alpha > 1.0,
        "alpha must exceed 1, or the adaptive λ can reach 0 or below",
    );
    let classes_count = len(classes);
    let scale = mean(classes, |k| {
        abs(select(softplus_first, softplus(z[i][k]), z[i][k]))
    });
    require(
        scale > 0.0,
        "the logits of this sample normalise to 0/0 (all zero, or all below softplus's \
         underflow); ALDR-KL divides them by their mean absolute value",
    );
    let target = select(softplus_first, softplus(z[i][y[i]]), z[i][y[i]]) / scale;
    let old_lambda = lambda0 * ratio[i];
    let log_partition = logsumexp(classes, |k| {
        select(softplus_first, softplus(z[i][k]), z[i][k]) / scale / old_lambda
    });
    let kl = sum(classes, |k| {
        let p = (exp(
            select(softplus_first, softplus(z[i][k]), z[i][k]) / scale / old_lambda - log_partition,
        ) + 1e-5)
            / (1.0 + 1e-5 * classes_count);
        p * ln(classes_count * p)
    });
    let lambda = lambda0 * update(ratio[i], 1.0 - kl / (alpha * ln(classes_count)));
    let gaps = logsumexp(classes, |k| {
        (select(k == y[i], 0.0, margin)
            + select(softplus_first, softplus(z[i][k]), z[i][k]) / scale
            - target)
            / lambda
    });
    lambda * (gaps - ln(classes_count))
        - alpha * ln(classes_count) / (2.0 * lambda0) * sq(lambda - lambda0)
}
