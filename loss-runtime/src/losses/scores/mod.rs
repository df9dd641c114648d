//! Losses over a score matrix with a relevance mask (the `scores` family): retrieval
//! losses whose pairs are formed across the whole matrix (Mann-Whitney / AUC) or per
//! query (DEXML).

mod dexml;
mod mw_auc;
mod nce;
mod soft_topk;

pub use dexml::*;
pub use mw_auc::*;
pub use nce::*;
pub use soft_topk::*;
