//! Runtime of [losskit](https://docs.rs/losskit): the [`Loss`] trait, the family input
//! adapters, the dfdx glue, [`LossError`], and the catalogue of shipped losses — every one
//! of them defined with [`#[loss]`](macro@loss), its gradient derived by the compiler.
#![warn(missing_docs)]

extern crate self as losskit;

pub mod catalogue;
pub mod core;
pub mod error;
pub mod family;
pub mod loss;
pub mod losses;

pub use crate::core::info::{Family, HyperInfo, HyperKind, InputInfo, InputKind, LossInfo};
pub use crate::core::kernel::Kernel;
pub use crate::core::real::Real;
pub use crate::error::LossError;
pub use crate::family::binary::FromLogits;
pub use crate::loss::Loss;
pub use crate::losses::*;
pub use loss_macros::loss;

/// What generated code refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::core::info::{Family, HyperInfo, HyperKind, LossInfo};
    pub use crate::core::kernel::{Batch, Kernel, Workspace};
    pub use crate::core::real::{LogSumExp, Real};
    pub use crate::error::LossError;
    pub use crate::family::{binary, logits};
    pub use crate::loss::Loss;
    pub use crate::FromLogits;
    pub use dfdx::prelude::{Cpu, Dtype, Shape, Tape, Tensor};
}
