//! Losses over the pairs of a batch (the `pairs` family): pair mining and pair weighting.

mod amcl;
mod contrastive;
mod few_shot;
mod gpw;
mod icnn;
mod isogclr;
mod multi_similarity;
mod multi_view;
mod simlap;

pub use amcl::*;
pub use contrastive::*;
pub use few_shot::*;
pub use gpw::*;
pub use icnn::*;
pub use isogclr::*;
pub use multi_similarity::*;
pub use multi_view::*;
pub use simlap::*;
