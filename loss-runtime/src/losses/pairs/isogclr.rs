//! iSogCLR (Qiu et al., ICML 2023): contrastive learning with a learned temperature per
//! training sample, kept with its moving averages in the loss's per-sample state.

use crate::loss;

#[cfg(test)]
mod bimodal_tests;
#[cfg(test)]
mod libauc_tests;
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

/// iSogCLR, bimodal (CLIP setting), one direction: the image-to-text half of the
/// official loss, or the text-to-image half with the roles swapped. The bimodal loss is
/// the sum of two instances, each with its own state:
///
/// ```text
/// let images = IsogclrBimodal::default().with_dataset_size(n);
/// let texts = IsogclrBimodal::default().with_dataset_size(n);
/// let pairs = PairLabels { labels: &batch, ref_labels: &batch };        // batch = 0..B
/// let l = images.forward(WithIds(WithRefs(img.clone(), txt.clone()), &image_ids), &pairs)
///       + texts.forward(WithIds(WithRefs(txt, img), &text_ids), &pairs);
/// ```
///
/// For anchor `i` (an image, say) against the `B` references (the batch's texts; `s`
/// cosine, `p` the anchor's own text), with its state — `s̄_i`, the running maximum
/// `b_i` (the state `shift`), `τ_i`, the momentum `u_i` — read before the call:
///
/// ```text
/// D_ij = s_ij − s_ip,   b'_i = max(b_i, max_j D_ij/τ_i),   E_ij = exp(D_ij/τ_i − b'_i)   (detached)
/// g_i  = Σ_j E_ij / (B − 1)                          (the sum includes j = p, where D = 0)
/// s̄'_i = (1−γ)·s̄_i·exp(b_i − b'_i) + γ·g_i,       W_ij = E_ij / (s̄'_i + 1e-10)
/// loss = (1/B) Σ_i Σ_j W_ij·D_ij / (B − 1)                                    (surrogate)
/// G_i  = clip( ln s̄'_i + b'_i + ρ − Σ_j W_ij·(D_ij/τ_i) / (B − 1), −5, 5 )
/// u'_i = (1−β_u)·u_i + β_u·G_i,      τ'_i = clip(τ_i − η·u'_i, τ_min, τ_max)
/// ```
///
/// As in [`IsogclrUnimodal`], the value is the code's surrogate and its gradient the
/// algorithm's estimate (the weights are constants). The running maximum `b` keeps the
/// exponentials at most 1 for any τ; `s̄` is rescaled when `b` moves.
///
/// **The positive inside the normaliser.** The official `g` sums over every reference,
/// the positive included (its `E = e^{−b'}`; a negatives-only mask is built and unused).
/// That is the default; `exclude_positive = true` sums over the other `B − 1` references
/// only (still divided by `B − 1`), as LibAUC's `GCLoss_v2` does.
///
/// **Call:** ids are the anchors' dataset ids (image ids for the image direction, text
/// ids for the other); each row's positive is the reference with its label, so give pair
/// `b` the label `b` on both sides. State starts at `s̄ = 0`, `b = 0`, `τ = 0.01`, `u = 0`
/// (official); there is no first-epoch rule: a first visit gives `s̄' = γ·g`.
///
/// **Defaults:** the README's CC3M recipe: ρ = 6.0, η = 0.03 (constant), γ = 0.8,
/// β_u = 0.9, τ ∈ [0.005, 1.0], gradient clip 5; the argparse defaults are ρ = 8.0,
/// η = 1e-3. The README's command names `--ita_type new_isogclr`, which `clip.py` does not
/// accept; the implemented choice is `sogclr_dro`, followed here. Not shipped: the η
/// schedules (`cosine`, `exp`).
///
/// **Reference:** as [`IsogclrUnimodal`]; official code
/// `zhqiu/contrastive-learning-iSogCLR`, `bimodal_exps/models/losses.py::SogCLR_DRO_Loss`.
#[loss(
    pairs,
    metric = Cosine,
    paper = "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with Automatic Temperature Individualization (Qiu et al., ICML 2023)"
)]
#[allow(clippy::too_many_arguments)] // reason: the paper's hyper-parameters, one each
pub fn isogclr_bimodal(
    s: Similarity,
    y: Labels,
    sbar: State<samples>,
    shift: State<samples>,
    #[state(init = 0.01)] tau: State<samples>,
    u: State<samples>,
    #[hyper(
        default = 0.8,
        range(0.0, 1.0),
        doc = "γ, the moving average's weight of the new estimate"
    )]
    gamma: f64,
    #[hyper(
        default = 6.0,
        doc = "ρ, the robustness constant of the temperature objective"
    )]
    rho: f64,
    #[hyper(
        default = 0.9,
        range(0.0, 1.0),
        doc = "β_u, the momentum's weight of the new gradient"
    )]
    beta_u: f64,
    #[hyper(default = 0.03, nonnegative, doc = "η, the temperatures' step size")] eta: f64,
    #[hyper(default = 0.005, positive, doc = "τ_min, the smallest temperature")] tau_min: f64,
    #[hyper(default = 1.0, positive, doc = "τ_max, the largest temperature")] tau_max: f64,
    #[hyper(default = 5.0, positive, doc = "the clip of the temperature gradient")] clip: f64,
    #[hyper(
        default = false,
        doc = "leave the positive out of the normaliser g (LibAUC's GCLoss_v2); off in the official code"
    )]
    exclude_positive: bool,
) -> PerAnchor {
    require(
        len(pos(i)) == 1.0,
        "each anchor needs exactly one positive reference: give pair b the label b on both sides",
    );
    require(
        len(refs) > 1.0,
        "the normaliser divides by B − 1: a batch needs at least two pairs",
    );
    let positive = mean(pos(i), |p| s[i][p]);
    let others_count = len(refs) - 1.0;
    let new_shift = update(
        shift[i],
        max(
            shift[i],
            detach(max(refs, |j| (s[i][j] - positive) / tau[i])),
        ),
    );
    let g = detach(select(
        exclude_positive,
        sum(neg(i), |j| exp((s[i][j] - positive) / tau[i] - new_shift)),
        sum(refs, |j| exp((s[i][j] - positive) / tau[i] - new_shift)),
    )) / others_count;
    let average = update(
        sbar[i],
        (1.0 - gamma) * sbar[i] * exp(shift[i] - new_shift) + gamma * g,
    );
    let surrogate = sum(neg(i), |j| {
        detach(exp((s[i][j] - positive) / tau[i] - new_shift) / (average + 1e-10))
            * (s[i][j] - positive)
    }) / others_count;
    // the positive's terms (D = 0) add nothing here, with or without it in g
    let weighted = detach(sum(neg(i), |j| {
        exp((s[i][j] - positive) / tau[i] - new_shift) / (average + 1e-10)
            * ((s[i][j] - positive) / tau[i])
    })) / others_count;
    let tau_gradient = clamp(ln(average) + new_shift + rho - weighted, -clip, clip);
    let momentum = update(u[i], (1.0 - beta_u) * u[i] + beta_u * tau_gradient);
    update(tau[i], clamp(tau[i] - eta * momentum, tau_min, tau_max));
    surrogate
}

/// iSogCLR as LibAUC ships it: `GCLoss_v1(enable_isogclr = True)`, the unimodal
/// (SimCLR) setting with LibAUC's own constants and first-visit rule.
///
/// For row `i` of `Views([2, B, d])` (`s` cosine, `neg(i)` the `2B − 2` rows of other
/// images, `p` the other view), with the state of its image — the moving average `u_i`,
/// `τ_i`, the momentum `m_i` — read before the call:
///
/// ```text
/// E_ij = exp(s_ij/τ_i),   g_i = mean_{j∈neg(i)} E_ij                              (detached)
/// γ_i  = 1 on a first visit (u_i = 0, see below), else γ
/// u'_i = (1−γ_i)·u_i + γ_i·g_i
/// loss = (2/2B) Σ_i [ mean_{j∈neg(i)} (E_ij / max(u'_i, 1e-8))·s_ij − s_ip ]      (surrogate)
/// G_i  = ln u'_i + ρ − mean_{j∈neg(i)} (E_ij / max(u'_i, 1e-8))·s_ij/τ_i
/// Ĝ    = mean of G over the image's two rows          (not clipped, unlike the authors' code)
/// m'   = (1−β)·m + β·Ĝ,        τ' = clip(τ − η·m', τ_min, τ_max)
/// ```
///
/// The state written back per image is the mean of its two rows' `u'` (the code's
/// `(u₁ + u₂)/2`), and `m'`, `τ'`. The weights are constants of the gradient, as in
/// [`IsogclrUnimodal`], whose value is the same surrogate.
///
/// **First visits.** LibAUC uses γ = 1 for a batch whose stored `u` are all 0, while its
/// internal γ is still 1 — until `adjust_gamma(epoch ≥ 1)` is called under the constant
/// schedule. Here the rule is per sample (`u_i = 0`), which is the same whenever each
/// sample appears once per epoch; with `first_visit_always = false` it applies in epoch 0
/// only (set `epoch`), as after LibAUC's `adjust_gamma`; by default it always applies. Not
/// shipped: the cosine γ schedule.
///
/// **Call:** as [`IsogclrUnimodal`]: `loss.forward(WithIds(Views(z), &ids),
/// &SelfSupervised)`, `z: [2, B, d]`, `ids` the images' dataset ids; `u` and `m` start at 0,
/// `tau` at 0.1 (LibAUC's `tau`).
///
/// **Defaults:** LibAUC's: γ = 0.9, ρ = 0.3, β = 0.9, η = 0.01, τ ∈ [0.05, 0.7], τ_init 0.1.
///
/// **Reference:** as [`IsogclrUnimodal`]; official code `Optimization-AI/LibAUC` (v1.4.0 to
/// v2.0.1), `libauc/losses/contrastive.py::GCLoss_v1`.
#[loss(
    pairs,
    metric = Cosine,
    paper = "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with Automatic Temperature Individualization (Qiu et al., ICML 2023)"
)]
#[allow(clippy::too_many_arguments)] // reason: the paper's hyper-parameters, one each
pub fn isogclr_libauc_v1(
    s: Similarity,
    y: Labels,
    u: State<samples>,
    #[state(init = 0.1)] tau: State<samples>,
    momentum: State<samples>,
    #[hyper(
        default = 0.9,
        range(0.0, 1.0),
        doc = "γ, the moving average's weight of the new estimate"
    )]
    gamma: f64,
    #[hyper(
        default = 0.3,
        doc = "ρ, the robustness constant of the temperature objective"
    )]
    rho: f64,
    #[hyper(
        default = 0.9,
        range(0.0, 1.0),
        doc = "β, the momentum's weight of the new gradient"
    )]
    beta: f64,
    #[hyper(default = 0.01, nonnegative, doc = "η, the temperatures' step size")] eta: f64,
    #[hyper(default = 0.05, positive, doc = "τ_min, the smallest temperature")] tau_min: f64,
    #[hyper(default = 0.7, positive, doc = "τ_max, the largest temperature")] tau_max: f64,
    #[hyper(
        default = 0.0,
        nonnegative,
        doc = "the current epoch (0 first), read when `first_visit_always` is off"
    )]
    epoch: f64,
    #[hyper(
        default = true,
        doc = "use γ = 1 on a sample's first visit in every epoch, not in epoch 0 only"
    )]
    first_visit_always: bool,
) -> PerAnchor {
    let g = detach(mean(neg(i), |j| exp(s[i][j] / tau[i])));
    let rate = select(
        u[i] == 0.0 && (first_visit_always || epoch < 0.5),
        1.0,
        gamma,
    );
    let average = update(u[i], (1.0 - rate) * u[i] + rate * g);
    let surrogate = mean(neg(i), |j| {
        detach(exp(s[i][j] / tau[i]) / max(average, 1e-8)) * s[i][j]
    });
    let tau_gradient = mean(samples.filter(|q| y[q] == y[i]), |q| {
        let g_q = mean(neg(q), |j| exp(s[q][j] / tau[q]));
        let rate_q = select(
            u[q] == 0.0 && (first_visit_always || epoch < 0.5),
            1.0,
            gamma,
        );
        let average_q = (1.0 - rate_q) * u[q] + rate_q * g_q;
        ln(average_q) + rho
            - mean(neg(q), |j| {
                exp(s[q][j] / tau[q]) / max(average_q, 1e-8) * s[q][j] / tau[q]
            })
    });
    let step = update(
        momentum[i],
        (1.0 - beta) * momentum[i] + beta * tau_gradient,
    );
    update(tau[i], clamp(tau[i] - eta * step, tau_min, tau_max));
    2.0 * (surrogate - mean(pos(i), |p| s[i][p]))
}
