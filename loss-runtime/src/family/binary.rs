//! The `binary` family: predictions `[N]` (or `[N, 1]`) and 0/1 targets of the same shape.
//!
//! Predictions are probabilities by default; wrap them in [`FromLogits`] to pass logits,
//! which the generated kernel maps through a sigmoid before anything else (so AnyLoss
//! amplification still applies to the probability, as the paper specifies).

use dfdx::prelude::*;

use crate::core::info::{InputInfo, InputKind};
use crate::core::kernel::{Batch, Kernel, Workspace};
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;

/// Marks binary predictions as logits rather than probabilities.
///
/// ```
/// # use losskit::prelude::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank1<4>, f32, _> = dev.tensor([2.0, -1.0, 0.5, -3.0]);
/// let y: Tensor<Rank1<4>, f32, _> = dev.tensor([1.0, 0.0, 1.0, 0.0]);
/// let loss = AnylossF1::default().forward(FromLogits(z), &y);
/// assert!(loss.array() < 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct FromLogits<T>(pub T);

/// The inputs of the binary family, in call order.
pub const INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "probs",
        shape: "[N]",
        differentiable: true,
        kind: InputKind::Probability,
        alternative_to: None,
    },
    InputInfo {
        name: "logits",
        shape: "[N]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: Some("probs"),
    },
    InputInfo {
        name: "targets",
        shape: "[N]",
        differentiable: false,
        kind: InputKind::Binary,
        alternative_to: None,
    },
];

fn check_shape(input: &'static str, dims: &[usize]) -> Result<usize, LossError> {
    match dims {
        [n] | [n, 1] => Ok(*n),
        _ => Err(LossError::BadShape {
            input,
            shape: dims.to_vec(),
            expected: "[N] or [N, 1]",
        }),
    }
}

/// Checks predictions and targets; returns the batch size.
fn check_inputs<R: Real>(
    pred_name: &'static str,
    pred_dims: &[usize],
    preds: &[R],
    target_dims: &[usize],
    targets: &[R],
    from_logits: bool,
) -> Result<usize, LossError> {
    let n = check_shape(pred_name, pred_dims)?;
    let m = check_shape("targets", target_dims)?;
    if n == 0 {
        return Err(LossError::EmptyBatch { input: pred_name });
    }
    if m != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: pred_name,
            expected: n,
            found_in: "targets",
            found: m,
        });
    }
    super::check_finite(pred_name, preds)?;
    if !from_logits {
        if let Some(index) = preds
            .iter()
            .position(|&p| !(p >= R::zero() && p <= R::one()))
        {
            return Err(LossError::ProbabilityOutOfRange {
                index,
                value: preds[index].to_f64(),
            });
        }
    }
    if let Some(index) = targets
        .iter()
        .position(|&y| y != R::zero() && y != R::one())
    {
        return Err(LossError::TargetNotBinary {
            index,
            value: targets[index].to_f64(),
        });
    }
    Ok(n)
}

fn batch<'a, R>(values: &'a [&'a [R]], n: usize, from_logits: bool) -> Batch<'a, R> {
    Batch {
        values,
        labels: &[],
        samples: n,
        classes: 1,
        from_logits,
    }
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    preds: Tensor<S, E, Cpu, T>,
    targets: &Tensor<S, E, Cpu>,
    from_logits: bool,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate()?;
    let pred_name = if from_logits { "logits" } else { "probs" };
    let p = preds.as_vec();
    let y = targets.as_vec();
    let n = check_inputs(
        pred_name,
        preds.shape().concrete().as_ref(),
        &p,
        targets.shape().concrete().as_ref(),
        &y,
        from_logits,
    )?;
    let mut ws = Workspace::default();
    let value = kernel.kernel_forward(&batch(&[&p, &y], n, from_logits), &mut ws);
    if !T::OWNS_TAPE {
        return Ok(tape::attach(preds, value, |_: E, _: &mut [E]| {}));
    }
    let kernel = kernel.clone();
    Ok(tape::attach(preds, value, move |seed, grad| {
        let values: [&[E]; 2] = [&p, &y];
        kernel.kernel_backward(&batch(&values, n, from_logits), &ws, seed, &mut [grad]);
    }))
}
