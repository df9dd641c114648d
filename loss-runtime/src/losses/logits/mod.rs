//! Losses over multi-class logits `[N, C]` and integer labels.

mod comp_sum;
mod cross_entropy;
mod depict;
mod dual_head_kd;
mod ldr_kl;
mod z_loss;

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
mod smooth_adv_comp_sum;
pub use smooth_adv_comp_sum::*;
