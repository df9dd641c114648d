// `poss(i)` is a typo of the anchored set `pos(i)`.
use losskit::prelude::*;

#[loss(pairs)]
pub fn closest_positive(s: Similarity, y: Labels) -> PerAnchor {
    max(poss(i), |j| s[i][j])
}

fn main() {}
