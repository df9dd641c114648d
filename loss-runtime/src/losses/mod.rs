//! The catalogue of shipped losses, one module per family.

pub mod binary;
pub mod logits;
pub mod pairs;

pub use binary::*;
pub use logits::*;
pub use pairs::*;
