//! Losses over the pairs of a batch (the `pairs` family): pair mining and pair weighting.

mod multi_similarity;

pub use multi_similarity::*;
