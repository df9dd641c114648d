//! Losses over multi-class logits `[N, C]` and integer labels.

mod aldr_kl;
mod comp_sum;
mod cross_entropy;
mod depict;
mod dual_head_kd;
mod ldr_kl;
mod z_loss;

pub use aldr_kl::*;
pub use comp_sum::*;
pub use cross_entropy::*;
pub use depict::*;
pub use dual_head_kd::*;
pub use ldr_kl::*;
pub use z_loss::*;
mod dataset_equity;
pub use dataset_equity::*;
mod ensloss;
pub use ensloss::*;
mod arcface;
pub use arcface::*;
mod cosface;
pub use cosface::*;
mod hyperspherical;
pub use hyperspherical::*;
mod elasticface;
pub use elasticface::*;
mod sface;
pub use sface::*;
mod unpg;
pub use unpg::*;
mod symface;
pub use symface::*;
mod smooth_adv_comp_sum;
pub use smooth_adv_comp_sum::*;
mod rss;
pub use rss::*;
