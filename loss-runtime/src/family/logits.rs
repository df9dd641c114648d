//! The `logits` family: logits `[N, C]` (any rank-2 shape, static or dynamic) and one
//! class label per sample, `0 ≤ label < C`.

use dfdx::prelude::*;

use crate::core::info::{InputInfo, InputKind};
use crate::core::kernel::{Batch, Kernel, Workspace};
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;

/// The inputs of the logits family, in call order.
pub const INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "logits",
        shape: "[N, C]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: None,
    },
    InputInfo {
        name: "labels",
        shape: "[N]",
        differentiable: false,
        kind: InputKind::Label,
        alternative_to: None,
    },
];

/// Checks logits and labels; returns `(N, C)`.
fn check_inputs<R: Real>(
    dims: &[usize],
    logits: &[R],
    labels: &[usize],
) -> Result<(usize, usize), LossError> {
    let (n, c) = match dims {
        [n, c] => (*n, *c),
        _ => {
            return Err(LossError::BadShape {
                input: "logits",
                shape: dims.to_vec(),
                expected: "[N, C]",
            })
        }
    };
    if n == 0 || c == 0 {
        return Err(LossError::EmptyBatch { input: "logits" });
    }
    if labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "logits",
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    if let Some(index) = labels.iter().position(|&l| l >= c) {
        return Err(LossError::LabelOutOfRange {
            index,
            label: labels[index],
            classes: c,
        });
    }
    super::check_finite("logits", logits)?;
    Ok((n, c))
}

fn batch<'a, R>(
    values: &'a [&'a [R]],
    labels: &'a [&'a [usize]],
    n: usize,
    c: usize,
) -> Batch<'a, R> {
    Batch {
        values,
        labels,
        samples: n,
        classes: c,
        from_logits: true,
    }
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    logits: Tensor<S, E, Cpu, T>,
    labels: &[usize],
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate()?;
    let z = logits.as_vec();
    let (n, c) = check_inputs(logits.shape().concrete().as_ref(), &z, labels)?;
    let mut ws = Workspace::default();
    let value = kernel.kernel_forward(&batch(&[&z], &[labels], n, c), &mut ws);
    if !T::OWNS_TAPE {
        return Ok(tape::attach(logits, value, |_: E, _: &mut [E]| {}));
    }
    let (kernel, labels) = (kernel.clone(), labels.to_vec());
    Ok(tape::attach(logits, value, move |seed, grad| {
        let values: [&[E]; 1] = [&z];
        let labels: [&[usize]; 1] = [&labels];
        kernel.kernel_backward(&batch(&values, &labels, n, c), &ws, seed, &mut [grad]);
    }))
}
