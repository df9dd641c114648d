// `Manhattan` is not a metric the similarity op offers.
use losskit::prelude::*;

#[loss(pairs, metric = Manhattan)]
pub fn spread(s: Similarity, y: Labels) -> PerAnchor {
    mean(pos(i), |j| s[i][j])
}

fn main() {}
