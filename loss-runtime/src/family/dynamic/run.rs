//! Running a loss on a resolved [`Call`]: one path for every family.
//!
//! The family's differentiable input becomes the traced primary tensor (embeddings go
//! through the loss's similarity op first, and the matrix it gives is the primary); the
//! family's constant inputs and then the loss's declared inputs are laid out by one
//! [`Declared`], which checks each against the batch's sizes; [`crate::family::run`]
//! runs the kernel and attaches its derived backward, as for a typed call.

use dfdx::prelude::*;

use crate::core::alloc;
use crate::core::info::{DeclaredInfo, DeclaredRole, InputKind};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::similarity::{similarity, similarity_with};
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;
use crate::family::pairs::{self, Source};

use super::error::EvalError;
use super::resolve::{Call, Given};
use super::{to_labels, to_real, Evaluation, Gradient};

/// A tensor on a tape.
type Traced<S, E> = Tensor<S, E, Cpu, OwnedTape<E, Cpu>>;

/// A traced input whose gradient is read after the backward pass.
type Read<'c, E> = (Tensor<(usize,), E, Cpu>, &'static str, &'c [usize]);

/// Runs the kernel in precision `E` on the resolved inputs and reads the gradient of
/// every differentiable input given.
pub(super) fn run<K, E>(kernel: &K, call: &Call<'_>) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    kernel.validate_for::<E>()?;
    let dev: Cpu = Default::default();
    let layout = call.layout;
    pairs::check_work(kernel, layout.samples, layout.refs)?;
    let mut traced: Vec<&Given<'_>> = call.traced().collect();
    for g in &traced {
        check_values(g)?;
    }
    let mut reads: Vec<Read<'_, E>> = Vec::new();
    let mut declared = Declared::described_by(described(call));
    lay_out_constants(call, &mut declared)?;
    let out = if traced.first().map(|g| g.info.kind) == Some(InputKind::Embeddings) {
        // the similarity op's tape: flat tensors, reshaped on the tape
        let (n, m, d) = (
            layout.samples,
            layout.refs,
            call.features.unwrap_or_default(),
        );
        let e = traced.remove(0);
        let x = flat::<E>(&dev, e)?;
        reads.push((x.clone(), e.info.name, e.shape));
        pairs::ensure_room_for_similarities::<E, OwnedTape<E, Cpu>>(n, m)?;
        let metric = kernel.metric();
        let xe = x.leaky_trace().try_reshape_like(&(n, d)).map_err(device)?;
        let s = match traced.pop() {
            Some(r) => {
                let y = flat::<E>(&dev, r)?;
                reads.push((y.clone(), r.info.name, r.shape));
                let yr = y.leaky_trace().try_reshape_like(&(m, d)).map_err(device)?;
                similarity_with(xe, yr, metric)
            }
            None => similarity(xe, metric),
        };
        let values = tape::try_elements("a copy of the similarity matrix", &s)?;
        pairs::check_similarity_values(&values, m, Source::ComputedFrom(e.info.name))?;
        let (s, declared) = declare(&dev, s, declared, call, &mut reads)?;
        crate::family::run(
            kernel,
            (s, "similarities"),
            vec![values],
            Vec::new(),
            layout,
            declared,
        )?
    } else {
        let p = traced.remove(0);
        let x = flat::<E>(&dev, p)?;
        reads.push((x.clone(), p.info.name, p.shape));
        let values = to_real::<E>(p.values)?;
        let (primary, declared) = declare(&dev, x.leaky_trace(), declared, call, &mut reads)?;
        crate::family::run(
            kernel,
            (primary, p.info.name),
            vec![values.into()],
            Vec::new(),
            layout,
            declared,
        )?
    };
    let loss = out.array().to_f64();
    // a non-finite gradient is reported below, as an error rather than a panic
    let grads =
        crate::family::with_gradients_checked_by_caller(|| out.try_backward()).map_err(device)?;
    let grads: Vec<Gradient> = reads
        .iter()
        .map(|(x, input, shape)| Gradient {
            input,
            shape: shape.to_vec(),
            values: grads
                .get(x)
                .as_vec()
                .into_iter()
                .map(Real::to_f64)
                .collect(),
        })
        .collect();
    for grad in &grads {
        LossError::check_gradient(K::INFO.name, grad.input, &grad.values)?;
    }
    Ok(Evaluation { loss, grads })
}

/// What [`Declared`] lays out, in order: the family's constant inputs, described as
/// declared inputs, then the loss's declared inputs.
fn described(call: &Call<'_>) -> Vec<DeclaredInfo> {
    let family = call
        .constants()
        .into_iter()
        .map(|(info, _)| info.as_declared());
    family
        .chain(call.declared.iter().map(|d| *d.info))
        .collect()
}

/// Hands the family's constant inputs to `declared` (labels as labels, the rest as
/// values), after the checks their description asks for beyond the layout's.
fn lay_out_constants<E: Dtype + Real>(
    call: &Call<'_>,
    declared: &mut Declared<E>,
) -> Result<(), EvalError> {
    for (info, given) in call.constants() {
        let Some((shape, values)) = given else {
            // left out, zeros by default (labels: the pairs family's views)
            let dims: Vec<usize> = info.axes.iter().map(|set| call.size(set.axis)).collect();
            let len = dims.iter().product();
            declared.labels_as(dims, alloc::try_filled(info.name, len, 0)?);
            continue;
        };
        match info.role() {
            DeclaredRole::Labels => {
                declared.labels_as(shape.to_vec(), to_labels(info.name, values)?)
            }
            _ => {
                let binary = values.iter().all(|&v| v == 0.0 || v == 1.0);
                if info.needs_a_one && binary && !values.contains(&1.0) {
                    return Err(LossError::NoRelevant { input: info.name }.into());
                }
                declared.values(shape.to_vec(), to_real(values)?);
            }
        }
    }
    Ok(())
}

/// Hands the loss's declared inputs to `declared` in declaration order: a `Traced` one
/// as a tensor whose tape is merged into `primary`'s (its gradient read after the
/// backward), the others as values or labels.
fn declare<'c, S, E>(
    dev: &Cpu,
    mut primary: Traced<S, E>,
    mut declared: Declared<E>,
    call: &'c Call<'_>,
    reads: &mut Vec<Read<'c, E>>,
) -> Result<(Traced<S, E>, Declared<E>), EvalError>
where
    S: Shape,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    for g in &call.declared {
        let (name, dims) = (g.info.name, g.shape.to_vec());
        match g.info.role {
            DeclaredRole::Differentiable => {
                let x = tensor(dev, name, g.values)?;
                primary = declared.traced_as(primary, x.leaky_trace(), dims)?;
                reads.push((x, name, g.shape));
            }
            DeclaredRole::Constant | DeclaredRole::Mask | DeclaredRole::State => {
                declared.values(dims, to_real(g.values)?);
            }
            DeclaredRole::Labels => declared.labels_as(dims, to_labels(name, g.values)?),
        }
    }
    Ok((primary, declared))
}

/// The checks of a differentiable family input's values: finite, and probabilities in
/// `[0, 1]`.
fn check_values(g: &Given<'_>) -> Result<(), LossError> {
    crate::family::check_finite(g.info.name, g.shape, g.values)?;
    if g.info.kind == InputKind::Probability {
        if let Some(index) = g.values.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Err(LossError::ProbabilityOutOfRange {
                index,
                value: g.values[index],
            });
        }
    }
    Ok(())
}

/// `g`'s values as a flat tensor.
fn flat<E>(dev: &Cpu, g: &Given<'_>) -> Result<Tensor<(usize,), E, Cpu>, EvalError>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    tensor(dev, g.info.name, g.values)
}

/// The flat tensor of the values of the input called `name`.
///
/// Empty inputs are refused here: dfdx 0.13 reads one element of any tensor it copies
/// out (`as_vec`), empty or not.
fn tensor<E>(
    dev: &Cpu,
    name: &'static str,
    values: &[f64],
) -> Result<Tensor<(usize,), E, Cpu>, EvalError>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    if values.is_empty() {
        return Err(LossError::EmptyBatch { input: name }.into());
    }
    dev.try_tensor_from_vec(to_real::<E>(values)?, (values.len(),))
        .map_err(device)
}

/// A dfdx failure, as an [`EvalError::Device`].
fn device(e: impl std::fmt::Display) -> EvalError {
    EvalError::Device(e.to_string())
}
