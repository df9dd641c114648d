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
