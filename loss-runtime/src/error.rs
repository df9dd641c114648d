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
    /// Two inputs disagree on the size of an index set they share.
    AxisMismatch {
        /// The set (`samples`, `classes`, …).
        axis: &'static str,
        /// The input that fixed its size.
        expected_by: &'static str,
        /// That size.
        expected: usize,
        /// The input that disagrees.
        found_in: &'static str,
        /// Its size along the set.
        found: usize,
    },
    /// A label of a declared `Index` input not below the size of the set it indexes.
    IndexOutOfRange {
        /// The input.
        input: &'static str,
        /// Position in the input.
        index: usize,
        /// The label found.
        label: usize,
        /// The set it indexes.
        set: &'static str,
        /// The size of the set.
        size: usize,
    },
    /// An element of a declared `Mask` input that is not 0 or 1.
    NotAMask {
        /// The input.
        input: &'static str,
        /// Position in the input (row-major).
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
        /// Flat (row-major) position.
        index: usize,
        /// The position in the input's shape (`[row, col]` for a matrix), as messages
        /// show it (`logits[1][2]`).
        position: Vec<usize>,
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
    /// A computation that runs the loss without its declared inputs (the pair weights of
    /// a pairs loss that declares some), which cannot give it a value.
    DeclaredInputsMissing {
        /// The loss.
        loss: &'static str,
        /// How many inputs it declares.
        count: usize,
        /// The computation refused.
        what: &'static str,
    },
    /// A relevance mask without a single relevant entry.
    NoRelevant {
        /// The input.
        input: &'static str,
    },
    /// A relevance value other than 0 or 1.
    RelevanceNotBinary {
        /// Flat (row-major) position.
        index: usize,
        /// The `[query, document]` position, as messages show it (`relevance[0][3]`).
        position: Vec<usize>,
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
    /// A `require(cond, "message")` of the loss's definition does not hold for this batch
    /// (e.g. a row with zero variance where the loss divides by it).
    Requirement {
        /// The loss.
        loss: &'static str,
        /// The message the definition gives.
        message: &'static str,
        /// The sample it fails for, when the condition depends on one.
        sample: Option<usize>,
    },
    /// A buffer the loss needs could not be allocated.
    OutOfMemory {
        /// The buffer, in words (`the similarity matrix`).
        what: &'static str,
        /// The bytes it needed.
        bytes: usize,
    },
    /// The batch would take longer than the loss's work limit allows.
    TooMuchWork {
        /// The loss.
        loss: &'static str,
        /// The work the batch needs, in the loss's units, and how it is counted.
        work: f64,
        /// How the work is counted (`N·M²`).
        measure: &'static str,
        /// The hyper-parameter holding the limit.
        limit_name: &'static str,
        /// Its value.
        limit: f64,
    },
    /// A similarity matrix's columns and the reference labels disagree in number.
    ReferenceCountMismatch {
        /// The matrix.
        input: &'static str,
        /// Its number of columns (references).
        columns: usize,
        /// The labels that disagree.
        found_in: &'static str,
        /// Their number.
        found: usize,
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
    /// A dataset id of a stateful loss's batch not below its dataset size.
    IdOutOfRange {
        /// Its position in the batch's ids.
        position: usize,
        /// The id.
        id: usize,
        /// The loss's dataset size (`with_dataset_size`).
        samples: usize,
    },
    /// A dataset id given twice in one batch of a stateful loss, whose state update for
    /// that sample would be ill-defined.
    DuplicateId {
        /// Its second position in the batch's ids.
        position: usize,
        /// The id.
        id: usize,
    },
    /// A saved state given to a loss it does not belong to.
    StateMismatch {
        /// The loss and its state variables.
        expected: String,
        /// What the state given holds.
        found: String,
    },
    /// An input form that only losses of another family take (a
    /// [`ClassCosines`](crate::ClassCosines) passed to a pairs loss).
    WrongFamily {
        /// The loss.
        loss: &'static str,
        /// Its family.
        family: &'static str,
        /// The input form.
        input: &'static str,
        /// The family that takes it.
        expected: &'static str,
    },
}

/// How messages name one element of an input: `logits[1][2]` (row-major position, one
/// `[k]` per dimension). `losskit eval` names the elements of a case the same way.
#[derive(Clone, Copy, Debug)]
pub struct Element<'a> {
    /// The input.
    pub input: &'a str,
    /// The position, one index per dimension.
    pub position: &'a [usize],
}

impl fmt::Display for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.input)?;
        self.position.iter().try_for_each(|k| write!(f, "[{k}]"))
    }
}

/// The position of the `index`-th element (row-major) of an array of shape `dims`.
pub fn unravel(index: usize, dims: &[usize]) -> Vec<usize> {
    let mut position = vec![0; dims.len()];
    let mut rest = index;
    for (p, &d) in position.iter_mut().zip(dims).rev() {
        if d > 0 {
            *p = rest % d;
            rest /= d;
        }
    }
    position
}

/// `x` as messages print it: like `{}`, but `-0` as `0`.
pub(crate) struct Shown(pub f64);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = if self.0 == 0.0 { 0.0 } else { self.0 };
        write!(f, "{x}")
    }
}

/// A byte count in words: `3.2 GB`, `512 bytes`.
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
        if self.0 < 1000 {
            return write!(f, "{} bytes", self.0);
        }
        let mut x = self.0 as f64 / 1000.0;
        let mut unit = 0;
        while x >= 1000.0 && unit + 1 < UNITS.len() {
            x /= 1000.0;
            unit += 1;
        }
        write!(f, "{x:.1} {} ({} bytes)", UNITS[unit], self.0)
    }
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
            Self::TargetNotBinary { index, value } => write!(
                f,
                "target at index {index} is {}, but targets must be 0 or 1",
                Shown(*value)
            ),
            Self::AxisMismatch {
                axis,
                expected_by,
                expected,
                found_in,
                found,
            } => write!(
                f,
                "`{found_in}` has {found} along `{axis}`, but `{expected_by}` has {expected}"
            ),
            Self::IndexOutOfRange {
                input,
                index,
                label,
                set,
                size,
            } => write!(
                f,
                "`{input}` at index {index} is {label}, but `{set}` has only {size} elements (labels must be < {size})"
            ),
            Self::NotAMask {
                input,
                index,
                value,
            } => write!(
                f,
                "`{input}` at index {index} is {}, but `{input}` must be 0 or 1 (a mask)",
                Shown(*value)
            ),
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
                position,
                value,
                ..
            } => write!(
                f,
                "non-finite value at `{}`: {value}",
                Element { input, position }
            ),
            Self::ProbabilityOutOfRange { index, value } => write!(
                f,
                "probability at index {index} is {}, outside [0, 1]; if these are scores, pass them as logits (`FromLogits` in Rust, `logits` in a case file)",
                Shown(*value)
            ),
            Self::DeclaredInputsMissing { loss, count, what } => write!(
                f,
                "`{loss}` declares {count} input(s) of its own, which {what} cannot pass; evaluate the loss with them instead"
            ),
            Self::NoRelevant { input } => write!(
                f,
                "`{input}` marks no entry as relevant; the loss needs at least one positive"
            ),
            Self::RelevanceNotBinary {
                position, value, ..
            } => write!(
                f,
                "`{}` is {}, but relevance must be 0 or 1",
                Element {
                    input: "relevance",
                    position
                },
                Shown(*value)
            ),
            Self::InvalidHyper {
                loss,
                name,
                value,
                constraint,
            } => write!(
                f,
                "invalid hyper-parameter for `{loss}`: `{name}` = {}, but it must be {constraint}",
                Shown(*value)
            ),
            Self::UnknownHyper { loss, name } => {
                write!(f, "`{loss}` has no hyper-parameter named `{name}`")
            }
            Self::Requirement {
                loss,
                message,
                sample,
            } => match sample {
                Some(i) => write!(f, "`{loss}` cannot be computed for sample {i}: {message}"),
                None => write!(f, "`{loss}` cannot be computed for this batch: {message}"),
            },
            Self::OutOfMemory { what, bytes } => write!(
                f,
                "out of memory: {what} needs {}, which could not be allocated; use a smaller batch",
                Bytes(*bytes)
            ),
            Self::TooMuchWork {
                loss,
                work,
                measure,
                limit_name,
                limit,
            } => write!(
                f,
                "`{loss}` would run for too long on this batch: {measure} = {work:.3e} exceeds `{limit_name}` = {limit:.3e}; use a smaller batch, or raise `{limit_name}` to run it anyway"
            ),
            Self::IdOutOfRange {
                position,
                id,
                samples,
            } => write!(
                f,
                "dataset id {id} (ids[{position}]) is out of range: the loss keeps state for {samples} samples; size it with `with_dataset_size`"
            ),
            Self::DuplicateId { position, id } => write!(
                f,
                "dataset id {id} appears twice in the batch (again at ids[{position}]): its state would be updated twice; give each sample once"
            ),
            Self::StateMismatch { expected, found } => write!(
                f,
                "this state does not belong to the loss: it expects {expected}, and got {found}"
            ),
            Self::WrongFamily {
                loss,
                family,
                input,
                expected,
            } => write!(
                f,
                "`{loss}` is a {family} loss, but `{input}` feeds only {expected} losses"
            ),
            Self::ReferenceCountMismatch {
                input,
                columns,
                found_in,
                found,
            } => write!(
                f,
                "`{input}` has {columns} columns (references) but `{found_in}` has {found}"
            ),
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

impl LossError {
    /// [`LossError::NonFiniteGradient`] for the first NaN or infinite element of the
    /// gradient `g` of `input`, row-major.
    pub(crate) fn check_gradient<R: crate::core::real::Real>(
        loss: &'static str,
        input: &'static str,
        g: &[R],
    ) -> Result<(), Self> {
        match crate::core::parallel::first_nonfinite(g) {
            Some(index) => Err(Self::NonFiniteGradient {
                loss,
                input,
                index,
                value: g[index].to_f64(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_named_row_then_column() {
        assert_eq!(unravel(4, &[2, 3]), vec![1, 1]);
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(3, &[7]), vec![3]);
        let e = LossError::NonFinite {
            input: "logits",
            index: 5,
            position: unravel(5, &[2, 3]),
            value: f64::NAN,
        };
        assert_eq!(e.to_string(), "non-finite value at `logits[1][2]`: NaN");
        let e = LossError::RelevanceNotBinary {
            index: 3,
            position: unravel(3, &[2, 3]),
            value: 0.5,
        };
        assert_eq!(
            e.to_string(),
            "`relevance[1][0]` is 0.5, but relevance must be 0 or 1"
        );
    }

    #[test]
    fn negative_zero_is_printed_as_zero() {
        let e = LossError::InvalidHyper {
            loss: "anyloss_f1",
            name: "epsilon",
            value: -0.0,
            constraint: "> 0",
        };
        assert_eq!(
            e.to_string(),
            "invalid hyper-parameter for `anyloss_f1`: `epsilon` = 0, but it must be > 0"
        );
        assert_eq!(Shown(-0.0).to_string(), "0");
        assert_eq!(Shown(-0.5).to_string(), "-0.5");
    }

    #[test]
    fn sizes_are_given_in_bytes() {
        let e = LossError::OutOfMemory {
            what: "the similarity matrix",
            bytes: 3_200_000_000,
        };
        assert_eq!(
            e.to_string(),
            "out of memory: the similarity matrix needs 3.2 GB (3200000000 bytes), which could not be allocated; use a smaller batch"
        );
        assert_eq!(Bytes(512).to_string(), "512 bytes");
    }
}
