//! The `dense` family: a prediction `x[i][e]` and a regression target `t[i][e]` of the
//! same shape, for losses that compare outputs element by element (denoising, weighted
//! least squares, the heads of image losses). The first axis is the samples; every
//! other axis is flattened, row-major, into the sample's elements (`[N, C, H, W]` gives
//! `E = C·H·W`, a `[N]` prediction gives `E = 1`).

use dfdx::prelude::*;

use crate::core::info::{Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;

/// The inputs of the dense family, in call order.
pub const INPUTS: &[InputInfo] = Family::Dense.inputs();

/// `(N, E)` of a prediction of shape `dims`: the first axis, and the product of the
/// others (1 for a vector). A scalar or an empty tensor is refused.
pub fn sample_dims(input: &'static str, dims: &[usize]) -> Result<(usize, usize), LossError> {
    let Some((&n, rest)) = dims.split_first() else {
        return Err(LossError::BadShape {
            input,
            shape: dims.to_vec(),
            expected: "[N, ..] (one row per sample)",
        });
    };
    let e: usize = rest.iter().product();
    if n == 0 || e == 0 {
        return Err(LossError::EmptyBatch { input });
    }
    Ok((n, e))
}

/// Checks the prediction and the target; returns `(N, E)`.
fn check_inputs<R: Real>(
    dims: &[usize],
    prediction: &[R],
    target_dims: &[usize],
    target: &[R],
) -> Result<(usize, usize), LossError> {
    let (n, e) = sample_dims("prediction", dims)?;
    if target_dims != dims {
        return Err(LossError::BadShape {
            input: "target",
            shape: target_dims.to_vec(),
            expected: "the shape of `prediction`",
        });
    }
    super::check_finite("prediction", dims, prediction)?;
    super::check_finite("target", dims, target)?;
    Ok((n, e))
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    prediction: Tensor<S, E, Cpu, T>,
    target: &Tensor<S, E, Cpu>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    try_forward_declared(kernel, prediction, target, Declared::none())
}

/// [`try_forward`] with the loss's declared inputs (see [`super::declared`]).
pub fn try_forward_declared<K, S, E, T>(
    kernel: &K,
    prediction: Tensor<S, E, Cpu, T>,
    target: &Tensor<S, E, Cpu>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let x = tape::try_elements("a copy of `prediction`", &prediction)?;
    let t = tape::try_elements("a copy of `target`", target)?;
    let (n, e) = check_inputs(
        prediction.shape().concrete().as_ref(),
        &x,
        target.shape().concrete().as_ref(),
        &t,
    )?;
    let layout = super::Layout {
        refs: e,
        ..super::Layout::samples(n)
    };
    super::run(
        kernel,
        (prediction, "prediction"),
        vec![x, t],
        Vec::new(),
        layout,
        declared,
    )
}
