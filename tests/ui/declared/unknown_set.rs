// A declared input's axes are the family's index sets; the `logits` family has no `refs`.
use losskit::prelude::*;

#[loss(logits)]
pub fn weighted(z: Logits, y: Labels, w: Given<samples, refs>) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
