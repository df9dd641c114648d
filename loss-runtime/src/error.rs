//! [`LossError`]: everything that can be wrong with the input of a loss.

use core::fmt;

/// Why a loss refused its input. Every variant names the offending value.
///
/// [`Loss::try_forward`](crate::Loss::try_forward) returns it;
/// [`Loss::forward`](crate::Loss::forward) panics with its message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LossError {
    /// The batch has no samples (or the logits have no classes).
    EmptyBatch {
        /// Which input was empty.
        input: &'static str,
    },
    /// Predictions and targets (or labels) disagree on the batch size.
    BatchSizeMismatch {
        /// The input whose length was expected.
        expected_by: &'static str,
        /// Its batch size.
        expected: usize,
        /// The input that disagrees.
        found_in: &'static str,
        /// Its batch size.
        found: usize,
    },
    /// An input has a shape the loss does not take.
    BadShape {
        /// The input.
        input: &'static str,
        /// The shape received.
        shape: Vec<usize>,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A binary target other than 0 or 1.
    TargetNotBinary {
        /// Position in the batch.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A class label not below the number of classes.
    LabelOutOfRange {
        /// Position in the batch.
        index: usize,
        /// The label found.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A NaN or infinite value where a finite one is needed.
    NonFinite {
        /// The input.
        input: &'static str,
        /// Flat position.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A probability outside `[0, 1]`.
    ProbabilityOutOfRange {
        /// Flat position.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A relevance mask without a single relevant entry.
    NoRelevant {
        /// The input.
        input: &'static str,
    },
    /// A relevance value other than 0 or 1.
    RelevanceNotBinary {
        /// Flat position.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A hyper-parameter outside its allowed range.
    InvalidHyper {
        /// The loss.
        loss: &'static str,
        /// The hyper-parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The constraint it breaks, in words (`> 0`, `in [0, 1]`).
        constraint: &'static str,
    },
    /// A hyper-parameter name the loss does not have.
    UnknownHyper {
        /// The loss.
        loss: &'static str,
        /// The name given.
        name: String,
    },
    /// The loss came out NaN or infinite although every input and hyper-parameter was
    /// finite (a `0/0`, a `max` over an empty set, an overflow inside the loss).
    NonFiniteLoss {
        /// The loss.
        loss: &'static str,
        /// The value it came out as.
        value: f64,
        /// The first sample (row) whose term is not finite, when the loss is a mean of
        /// per-sample terms.
        sample: Option<usize>,
    },
    /// The derived gradient has a NaN or infinite element although the loss is finite.
    NonFiniteGradient {
        /// The loss.
        loss: &'static str,
        /// The input whose gradient it is.
        input: &'static str,
        /// Flat position in that input.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A similarity computed from finite embeddings overflowed (the embeddings' values
    /// are too large for the dtype, e.g. a dot product past `f32::MAX`).
    SimilarityOverflow {
        /// The embeddings input the similarity was computed from.
        input: &'static str,
        /// Row of the similarity matrix (the anchor).
        row: usize,
        /// Column of the similarity matrix (the reference).
        col: usize,
        /// The value it came out as.
        value: f64,
    },
}

impl fmt::Display for LossError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyBatch { input } => write!(f, "empty batch: `{input}` has no elements"),
            Self::BatchSizeMismatch {
                expected_by,
                expected,
                found_in,
                found,
            } => write!(
                f,
                "batch size mismatch: `{expected_by}` has {expected} samples but `{found_in}` has {found}"
            ),
            Self::BadShape {
                input,
                shape,
                expected,
            } => write!(f, "bad shape for `{input}`: got {shape:?}, expected {expected}"),
            Self::TargetNotBinary { index, value } => {
                write!(f, "target at index {index} is {value}, but targets must be 0 or 1")
            }
            Self::LabelOutOfRange {
                index,
                label,
                classes,
            } => write!(
                f,
                "label at index {index} is {label}, but there are only {classes} classes (labels must be < {classes})"
            ),
            Self::NonFinite {
                input,
                index,
                value,
            } => write!(f, "non-finite value in `{input}` at index {index}: {value}"),
            Self::ProbabilityOutOfRange { index, value } => write!(
                f,
                "probability at index {index} is {value}, outside [0, 1]; if these are scores, pass them as logits (`FromLogits` in Rust, `logits` in a case file)"
            ),
            Self::NoRelevant { input } => write!(
                f,
                "`{input}` marks no entry as relevant; the loss needs at least one positive"
            ),
            Self::RelevanceNotBinary { index, value } => write!(
                f,
                "relevance at index {index} is {value}, but relevance must be 0 or 1"
            ),
            Self::InvalidHyper {
                loss,
                name,
                value,
                constraint,
            } => write!(
                f,
                "invalid hyper-parameter for `{loss}`: `{name}` = {value}, but it must be {constraint}"
            ),
            Self::UnknownHyper { loss, name } => {
                write!(f, "`{loss}` has no hyper-parameter named `{name}`")
            }
            Self::NonFiniteLoss {
                loss,
                value,
                sample,
            } => {
                write!(f, "`{loss}` came out {value} from finite inputs")?;
                if let Some(i) = sample {
                    write!(f, ", first at sample {i}")?;
                }
                write!(
                    f,
                    "; the loss is undefined there (a 0/0, an empty set, or an overflow)"
                )
            }
            Self::NonFiniteGradient {
                loss,
                input,
                index,
                value,
            } => write!(
                f,
                "the gradient of `{loss}` with respect to `{input}` is {value} at index {index} although the loss is finite"
            ),
            Self::SimilarityOverflow {
                input,
                row,
                col,
                value,
            } => write!(
                f,
                "the similarity computed from `{input}` overflowed to {value} at [{row}][{col}]: the embeddings' values are too large for this dtype; scale them down (or use f64)"
            ),
        }
    }
}

impl std::error::Error for LossError {}
