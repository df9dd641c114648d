//! The blind-denoiser objective of Kadkhodaie et al. (ICLR 2024): squared error summed
//! over an image, averaged over the batch, with per-image noise levels drawn so that √σ is
//! uniform.

use crate::loss;

#[cfg(test)]
mod tests;

/// Denoising MSE: the squared error of each image, summed over its pixels and channels,
/// averaged over the batch.
///
/// ```text
/// yᵢ = xᵢ + nᵢ,  nᵢ ~ N(0, σᵢ² I)
/// L  = (1/B) Σᵢ ‖ f_θ(yᵢ) − tᵢ ‖²          (sum over every element of image i)
/// ```
///
/// The target `t` is the noise `n` for a residual network (`skip = true`, the official
/// default: the denoised image is `y − f_θ(y)`) and the clean image `x` otherwise. Draw
/// the noise levels with [`noise_level_sampler`]. The gradient is `2(f − t)/B`.
///
/// **Call:** `loss.forward(prediction, &target)` with both `[B, C, H, W]` (any shape
/// whose first axis is the batch).
///
/// **Reference:** Kadkhodaie, Guth, Simoncelli, Mallat. *Generalization in diffusion
/// models arises from geometry-adaptive harmonic representations*, ICLR 2024. **Official
/// code:** `LabForComputationalVision/memorization_generalization_in_diffusion_models`,
/// `code/trainer.py::one_iter` (a summed MSE divided by the batch size) and
/// `code/dataloader_func.py::add_noise_torch` (the noise levels). No differences; the
/// paper's contribution is the analysis, not the loss.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let f: Tensor<Rank4<2, 1, 2, 2>, f64, _> = dev.sample_normal();
/// let n: Tensor<Rank4<2, 1, 2, 2>, f64, _> = dev.sample_normal();
/// let loss = DenoisingMse::default().forward(f.leaky_trace(), &n);
/// let naive: f64 = f.as_vec().iter().zip(n.as_vec()).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / 2.0;
/// assert!((loss.array() - naive).abs() < 1e-12);
/// ```
#[loss(
    dense,
    paper = "Generalization in diffusion models arises from geometry-adaptive harmonic representations (Kadkhodaie et al., ICLR 2024)"
)]
pub fn denoising_mse(x: Prediction, t: Target) -> PerSample {
    sum(elements, |e| sq(x[i][e] - t[i][e]))
}

/// The official per-image noise levels, `σ = (u·(√max − √min) + √min)² / 255` with
/// `u ~ U(0, 1)`: √σ is uniform between the bounds' roots (`quadratic_noise = true`). The
/// bounds are on the 0–255 scale (the official `[0, 255]`), the levels on the 0–1 scale of
/// the images. Draws come from the caller's generator, so a seed reproduces them.
///
/// Bounds that are negative, not finite or in the wrong order are
/// [`LossError::InvalidHyper`](crate::LossError::InvalidHyper).
pub fn noise_level_sampler<R: rand::Rng + ?Sized>(
    rng: &mut R,
    batch: usize,
    min: f64,
    max: f64,
) -> Result<Vec<f64>, crate::LossError> {
    if !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max) {
        return Err(crate::LossError::InvalidHyper {
            loss: "noise_level_sampler",
            name: "min, max",
            value: if min.is_finite() && min >= 0.0 {
                max
            } else {
                min
            },
            constraint: "0 ≤ min ≤ max, both finite",
        });
    }
    let (lo, hi) = (min.sqrt(), max.sqrt());
    Ok((0..batch)
        .map(|_| {
            let u: f64 = rng.gen();
            (u * (hi - lo) + lo).powi(2) / 255.0
        })
        .collect())
}

/// DEPICT's reconstruction term for one layer: the mean squared error over every element
/// of the batch, `mean_{i, e} (ẑᵢᵉ − zᵢᵉ)²`.
///
/// DEPICT (Ghasedi Dizaji et al., ICCV 2017) trains its clustering network with the
/// soft-target cross-entropy ([`DepictClusteringCe`](crate::DepictClusteringCe)) plus a
/// denoising autoencoder's layer-wise reconstruction:
///
/// ```text
/// L_rec = Σ_{l=0..2} w_l · mean_{batch, elements}( (ẑ^l − z^l)² ),   w₀ = 1, w₁ = w₂ = 0.1
/// L     = λ_clus · L_clus + λ_rec · L_rec                             (λ_clus = λ_rec = 1)
/// ```
///
/// One call per layer `l`, with the noisy decoder's output `ẑ^l` as the prediction and
/// the clean encoder's `z^l` as the target (`z⁰ = x`, the input); weight and add them as
/// above. Each sample has the same number of elements, so the mean over samples of each
/// sample's mean is the mean over the whole tensor, as in the official code.
///
/// **Difference from the official code:** there the clean targets `z^l` are not detached,
/// so the reconstruction also trains the clean encoder. Here the target is a constant (the
/// code's `detach_clean_targets = true`); for the official behaviour, also pass the layer
/// the other way round (`z^l` as the prediction, `ẑ^l` detached as the target): the
/// squared error is symmetric, so the two calls together give both pathways their
/// official gradients, at twice the value.
///
/// **Reference:** Ghasedi Dizaji, Herandi, Deng, Cai, Huang. *Deep Clustering via Joint
/// Convolutional Autoencoder Embedding and Relative Entropy Minimization*, ICCV 2017.
/// **Official code:** `herandy/DEPICT`, `functions.py::build_depict` (the reconstruction
/// loss) and `DEPICT.py` (the weights).
#[loss(
    dense,
    paper = "Deep Clustering via Joint Convolutional Autoencoder Embedding and Relative Entropy Minimization (DEPICT, ICCV 2017)"
)]
pub fn depict_reconstruction(z_hat: Prediction, z: Target) -> PerSample {
    mean(elements, |e| sq(z_hat[i][e] - z[i][e]))
}
