//! Input adapters, one per family: they check what the user passed, lay it out as a
//! [`Batch`](crate::core::kernel::Batch), run the generated kernel and hand its backward
//! to the tape.

pub mod binary;
pub mod dynamic;
pub mod logits;
pub mod pairs;
pub mod scores;

use crate::core::real::Real;
use crate::error::LossError;

/// The first non-finite element of `xs`, as an error naming `input`.
pub(crate) fn check_finite<R: Real>(input: &'static str, xs: &[R]) -> Result<(), LossError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(LossError::NonFinite {
            input,
            index,
            value: xs[index].to_f64(),
        }),
        None => Ok(()),
    }
}
