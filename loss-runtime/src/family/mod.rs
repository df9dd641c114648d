//! Input adapters, one per family: they check what the user passed, lay it out as a
//! [`Batch`], run the generated kernel and hand its backward
//! to the tape.

pub mod binary;
pub mod class_cosines;
pub mod declared;
pub mod dense;
pub mod dynamic;
pub mod logits;
pub mod pairs;
pub mod scores;

use std::cell::Cell;

use dfdx::prelude::{Cpu, Dtype, Shape, Tape, Tensor};

use crate::core::kernel::{Batch, Kernel, Workspace};
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use declared::Declared;

thread_local! {
    /// Set while a caller that checks the gradients itself (the dynamic evaluator, which
    /// reports [`LossError::NonFiniteGradient`]) runs a backward pass on this thread.
    static GRADIENTS_CHECKED_BY_CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a backward pass) with the debug-build gradient check of [`run`] left to
/// the caller, who must check the gradients it reads.
pub(crate) fn with_gradients_checked_by_caller<T>(f: impl FnOnce() -> T) -> T {
    let before = GRADIENTS_CHECKED_BY_CALLER.with(|c| c.replace(true));
    let out = f();
    GRADIENTS_CHECKED_BY_CALLER.with(|c| c.set(before));
    out
}

/// A batch's sizes and switches: everything [`Batch`] holds besides the data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub samples: usize,
    pub classes: usize,
    pub refs: usize,
    pub from_logits: bool,
    pub exclude_self: bool,
}

impl Layout {
    /// One sample per row, nothing else (the binary family's shape).
    pub fn samples(n: usize) -> Self {
        Self {
            samples: n,
            classes: 1,
            refs: 1,
            from_logits: false,
            exclude_self: false,
        }
    }

    pub fn batch<'a, R>(self, values: &'a [&'a [R]], labels: &'a [&'a [usize]]) -> Batch<'a, R> {
        Batch {
            values,
            labels,
            samples: self.samples,
            classes: self.classes,
            refs: self.refs,
            from_logits: self.from_logits,
            exclude_self: self.exclude_self,
            first_sample: 0,
        }
    }
}

/// Runs `kernel` forward on a checked batch (`values[0]` holds the elements of `input`,
/// called `input_name` in messages) and
/// attaches its derived backward to `input`'s tape, owning the batch; with a `NoneTape`
/// nothing is kept for a backward.
///
/// A loss value that comes out NaN or infinite is [`LossError::NonFiniteLoss`] (the
/// inputs were checked finite before). In debug builds the backward panics if the derived
/// gradient turns a finite element of the input's gradient non-finite (a backward op
/// cannot return an error); the dynamic evaluator checks gradients in every build.
pub(crate) fn run<K, S, E, T>(
    kernel: &K,
    (input, input_name): (Tensor<S, E, Cpu, T>, &'static str),
    mut values: Vec<tape::Elements<E>>,
    mut labels: Vec<Vec<usize>>,
    layout: Layout,
    mut declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let updates = declared.take_updates();
    if let Some((ids, _)) = &updates {
        if *ids != layout.samples {
            return Err(LossError::BatchSizeMismatch {
                expected_by: input_name,
                expected: layout.samples,
                found_in: "ids",
                found: *ids,
            });
        }
    }
    let traced = declared.lay_out(&layout, input_name, &mut values, &mut labels)?;
    let mut ws = Workspace::default();
    let value = {
        let v: Vec<&[E]> = values.iter().map(|x| &**x).collect();
        let l: Vec<&[usize]> = labels.iter().map(Vec::as_slice).collect();
        kernel.kernel_forward(&layout.batch(&v, &l), &mut ws)
    };
    check_requirements::<K, E>(&ws)?;
    check_loss_value::<K, E>(value, &ws)?;
    if let Some((_, sink)) = updates {
        let mut sink = sink.borrow_mut();
        for u in K::STATE_UPDATES {
            let values: Vec<f64> = ws.slots[u.slot].iter().map(|&v| Real::to_f64(v)).collect();
            sink.push((u.field, values));
        }
    }
    if !T::OWNS_TAPE {
        return Ok(tape::attach(input, value, |_: E, _: &mut [E]| {}));
    }
    let kernel = kernel.clone();
    Ok(tape::attach_with(input, value, move |seed, grad| {
        #[cfg(debug_assertions)]
        let was_finite: Vec<bool> = grad.iter().map(|g| g.is_finite()).collect();
        let v: Vec<&[E]> = values.iter().map(|x| &**x).collect();
        let l: Vec<&[usize]> = labels.iter().map(Vec::as_slice).collect();
        // the primary's gradient in place, then one buffer per traced declared input
        let mut extra: Vec<Vec<E>> = traced.iter().map(|(n, _)| vec![E::zero(); *n]).collect();
        {
            let mut grads: Vec<&mut [E]> = vec![&mut *grad];
            grads.extend(extra.iter_mut().map(Vec::as_mut_slice));
            kernel.kernel_backward(&layout.batch(&v, &l), &ws, seed, &mut grads);
        }
        #[cfg(debug_assertions)]
        if seed.is_finite() && !GRADIENTS_CHECKED_BY_CALLER.with(Cell::get) {
            if let Some(index) = (0..grad.len()).find(|&k| was_finite[k] && !grad[k].is_finite()) {
                panic!(
                    "{}",
                    LossError::NonFiniteGradient {
                        loss: K::INFO.name,
                        input: input_name,
                        index,
                        value: grad[index].to_f64(),
                    }
                );
            }
        }
        extra
            .into_iter()
            .zip(traced)
            .filter_map(|(g, (_, sink))| sink.map(|s| (g, s)))
            .collect()
    }))
}

/// [`LossError::NonFiniteLoss`] for a NaN or infinite loss value, naming the first
/// offending sample where the kernel found one.
pub(crate) fn check_loss_value<K: Kernel, R: Real>(
    value: R,
    ws: &Workspace<R>,
) -> Result<(), LossError> {
    if value.is_finite() {
        return Ok(());
    }
    Err(LossError::NonFiniteLoss {
        loss: K::INFO.name,
        value: value.to_f64(),
        sample: ws.first_nonfinite_sample,
    })
}

/// The `require(cond, "message")` a forward pass left failed in `ws`, as a
/// [`LossError::Requirement`]; call it after every `kernel_forward`.
pub fn check_requirements<K: Kernel, R>(ws: &Workspace<R>) -> Result<(), LossError> {
    match ws.failed {
        Some((id, sample)) => Err(LossError::Requirement {
            loss: K::INFO.name,
            message: K::REQUIREMENTS
                .get(id)
                .copied()
                .unwrap_or("a requirement failed"),
            sample,
        }),
        None => Ok(()),
    }
}

/// The `(rows, columns)` of a rank-2 input, refusing any other rank and empty matrices.
pub(crate) fn matrix_dims(
    input: &'static str,
    dims: &[usize],
    expected: &'static str,
) -> Result<(usize, usize), LossError> {
    let [rows, cols] = *dims else {
        return Err(LossError::BadShape {
            input,
            shape: dims.to_vec(),
            expected,
        });
    };
    if rows == 0 || cols == 0 {
        return Err(LossError::EmptyBatch { input });
    }
    Ok((rows, cols))
}

/// The first non-finite element of `xs` (row-major, of shape `dims`), as an error
/// naming `input` and the element's position.
pub(crate) fn check_finite<R: Real>(
    input: &'static str,
    dims: &[usize],
    xs: &[R],
) -> Result<(), LossError> {
    match crate::core::parallel::first_nonfinite(xs) {
        Some(index) => Err(LossError::NonFinite {
            input,
            index,
            position: crate::error::unravel(index, dims),
            value: xs[index].to_f64(),
        }),
        None => Ok(()),
    }
}
