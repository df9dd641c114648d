//! Losses over multi-class logits `[N, C]` and integer labels.

mod cross_entropy;

pub use cross_entropy::*;
