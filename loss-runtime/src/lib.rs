//! Runtime of [losskit](https://docs.rs/losskit): the [`Loss`] trait, the family input
//! adapters, the dfdx glue, [`LossError`], the catalogue of shipped losses — every one of
//! them defined with [`#[loss]`](macro@loss), its gradient derived by the compiler — and
//! the [papers] they come from.
#![warn(missing_docs)]

extern crate self as losskit;

pub mod catalogue;
pub mod check;
pub mod core;
pub mod error;
pub mod family;
pub mod loss;
pub mod losses;
pub mod papers;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
pub(crate) mod testing_pairs;

pub use crate::core::class_cosines::{class_cosines, projected_cosines};
pub use crate::core::draws::standard_normal_draws;
pub use crate::core::image::corr::{local_corr_field, local_corr_field_values};
pub use crate::core::image::filter::{decimate, mtf_downgrade, mtf_filter_valid, pad, Padding};
pub use crate::core::image::mtf::{mtf_kernels, Sensor};
pub use crate::core::image::Image;
pub use crate::core::info::{
    Axis, DeclaredInfo, DeclaredRole, Family, HyperInfo, HyperKind, InputInfo, InputKind, LossInfo,
    SetRef,
};
pub use crate::core::kernel::Kernel;
pub use crate::core::real::Real;
pub use crate::core::similarity::{similarity, similarity_with, Metric};
pub use crate::core::state::{SampleState, StateCell, StateField, WithIds};
pub use crate::error::LossError;
pub use crate::family::binary::FromLogits;
pub use crate::family::class_cosines::{ClassCosines, ProjectedCosines};
pub use crate::family::pairs::{
    with_pairs_path, PairLabels, PairsPath, SelfSupervised, Similarities, Views, WithRefs,
};
pub use crate::loss::Loss;
pub use crate::losses::*;
pub use loss_macros::loss;

/// What generated code refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::core::foreign::topk_threshold;
    pub use crate::core::info::{
        Axis, DeclaredInfo, DeclaredRole, Family, HyperInfo, HyperKind, LossInfo, SetRef,
    };
    pub use crate::core::kernel::{Batch, Kernel, Requirements, RowBlocks, Workspace};
    pub use crate::core::parallel;
    pub use crate::core::real::{LogSumExp, Real};
    pub use crate::core::simd;
    pub use crate::core::similarity::Metric;
    pub use crate::core::state::{StateCell, StateInfo, StateUpdate, WithIds};
    pub use crate::error::LossError;
    pub use crate::family::declared::{ConstantInput, Declared, LabelInput};
    pub use crate::family::pairs::{PairLabels, SelfSupervised, Similarities, Views, WithRefs};
    pub use crate::family::{binary, dense, logits, pairs, scores};
    pub use crate::loss::Loss;
    pub use crate::FromLogits;
    pub use dfdx::prelude::{Cpu, Dim, Dtype, Merge, Shape, Tape, Tensor};
}

/// The language accepted by [`#[loss]`](macro@loss): every construct, what it means, and
/// the derivative the compiler uses for it.
///
#[doc = include_str!("dsl.md")]
///
/// Inputs by family:
///
/// | family | declare | names in the body |
/// |---|---|---|
/// | `binary` | `cm: SoftConfusion`, `p: Probs`, `a: Amplified`, `y: Targets` | `cm.tp cm.fp cm.fn_ cm.tn cm.n cm.pos cm.neg`, `p[i]`, `a[i]`, `y[i]` |
/// | `logits` | `z: Logits`, `y: Labels` | `z[i][k]`, `y[i]` (an index) |
///
/// Declared inputs, on top of the family's (not in the `pairs` family), each over index
/// sets of the family; the call passes them after the primary input, as a tuple:
///
/// | kind | declare | names in the body | passed as |
/// |---|---|---|---|
/// | constant | `t: Given<samples, classes>` | `t[i][k]` | a tensor without a tape, a slice or a `Vec` |
/// | differentiable | `a: Traced<samples, classes>` | `a[i][k]` | a tensor; traced, it gets its gradient |
/// | mask | `m: Mask<samples, classes>` | `m[i][k]` (0 or 1) | as a constant |
/// | labels | `g: Index<samples, classes>` | `g[i]` (an index into `classes`) | a slice or a `Vec` of `usize` |
///
/// Hyper-parameters: `#[hyper(default = 1.0, positive)] alpha: f64` (constraints:
/// `positive`, `nonnegative`, `range(lo, hi)`; `bool` switches too; `doc = ".."`).
pub mod dsl {}
