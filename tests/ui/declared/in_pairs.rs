// The `pairs` family does not take declared inputs (yet).
use losskit::prelude::*;

#[loss(pairs)]
pub fn weighted_pairs(s: Similarity, y: Labels, w: Given<samples>) -> PerAnchor {
    w[i] * mean(neg(i), |j| relu(s[i][j]))
}

fn main() {}
