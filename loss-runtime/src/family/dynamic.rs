//! Evaluating a loss chosen at run time, from plain arrays (used by `losskit eval` and
//! `losskit gpw`).
//!
//! The caller names each input as [`Family::inputs`] lists it, and each input the loss
//! declares ([`LossInfo::declared`](crate::LossInfo::declared)) by its declared name, and
//! gives its shape and row-major values as `f64`. [`evaluate`] checks the names, builds dfdx tensors of the
//! requested [`Precision`], runs the loss through the same family adapter a training loop
//! uses, calls `.backward()` and reads the gradient of every differentiable input off the
//! tape. [`pair_weights`] runs a pairs loss's `W = ∂L/∂S` the same way. Nothing here is a
//! second implementation of a loss.
//!
//! What each family takes:
//!
//! | family | inputs |
//! |---|---|
//! | binary | `probs` or `logits` `[N]` / `[N, 1]`, `targets` of the same shape |
//! | logits | `logits` `[N, C]`, `labels` `[N]` |
//! | pairs | `embeddings` `[N, d]` (or `similarities` `[N, M]`), `labels` `[N]`, optional `ref_embeddings` `[M, d]` with `ref_labels` `[M]` (with `similarities`, `ref_labels` alone) |
//! | scores | `scores` `[Q, D]`, `relevance` `[Q, D]` (0/1) |
//!
//! Declared inputs are laid out by the same [`Declared`] path as a typed call's: a
//! `Traced` one gets a gradient, `Given` and `Mask` ones are constants, an `Index` one
//! holds labels (non-negative integers).
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
//!
//! A pairs loss against a separate reference set has a gradient for both sets:
//!
//! ```
//! use loss_runtime::family::dynamic::{evaluate, Input, Precision};
//! use loss_runtime::MultiSimilarity;
//!
//! let inputs = [
//!     Input::new("embeddings", vec![2, 2], vec![1.0, 0.2, 0.1, 1.0]),
//!     Input::new("labels", vec![2], vec![0.0, 1.0]),
//!     Input::new("ref_embeddings", vec![3, 2], vec![0.9, 0.5, 0.6, 0.8, 0.3, 1.0]),
//!     Input::new("ref_labels", vec![3], vec![0.0, 1.0, 1.0]),
//! ];
//! let params = [("epsilon", 1.0)]; // a wide mining margin: every pair is mined
//! let out = evaluate::<MultiSimilarity>(&inputs, &params, Precision::F64).unwrap();
//! assert!(out.loss > 0.0);
//! assert_eq!(out.grads[0].input, "embeddings");
//! assert_eq!(out.grads[1].input, "ref_embeddings");
//! assert_eq!(out.grads[1].shape, vec![3, 2]);
//! ```

use core::fmt;

use dfdx::prelude::*;

use crate::core::alloc;
use crate::core::info::{DeclaredInfo, DeclaredRole, Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::similarity::{similarity, similarity_with, Metric};
use crate::error::LossError;
use crate::family::declared::Declared;
use crate::family::pairs::{PairLabels, Source};
use crate::family::{binary, logits, pairs, scores};

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
    /// The input's name, as [`Family::inputs`] lists it (`probs`, `logits`, `labels`, ..),
    /// or a declared input's name.
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
    /// One gradient per differentiable input given, in the family's input order, then one
    /// per `Traced` declared input, in declaration order.
    pub grads: Vec<Gradient>,
}

/// Why [`evaluate`] or [`pair_weights`] refused its arguments. Every variant names the
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

/// The loss `K` with `params` set through [`Kernel::set_hyper`] (flags from 0 or 1).
fn configured<K: Kernel + Default>(params: &[(&str, f64)]) -> Result<K, EvalError> {
    let mut kernel = K::default();
    for &(name, value) in params {
        kernel.set_hyper(name, value)?;
    }
    Ok(kernel)
}

/// Evaluates the loss `K` on plain arrays: sets each `(name, value)` of `params` through
/// [`Kernel::set_hyper`] (flags from 0 or 1), checks the inputs against the family's
/// [`Family::inputs`] and the loss's declared inputs, then runs the loss and its backward
/// pass in `precision`.
///
/// Returns the loss and the gradient of each differentiable input given (a `Traced`
/// declared input included), shaped like it.
/// A pairs loss compares embeddings with its default metric.
pub fn evaluate<K: Kernel + Default>(
    inputs: &[Input],
    params: &[(&str, f64)],
    precision: Precision,
) -> Result<Evaluation, EvalError> {
    let kernel = configured::<K>(params)?;
    let (given, declared) = resolve(K::INFO, inputs)?;
    match precision {
        Precision::F32 => run::<K, f32>(&kernel, &given, &declared),
        Precision::F64 => run::<K, f64>(&kernel, &given, &declared),
    }
}

/// An input matched to the family's description of it.
struct Given<'a> {
    info: &'static InputInfo,
    shape: &'a [usize],
    values: &'a [f64],
}

/// A declared input matched to its description.
struct DeclaredGiven<'a> {
    info: &'static DeclaredInfo,
    shape: &'a [usize],
    values: &'a [f64],
}

/// The declared inputs of one evaluation, in declaration order (every one present).
struct DeclaredArgs<'a> {
    infos: &'static [DeclaredInfo],
    given: Vec<DeclaredGiven<'a>>,
}

/// Matches the inputs to the family's, in the family's order, and to the loss's declared
/// ones, in declaration order: every name known, none twice, each required input (or its
/// alternative, but not both) and every declared one present, and as many values as each
/// shape has elements. Optional inputs may be missing.
fn resolve<'a>(
    info: &crate::LossInfo,
    inputs: &'a [Input],
) -> Result<(Vec<Given<'a>>, DeclaredArgs<'a>), EvalError> {
    let (loss, family) = (info.name, info.family);
    let spec = family.inputs();
    let mut slots: Vec<Option<&Input>> = vec![None; spec.len()];
    let mut declared_slots: Vec<Option<&Input>> = vec![None; info.declared.len()];
    for input in inputs {
        let (slot, name) = if let Some(k) = spec.iter().position(|s| s.name == input.name) {
            (&mut slots[k], spec[k].name)
        } else if let Some(k) = info.declared.iter().position(|d| d.name == input.name) {
            (&mut declared_slots[k], info.declared[k].name)
        } else {
            return Err(EvalError::UnknownInput {
                loss,
                family,
                declared: info.declared,
                name: input.name.clone(),
            });
        };
        if slot.is_some() {
            return Err(EvalError::DuplicateInput { name });
        }
        *slot = Some(input);
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
                check_length(info.name, input)?;
                given.push(Given {
                    info,
                    shape: &input.shape,
                    values: &input.values,
                });
            }
            // an alternative is reported under the input it stands in for
            None if info.alternative_to.is_some() || info.optional => {}
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
    let mut declared = Vec::with_capacity(info.declared.len());
    for (d, slot) in info.declared.iter().zip(declared_slots) {
        let Some(input) = slot else {
            return Err(EvalError::MissingInput {
                loss,
                name: d.name,
                alternative: None,
            });
        };
        check_length(d.name, input)?;
        declared.push(DeclaredGiven {
            info: d,
            shape: &input.shape,
            values: &input.values,
        });
    }
    let declared = DeclaredArgs {
        infos: info.declared,
        given: declared,
    };
    Ok((given, declared))
}

/// As many values as `input`'s shape has elements.
fn check_length(name: &'static str, input: &Input) -> Result<(), EvalError> {
    if input.values.len() == input.shape.iter().product::<usize>() {
        return Ok(());
    }
    Err(EvalError::LengthMismatch {
        input: name,
        shape: input.shape.clone(),
        len: input.values.len(),
    })
}

/// Runs the kernel in precision `E` on the resolved inputs.
fn run<K, E>(
    kernel: &K,
    given: &[Given<'_>],
    declared: &DeclaredArgs<'_>,
) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    let evaluation = match K::INFO.family {
        Family::Binary => run_binary::<K, E>(&dev, kernel, given, declared),
        Family::Logits => run_logits::<K, E>(&dev, kernel, given, declared),
        // the compiler refuses declared inputs in the pairs family
        Family::Pairs => run_pairs::<K, E>(&dev, kernel, given),
        Family::Scores => run_scores::<K, E>(&dev, kernel, given, declared),
    }?;
    for grad in &evaluation.grads {
        if let Some(index) = grad.values.iter().position(|g| !g.is_finite()) {
            return Err(LossError::NonFiniteGradient {
                loss: K::INFO.name,
                input: grad.input,
                index,
                value: grad.values[index],
            }
            .into());
        }
    }
    Ok(evaluation)
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

/// `input` as a matrix `[rows, cols]`, or [`EvalError::BadRank`] naming `expected`.
fn matrix(input: &Given<'_>, expected: &'static str) -> Result<(usize, usize), EvalError> {
    match *input.shape {
        [rows, cols] => Ok((rows, cols)),
        _ => Err(EvalError::BadRank {
            input: input.info.name,
            shape: input.shape.to_vec(),
            expected,
        }),
    }
}

/// `input`'s values as class labels; it must be a vector.
fn label_vector(input: &Given<'_>, expected: &'static str) -> Result<Vec<usize>, EvalError> {
    if input.shape.len() != 1 {
        return Err(EvalError::BadRank {
            input: input.info.name,
            shape: input.shape.to_vec(),
            expected,
        });
    }
    to_labels(input.info.name, input.values)
}

fn to_real<E: Real>(values: &[f64]) -> Result<Vec<E>, LossError> {
    alloc::try_map("an input in the run's precision", values, |&v| {
        E::from_f64(v)
    })
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
    tensor_of(dev, input.info.name, input.values, shape)
}

/// The tensor of the values of the input called `name`, in the given shape (empty ones
/// refused, see [`tensor`]).
fn tensor_of<S: Shape, E>(
    dev: &Cpu,
    name: &'static str,
    values: &[f64],
    shape: S,
) -> Result<Tensor<S, E, Cpu>, EvalError>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    if values.is_empty() {
        return Err(LossError::EmptyBatch { input: name }.into());
    }
    dev.try_tensor_from_vec(to_real::<E>(values)?, shape)
        .map_err(|e| EvalError::Device(e.to_string()))
}

/// The loss value and the gradients of a traced output.
fn backward<E>(
    out: Tensor<(), E, Cpu, OwnedTape<E, Cpu>>,
) -> Result<(f64, Gradients<E, Cpu>), EvalError>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let loss = out.array().to_f64();
    // a non-finite gradient is reported by `run`, as an error rather than a panic
    let grads = super::with_gradients_checked_by_caller(|| out.try_backward())
        .map_err(|e| EvalError::Device(e.to_string()))?;
    Ok((loss, grads))
}

/// The gradient of the tensor `x`, built from `input`, read off `grads`.
fn gradient<S: Shape, E>(
    grads: &Gradients<E, Cpu>,
    x: &Tensor<S, E, Cpu>,
    input: &Given<'_>,
) -> Gradient
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    gradient_named(grads, x, input.info.name, input.shape)
}

/// The gradient of the tensor `x`, which holds the input `name` of shape `shape`.
fn gradient_named<S: Shape, E>(
    grads: &Gradients<E, Cpu>,
    x: &Tensor<S, E, Cpu>,
    name: &'static str,
    shape: &[usize],
) -> Gradient
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    Gradient {
        input: name,
        shape: shape.to_vec(),
        values: grads
            .get(x)
            .as_vec()
            .into_iter()
            .map(Real::to_f64)
            .collect(),
    }
}

/// A `Traced` declared input's (flat) tensor, whose gradient is read after the backward.
type TracedArg<'d, 'a, E> = (Tensor<(usize,), E, Cpu>, &'d DeclaredGiven<'a>);

/// Hands every declared input to a [`Declared`] in declaration order, each flat with its
/// given shape (which [`Declared`] checks against the batch): a `Traced` one as a tensor
/// whose tape is merged into `primary`'s, a `Given` or `Mask` one as values, an `Index`
/// one as labels. Returns `primary` with the merged tape, the [`Declared`], and the
/// traced tensors.
#[allow(clippy::type_complexity)]
fn declare<'d, 'a, S, E>(
    dev: &Cpu,
    mut primary: Tensor<S, E, Cpu, OwnedTape<E, Cpu>>,
    args: &'d DeclaredArgs<'a>,
) -> Result<
    (
        Tensor<S, E, Cpu, OwnedTape<E, Cpu>>,
        Declared<E>,
        Vec<TracedArg<'d, 'a, E>>,
    ),
    EvalError,
>
where
    S: Shape,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let mut declared = Declared::described_by(args.infos);
    let mut traced = Vec::new();
    for g in &args.given {
        let (name, dims) = (g.info.name, g.shape.to_vec());
        match g.info.role {
            DeclaredRole::Differentiable => {
                let x = tensor_of(dev, name, g.values, (g.values.len(),))?;
                primary = declared.traced_as(primary, x.leaky_trace(), dims)?;
                traced.push((x, g));
            }
            DeclaredRole::Constant | DeclaredRole::Mask => {
                declared.values(dims, to_real(g.values)?);
            }
            DeclaredRole::Labels => declared.labels_as(dims, to_labels(name, g.values)?),
        }
    }
    Ok((primary, declared, traced))
}

/// Builds the tensors, traces the differentiable one and the `Traced` declared ones,
/// runs `forward` and the backward pass, and reads the gradients of the traced tensors.
fn trace_and_run<S, E, F>(
    dev: &Cpu,
    input: &Given<'_>,
    shape: S,
    declared: &DeclaredArgs<'_>,
    forward: F,
) -> Result<Evaluation, EvalError>
where
    S: Shape,
    E: Dtype + Real,
    Cpu: Device<E>,
    F: FnOnce(
        Tensor<S, E, Cpu, OwnedTape<E, Cpu>>,
        Declared<E>,
    ) -> Result<Tensor<(), E, Cpu, OwnedTape<E, Cpu>>, LossError>,
{
    let x: Tensor<S, E, Cpu> = tensor(dev, input, shape)?;
    let (primary, args, traced) = declare(dev, x.leaky_trace(), declared)?;
    let (loss, grads) = backward(forward(primary, args)?)?;
    let mut out = vec![gradient(&grads, &x, input)];
    for (t, g) in &traced {
        out.push(gradient_named(&grads, t, g.info.name, g.shape));
    }
    Ok(Evaluation { loss, grads: out })
}

/// Binary family: `probs` or `logits`, and `targets`, each `[N]` or `[N, 1]` (both the
/// same rank).
fn run_binary<K, E>(
    dev: &Cpu,
    kernel: &K,
    given: &[Given<'_>],
    declared: &DeclaredArgs<'_>,
) -> Result<Evaluation, EvalError>
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
            trace_and_run(dev, preds, (n,), declared, |p, d| {
                binary::try_forward_declared(kernel, p, &y, from_logits, d)
            })
        }
        (&[n, c], &[m, d]) => {
            let y: Tensor<(usize, usize), E, Cpu> = tensor(dev, targets, (m, d))?;
            trace_and_run(dev, preds, (n, c), declared, |p, d| {
                binary::try_forward_declared(kernel, p, &y, from_logits, d)
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
fn run_logits<K, E>(
    dev: &Cpu,
    kernel: &K,
    given: &[Given<'_>],
    declared: &DeclaredArgs<'_>,
) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let z = one_of(K::INFO.name, given, &["logits"])?;
    let labels = one_of(K::INFO.name, given, &["labels"])?;
    let (n, c) = matrix(z, "[N, C]")?;
    let labels = label_vector(labels, "[N]")?;
    trace_and_run(dev, z, (n, c), declared, |z, d| {
        logits::try_forward_declared(kernel, z, &labels, d)
    })
}

/// What a pairs loss compares: embeddings, against the batch or a reference set, or a
/// ready similarity matrix.
enum PairsInput<'g, 'a> {
    /// `embeddings` `[N, d]` against themselves.
    Batch(&'g Given<'a>, (usize, usize)),
    /// `embeddings` `[N, d]` against `ref_embeddings` `[M, d]`.
    WithRefs(&'g Given<'a>, (usize, usize), &'g Given<'a>, usize),
    /// `similarities` `[N, M]`.
    Similarities(&'g Given<'a>, (usize, usize)),
}

/// The inputs of a pairs loss, checked for rank and for how they combine.
struct PairsGiven<'g, 'a> {
    input: PairsInput<'g, 'a>,
    labels: Vec<usize>,
    /// `Some` for a separate reference set.
    ref_labels: Option<Vec<usize>>,
}

impl PairsGiven<'_, '_> {
    fn pair_labels(&self) -> Option<PairLabels<'_>> {
        self.ref_labels.as_deref().map(|ref_labels| PairLabels {
            labels: &self.labels,
            ref_labels,
        })
    }
}

/// Pairs family: `embeddings` `[N, d]` or `similarities` `[N, M]`, `labels` `[N]`, and
/// optionally `ref_embeddings` `[M, d]` with `ref_labels` `[M]` (both or neither); with
/// `similarities`, `ref_labels` alone makes the columns a reference set (otherwise the
/// matrix must be square: the batch against itself).
fn pairs_given<'g, 'a>(
    loss: &'static str,
    given: &'g [Given<'a>],
) -> Result<PairsGiven<'g, 'a>, EvalError> {
    let main = one_of(loss, given, &["embeddings", "similarities"])?;
    let labels = label_vector(one_of(loss, given, &["labels"])?, "[N]")?;
    let refs = find(given, "ref_embeddings");
    let ref_labels = find(given, "ref_labels")
        .map(|r| label_vector(r, "[M]"))
        .transpose()?;
    let input = if main.info.name == "similarities" {
        if refs.is_some() {
            return Err(EvalError::NotWith {
                input: "ref_embeddings",
                with: "similarities",
                hint: "give the similarities against the references [N, M] with `ref_labels`",
            });
        }
        let (n, m) = matrix(main, "[N, M]")?;
        if ref_labels.is_none() && n != m {
            return Err(EvalError::BadRank {
                input: main.info.name,
                shape: main.shape.to_vec(),
                expected: "a square [N, N] matrix (the batch against itself); give `ref_labels` for a reference set [N, M]",
            });
        }
        PairsInput::Similarities(main, (n, m))
    } else {
        let (n, d) = matrix(main, "[N, d]")?;
        match (refs, &ref_labels) {
            (None, None) => PairsInput::Batch(main, (n, d)),
            (Some(refs), Some(_)) => {
                let (m, d2) = matrix(refs, "[M, d]")?;
                if d2 != d {
                    return Err(EvalError::ShapeMismatch {
                        input: refs.info.name,
                        shape: refs.shape.to_vec(),
                        other: main.info.name,
                        other_shape: main.shape.to_vec(),
                        expected: "give both the same number of columns",
                    });
                }
                PairsInput::WithRefs(main, (n, d), refs, m)
            }
            (Some(_), None) => {
                return Err(EvalError::Unpaired {
                    input: "ref_embeddings",
                    needs: "ref_labels",
                    hint: "give one label per reference",
                })
            }
            (None, Some(_)) => {
                return Err(EvalError::Unpaired {
                    input: "ref_labels",
                    needs: "ref_embeddings",
                    hint:
                        "give both for a reference set, or neither to compare the batch with itself",
                })
            }
        }
    };
    Ok(PairsGiven {
        input,
        labels,
        ref_labels,
    })
}

fn run_pairs<K, E>(dev: &Cpu, kernel: &K, given: &[Given<'_>]) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let p = pairs_given(K::INFO.name, given)?;
    let none = DeclaredArgs {
        infos: &[],
        given: Vec::new(),
    };
    match p.input {
        PairsInput::Batch(e, shape) => trace_and_run(dev, e, shape, &none, |e, _| {
            pairs::try_forward_embeddings(kernel, e, &p.labels)
        }),
        PairsInput::Similarities(s, shape) => trace_and_run(dev, s, shape, &none, |s, _| {
            pairs::try_forward_similarities(kernel, s, &p.labels, p.ref_labels.as_deref())
        }),
        PairsInput::WithRefs(e, (n, d), r, m) => {
            let x: Tensor<(usize, usize), E, Cpu> = tensor(dev, e, (n, d))?;
            let y: Tensor<(usize, usize), E, Cpu> = tensor(dev, r, (m, d))?;
            let labels = p.pair_labels().expect("a reference set has labels");
            let out =
                pairs::try_forward_with_refs(kernel, x.leaky_trace(), y.leaky_trace(), &labels)?;
            let (loss, grads) = backward(out)?;
            Ok(Evaluation {
                loss,
                grads: vec![gradient(&grads, &x, e), gradient(&grads, &y, r)],
            })
        }
    }
}

/// Scores family: `scores` `[Q, D]` and a 0/1 `relevance` of the same shape.
fn run_scores<K, E>(
    dev: &Cpu,
    kernel: &K,
    given: &[Given<'_>],
    declared: &DeclaredArgs<'_>,
) -> Result<Evaluation, EvalError>
where
    K: Kernel,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    let s = one_of(K::INFO.name, given, &["scores"])?;
    let r = one_of(K::INFO.name, given, &["relevance"])?;
    let shape = matrix(s, "[Q, D]")?;
    let relevance_shape = matrix(r, "[Q, D] (the shape of `scores`)")?;
    let r: Tensor<(usize, usize), E, Cpu> = tensor(dev, r, relevance_shape)?;
    trace_and_run(dev, s, shape, declared, |s, d| {
        scores::try_forward_declared(kernel, s, &r, d)
    })
}

/// Class labels from `f64`: each a non-negative integer that `f64` represents exactly.
fn to_labels(input: &'static str, values: &[f64]) -> Result<Vec<usize>, EvalError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            if (0.0..EXACT).contains(&value) && value.fract() == 0.0 {
                Ok(value as usize)
            } else {
                Err(EvalError::BadLabel {
                    input,
                    index,
                    value,
                })
            }
        })
        .collect()
}

/// The General Pair Weighting view of a pairs loss on one batch: every pair the loss
/// sees, with its similarity `S_ij`, its weight `W_ij = ∂L/∂S_ij` and whether it is a
/// positive pair (same label), as [`pair_weights`] returns it.
///
/// The vectors run over the pairs row-major (anchor by anchor). When the references are
/// the batch itself, the self-pairs `j = i` are left out (the loss never sees them), so
/// each vector has `N·(N − 1)` elements; against a reference set, `N·M`.
#[derive(Clone, Debug, PartialEq)]
pub struct PairWeights {
    /// The number of anchors `N` (rows of `S`).
    pub anchors: usize,
    /// The number of references `M` (columns of `S`).
    pub refs: usize,
    /// Whether the references are the batch itself (self-pairs left out).
    pub against_itself: bool,
    /// The metric `S` was computed with; `None` when `similarities` were given.
    pub metric: Option<Metric>,
    /// `S_ij`, one per pair.
    pub similarities: Vec<f64>,
    /// `W_ij = ∂L/∂S_ij`, one per pair (the loss's derived backward, seed 1).
    pub weights: Vec<f64>,
    /// Whether the pair is positive (`y_j = y_i`), one per pair.
    pub positive: Vec<bool>,
}

/// The pair weights `W = ∂L/∂S` of the pairs loss `K` on plain arrays, in `f64`: the
/// inputs are those of [`evaluate`] (embeddings compared with the loss's metric, or a
/// similarity matrix; optionally a reference set), `params` its hyper-parameters.
///
/// `W` comes from [`pairs::pair_weights`], the loss head's derived backward; `S` from the
/// same similarity op a training step runs.
///
/// ```
/// use loss_runtime::family::dynamic::{pair_weights, Input};
/// use loss_runtime::MultiSimilarity;
///
/// let inputs = [
///     Input::new("embeddings", vec![4, 2], vec![1.0, 0.1, 0.9, 0.4, 0.2, 1.0, 0.5, 0.8]),
///     Input::new("labels", vec![4], vec![0.0, 0.0, 1.0, 1.0]),
/// ];
/// let w = pair_weights::<MultiSimilarity>(&inputs, &[]).unwrap();
/// assert_eq!(w.weights.len(), 4 * 3); // self-pairs left out
/// assert_eq!(w.positive.iter().filter(|&&p| p).count(), 4);
/// ```
pub fn pair_weights<K: Kernel + Default>(
    inputs: &[Input],
    params: &[(&str, f64)],
) -> Result<PairWeights, EvalError> {
    if K::INFO.family != Family::Pairs {
        return Err(EvalError::NotPairs {
            loss: K::INFO.name,
            family: K::INFO.family,
        });
    }
    let kernel = configured::<K>(params)?;
    kernel.validate_for::<f64>()?;
    let (given, _) = resolve(K::INFO, inputs)?;
    let p = pairs_given(K::INFO.name, &given)?;
    let dev: Cpu = Default::default();
    let metric = kernel.metric();
    let (s, metric): (Tensor<(usize, usize), f64, Cpu>, _) = match p.input {
        PairsInput::Batch(e, shape) => {
            check_labels("embeddings", shape.0, "labels", p.labels.len())?;
            super::check_finite(e.info.name, e.shape, e.values)?;
            ensure_room_for_weights(shape.0, shape.0)?;
            let s = similarity(tensor(&dev, e, shape)?, metric);
            pairs::check_similarity_values(
                &s.as_vec(),
                shape.0,
                Source::ComputedFrom("embeddings"),
            )?;
            (s, Some(metric))
        }
        PairsInput::WithRefs(e, shape, r, m) => {
            check_labels("embeddings", shape.0, "labels", p.labels.len())?;
            let ref_labels = p.ref_labels.as_ref().map_or(0, Vec::len);
            check_labels("ref_embeddings", m, "ref_labels", ref_labels)?;
            super::check_finite(e.info.name, e.shape, e.values)?;
            super::check_finite(r.info.name, r.shape, r.values)?;
            ensure_room_for_weights(shape.0, m)?;
            let x = tensor(&dev, e, shape)?;
            let y = tensor(&dev, r, (m, shape.1))?;
            let s = similarity_with(x, y, metric);
            pairs::check_similarity_values(&s.as_vec(), m, Source::ComputedFrom("embeddings"))?;
            (s, Some(metric))
        }
        PairsInput::Similarities(s, shape) => (tensor(&dev, s, shape)?, None),
    };
    let w = pairs::pair_weights(&kernel, &s, &p.labels, p.ref_labels.as_deref())?;
    let (n, m) = *s.shape();
    let against_itself = p.ref_labels.is_none();
    let ref_labels = p.ref_labels.as_deref().unwrap_or(&p.labels);
    let (s, w) = (s.as_vec(), w.as_vec());
    let pairs = (0..n)
        .flat_map(|i| (0..m).map(move |j| (i, j)))
        .filter(|&(i, j)| !(against_itself && i == j));
    let pairs_len = n * m - if against_itself { n } else { 0 };
    let mut out = PairWeights {
        anchors: n,
        refs: m,
        against_itself,
        metric,
        similarities: alloc::try_with_capacity("the similarities of the pairs", pairs_len)?,
        weights: alloc::try_with_capacity("the weights of the pairs", pairs_len)?,
        positive: alloc::try_with_capacity("the labels of the pairs", pairs_len)?,
    };
    for (i, j) in pairs {
        out.similarities.push(s[i * m + j]);
        out.weights.push(w[i * m + j]);
        out.positive.push(p.labels[i] == ref_labels[j]);
    }
    Ok(out)
}

/// Checks that the `n × m` similarity matrix [`pair_weights`] computes fits in memory
/// with the weights and the copies of both (dfdx allocates the matrix itself).
fn ensure_room_for_weights(n: usize, m: usize) -> Result<(), LossError> {
    alloc::ensure_room::<f64>(
        "the similarity matrix and the pair weights",
        n.saturating_mul(m).saturating_mul(4),
    )
}

/// `found` labels for the `expected` rows of `rows_of`.
fn check_labels(
    rows_of: &'static str,
    expected: usize,
    labels: &'static str,
    found: usize,
) -> Result<(), LossError> {
    if expected == found {
        return Ok(());
    }
    Err(LossError::BatchSizeMismatch {
        expected_by: rows_of,
        expected,
        found_in: labels,
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::pairs::{Similarities, WithRefs};
    use crate::loss;
    use crate::losses::{AnylossF1, MultiSimilarity, SoftmaxCrossEntropy};
    use crate::Loss;

    /// A small scores loss: the mean over queries of the mean hinge between each relevant
    /// and each irrelevant document.
    #[loss(scores)]
    fn pairwise_hinge(
        s: Scores,
        r: Relevance,
        #[hyper(default = 1.0, positive)] margin: f64,
    ) -> PerQuery {
        mean(relevant(i), |d| {
            mean(irrelevant(i), |e| relu(margin - s[i][d] + s[i][e]))
        })
    }

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
                input: "labels",
                index: 1,
                value: 0.5
            }
        );
        assert_eq!(
            err.to_string(),
            "`labels[1]` is 0.5, but labels must be non-negative integers"
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

    // ---- pairs

    const EMB: [[f64; 3]; 5] = [
        [1.0, 0.2, -0.1],
        [0.8, 0.5, 0.0],
        [0.1, 1.0, 0.3],
        [-0.2, 0.9, 0.6],
        [0.6, 0.6, 0.2],
    ];
    const LABELS: [usize; 5] = [0, 0, 1, 1, 0];
    const REFS: [[f64; 3]; 3] = [[0.9, 0.4, 0.1], [0.0, 1.0, 0.2], [0.5, 0.5, 0.9]];
    const REF_LABELS: [usize; 3] = [0, 1, 2];

    fn flat<const D: usize>(rows: &[[f64; D]]) -> Vec<f64> {
        rows.iter().flatten().copied().collect()
    }

    fn labels_input(name: &str, labels: &[usize]) -> Input {
        Input::new(
            name,
            vec![labels.len()],
            labels.iter().map(|&l| l as f64).collect(),
        )
    }

    fn pairs_inputs(refs: bool) -> Vec<Input> {
        let mut inputs = vec![
            Input::new("embeddings", vec![5, 3], flat(&EMB)),
            labels_input("labels", &LABELS),
        ];
        if refs {
            inputs.push(Input::new("ref_embeddings", vec![3, 3], flat(&REFS)));
            inputs.push(labels_input("ref_labels", &REF_LABELS));
        }
        inputs
    }

    /// A loss whose gradients are all non-zero on the batches above.
    fn loss() -> MultiSimilarity {
        MultiSimilarity::new()
            .with_pml_style(true)
            .with_epsilon(2.0)
    }

    const PARAMS: [(&str, f64); 2] = [("pml_style", 1.0), ("epsilon", 2.0)];

    #[test]
    fn pairs_embeddings_match_the_typed_api() {
        let dev: Cpu = Default::default();
        let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
        let out = loss().forward(e.leaky_trace(), &LABELS);
        let want = out.array();
        let grads = out.backward();
        let got =
            evaluate::<MultiSimilarity>(&pairs_inputs(false), &PARAMS, Precision::F64).unwrap();
        assert_eq!(got.loss, want);
        assert_eq!(got.grads.len(), 1);
        assert_eq!(got.grads[0].input, "embeddings");
        assert_eq!(got.grads[0].values, grads.get(&e).as_vec());
        assert!(got.grads[0].values.iter().any(|&g| g != 0.0));
    }

    #[test]
    fn pairs_with_refs_match_the_typed_api() {
        let dev: Cpu = Default::default();
        let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
        let r: Tensor<Rank2<3, 3>, f64, _> = dev.tensor(REFS);
        let labels = PairLabels {
            labels: &LABELS,
            ref_labels: &REF_LABELS,
        };
        let out = loss().forward(WithRefs(e.leaky_trace(), r.leaky_trace()), &labels);
        let want = out.array();
        let grads = out.backward();
        let got =
            evaluate::<MultiSimilarity>(&pairs_inputs(true), &PARAMS, Precision::F64).unwrap();
        assert_eq!(got.loss, want);
        let names: Vec<_> = got.grads.iter().map(|g| g.input).collect();
        assert_eq!(names, ["embeddings", "ref_embeddings"]);
        assert_eq!(got.grads[1].shape, vec![3, 3]);
        assert_eq!(got.grads[0].values, grads.get(&e).as_vec());
        assert_eq!(got.grads[1].values, grads.get(&r).as_vec());
        assert!(got.grads[1].values.iter().any(|&g| g != 0.0));
    }

    #[test]
    fn pairs_similarities_match_the_typed_api() {
        let dev: Cpu = Default::default();
        // square, the batch against itself
        let s: Tensor<Rank2<3, 3>, f64, _> =
            dev.tensor([[1.0, 0.7, 0.2], [0.7, 1.0, 0.6], [0.2, 0.6, 1.0]]);
        let labels: [usize; 3] = [0, 0, 1];
        let out = loss().forward(Similarities(s.leaky_trace()), &labels[..]);
        let (want, grads) = (out.array(), out.backward());
        let inputs = [
            Input::new("similarities", vec![3, 3], s.as_vec()),
            labels_input("labels", &labels),
        ];
        let got = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F64).unwrap();
        assert_eq!(got.loss, want);
        assert_eq!(got.grads[0].input, "similarities");
        assert_eq!(got.grads[0].values, grads.get(&s).as_vec());
        // a reference set: [2, 3] with `ref_labels`
        let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.9, 0.1, 0.4], [0.3, 0.8, 0.5]]);
        let pair_labels = PairLabels {
            labels: &[0, 1],
            ref_labels: &[0, 1, 1],
        };
        let out = loss().forward(Similarities(s.leaky_trace()), &pair_labels);
        let (want, grads) = (out.array(), out.backward());
        let inputs = [
            Input::new("similarities", vec![2, 3], s.as_vec()),
            labels_input("labels", &[0, 1]),
            labels_input("ref_labels", &[0, 1, 1]),
        ];
        let got = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F32).unwrap();
        assert!((got.loss - want).abs() < 1e-6);
        for (g, w) in got.grads[0].values.iter().zip(grads.get(&s).as_vec()) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn pairs_refuse_bad_combinations() {
        let err = |inputs: &[Input]| {
            evaluate::<MultiSimilarity>(inputs, &[], Precision::F64)
                .unwrap_err()
                .to_string()
        };
        let all = pairs_inputs(true);
        assert_eq!(
            err(&all[1..2]),
            "missing input `embeddings` or `similarities` (needed by `multi_similarity`)"
        );
        assert_eq!(
            err(&[all[0].clone(), all[2].clone()]),
            "missing input `labels` (needed by `multi_similarity`)"
        );
        assert_eq!(
            err(&all[..3]),
            "`ref_embeddings` given without `ref_labels`; give one label per reference"
        );
        assert_eq!(
            err(&[all[0].clone(), all[1].clone(), all[3].clone()]),
            "`ref_labels` given without `ref_embeddings`; give both for a reference set, or neither to compare the batch with itself"
        );
        let square = Input::new("similarities", vec![2, 2], vec![1.0, 0.5, 0.5, 1.0]);
        let wide = Input::new("similarities", vec![2, 3], vec![0.0; 6]);
        let two = labels_input("labels", &[0, 1]);
        assert_eq!(
            err(&[wide.clone(), two.clone()]),
            "bad shape for `similarities`: got [2, 3], expected a square [N, N] matrix (the batch against itself); give `ref_labels` for a reference set [N, M]"
        );
        assert_eq!(
            err(&[square, two.clone(), all[2].clone()]),
            "`ref_embeddings` cannot be given with `similarities`; give the similarities against the references [N, M] with `ref_labels`"
        );
        let mut narrow = all.clone();
        narrow[2] = Input::new("ref_embeddings", vec![3, 2], vec![0.5; 6]);
        assert_eq!(
            err(&narrow),
            "`ref_embeddings` has shape [3, 2] but `embeddings` has shape [5, 3]; give both the same number of columns"
        );
        let mut bad_ref = all.clone();
        bad_ref[3].values[2] = -1.0;
        assert_eq!(
            err(&bad_ref),
            "`ref_labels[2]` is -1, but labels must be non-negative integers"
        );
        let mut short = all;
        short[3] = labels_input("ref_labels", &[0, 1]);
        assert!(
            err(&short).contains("batch size mismatch"),
            "{}",
            err(&short)
        );
        assert!(err(&[wide, two, labels_input("ref_labels", &[0])]).contains("`ref_labels` has 1"));
    }

    #[test]
    fn pair_weights_are_the_gradient_wrt_similarities() {
        let got = pair_weights::<MultiSimilarity>(&pairs_inputs(false), &PARAMS).unwrap();
        assert_eq!((got.anchors, got.refs, got.against_itself), (5, 5, true));
        assert_eq!(got.metric, Some(Metric::Cosine));
        assert_eq!(got.weights.len(), 20);
        // the same numbers as `evaluate` on the similarity matrix
        let dev: Cpu = Default::default();
        let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
        let s = similarity(e, Metric::Cosine).as_vec();
        let inputs = [
            Input::new("similarities", vec![5, 5], s.clone()),
            labels_input("labels", &LABELS),
        ];
        let full = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F64).unwrap();
        let off_diagonal = |xs: &[f64]| -> Vec<f64> {
            (0..25).filter(|k| k / 5 != k % 5).map(|k| xs[k]).collect()
        };
        assert_eq!(got.similarities, off_diagonal(&s));
        assert_eq!(got.weights, off_diagonal(&full.grads[0].values));
        let positives = got.positive.iter().filter(|&&p| p).count();
        assert_eq!(positives, 3 * 2 + 2);
        // positive pairs pull (w < 0), negative pairs push (w > 0)
        for (w, p) in got.weights.iter().zip(&got.positive) {
            assert!(if *p { *w <= 0.0 } else { *w >= 0.0 }, "{w} {p}");
        }
        let refs = pair_weights::<MultiSimilarity>(&pairs_inputs(true), &PARAMS).unwrap();
        assert_eq!(
            (refs.anchors, refs.refs, refs.against_itself),
            (5, 3, false)
        );
        assert_eq!(refs.weights.len(), 15);
        let err = pair_weights::<AnylossF1>(&binary_inputs("probs"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`anyloss_f1` is a `binary` loss; pair weights exist only for `pairs` losses"
        );
    }

    // ---- scores

    const SCORES: [[f64; 4]; 2] = [[2.0, 0.5, 1.5, -1.0], [0.0, 1.0, 0.8, 0.9]];
    const RELEVANCE: [[f64; 4]; 2] = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]];

    #[test]
    fn scores_match_the_typed_api() {
        let dev: Cpu = Default::default();
        let s: Tensor<Rank2<2, 4>, f64, _> = dev.tensor(SCORES);
        let r: Tensor<Rank2<2, 4>, f64, _> = dev.tensor(RELEVANCE);
        let out = PairwiseHinge::new().forward(s.leaky_trace(), &r);
        let (want, grads) = (out.array(), out.backward());
        let inputs = [
            Input::new("scores", vec![2, 4], flat(&SCORES)),
            Input::new("relevance", vec![2, 4], flat(&RELEVANCE)),
        ];
        for precision in Precision::ALL {
            let got = evaluate::<PairwiseHinge>(&inputs, &[], precision).unwrap();
            assert!((got.loss - want).abs() < 1e-6);
            assert_eq!(got.grads.len(), 1);
            assert_eq!(got.grads[0].input, "scores");
            assert_eq!(got.grads[0].shape, vec![2, 4]);
            for (g, w) in got.grads[0].values.iter().zip(grads.get(&s).as_vec()) {
                assert!((g - w).abs() < 1e-6);
            }
        }
        let err = |inputs: &[Input]| {
            evaluate::<PairwiseHinge>(inputs, &[], Precision::F64)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&inputs[..1]),
            "missing input `relevance` (needed by `pairwise_hinge`)"
        );
        let wrong = [
            inputs[0].clone(),
            Input::new("relevance", vec![4, 2], flat(&RELEVANCE)),
        ];
        assert!(err(&wrong).contains("`relevance`"), "{}", err(&wrong));
        let vector = [
            Input::new("scores", vec![8], flat(&SCORES)),
            inputs[1].clone(),
        ];
        assert_eq!(
            err(&vector),
            "bad shape for `scores`: got [8], expected [Q, D]"
        );
        let none = [
            inputs[0].clone(),
            Input::new("relevance", vec![2, 4], vec![0.0; 8]),
        ];
        assert!(matches!(
            evaluate::<PairwiseHinge>(&none, &[], Precision::F64),
            Err(EvalError::Loss(LossError::NoRelevant { .. }))
        ));
    }

    /// A logits loss with declared inputs of every kind: CE of the primary `z` at `y`,
    /// CE of the traced head `a` at the labels `g`, and a pull of `a` towards `z` weighted
    /// by the constant `t` and the mask `m`.
    #[loss(logits)]
    fn guided_heads(
        z: Logits,
        y: Labels,
        t: Given<samples, classes>,
        a: Traced<samples, classes>,
        m: Mask<samples, classes>,
        g: Index<samples, classes>,
    ) -> PerSample {
        let lz = logsumexp(classes, |k| z[i][k]);
        let la = logsumexp(classes, |k| a[i][k]);
        lz - z[i][y[i]] + la - a[i][g[i]]
            + sum(classes, |k| m[i][k] * t[i][k] * sq(z[i][k] - a[i][k]))
    }

    const Z: [[f64; 3]; 2] = [[1.0, -0.5, 0.3], [0.2, 0.9, -1.1]];
    const T: [[f64; 3]; 2] = [[0.5, 1.5, 0.25], [2.0, 0.1, 0.7]];
    const A: [[f64; 3]; 2] = [[-0.3, 0.8, 0.4], [1.2, -0.6, 0.05]];
    const M: [[f64; 3]; 2] = [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]];

    fn guided_inputs() -> Vec<Input> {
        vec![
            Input::new("logits", vec![2, 3], flat(&Z)),
            labels_input("labels", &[2, 0]),
            Input::new("t", vec![2, 3], flat(&T)),
            Input::new("a", vec![2, 3], flat(&A)),
            Input::new("m", vec![2, 3], flat(&M)),
            labels_input("g", &[1, 2]),
        ]
    }

    /// `guided_heads` by plain loops in f64.
    fn guided_naive(z: &[f64], a: &[f64]) -> f64 {
        let lse = |xs: &[f64]| xs.iter().map(|x| x.exp()).sum::<f64>().ln();
        let (y, g) = ([2, 0], [1, 2]);
        let mut total = 0.0;
        for i in 0..2 {
            let (zr, ar) = (&z[i * 3..i * 3 + 3], &a[i * 3..i * 3 + 3]);
            total += lse(zr) - zr[y[i]] + lse(ar) - ar[g[i]];
            for k in 0..3 {
                total += M[i][k] * T[i][k] * (zr[k] - ar[k]).powi(2);
            }
        }
        total / 2.0
    }

    #[test]
    fn declared_inputs_by_name_match_a_naive_loop_and_finite_differences() {
        let inputs = guided_inputs();
        let (z, a) = (flat(&Z), flat(&A));
        for precision in Precision::ALL {
            let out = evaluate::<GuidedHeads>(&inputs, &[], precision).unwrap();
            let tol = if precision == Precision::F64 {
                1e-12
            } else {
                1e-5
            };
            assert!(
                (out.loss - guided_naive(&z, &a)).abs() < tol,
                "{precision:?}"
            );
            let names: Vec<_> = out
                .grads
                .iter()
                .map(|g| (g.input, g.shape.clone()))
                .collect();
            assert_eq!(names, vec![("logits", vec![2, 3]), ("a", vec![2, 3])]);
        }
        // the gradients against central differences of the naive loop
        let out = evaluate::<GuidedHeads>(&inputs, &[], Precision::F64).unwrap();
        let h = 1e-6;
        for (which, grad) in out.grads.iter().enumerate() {
            for k in 0..6 {
                let shifted = |d: f64| {
                    let (mut z, mut a) = (z.clone(), a.clone());
                    [&mut z, &mut a][which][k] += d;
                    guided_naive(&z, &a)
                };
                let want = (shifted(h) - shifted(-h)) / (2.0 * h);
                assert!((grad.values[k] - want).abs() < 1e-7, "{} {k}", grad.input);
            }
        }
        // the same numbers as the typed call
        let dev: Cpu = Default::default();
        let zt: Tensor<Rank2<2, 3>, f64, _> = dev.tensor(Z);
        let at: Tensor<Rank2<2, 3>, f64, _> = dev.tensor(A);
        let (t, m): (Tensor<Rank2<2, 3>, f64, _>, Tensor<Rank2<2, 3>, f64, _>) =
            (dev.tensor(T), dev.tensor(M));
        let typed = GuidedHeads::default().forward(
            (zt.leaky_trace(), t, at.leaky_trace(), m, &[1usize, 2][..]),
            &[2usize, 0][..],
        );
        assert_eq!(typed.array(), out.loss);
        let grads = typed.backward();
        assert_eq!(grads.get(&zt).as_vec(), out.grads[0].values);
        assert_eq!(grads.get(&at).as_vec(), out.grads[1].values);
    }

    #[test]
    fn declared_inputs_refused_by_name() {
        let err = |inputs: &[Input]| {
            evaluate::<GuidedHeads>(inputs, &[], Precision::F64)
                .unwrap_err()
                .to_string()
        };
        let with = |k: usize, input: Input| {
            let mut inputs = guided_inputs();
            inputs[k] = input;
            err(&inputs)
        };
        let mut missing = guided_inputs();
        missing.remove(3);
        assert_eq!(
            err(&missing),
            "missing input `a` (needed by `guided_heads`)"
        );
        assert_eq!(
            with(3, Input::new("b", vec![2, 3], flat(&A))),
            "`guided_heads` has no input named `b`; its inputs are `logits`, `labels`, `t`, `a`, `m`, `g`"
        );
        let mut twice = guided_inputs();
        twice.push(Input::new("t", vec![2, 3], flat(&T)));
        assert_eq!(err(&twice), "input `t` is given twice");
        assert_eq!(
            with(2, Input::new("t", vec![2, 3], vec![0.0; 5])),
            "`t` has shape [2, 3] (6 elements) but 5 values"
        );
        // a shared axis that disagrees names both inputs and the set
        assert_eq!(
            with(3, Input::new("a", vec![2, 2], vec![0.0; 4])),
            "`a` has 2 along `classes`, but `logits` has 3"
        );
        assert_eq!(
            with(2, Input::new("t", vec![3, 2], flat(&T))),
            "`t` has 3 along `samples`, but `logits` has 2"
        );
        assert!(
            with(2, Input::new("t", vec![1, 2, 3], flat(&T))).starts_with("bad shape for `t`"),
            "{}",
            with(2, Input::new("t", vec![1, 2, 3], flat(&T)))
        );
        assert_eq!(
            with(5, Input::new("g", vec![2], vec![1.0, 0.5])),
            "`g[1]` is 0.5, but labels must be non-negative integers"
        );
        assert!(matches!(
            evaluate::<GuidedHeads>(
                &{
                    let mut i = guided_inputs();
                    i[5] = labels_input("g", &[1, 3]);
                    i
                },
                &[],
                Precision::F64
            ),
            Err(EvalError::Loss(LossError::IndexOutOfRange {
                input: "g",
                index: 1,
                ..
            }))
        ));
        assert!(matches!(
            evaluate::<GuidedHeads>(
                &{
                    let mut i = guided_inputs();
                    i[4].values[0] = 0.5;
                    i
                },
                &[],
                Precision::F64
            ),
            Err(EvalError::Loss(LossError::NotAMask {
                input: "m",
                index: 0,
                ..
            }))
        ));
        assert!(matches!(
            evaluate::<GuidedHeads>(
                &{
                    let mut i = guided_inputs();
                    i[3].values[4] = f64::NAN;
                    i
                },
                &[],
                Precision::F64
            ),
            Err(EvalError::Loss(LossError::NonFinite {
                input: "a",
                index: 4,
                ..
            }))
        ));
    }
}
