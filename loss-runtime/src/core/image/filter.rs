//! Depthwise filtering with the MTF kernels, border padding and strided decimation, as
//! ops on the tape.
//!
//! ```text
//! mtf_filter_valid(x)[b][c][i][j] = Σ_{p,q < 41} h_c[p][q] · x[b][c][i+p][j+q]      (H−40) × (W−40)
//! pad(x, p, mode)                   (H+2p) × (W+2p), border values replicated or reflected
//! decimate(x, φ, s)[b][c][m][n]   = x[b][c][φ + s·m][φ + s·n]                   (x[:, :, φ::s, φ::s])
//! mtf_downgrade(x)                = decimate(mtf_filter_valid(pad(x, 20, Replicate)), 2, 4)
//! ```
//!
//! The filter is a correlation, as PyTorch's `conv2d` computes it; the MTF kernels are
//! 180°-symmetric, so it is also their convolution. Each backward pass is the adjoint of
//! its forward map: the transposed (full) correlation, the scatter-add of the padded
//! border onto the pixels it copies, the scatter of the decimated grid into zeros.

use dfdx::prelude::*;

use super::mtf::{mtf_kernels, Sensor, MTF_SIZE};
use super::{attach, traced, Image};
use crate::core::real::Real;
use crate::error::LossError;

/// How [`pad`] fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// The nearest edge pixel (`replicate`): `x[−k] = x[0]`.
    Replicate,
    /// The mirror image without repeating the edge (`reflect`): `x[−k] = x[k]`. Needs a
    /// padding smaller than the side.
    Reflect,
}

impl Padding {
    /// The source index of padded position `i` (in `0..n + 2p`) along a side of `n`.
    fn source(self, i: usize, n: usize, p: usize) -> usize {
        let k = i as isize - p as isize;
        let last = n as isize - 1;
        let s = match self {
            Padding::Replicate => k.clamp(0, last),
            Padding::Reflect => {
                if k < 0 {
                    -k
                } else if k > last {
                    2 * last - k
                } else {
                    k
                }
            }
        };
        s as usize
    }
}

/// `x` padded by `amount` on every side of each plane.
pub(crate) fn pad_values(
    x: &[f64],
    dims: [usize; 4],
    amount: usize,
    mode: Padding,
) -> (Vec<f64>, [usize; 4]) {
    let [b, c, h, w] = dims;
    let (ph, pw) = (h + 2 * amount, w + 2 * amount);
    let mut out = Vec::with_capacity(b * c * ph * pw);
    for plane in x.chunks(h * w) {
        for i in 0..ph {
            let row = &plane[mode.source(i, h, amount) * w..][..w];
            out.extend((0..pw).map(|j| row[mode.source(j, w, amount)]));
        }
    }
    (out, [b, c, ph, pw])
}

/// The adjoint of [`pad_values`]: each padded position's gradient added to its source.
fn pad_adjoint(g: &[f64], dims: [usize; 4], amount: usize, mode: Padding) -> Vec<f64> {
    let [b, c, h, w] = dims;
    let (ph, pw) = (h + 2 * amount, w + 2 * amount);
    let mut out = vec![0.0; b * c * h * w];
    for (dst, src) in out.chunks_mut(h * w).zip(g.chunks(ph * pw)) {
        for i in 0..ph {
            let row = &mut dst[mode.source(i, h, amount) * w..][..w];
            for j in 0..pw {
                row[mode.source(j, w, amount)] += src[i * pw + j];
            }
        }
    }
    out
}

/// Valid depthwise correlation of each plane with its channel's `k × k` kernel.
pub(crate) fn filter_values(
    x: &[f64],
    dims: [usize; 4],
    kernels: &[Vec<f64>],
) -> (Vec<f64>, [usize; 4]) {
    let [b, c, h, w] = dims;
    let k = MTF_SIZE;
    let (oh, ow) = (h + 1 - k, w + 1 - k);
    let mut out = vec![0.0; b * c * oh * ow];
    for (n, (dst, src)) in out.chunks_mut(oh * ow).zip(x.chunks(h * w)).enumerate() {
        let kernel = &kernels[n % c];
        for i in 0..oh {
            let row = &mut dst[i * ow..][..ow];
            for p in 0..k {
                let line = &src[(i + p) * w..][..w];
                for q in 0..k {
                    let hv = kernel[p * k + q];
                    if hv != 0.0 {
                        for (o, &v) in row.iter_mut().zip(&line[q..q + ow]) {
                            *o += hv * v;
                        }
                    }
                }
            }
        }
    }
    (out, [b, c, oh, ow])
}

/// The adjoint of [`filter_values`] (a full correlation with the flipped kernel): `g` is
/// the output's gradient, `dims` the input's.
fn filter_adjoint(g: &[f64], dims: [usize; 4], kernels: &[Vec<f64>]) -> Vec<f64> {
    let [b, c, h, w] = dims;
    let k = MTF_SIZE;
    let (oh, ow) = (h + 1 - k, w + 1 - k);
    let mut out = vec![0.0; b * c * h * w];
    for (n, (dst, src)) in out.chunks_mut(h * w).zip(g.chunks(oh * ow)).enumerate() {
        let kernel = &kernels[n % c];
        for i in 0..oh {
            let row = &src[i * ow..][..ow];
            for p in 0..k {
                let line = &mut dst[(i + p) * w..][..w];
                for q in 0..k {
                    let hv = kernel[p * k + q];
                    if hv != 0.0 {
                        for (o, &v) in line[q..q + ow].iter_mut().zip(row) {
                            *o += hv * v;
                        }
                    }
                }
            }
        }
    }
    out
}

/// The number of grid points `φ, φ + s, …` below `n`.
fn grid_len(n: usize, phase: usize, step: usize) -> usize {
    if n > phase {
        (n - phase - 1) / step + 1
    } else {
        0
    }
}

/// `x[:, :, phase::step, phase::step]`.
pub(crate) fn decimate_values(
    x: &[f64],
    dims: [usize; 4],
    phase: usize,
    step: usize,
) -> (Vec<f64>, [usize; 4]) {
    let [b, c, h, w] = dims;
    let (oh, ow) = (grid_len(h, phase, step), grid_len(w, phase, step));
    let mut out = Vec::with_capacity(b * c * oh * ow);
    for plane in x.chunks(h * w) {
        for m in 0..oh {
            let row = &plane[(phase + step * m) * w..][..w];
            out.extend((0..ow).map(|n| row[phase + step * n]));
        }
    }
    (out, [b, c, oh, ow])
}

/// Checks the sensor's band count and the kernel's room; `what` names the input.
fn check_filter_input(
    input: &'static str,
    dims: [usize; 4],
    sensor: Sensor,
) -> Result<(), LossError> {
    let [b, c, h, w] = dims;
    if c != sensor.bands() || h < MTF_SIZE || w < MTF_SIZE || b == 0 {
        return Err(LossError::BadShape {
            input,
            shape: dims.to_vec(),
            expected: "[B, C, H, W] with C the sensor's bands and H, W ≥ 41 (the MTF kernel)",
        });
    }
    Ok(())
}

/// The depthwise valid correlation of each band with the sensor's MTF kernel for that
/// band: `[B, C, H, W] → [B, C, H−40, W−40]`, one op on the tape (backward: the
/// transposed correlation).
///
/// A rank other than 4, `C` other than [`Sensor::bands`], or a side below 41 is
/// [`LossError::BadShape`].
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::{mtf_filter_valid, Sensor};
/// let dev: Cpu = Default::default();
/// let x: Tensor<Rank4<1, 4, 42, 43>, f64, _> = dev.ones();
/// let y = mtf_filter_valid(x, Sensor::Ge1).unwrap();
/// assert_eq!(y.shape(), &(1, 4, 2, 3));
/// assert!(y.as_vec().iter().all(|v| (v - 1.0).abs() < 1e-12)); // kernels sum to 1
/// ```
pub fn mtf_filter_valid<S, E, T>(
    x: Tensor<S, E, Cpu, T>,
    sensor: Sensor,
) -> Result<Image<E, T>, LossError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let x = traced("x", x, "[B, C, H, W]")?;
    check_filter_input("x", x.dims, sensor)?;
    let kernels = mtf_kernels(sensor);
    let (y, out_dims) = filter_values(&x.values, x.dims, kernels);
    let dims = x.dims;
    Ok(attach(x, out_dims, &y, move |g| {
        filter_adjoint(g, dims, kernels)
    }))
}

/// Each plane padded by `amount` on every side, as `mode` says: `[B, C, H, W] →
/// [B, C, H+2p, W+2p]`, one op on the tape (backward: each border pixel's gradient added
/// to the pixel it copies).
///
/// [`Padding::Reflect`] with `amount` not below a side is [`LossError::BadShape`].
pub fn pad<S, E, T>(
    x: Tensor<S, E, Cpu, T>,
    amount: usize,
    mode: Padding,
) -> Result<Image<E, T>, LossError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let x = traced("x", x, "[B, C, H, W]")?;
    let [_, _, h, w] = x.dims;
    if h == 0 || w == 0 || (mode == Padding::Reflect && amount >= h.min(w)) {
        return Err(LossError::BadShape {
            input: "x",
            shape: x.dims.to_vec(),
            expected: "[B, C, H, W] with H, W > 0 (and above the padding, to reflect)",
        });
    }
    let (y, out_dims) = pad_values(&x.values, x.dims, amount, mode);
    let dims = x.dims;
    Ok(attach(x, out_dims, &y, move |g| {
        pad_adjoint(g, dims, amount, mode)
    }))
}

/// `x[:, :, phase::step, phase::step]`: the pixels of a regular grid, one op on the tape
/// (backward: scattered back onto the grid, zero elsewhere).
///
/// `step = 0` is [`LossError::InvalidHyper`]; `phase` not below a side (an empty grid) is
/// [`LossError::BadShape`].
pub fn decimate<S, E, T>(
    x: Tensor<S, E, Cpu, T>,
    phase: usize,
    step: usize,
) -> Result<Image<E, T>, LossError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    if step == 0 {
        return Err(LossError::InvalidHyper {
            loss: "decimate",
            name: "step",
            value: 0.0,
            constraint: "at least 1",
        });
    }
    let x = traced("x", x, "[B, C, H, W]")?;
    let [_, _, h, w] = x.dims;
    if phase >= h.min(w) {
        return Err(LossError::BadShape {
            input: "x",
            shape: x.dims.to_vec(),
            expected: "[B, C, H, W] with H, W above the grid's phase",
        });
    }
    let (y, out_dims) = decimate_values(&x.values, x.dims, phase, step);
    let dims = x.dims;
    Ok(attach(x, out_dims, &y, move |g| {
        let [b, c, h, w] = dims;
        let [_, _, oh, ow] = out_dims;
        let mut out = vec![0.0; b * c * h * w];
        for (dst, src) in out.chunks_mut(h * w).zip(g.chunks(oh * ow)) {
            for m in 0..oh {
                for n in 0..ow {
                    dst[(phase + step * m) * w + phase + step * n] = src[m * ow + n];
                }
            }
        }
        out
    }))
}

/// The MTF downgrade `D(·)` of λ-PNN: replicate-pad by 20, filter each band with its MTF
/// kernel, keep `[:, :, 2::4, 2::4]`. `[B, C, H, W] → [B, C, ⌈(H−2)/4⌉, ⌈(W−2)/4⌉]`
/// (`H/4 × W/4` for multiples of 4), differentiable.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::{mtf_downgrade, Sensor};
/// let dev: Cpu = Default::default();
/// let x: Tensor<Rank4<1, 4, 16, 16>, f64, _> = dev.sample_normal();
/// let d = mtf_downgrade(x.leaky_trace(), Sensor::Qb).unwrap();
/// assert_eq!(d.shape(), &(1, 4, 4, 4));
/// let g = d.sum().backward();
/// assert_eq!(g.get(&x).as_vec().len(), 4 * 16 * 16);
/// ```
pub fn mtf_downgrade<S, E, T>(
    x: Tensor<S, E, Cpu, T>,
    sensor: Sensor,
) -> Result<Image<E, T>, LossError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let dims = super::dims4("x", x.shape().concrete().as_ref(), "[B, C, H, W]")?;
    if dims[1] != sensor.bands() || dims[2] <= 2 || dims[3] <= 2 {
        return Err(LossError::BadShape {
            input: "x",
            shape: dims.to_vec(),
            expected: "[B, C, H, W] with C the sensor's bands and H, W > 2",
        });
    }
    let padded = pad(x, MTF_SIZE / 2, Padding::Replicate)?;
    decimate(mtf_filter_valid(padded, sensor)?, 2, 4)
}

#[cfg(test)]
mod tests;
