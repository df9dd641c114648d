//! The full-resolution pansharpening losses of Z-PNN (Ciotola et al., TGRS 2022) and the
//! structural term it shares with λ-PNN (TGRS 2023): an L1 spectral term on the MS
//! decimation grid and a thresholded "1 − local correlation with the PAN" term.
//!
//! The heads are `#[loss(dense)]` definitions; the fixed image operators they are fed
//! through (MTF filtering, decimation, the correlation field) are the runtime's
//! [`core::image`](crate::core::image) ops. [`zpnn`] composes the whole loss.

use dfdx::prelude::*;

use crate::core::image::filter::{filter_values, pad_values, Padding};
use crate::core::image::mtf::{mtf_kernels, MTF_SIZE};
use crate::core::image::{read_image, Image};
use crate::core::real::Real;
use crate::{
    decimate, local_corr_field, local_corr_field_values, loss, mtf_filter_valid, Loss, LossError,
    Sensor,
};

#[cfg(test)]
mod tests;

/// Z-PNN's spectral loss: the mean absolute error between the MTF-filtered output and the
/// MS image, on the MS decimation grid.
///
/// ```text
/// x = mtf_filter_valid(out)[:, :, 2::4, 2::4]         (valid 41×41 filtering: crop of 20)
/// y = ms_up[:, :, 20:−20, 20:−20][:, :, 2::4, 2::4]
/// L = (1/N) Σᵢ mean_e |xᵢₑ − yᵢₑ|                      (= the mean over the whole grid)
/// ```
///
/// The prediction is `x` and the target `y`, both `[N, C, h, w]`; [`zpnn`] builds them
/// from the network output and the upsampled MS. The gradient of `|·|` at 0 is 0.
///
/// **Reference:** Ciotola, Vitale, Mazza, Poggi, Scarpa. *Pansharpening by Convolutional
/// Neural Networks in the Full Resolution Framework*, IEEE TGRS 60, 2022. **Official
/// code:** `matciotola/Z-PNN`, `losses.py::SpectralLossNocorr` (a grid mask normalised by
/// its total, then a summed L1: the same mean). The co-registered variant
/// (`SpectralLoss`, a grid phase per band) is not shipped.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let x: Tensor<Rank4<1, 2, 2, 2>, f64, _> = dev.tensor([[[[1.0, 2.0], [0.0, 0.0]], [[0.5; 2]; 2]]]);
/// let y: Tensor<Rank4<1, 2, 2, 2>, f64, _> = dev.zeros();
/// let loss = ZpnnSpectral::default().forward(x.leaky_trace(), &y);
/// assert!((loss.array() - 5.0 / 8.0).abs() < 1e-12);
/// ```
#[loss(
    dense,
    paper = "Pansharpening by Convolutional Neural Networks in the Full Resolution Framework (Ciotola et al., TGRS 2022)"
)]
pub fn zpnn_spectral(x: Prediction, t: Target) -> PerSample {
    mean(elements, |e| abs(x[i][e] - t[i][e]))
}

/// The structural loss of Z-PNN and λ-PNN: one minus the local correlation with the PAN,
/// counted only where it is worse than the reference threshold.
///
/// ```text
/// X = 1 − max(ρ, −1)
/// L = (1/N) Σᵢ mean_e X_ie · [X_ie > thr_ie]      (the indicator is a constant)
/// ```
///
/// The prediction is `ρ = local_corr_field(out, pan, 2)` ([`local_corr_field`]) and the
/// target the threshold `thr` ([`zpnn_threshold`]), both `[N, C, H, W]`; the mean is over
/// every pixel, penalised or not. A threshold below 0 penalises every pixel (`L = mean X`,
/// the official logging value). The gradient is `−1/(N·E)` at penalised pixels with
/// `ρ ≥ −1` (the tie at `ρ = −1` goes to `ρ`), 0 elsewhere.
///
/// **Reference:** Ciotola et al., TGRS 2022 (Z-PNN); Ciotola, Poggi, Scarpa. *Unsupervised
/// Deep Learning-Based Pansharpening With Jointly Enhanced Spectral and Spatial Fidelity*,
/// IEEE TGRS 61, 2023 (λ-PNN). **Official code:** `matciotola/Z-PNN` and
/// `matciotola/Lambda-PNN`, `StructuralLoss`. The paper states the term as a correlation
/// capped by the reference; the code (followed here) masks the pixels with `X > thr`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let rho: Tensor<Rank2<1, 4>, f64, _> = dev.tensor([[1.0, 0.5, -2.0, 0.0]]);
/// let thr: Tensor<Rank2<1, 4>, f64, _> = dev.tensor([[0.0, 0.6, 0.0, 1.0]]);
/// // X = [0, 0.5, 2, 1]: only the third exceeds its threshold
/// let loss = PnnStructural::default().forward(rho.leaky_trace(), &thr);
/// assert!((loss.array() - 2.0 / 4.0).abs() < 1e-12);
/// ```
#[loss(
    dense,
    paper = "Pansharpening by Convolutional Neural Networks in the Full Resolution Framework (Ciotola et al., TGRS 2022)"
)]
pub fn pnn_structural(rho: Prediction, thr: Target) -> PerSample {
    mean(elements, |e| {
        select(
            1.0 - max(rho[i][e], -1.0) > thr[i][e],
            1.0 - max(rho[i][e], -1.0),
            0.0,
        )
    })
}

/// Z-PNN's (and λ-PNN's) structural threshold, computed once per image:
///
/// ```text
/// thr = 1 − local_corr_field( h₀ ∗ reflect_pad₂₀(pan), ms_up ; w = 8 )
/// ```
///
/// `h₀` is the sensor's **first** band's MTF kernel (a valid filtering after the reflect
/// padding, so the PAN keeps its size). `pan` is `[B, 1, H, W]`, `ms_up` (the MS image
/// upsampled to the PAN's resolution) `[B, C, H, W]` with `C` the sensor's bands and
/// `H, W > 20`; the result is `[B, C, H, W]`, row-major, with values in `[0, 2]`.
/// Other shapes are [`LossError::BadShape`].
pub fn zpnn_threshold<S1, S2, E, T1, T2>(
    pan: &Tensor<S1, E, Cpu, T1>,
    ms_up: &Tensor<S2, E, Cpu, T2>,
    sensor: Sensor,
) -> Result<Vec<f64>, LossError>
where
    S1: Shape,
    S2: Shape,
    E: Dtype + Real,
{
    let (p, dp) = read_image("pan", pan)?;
    let (m, dm) = read_image("ms_up", ms_up)?;
    let half = MTF_SIZE / 2;
    if dp[1] != 1 || dp[2] <= half || dp[3] <= half {
        return Err(LossError::BadShape {
            input: "pan",
            shape: dp.to_vec(),
            expected: "[B, 1, H, W] with H, W > 20",
        });
    }
    if dm != [dp[0], sensor.bands(), dp[2], dp[3]] {
        return Err(LossError::BadShape {
            input: "ms_up",
            shape: dm.to_vec(),
            expected: "[B, C, H, W] like `pan`, with C the sensor's bands",
        });
    }
    let (padded, pd) = pad_values(&p, dp, half, Padding::Reflect);
    let (low, dl) = filter_values(&padded, pd, &mtf_kernels(sensor)[..1]);
    let rho = local_corr_field_values(&low, dl, &m, dm, 8)?;
    Ok(rho.into_iter().map(|r| 1.0 - r).collect())
}

/// `a + β·b` for two traced scalars, one op on the merged tape.
fn weighted_sum<E, T>(
    a: Tensor<(), E, Cpu, T>,
    b: Tensor<(), E, Cpu, T>,
    beta: f64,
) -> Tensor<(), E, Cpu, T>
where
    E: Dtype + Real,
    T: Tape<E, Cpu> + Merge<T>,
{
    let (a, ta) = a.split_tape();
    let (b, tb) = b.split_tape();
    let mut tape = ta.merge(tb);
    let beta_e = <E as Real>::from_f64(beta);
    let out = a.device().tensor(a.array() + beta_e * b.array());
    if T::OWNS_TAPE {
        let (ag, bg, og) = (a.ghost(), b.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let g = grads.get_or_alloc_mut(&og)?[0];
            grads.get_or_alloc_mut(&ag)?[0] += g;
            grads.get_or_alloc_mut(&bg)?[0] += beta_e * g;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// The Z-PNN loss `L_spec + β·L_struct` of a network output, differentiable in `out`:
///
/// ```text
/// L_spec   = ZpnnSpectral( mtf_filter_valid(out)[:, :, 2::4, 2::4],  ms_up[:, :, 22:H−20:4, 22:W−20:4] )
/// L_struct = PnnStructural( local_corr_field(out, pan, 2),  thr )
/// ```
///
/// `out` and `ms_up` are `[B, C, H, W]` (`C` the sensor's bands, `H, W ≥ 43`), `pan`
/// `[B, 1, H, W]`, `thr` the row-major `[B, C, H, W]` of [`zpnn_threshold`]. All images
/// are normalised by `2^11` in the official code. `beta` is [`Sensor::zpnn_beta`] by
/// default (0.36 for WV2/WV3, 0.25 for GE1). See [`ZpnnSpectral`] and [`PnnStructural`]
/// for the terms and the reference.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let pan: Tensor<Rank4<1, 1, 44, 44>, f64, _> = dev.sample_uniform();
/// let ms_up: Tensor<Rank4<1, 4, 44, 44>, f64, _> = dev.sample_uniform();
/// let out: Tensor<Rank4<1, 4, 44, 44>, f64, _> = dev.sample_uniform();
/// let thr = zpnn_threshold(&pan, &ms_up, Sensor::Ge1).unwrap();
/// let beta = Sensor::Ge1.zpnn_beta();
/// let loss = zpnn(out.leaky_trace(), &ms_up, &pan, &thr, Sensor::Ge1, beta).unwrap();
/// let grads = loss.backward();
/// assert_eq!(grads.get(&out).as_vec().len(), 4 * 44 * 44);
/// ```
pub fn zpnn<S, S1, S2, E, T, T1, T2>(
    out: Tensor<S, E, Cpu, T>,
    ms_up: &Tensor<S1, E, Cpu, T1>,
    pan: &Tensor<S2, E, Cpu, T2>,
    thr: &[f64],
    sensor: Sensor,
    beta: f64,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    S: Shape,
    S1: Shape,
    S2: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu> + Merge<T> + Default,
{
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(LossError::InvalidHyper {
            loss: "zpnn",
            name: "beta",
            value: beta,
            constraint: "finite and non-negative",
        });
    }
    let (m, dm) = read_image("ms_up", ms_up)?;
    let dims = crate::core::image::dims4("out", out.shape().concrete().as_ref(), "[B, C, H, W]")?;
    if dm != dims {
        return Err(LossError::BadShape {
            input: "ms_up",
            shape: dm.to_vec(),
            expected: "the shape of `out`",
        });
    }
    let [b, c, h, w] = dims;
    if thr.len() != b * c * h * w {
        return Err(LossError::BadShape {
            input: "thr",
            shape: vec![thr.len()],
            expected: "B·C·H·W values: the threshold of every output pixel",
        });
    }
    let x = decimate(mtf_filter_valid(out.with_empty_tape(), sensor)?, 2, 4)?;
    let (_, _, gh, gw) = *x.shape();
    let crop = MTF_SIZE / 2 + 2;
    let mut y = Vec::with_capacity(b * c * gh * gw);
    for plane in m.chunks(h * w) {
        for i in 0..gh {
            y.extend((0..gw).map(|j| plane[(crop + 4 * i) * w + crop + 4 * j]));
        }
    }
    let dev = x.device().clone();
    let to_e = |v: &[f64]| {
        v.iter()
            .map(|&v| <E as Real>::from_f64(v))
            .collect::<Vec<E>>()
    };
    let y: Image<E> = dev.tensor_from_vec(to_e(&y), (b, c, gh, gw));
    let spectral = ZpnnSpectral::default().try_forward(x, &y)?;
    let rho = local_corr_field(out, pan, 2)?;
    let thr: Image<E> = dev.tensor_from_vec(to_e(thr), (b, c, h, w));
    let structural = PnnStructural::default().try_forward(rho, &thr)?;
    Ok(weighted_sum(spectral, structural, beta))
}
