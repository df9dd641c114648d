//! Why an evaluation by name refused its arguments.

use core::fmt;

use crate::core::info::{DeclaredInfo, Family};
use crate::error::LossError;

/// Why [`evaluate`](super::evaluate) or [`pair_weights`](super::pair_weights) refused its arguments. Every variant names the
/// offending input.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    /// An input name that is neither one of the family's nor one the loss declares.
    UnknownInput {
        /// The loss.
        loss: &'static str,
        /// Its family, whose inputs the message lists.
        family: Family,
        /// The inputs the loss declares, which the message lists too.
        declared: &'static [DeclaredInfo],
        /// The name given.
        name: String,
    },
    /// The same input given twice.
    DuplicateInput {
        /// The input.
        name: &'static str,
    },
    /// A required input (or both of an input and its alternative) not given.
    MissingInput {
        /// The loss.
        loss: &'static str,
        /// The input.
        name: &'static str,
        /// An input that may be given instead, if any.
        alternative: Option<&'static str>,
    },
    /// An input and its alternative both given (`probs` and `logits`).
    ConflictingInputs {
        /// The input.
        name: &'static str,
        /// Its alternative.
        alternative: &'static str,
    },
    /// An optional input given without the one it goes with (`ref_embeddings` without
    /// `ref_labels`).
    Unpaired {
        /// The input given.
        input: &'static str,
        /// The input it needs.
        needs: &'static str,
        /// What to do, in words.
        hint: &'static str,
    },
    /// An input that cannot be used together with another one given
    /// (`ref_embeddings` with `similarities`).
    NotWith {
        /// The input refused.
        input: &'static str,
        /// The input it cannot go with.
        with: &'static str,
        /// What to do instead, in words.
        hint: &'static str,
    },
    /// The number of values does not match the shape.
    LengthMismatch {
        /// The input.
        input: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// The number of values given.
        len: usize,
    },
    /// An input of a shape (usually a rank) the family does not take.
    BadRank {
        /// The input.
        input: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// What the family takes, in symbols.
        expected: &'static str,
    },
    /// Two inputs whose shapes must agree in one dimension do not (`ref_embeddings` with
    /// another width than `embeddings`).
    ShapeMismatch {
        /// The first input.
        input: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// The input it disagrees with.
        other: &'static str,
        /// That input's shape.
        other_shape: Vec<usize>,
        /// What must agree, in words.
        expected: &'static str,
    },
    /// A class label that is not a non-negative integer.
    BadLabel {
        /// The input holding it (`labels`, `ref_labels`).
        input: &'static str,
        /// Position in the input.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// Pair weights asked of a loss that is not of the pairs family.
    NotPairs {
        /// The loss.
        loss: &'static str,
        /// Its family.
        family: Family,
    },
    /// The loss refused its input or hyper-parameters.
    Loss(LossError),
    /// dfdx failed to build a tensor or to run the backward pass (its message).
    Device(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownInput {
                loss,
                family,
                declared,
                name,
            } => {
                write!(f, "`{loss}` has no input named `{name}`; its inputs are ")?;
                let names = family.inputs().iter().map(|i| i.name);
                list_inputs(f, names.chain(declared.iter().map(|d| d.name)))
            }
            Self::DuplicateInput { name } => write!(f, "input `{name}` is given twice"),
            Self::MissingInput {
                loss,
                name,
                alternative: None,
            } => write!(f, "missing input `{name}` (needed by `{loss}`)"),
            Self::MissingInput {
                loss,
                name,
                alternative: Some(alt),
            } => write!(f, "missing input `{name}` or `{alt}` (needed by `{loss}`)"),
            Self::ConflictingInputs { name, alternative } => write!(
                f,
                "both `{name}` and `{alternative}` given; give exactly one of them"
            ),
            Self::Unpaired { input, needs, hint } => {
                write!(f, "`{input}` given without `{needs}`; {hint}")
            }
            Self::NotWith { input, with, hint } => {
                write!(f, "`{input}` cannot be given with `{with}`; {hint}")
            }
            Self::LengthMismatch { input, shape, len } => write!(
                f,
                "`{input}` has shape {shape:?} ({} elements) but {len} values",
                shape.iter().product::<usize>()
            ),
            Self::BadRank {
                input,
                shape,
                expected,
            } => write!(
                f,
                "bad shape for `{input}`: got {shape:?}, expected {expected}"
            ),
            Self::ShapeMismatch {
                input,
                shape,
                other,
                other_shape,
                expected,
            } => write!(
                f,
                "`{input}` has shape {shape:?} but `{other}` has shape {other_shape:?}; {expected}"
            ),
            Self::BadLabel {
                input,
                index,
                value,
            } => write!(
                f,
                "`{input}[{index}]` is {value}, but labels must be non-negative integers"
            ),
            Self::NotPairs { loss, family } => write!(
                f,
                "`{loss}` is a `{}` loss; pair weights exist only for `pairs` losses",
                family.name()
            ),
            Self::Loss(e) => e.fmt(f),
            Self::Device(message) => write!(f, "dfdx failed: {message}"),
        }
    }
}

fn list_inputs<'n>(
    f: &mut fmt::Formatter<'_>,
    names: impl Iterator<Item = &'n str>,
) -> fmt::Result {
    for (k, name) in names.enumerate() {
        let sep = if k == 0 { "" } else { ", " };
        write!(f, "{sep}`{name}`")?;
    }
    Ok(())
}

impl std::error::Error for EvalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Loss(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LossError> for EvalError {
    fn from(e: LossError) -> Self {
        Self::Loss(e)
    }
}
