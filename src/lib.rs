//! losskit: loss functions written as math.
#![warn(missing_docs)]

pub use loss_runtime::*;

/// Everything a training loop needs: the `#[loss]` macro, the `Loss` trait, the shipped
/// losses, and dfdx's prelude.
pub mod prelude {
    pub use dfdx::prelude::*;
    pub use loss_runtime::losses::*;
    pub use loss_runtime::{
        loss, standard_normal_draws, with_pairs_path, ClassCosines, FromLogits, Loss, LossError,
        Metric, PairLabels, PairsPath, ProjectedCosines, SampleState, SelfSupervised, Similarities,
        Views, WithIds, WithRefs,
    };
}

/// The README's code blocks, run as doctests so the README cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
