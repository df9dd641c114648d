//! iSogCLR (Qiu et al., ICML 2023): contrastive learning with a learned temperature per
//! training sample, kept with its moving averages in the loss's per-sample state.

use crate::loss;

#[cfg(test)]
mod tests;

/// iSogCLR, unimodal (SimCLR setting): the robust global contrastive loss with one
/// temperature `τ_i` per dataset sample, optimised by the paper's stochastic algorithm.
///
/// For row `i` of `Views([2, B, d])` (both views of image `i`; `s` cosine similarities,
/// `neg(i)` the `2B − 2` rows of other images, `p` the other view), with the state of
/// its image — `s̄_i` (moving average), `τ_i`, `u_i` (momentum) — read before the call:
///
/// ```text
/// E_ij = exp(s_ij/τ_i),   g_i = mean_{j∈neg(i)} E_ij                       (detached)
/// s̄'_i = (1−γ)·s̄_i + γ·g_i        (epoch 0: s̄'_i = g_i)
/// loss = (2/2B) Σ_i [ mean_{j∈neg(i)} (E_ij/s̄'_i)·s_ij − s_ip ]           (surrogate)
/// G_i  = ln s̄'_i + ρ − mean_{j∈neg(i)} (E_ij/s̄'_i)·s_ij/τ_i
/// Ĝ    = clip(mean of G over the image's two rows, −3, 3)
/// u'   = (1−β_u)·u + β_u·Ĝ,        τ' = clip(τ − η·u', τ_min, τ_max)
/// ```
///
/// The value is the official code's **surrogate**, whose gradient is the algorithm's
/// gradient estimate: the weights `E/s̄'` are constants. The state written back per image
/// is the mean of its two rows' `s̄'` (as the code's `(s₁ + s₂)/2`), and `u'`, `τ'`.
/// The exponentials are not max-shifted, as in the code: `s ≤ 1` and `τ ≥ τ_min` keep
/// them below `e^{1/τ_min}` (e²⁰ by default).
///
/// **Call:** `loss.forward(WithIds(Views(z), &ids), &SelfSupervised)` with `z: [2, B, d]`
/// and `ids` the images' dataset ids `[B]`; size the state once with
/// `with_dataset_size(n)`, set `epoch` at the start of every epoch (0 first). The state
/// `s` starts at 0, `tau` at τ_init = 0.1 (both official settings), `u` at 0.
///
/// **Defaults:** the README's CIFAR-100 recipe, γ = 0.8, ρ = 0.4, β_u = 0.5, η = 0.03
/// (constant); the class defaults are ρ = 6.0, β_u = 0.9, η = 1e-3. τ ∈ [0.05, 1.0],
/// gradient clip 3. Not shipped: the η schedules of `SogCLR_DRO_Loss_v2`.
///
/// **Reference:** Qiu, Hu, Yuan, Zhou, Zhang, Yang. *Not All Semantics are Created
/// Equal: Contrastive Self-supervised Learning with Automatic Temperature
/// Individualization*, ICML 2023; official code `zhqiu/contrastive-learning-iSogCLR`,
/// `unimodal_exps/losses.py::SogCLR_DRO_Loss`.
#[loss(
    pairs,
    metric = Cosine,
    paper = "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with Automatic Temperature Individualization (Qiu et al., ICML 2023)"
)]
#[allow(clippy::too_many_arguments)] // reason: the paper's hyper-parameters, one each
pub fn isogclr_unimodal(
    s: Similarity,
    y: Labels,
    sbar: State<samples>,
    #[state(init = 0.1)] tau: State<samples>,
    u: State<samples>,
    #[hyper(
        default = 0.8,
        range(0.0, 1.0),
        doc = "γ, the moving average's weight of the new estimate"
    )]
    gamma: f64,
    #[hyper(
        default = 0.4,
        doc = "ρ, the robustness constant of the temperature objective"
    )]
    rho: f64,
    #[hyper(
        default = 0.5,
        range(0.0, 1.0),
        doc = "β_u, the momentum's weight of the new gradient"
    )]
    beta_u: f64,
    #[hyper(default = 0.03, nonnegative, doc = "η, the temperatures' step size")] eta: f64,
    #[hyper(default = 0.05, positive, doc = "τ_min, the smallest temperature")] tau_min: f64,
    #[hyper(default = 1.0, positive, doc = "τ_max, the largest temperature")] tau_max: f64,
    #[hyper(default = 3.0, positive, doc = "the clip of the temperature gradient")] clip: f64,
    #[hyper(
        default = 0.0,
        nonnegative,
        doc = "the current epoch (0 first): in epoch 0 the moving average takes g as is"
    )]
    epoch: f64,
) -> PerAnchor {
    let g = detach(mean(neg(i), |j| exp(s[i][j] / tau[i])));
    let average = update(
        sbar[i],
        select(epoch < 0.5, g, (1.0 - gamma) * sbar[i] + gamma * g),
    );
    let surrogate = mean(neg(i), |j| {
        detach(exp(s[i][j] / tau[i]) / average) * s[i][j]
    });
    let tau_gradient = mean(samples.filter(|q| y[q] == y[i]), |q| {
        let g_q = mean(neg(q), |j| exp(s[q][j] / tau[q]));
        let average_q = select(epoch < 0.5, g_q, (1.0 - gamma) * sbar[q] + gamma * g_q);
        ln(average_q) + rho
            - mean(neg(q), |j| {
                exp(s[q][j] / tau[q]) / average_q * s[q][j] / tau[q]
            })
    });
    let momentum = update(
        u[i],
        (1.0 - beta_u) * u[i] + beta_u * clamp(tau_gradient, -clip, clip),
    );
    update(tau[i], clamp(tau[i] - eta * momentum, tau_min, tau_max));
    2.0 * (surrogate - mean(pos(i), |p| s[i][p]))
}
