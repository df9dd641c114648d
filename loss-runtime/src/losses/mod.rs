//! The catalogue of shipped losses, one module per family.

pub mod binary;
pub mod dense;
pub mod logits;
pub mod pairs;
pub mod scores;

pub use binary::*;
pub use dense::*;
pub use logits::*;
pub use pairs::*;
pub use scores::*;
