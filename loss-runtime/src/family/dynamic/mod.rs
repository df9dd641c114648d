//! Evaluating a loss chosen at run time, from plain arrays (used by `losskit eval` and
//! `losskit gpw`).
//!
//! The caller names each input as [`Family::inputs`] lists it, and each input the loss
//! declares ([`LossInfo::declared`](crate::LossInfo::declared)) by its declared name, and
//! gives its shape and row-major values as `f64`. [`evaluate`] checks the names and the
//! rules between inputs, fixes the index sets' sizes from the shapes, builds dfdx tensors
//! of the requested [`Precision`], runs the loss through the same kernel glue a training
//! loop uses (`family::run`), calls `.backward()` and reads the gradient of every
//! differentiable input off the tape. [`pair_weights`] runs a pairs loss's `W = ∂L/∂S`.
//! Nothing here is a second implementation of a loss, and nothing here knows a family:
//! each family is a preset of input descriptions ([`Family::inputs`]: axes, roles,
//! alternatives, the input that stands in for a missing one), read like the inputs a loss
//! declares, and its constant inputs are laid out by the same [`Declared`] as declared
//! ones.
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
//! holds labels (non-negative integers). A shape may end in axes of length 1 (`[N, 1]`
//! for `[N]`).
//!
//! [`Declared`]: crate::family::declared::Declared
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

mod error;
mod resolve;
mod run;
#[cfg(test)]
mod tests;

use dfdx::prelude::*;

use crate::core::alloc;
use crate::core::info::{Family, InputKind};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::similarity::{similarity, similarity_with, Metric};
use crate::error::LossError;
use crate::family::pairs::{self, Source};

pub use error::EvalError;

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
    let call = resolve::resolve(K::INFO, inputs)?;
    match precision {
        Precision::F32 => run::run::<K, f32>(&kernel, &call),
        Precision::F64 => run::run::<K, f64>(&kernel, &call),
    }
}

/// `values` in the run's precision.
fn to_real<E: Real>(values: &[f64]) -> Result<Vec<E>, LossError> {
    alloc::try_map("an input in the run's precision", values, |&v| {
        E::from_f64(v)
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
    let call = resolve::resolve(K::INFO, inputs)?;
    let layout = call.layout;
    let (n, m) = (layout.samples, layout.refs);
    let labels_of = |name| {
        call.find(name)
            .map(|g| to_labels(g.info.name, g.values))
            .transpose()
    };
    let labels = labels_of("labels")?.unwrap_or_default();
    let ref_labels = labels_of("ref_labels")?;
    let primary = call.traced().next();
    let dev: Cpu = Default::default();
    let (s, metric): (Tensor<(usize, usize), f64, Cpu>, _) = match primary {
        Some(e) if e.info.kind == InputKind::Embeddings => {
            let d = call.features.unwrap_or_default();
            for g in call.traced() {
                crate::family::check_finite(g.info.name, g.shape, g.values)?;
            }
            ensure_room_for_weights(n, m)?;
            let metric = kernel.metric();
            let x = matrix(&dev, e.info.name, e.values, (n, d))?;
            let s = match call.traced().nth(1) {
                Some(r) => similarity_with(x, matrix(&dev, r.info.name, r.values, (m, d))?, metric),
                None => similarity(x, metric),
            };
            pairs::check_similarity_values(&s.as_vec(), m, Source::ComputedFrom(e.info.name))?;
            (s, Some(metric))
        }
        Some(s) => (matrix(&dev, s.info.name, s.values, (n, m))?, None),
        None => unreachable!("`resolve` requires the embeddings or the similarities"),
    };
    let w = pairs::pair_weights(&kernel, &s, &labels, ref_labels.as_deref())?;
    let against_itself = ref_labels.is_none();
    let ref_labels = ref_labels.as_deref().unwrap_or(&labels);
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
        out.positive.push(labels[i] == ref_labels[j]);
    }
    Ok(out)
}

/// The `rows × cols` matrix of `values` (empty ones refused: dfdx 0.13 reads one element
/// of any tensor it copies out).
fn matrix(
    dev: &Cpu,
    name: &'static str,
    values: &[f64],
    shape: (usize, usize),
) -> Result<Tensor<(usize, usize), f64, Cpu>, EvalError> {
    if values.is_empty() {
        return Err(LossError::EmptyBatch { input: name }.into());
    }
    dev.try_tensor_from_vec(values.to_vec(), shape)
        .map_err(|e| EvalError::Device(e.to_string()))
}

/// Checks that the `n × m` similarity matrix [`pair_weights`] computes fits in memory
/// with the weights and the copies of both (dfdx allocates the matrix itself).
fn ensure_room_for_weights(n: usize, m: usize) -> Result<(), LossError> {
    alloc::ensure_room::<f64>(
        "the similarity matrix and the pair weights",
        n.saturating_mul(m).saturating_mul(4),
    )
}
