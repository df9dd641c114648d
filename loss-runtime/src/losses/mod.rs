//! The catalogue of shipped losses, one module per family.

pub mod binary;
pub mod logits;

pub use binary::*;
pub use logits::*;
