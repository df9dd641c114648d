//! Evaluating a loss chosen at run time, from plain arrays (used by `losskit eval`).
//!
//! The caller names each input as [`Family::inputs`] lists it and gives its shape and
//! row-major values as `f64`. [`evaluate`] checks the names, builds dfdx tensors of the
//! requested [`Precision`], runs the loss through the same family adapter a training loop
//! uses, calls `.backward()` and reads the gradient of every differentiable input off the
//! tape. Nothing here is a second implementation of a loss.
//!
//! ```
//! use loss_runtime::family::dynamic::{evaluate, Input, Precision};
//! use loss_runtime::SoftmaxCrossEntropy;
//!
//! let inputs = [
//!     Input::new("logits", vec![2, 3], vec![2.0, 0.5, -1.0, 0.0, 0.0, 3.0]),
//!     Input::new("labels", vec![2], vec![0.0, 2.0]),
//! ];
//! let out = evaluate::<SoftmaxCrossEntropy>(&inputs, &[], Precision::F64).unwrap();
//! assert!(out.loss > 0.0);
//! assert_eq!(out.grads[0].input, "logits");
//! assert_eq!(out.grads[0].shape, vec![2, 3]);
//! ```

use core::fmt;

use dfdx::prelude::*;

use crate::core::info::{Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::error::LossError;
use crate::family::{binary, logits};

/// The floating-point type a loss is evaluated in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// `f32` (the default, as in most training loops).
    #[default]
    F32,
    /// `f64`.
    F64,
}

impl Precision {
    /// Every precision, in the order `losskit` lists them.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F64];

    /// The name used by `losskit eval` (`f32`, `f64`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// The precision called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// One named input: its shape and its values in row-major order.
///
/// Labels are given as `f64` too; they must be non-negative integers.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The input's name, as [`Family::inputs`] lists it (`probs`, `logits`, `labels`, ..).
    pub name: String,
    /// Its shape (`[N]`, `[N, C]`, ..).
    pub shape: Vec<usize>,
    /// Its values, row-major; as many as the shape has elements.
    pub values: Vec<f64>,
}

impl Input {
    /// An input called `name` of the given shape and row-major values.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            shape,
            values,
        }
    }
}

/// The gradient of the loss with respect to one differentiable input.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// The input it belongs to (the name it was given under).
    pub input: &'static str,
    /// The input's shape.
    pub shape: Vec<usize>,
    /// `∂L/∂x`, row-major, computed in the requested precision and widened to `f64`.
    pub values: Vec<f64>,
}

/// What [`evaluate`] returns: the loss value and the gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss, computed in the requested precision and widened to `f64`.
    pub loss: f64,
    /// One gradient per differentiable input given, in the family's input order.
    pub grads: Vec<Gradient>,
}

/// Why [`evaluate`] refused its arguments. Every variant names the offending input.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    /// A family this evaluator cannot run yet.
    UnsupportedFamily {
        /// The family.
        family: Family,
    },
    /// An input name the loss's family does not have.
    UnknownInput {
        /// The loss.
        loss: &'static str,
        /// Its family, whose inputs the message lists.
        family: Family,
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
    /// The number of values does not match the shape.
    LengthMismatch {
        /// The input.
        input: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// The number of values given.
        len: usize,
    },
    /// An input of a rank the family does not take.
    BadRank {
        /// The input.
        input: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// What the family takes, in symbols.
        expected: &'static str,
    },
    /// Two inputs that must have the same rank do not.
    RankMismatch {
        /// The first input.
        input: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// The input it disagrees with.
        other: &'static str,
        /// That input's shape.
        other_shape: Vec<usize>,
    },
    /// A class label that is not a non-negative integer.
    BadLabel {
        /// Position in the batch.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// The loss refused its input or hyper-parameters.
    Loss(LossError),
    /// dfdx failed to build a tensor or to run the backward pass (its message).
    Device(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedFamily { family } => write!(
                f,
                "losses of the `{}` family cannot be evaluated from a case file yet",
                family.name()
            ),
            Self::UnknownInput { loss, family, name } => {
                write!(f, "`{loss}` has no input named `{name}`; its inputs are ")?;
                list_inputs(f, family.inputs())
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
            Self::LengthMismatch { input, shape, len } => write!(
                f,
                "`{input}` has shape {shape:?} ({} elements) but {len} values",
                shape.iter().product::<usize>()
            ),
            Self::BadRank {
                input,
                shape,
                expected,
            } => write!(f, "bad shape for `{input}`: got {shape:?}, expected {expected}"),
            Self::RankMismatch {
                input,
                shape,
                other,
                other_shape,
            } => write!(
                f,
                "`{input}` has shape {shape:?} but `{other}` has shape {other_shape:?}; give both the same rank"
            ),
            Self::BadLabel { index, value } => write!(
                f,
                "label at index {index} is {value}, but labels must be non-negative integers"
            ),
            Self::Loss(e) => e.fmt(f),
            Self::Device(message) => write!(f, "dfdx failed: {message}"),
        }
    }
}

fn list_inputs(f: &mut fmt::Formatter<'_>, inputs: &[InputInfo]) -> fmt::Result {
    for (k, input) in inputs.iter().enumerate() {
        let sep = if k == 0 { "" } else { ", " };
        write!(f, "{sep}`{}`", input.name)?;
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

/// Evaluates the loss `K` on plain arrays: sets each `(name, value)` of `params` through
/// [`Kernel::set_hyper`] (flags from 0 or 1), checks the inputs against the family's
/// [`Family::inputs`], then runs the loss and its backward pass in `precision`.
///
/// Returns the loss and the gradient of each differentiable input given, shaped like it.
pub fn evaluate<K: Kernel + Default>(
    inputs: &[Input],
    params: &[(&str, f64)],
    precision: Precision,
) -> Result<Evaluation, EvalError> {
    let mut kernel = K::default();
    for &(name, value) in params {
        kernel.set_hyper(name, value)?;
    }
    let given = resolve(K::INFO.name, K::INFO.family, inputs)?;
    match precision {
        Precision::F32 => run::<K, f32>(&kernel, &given),
        Precision::F64 => run::<K, f64>(&kernel, &given),
    }
}

/// An input matched to the family's description of it.
struct Given<'a> {
    info: &'static InputInfo,
    shape: &'a [usize],
    values: &'a [f64],
}

/// Matches the inputs to the family's, in the family's order: every name known, none
/// twice, each required input (or its alternative, but not both) present, and as many
/// values as each shape has elements.
fn resolve<'a>(
    loss: &'static str,
    family: Family,
    inputs: &'a [Input],
) -> Result<Vec<Given<'a>>, EvalError> {
    let spec = family.inputs();
    let mut slots: Vec<Option<&Input>> = vec![None; spec.len()];
    for input in inputs {
        let Some(k) = spec.iter().position(|s| s.name == input.name) else {
            return Err(EvalError::UnknownInput {
                loss,
                family,
                name: input.name.clone(),
            });
        };
        if slots[k].is_some() {
            return Err(EvalError::DuplicateInput { name: spec[k].name });
        }
        slots[k] = Some(input);
    }
    for (k, info) in spec.iter().enumerate() {
        let Some(alt) = info.alternative_to else {
            continue;
        };
        let Some(j) = spec.iter().position(|s| s.name == alt) else {
            continue;
        };
        if slots[k].is_some() && slots[j].is_some() {
            return Err(EvalError::ConflictingInputs {
                name: alt,
                alternative: info.name,
            });
        }
    }
    let mut given = Vec::with_capacity(spec.len());
    for (k, info) in spec.iter().enumerate() {
        match slots[k] {
            Some(input) => {
                if input.values.len() != input.shape.iter().product::<usize>() {
                    return Err(EvalError::LengthMismatch {
                        input: info.name,
                        shape: input.shape.clone(),
                        len: input.values.len(),
                    });
                }
                given.push(Given {
                    info,
                    shape: &input.shape,
                    values: &input.values,
                });
            }
            // an alternative is reported under the input it stands in for
            None if info.alternative_to.is_some() => {}
            None => {
                let mut alternatives = spec
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.alternative_to == Some(info.name));
                if !alternatives.clone().any(|(j, _)| slots[j].is_some()) {
                    return Err(EvalError::MissingInput {
                        loss,
                        name: info.name,
                        alternative: alternatives.next().map(|(_, s)| s.name),
                    });
                }
            }
        }
    }
    Ok(given)
}

/// Runs the kernel in precision `E` on the resolved inputs.
fn run<K, E>(kernel: &K, given: &[Given<'_>]) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    match K::INFO.family {
        Family::Binary => run_binary::<K, E>(&dev, kernel, given),
        Family::Logits => run_logits::<K, E>(&dev, kernel, given),
        Family::Pairs | Family::Scores => Err(EvalError::UnsupportedFamily {
            family: K::INFO.family,
        }),
    }
}

fn find<'g, 'a>(given: &'g [Given<'a>], name: &str) -> Option<&'g Given<'a>> {
    given.iter().find(|g| g.info.name == name)
}

/// The one given input that `resolve` guarantees among `names`.
fn one_of<'g, 'a>(
    loss: &'static str,
    given: &'g [Given<'a>],
    names: &[&'static str],
) -> Result<&'g Given<'a>, EvalError> {
    names
        .iter()
        .find_map(|name| find(given, name))
        .ok_or_else(|| EvalError::MissingInput {
            loss,
            name: names[0],
            alternative: names.get(1).copied(),
        })
}

fn to_real<E: Real>(values: &[f64]) -> Vec<E> {
    values.iter().map(|&v| E::from_f64(v)).collect()
}

/// The tensor of `input`'s values in the given shape.
///
/// Empty inputs are refused here: dfdx 0.13 reads one element of any tensor it copies
/// out (`as_vec`), empty or not, which the family adapters do before they check sizes.
fn tensor<S: Shape, E>(
    dev: &Cpu,
    input: &Given<'_>,
    shape: S,
) -> Result<Tensor<S, E, Cpu>, EvalError>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    if input.values.is_empty() {
        return Err(LossError::EmptyBatch {
            input: input.info.name,
        }
        .into());
    }
    dev.try_tensor_from_vec(to_real::<E>(input.values), shape)
        .map_err(|e| EvalError::Device(e.to_string()))
}

/// Builds the tensors, traces the differentiable one, runs `forward` and the backward
/// pass, and reads the gradient of the traced tensor.
fn trace_and_run<S, E, F>(
    dev: &Cpu,
    input: &Given<'_>,
    shape: S,
    forward: F,
) -> Result<Evaluation, EvalError>
where
    S: Shape,
    E: Dtype + Real,
    Cpu: Device<E>,
    F: FnOnce(
        Tensor<S, E, Cpu, OwnedTape<E, Cpu>>,
    ) -> Result<Tensor<(), E, Cpu, OwnedTape<E, Cpu>>, LossError>,
{
    let x: Tensor<S, E, Cpu> = tensor(dev, input, shape)?;
    let out = forward(x.leaky_trace())?;
    let loss = out.array().to_f64();
    let grads = out
        .try_backward()
        .map_err(|e| EvalError::Device(e.to_string()))?;
    let values = grads
        .get(&x)
        .as_vec()
        .into_iter()
        .map(Real::to_f64)
        .collect();
    Ok(Evaluation {
        loss,
        grads: vec![Gradient {
            input: input.info.name,
            shape: input.shape.to_vec(),
            values,
        }],
    })
}

/// Binary family: `probs` or `logits`, and `targets`, each `[N]` or `[N, 1]` (both the
/// same rank).
fn run_binary<K, E>(dev: &Cpu, kernel: &K, given: &[Given<'_>]) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    const EXPECTED: &str = "[N] or [N, 1]";
    let preds = one_of(K::INFO.name, given, &["probs", "logits"])?;
    let targets = one_of(K::INFO.name, given, &["targets"])?;
    let from_logits = preds.info.name == "logits";
    for g in [preds, targets] {
        if !matches!(g.shape.len(), 1 | 2) {
            return Err(EvalError::BadRank {
                input: g.info.name,
                shape: g.shape.to_vec(),
                expected: EXPECTED,
            });
        }
    }
    match (preds.shape, targets.shape) {
        (&[n], &[m]) => {
            let y: Tensor<(usize,), E, Cpu> = tensor(dev, targets, (m,))?;
            trace_and_run(dev, preds, (n,), |p| {
                binary::try_forward(kernel, p, &y, from_logits)
            })
        }
        (&[n, c], &[m, d]) => {
            let y: Tensor<(usize, usize), E, Cpu> = tensor(dev, targets, (m, d))?;
            trace_and_run(dev, preds, (n, c), |p| {
                binary::try_forward(kernel, p, &y, from_logits)
            })
        }
        _ => Err(EvalError::RankMismatch {
            input: targets.info.name,
            shape: targets.shape.to_vec(),
            other: preds.info.name,
            other_shape: preds.shape.to_vec(),
        }),
    }
}

/// Logits family: `logits` `[N, C]` and `labels` `[N]`, non-negative integers.
fn run_logits<K, E>(dev: &Cpu, kernel: &K, given: &[Given<'_>]) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let z = one_of(K::INFO.name, given, &["logits"])?;
    let labels = one_of(K::INFO.name, given, &["labels"])?;
    let &[n, c] = z.shape else {
        return Err(EvalError::BadRank {
            input: z.info.name,
            shape: z.shape.to_vec(),
            expected: "[N, C]",
        });
    };
    if labels.shape.len() != 1 {
        return Err(EvalError::BadRank {
            input: labels.info.name,
            shape: labels.shape.to_vec(),
            expected: "[N]",
        });
    }
    let labels = to_labels(labels.values)?;
    trace_and_run(dev, z, (n, c), |z| logits::try_forward(kernel, z, &labels))
}

/// Class labels from `f64`: each a non-negative integer that `f64` represents exactly.
fn to_labels(values: &[f64]) -> Result<Vec<usize>, EvalError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            if (0.0..EXACT).contains(&value) && value.fract() == 0.0 {
                Ok(value as usize)
            } else {
                Err(EvalError::BadLabel { index, value })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::{AnylossF1, SoftmaxCrossEntropy};

    fn binary_inputs(pred: &str) -> Vec<Input> {
        vec![
            Input::new(pred, vec![4], vec![0.9, 0.2, 0.6, 0.4]),
            Input::new("targets", vec![4], vec![1.0, 0.0, 1.0, 0.0]),
        ]
    }

    #[test]
    fn matches_the_typed_api() {
        let dev: Cpu = Default::default();
        let p: Tensor<Rank1<4>, f64, _> = dev.tensor([0.9, 0.2, 0.6, 0.4]);
        let y: Tensor<Rank1<4>, f64, _> = dev.tensor([1.0, 0.0, 1.0, 0.0]);
        let loss = crate::Loss::forward(&AnylossF1::default(), p.leaky_trace(), &y);
        let want = loss.array();
        let grads = loss.backward();
        let got = evaluate::<AnylossF1>(&binary_inputs("probs"), &[], Precision::F64).unwrap();
        assert_eq!(got.loss, want);
        assert_eq!(got.grads[0].values, grads.get(&p).as_vec());
    }

    #[test]
    fn column_shapes_and_params() {
        let inputs = [
            Input::new("logits", vec![2, 1], vec![2.0, -1.0]),
            Input::new("targets", vec![2, 1], vec![1.0, 0.0]),
        ];
        let out = evaluate::<AnylossF1>(&inputs, &[("amplify", 0.0)], Precision::F32).unwrap();
        assert_eq!(out.grads[0].input, "logits");
        assert_eq!(out.grads[0].shape, vec![2, 1]);
        assert!(out.loss > 0.0 && out.loss < 0.5);
    }

    #[test]
    fn refuses_bad_inputs() {
        let err = |inputs: &[Input]| {
            evaluate::<AnylossF1>(inputs, &[], Precision::F32)
                .unwrap_err()
                .to_string()
        };
        let mut both = binary_inputs("probs");
        both.push(Input::new("logits", vec![4], vec![0.0; 4]));
        assert_eq!(
            err(&both),
            "both `probs` and `logits` given; give exactly one of them"
        );
        assert_eq!(
            err(&binary_inputs("prob")),
            "`anyloss_f1` has no input named `prob`; its inputs are `probs`, `logits`, `targets`"
        );
        assert_eq!(
            err(&binary_inputs("probs")[1..]),
            "missing input `probs` or `logits` (needed by `anyloss_f1`)"
        );
        assert_eq!(
            err(&binary_inputs("logits")[..1]),
            "missing input `targets` (needed by `anyloss_f1`)"
        );
        let mut ranks = binary_inputs("probs");
        ranks[1].shape = vec![4, 1];
        assert_eq!(
            err(&ranks),
            "`targets` has shape [4, 1] but `probs` has shape [4]; give both the same rank"
        );
        let mut short = binary_inputs("probs");
        short[0].values.pop();
        assert_eq!(
            err(&short),
            "`probs` has shape [4] (4 elements) but 3 values"
        );
    }

    #[test]
    fn refuses_bad_labels_and_hypers() {
        let inputs = [
            Input::new("logits", vec![2, 2], vec![0.0, 1.0, 2.0, 3.0]),
            Input::new("labels", vec![2], vec![1.0, 0.5]),
        ];
        let err = evaluate::<SoftmaxCrossEntropy>(&inputs, &[], Precision::F64).unwrap_err();
        assert_eq!(
            err,
            EvalError::BadLabel {
                index: 1,
                value: 0.5
            }
        );
        let err = evaluate::<AnylossF1>(
            &binary_inputs("probs"),
            &[("epsilon", -1.0)],
            Precision::F32,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            EvalError::Loss(LossError::InvalidHyper { .. })
        ));
    }
}
