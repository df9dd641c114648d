//! The `scores` family: a score matrix `s[q][d]` (queries × documents) and a 0/1
//! relevance mask `r[q][d]` of the same shape, for retrieval losses whose pairs are
//! formed across the whole matrix (Mann-Whitney / AUC) or per query (DEXML).

use dfdx::prelude::*;

use crate::core::info::{Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;

/// The inputs of the scores family, in call order.
pub const INPUTS: &[InputInfo] = Family::Scores.inputs();

/// Checks scores and relevance; returns `(Q, D)`.
fn check_inputs<R: Real>(
    dims: &[usize],
    scores: &[R],
    relevance_dims: &[usize],
    relevance: &[R],
) -> Result<(usize, usize), LossError> {
    let (q, d) = super::matrix_dims("scores", dims, "[Q, D]")?;
    if relevance_dims != dims {
        return Err(LossError::BadShape {
            input: "relevance",
            shape: relevance_dims.to_vec(),
            expected: "the shape of `scores`",
        });
    }
    super::check_finite("scores", dims, scores)?;
    if let Some(index) = relevance
        .iter()
        .position(|&r| r != R::zero() && r != R::one())
    {
        return Err(LossError::RelevanceNotBinary {
            index,
            position: crate::error::unravel(index, dims),
            value: relevance[index].to_f64(),
        });
    }
    if !relevance.iter().any(|&r| r == R::one()) {
        return Err(LossError::NoRelevant { input: "relevance" });
    }
    Ok((q, d))
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    scores: Tensor<S, E, Cpu, T>,
    relevance: &Tensor<S, E, Cpu>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    try_forward_declared(kernel, scores, relevance, Declared::none())
}

/// [`try_forward`] with the loss's declared inputs (see [`super::declared`]).
pub fn try_forward_declared<K, S, E, T>(
    kernel: &K,
    scores: Tensor<S, E, Cpu, T>,
    relevance: &Tensor<S, E, Cpu>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let s = tape::try_elements("a copy of `scores`", &scores)?;
    let r = tape::try_elements("a copy of `relevance`", relevance)?;
    let (q, d) = check_inputs(
        scores.shape().concrete().as_ref(),
        &s,
        relevance.shape().concrete().as_ref(),
        &r,
    )?;
    let layout = super::Layout {
        refs: d,
        ..super::Layout::samples(q)
    };
    super::run(
        kernel,
        (scores, "scores"),
        vec![s, r],
        Vec::new(),
        layout,
        declared,
    )
}
