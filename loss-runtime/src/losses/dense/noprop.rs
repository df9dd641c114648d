//! NoProp (Li, Teh, Pascanu, 2025): each block of a network learns, on its own, to denoise
//! a noisy copy of the label's embedding; no gradient crosses blocks. Three objectives:
//! discrete time (DT, one loss per block), continuous time (CT, a learnable schedule) and
//! flow matching (FM).
//!
//! Every random draw (the latents `z_t`, `z₀`, the times `t`) and the schedule are inputs:
//! the losses see the block's output `û` (or velocity `v`) and the clean label embedding
//! `u_y` as the target. The output classifier's cross-entropy on the clean-end latent is
//! [`CrossEntropy`](crate::CrossEntropy) on that classifier's logits, added by the caller
//! (see `examples/noprop_digits.rs`).

use crate::loss;

#[cfg(test)]
mod tests;

/// NoProp-DT, the denoising and prior terms of block `t`'s objective (Algorithm 1):
///
/// ```text
/// SNR(s) = ᾱ_s / (1 − ᾱ_s)
/// Lᵢ = ½·[ ᾱ₀·‖uᵢ‖² − E·ᾱ₀ − E·ln(1 − ᾱ₀) ]                      KL(q(z₀|y) ‖ N(0, I))
///    + (T/2)·η·(SNR(t) − SNR(t−1)) · ‖ ûᵢ − uᵢ ‖²                 denoising
/// L  = (1/B) Σᵢ Lᵢ
/// ```
///
/// `û = û_θt(z_{t−1}, x)` is block `t`'s prediction of the clean embedding from a latent
/// drawn from `q(z_{t−1}|y) = N(√ᾱ_{t−1}·u_y, (1 − ᾱ_{t−1})·I)`, and `u = u_y` its
/// target, `E` the embedding size. The block's full loss adds the cross-entropy of the
/// output classifier on `z_T ~ q(z_T|y)`; with fixed embeddings the KL term is a constant
/// (its value is kept, for parity with the paper's loss). Build the loss of block `t` from
/// a schedule with [`NopropDt::for_block`], which checks the schedule.
///
/// **Call:** `loss.forward(u_hat, &u_y)` with both `[B, E]`.
///
/// **Reference:** Li, Teh, Pascanu. *NoProp: Training Neural Networks without
/// Back-propagation or Forward-propagation*, arXiv 2503.24322, 2025, Algorithm 1. No
/// official code; the formulas are the algorithm box's.
///
/// **Defaults:** `η = 0.1`, `T = 10` (the paper's table); the schedule values default to
/// block 1 of [`cosine_alpha_bar`]`(10)`.
#[loss(
    dense,
    paper = "NoProp: Training Neural Networks without Back-propagation or Forward-propagation (Li, Teh & Pascanu, 2025)"
)]
pub fn noprop_dt(
    u_hat: Prediction,
    u: Target,
    #[hyper(default = 0.1, positive, doc = "η: the weight of the denoising term")] eta: f64,
    #[hyper(default = 10.0, positive, doc = "T: the number of blocks")] blocks: f64,
    #[hyper(
        default = 0.0,
        range(0.0, 0.999),
        doc = "ᾱ₀: the noise end of the schedule (the prior's KL)"
    )]
    alpha_bar_0: f64,
    #[hyper(
        default = 0.0,
        range(0.0, 0.999),
        doc = "ᾱ_{t−1}: the schedule at the block's input latent"
    )]
    alpha_bar_prev: f64,
    #[hyper(
        default = 0.0245,
        range(0.0, 0.999),
        doc = "ᾱ_t: the schedule at the block's own step (above ᾱ_{t−1})"
    )]
    alpha_bar_t: f64,
) -> PerSample {
    require(
        alpha_bar_t > alpha_bar_prev,
        "the schedule must increase: ᾱ_t > ᾱ_{t−1}",
    );
    let snr_gap = alpha_bar_t / (1.0 - alpha_bar_t) - alpha_bar_prev / (1.0 - alpha_bar_prev);
    let dim = len(elements);
    let kl = 0.5
        * (alpha_bar_0 * sum(elements, |e| sq(u[i][e]))
            - dim * alpha_bar_0
            - dim * ln_1p(-alpha_bar_0));
    kl + 0.5 * blocks * eta * snr_gap * sum(elements, |e| sq(u_hat[i][e] - u[i][e]))
}

impl NopropDt {
    /// The loss of block `t ∈ 1..=T` for the schedule `alpha_bar = [ᾱ₀, …, ᾱ_T]`
    /// (`T = alpha_bar.len() − 1`), with `η` at its default. A schedule that does not
    /// increase strictly, leaves `[0, 0.999]` or is shorter than two steps, or a block
    /// outside `1..=T`, is a [`LossError::InvalidHyper`](crate::LossError::InvalidHyper).
    pub fn for_block(alpha_bar: &[f64], t: usize) -> Result<Self, crate::LossError> {
        let invalid = |name, value, constraint| crate::LossError::InvalidHyper {
            loss: "noprop_dt",
            name,
            value,
            constraint,
        };
        if alpha_bar.len() < 2 {
            return Err(invalid(
                "alpha_bar",
                alpha_bar.len() as f64,
                "a schedule [ᾱ₀, …, ᾱ_T] of at least two values",
            ));
        }
        if let Some(&a) = alpha_bar.iter().find(|a| !(0.0..=0.999).contains(*a)) {
            return Err(invalid("alpha_bar", a, "in [0, 0.999] at every step"));
        }
        if let Some(w) = alpha_bar.windows(2).find(|w| w[1] <= w[0]) {
            return Err(invalid(
                "alpha_bar",
                w[1],
                "strictly increasing from the noise end ᾱ₀ to the clean end ᾱ_T",
            ));
        }
        let blocks = alpha_bar.len() - 1;
        if !(1..=blocks).contains(&t) {
            return Err(invalid("t", t as f64, "a block in 1..=T"));
        }
        Ok(Self::default()
            .with_blocks(blocks as f64)
            .with_alpha_bar_0(alpha_bar[0])
            .with_alpha_bar_prev(alpha_bar[t - 1])
            .with_alpha_bar_t(alpha_bar[t]))
    }
}

/// A cosine schedule `[ᾱ₀, …, ᾱ_T]` increasing from the noise end to the clean end:
/// `ᾱ_t = f(1 − t/T)/f(0)` with `f(s) = cos²(π/2 · (s + 0.008)/1.008)` (Nichol &
/// Dhariwal's cosine schedule, time reversed so that `t = T` is the clean end), clipped to
/// at most 0.999 so that the SNR stays finite. The paper states a fixed cosine schedule
/// for NoProp-DT without its constants; these are the usual ones.
pub fn cosine_alpha_bar(blocks: usize) -> Vec<f64> {
    let f = |s: f64| {
        (std::f64::consts::FRAC_PI_2 * (s + 0.008) / 1.008)
            .cos()
            .powi(2)
    };
    (0..=blocks)
        .map(|t| {
            let s = 1.0 - t as f64 / blocks.max(1) as f64;
            (f(s) / f(0.0)).clamp(0.0, 0.999)
        })
        .collect()
}

/// NoProp-CT, the denoising and prior terms of the continuous-time objective
/// (Algorithm 2):
///
/// ```text
/// Lᵢ = ½·[ ᾱ₀·‖uᵢ‖² − E·ᾱ₀ − E·ln(1 − ᾱ₀) ]  +  (η/2) · SNR′(tᵢ) · ‖ ûᵢ − uᵢ ‖²
/// L  = (1/B) Σᵢ Lᵢ
/// ```
///
/// `û = û_θ(z_{tᵢ}, x, tᵢ)` is the network's prediction of the clean embedding `u = u_y`
/// from a latent drawn at the sampled time `tᵢ ~ U[0, 1]`, and `SNR′(tᵢ) > 0` the
/// derivative of the learnable schedule there (VDM-style `SNR(t) = exp(−γ(t))`, so
/// `SNR′ = −γ′·SNR`): a traced input, so the schedule network trains through it. The
/// block's full loss adds the output classifier's cross-entropy on `z₁`.
///
/// **Call:** `loss.forward((u_hat, snr_prime), &u_y)` with `u_hat`, `u_y` `[B, E]` and
/// `snr_prime` `[B]` (positive; otherwise a
/// [`LossError::Requirement`](crate::LossError::Requirement)).
///
/// **Reference:** Li, Teh, Pascanu, *NoProp*, 2025, Algorithm 2. No official code.
///
/// **Defaults:** `η = 1` (the paper's table), `ᾱ₀ = 0`.
#[loss(
    dense,
    paper = "NoProp: Training Neural Networks without Back-propagation or Forward-propagation (Li, Teh & Pascanu, 2025)"
)]
pub fn noprop_ct(
    u_hat: Prediction,
    u: Target,
    snr_prime: Traced<samples>,
    #[hyper(default = 1.0, positive, doc = "η: the weight of the denoising term")] eta: f64,
    #[hyper(
        default = 0.0,
        range(0.0, 0.999),
        doc = "ᾱ₀: the noise end of the schedule (the prior's KL)"
    )]
    alpha_bar_0: f64,
) -> PerSample {
    require(
        snr_prime[i] > 0.0,
        "SNR′(t) must be positive: the schedule's SNR increases with t",
    );
    let dim = len(elements);
    let kl = 0.5
        * (alpha_bar_0 * sum(elements, |e| sq(u[i][e]))
            - dim * alpha_bar_0
            - dim * ln_1p(-alpha_bar_0));
    kl + 0.5 * eta * snr_prime[i] * sum(elements, |e| sq(u_hat[i][e] - u[i][e]))
}

/// NoProp-FM, flow matching towards the label embedding:
///
/// ```text
/// z_t = t·u_y + (1 − t)·z₀,   z₀ ~ N(0, I),   t ~ U[0, 1]
/// L   = (1/B) Σᵢ ‖ vᵢ − (uᵢ − z₀ᵢ) ‖²
/// ```
///
/// `v = v_θ(z_t, x, t)` is the network's velocity and `u = u_y` the target embedding; the
/// exact velocity `u − z₀` gives 0. With learned embeddings the paper adds the output
/// classifier's cross-entropy on the extrapolated endpoint `z̃₁ = z_t + (1 − t)·v`, which
/// the caller computes and passes to [`CrossEntropy`](crate::CrossEntropy).
///
/// **Call:** `loss.forward((v, z0), &u_y)`, all `[B, E]`.
///
/// **Reference:** Li, Teh, Pascanu, *NoProp*, 2025 (NoProp-FM). No official code.
#[loss(
    dense,
    paper = "NoProp: Training Neural Networks without Back-propagation or Forward-propagation (Li, Teh & Pascanu, 2025)"
)]
pub fn noprop_fm(v: Prediction, u: Target, z0: Given<samples, elements>) -> PerSample {
    sum(elements, |e| sq(v[i][e] - u[i][e] + z0[i][e]))
}
