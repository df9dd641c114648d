//! Losses over binary predictions and 0/1 targets (AnyLoss and its extensions).

mod anyloss;
mod extensions;

pub use anyloss::*;
pub use extensions::*;
