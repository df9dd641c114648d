// `i` is only bound in a per-anchor loss; the pairs family calls that output `PerAnchor`.
use losskit::prelude::*;

#[loss(pairs)]
pub fn first_column(s: Similarity, y: Labels) -> Scalar {
    s[i][i]
}

fn main() {}
