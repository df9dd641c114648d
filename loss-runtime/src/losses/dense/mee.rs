//! The manifold terms of MEE (Liu et al., 2022), which regularise a GAN's discriminator
//! embeddings `D(x) ∈ R^K`: DLLE (local linearity: an augmented copy embeds where the
//! original does) and DIsoMap (isometry: mixes of inputs embed as mixes of embeddings).
//! Both regress the embeddings onto detached targets.

use crate::loss;

#[cfg(test)]
mod tests;

/// MEE's DLLE term: the embedding of each sample regressed onto the detached embedding of
/// its augmented copy, for the real and the fake batch together.
///
/// ```text
/// aug(x)  = flip(x, a random spatial axis) + 0.001·N(0, 1)                  (the caller's)
/// L_DLLE  = MSE( D(x_r), sg D(aug x_r) ) + MSE( D(x_f), sg D(aug x_f) )     (MSE = mean over B·K)
/// ```
///
/// **Call:** `loss.forward(d, &d_aug)` with `d = [D(x_r); D(x_f)]`, the real and the fake
/// batch stacked (`[2B, K]`, as many of each), and `d_aug` their augmented copies'
/// embeddings in the same order (a constant). The two means over `B·K` sum to twice the
/// mean over the stacked `2B·K`, which is what the loss computes. It is 0 when `D` is
/// invariant to the augmentation.
///
/// **Reference:** Liu, Tang, Wang, Chen, Huang. *Combating Mode Collapse in GANs via
/// Manifold Entropy Estimation*, 2022. **Official code:** `HaozheLiu-ST/MEE`,
/// `train.py::training_ours` and `data_aug`: the paper's LLE reconstruction from
/// neighbours is realised there as one augmented neighbour with weight 1, which is what
/// this term is.
#[loss(
    dense,
    paper = "Combating Mode Collapse in GANs via Manifold Entropy Estimation (MEE, 2022)"
)]
pub fn mee_dlle(d: Prediction, d_aug: Target) -> PerSample {
    2.0 * mean(elements, |k| sq(d[i][k] - d_aug[i][k]))
}

/// MEE's DIsoMap term: the embedding of a mix of a real and a fake input regressed onto
/// the same mix of their embeddings, detached, plus a small noise.
///
/// ```text
/// x_mix  = αᵢ·x_r + (1 − αᵢ)·x_f,   αᵢ ~ N(0, 1)   (official: not a convex weight)
/// target = αᵢ·D(x_r) + (1 − αᵢ)·D(x_f) + N(0, 0.05²)
/// L      = mean_{i, k} ( D(x_mix)ᵢₖ − targetᵢₖ )²
/// ```
///
/// **Call:** `loss.forward((d_mix, d_real, alpha, noise), &d_fake)` with `d_mix`,
/// `d_real`, `d_fake` and `noise` `[B, K]` and `alpha` `[B]`; everything but `d_mix` is a
/// constant. Draw α from N(0, 1) for the official behaviour, or from U(0, 1) for the convex
/// mixes the official README mentions. It is 0 for an affine `D` and zero noise.
///
/// **Reference:** Liu et al., *MEE*, 2022. **Official code:** `HaozheLiu-ST/MEE`,
/// `train.py::training_ours` (`torch.randn` for α, noise scale 0.05).
#[loss(
    dense,
    paper = "Combating Mode Collapse in GANs via Manifold Entropy Estimation (MEE, 2022)"
)]
pub fn mee_disomap(
    d_mix: Prediction,
    d_fake: Target,
    d_real: Given<samples, elements>,
    alpha: Given<samples>,
    noise: Given<samples, elements>,
) -> PerSample {
    mean(elements, |k| {
        sq(d_mix[i][k] - alpha[i] * d_real[i][k] - (1.0 - alpha[i]) * d_fake[i][k] - noise[i][k])
    })
}
