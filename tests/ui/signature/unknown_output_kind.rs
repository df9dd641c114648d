// The `logits` family returns `PerSample` or `Scalar`; `PerAnchor` belongs to another family.
use losskit::prelude::*;

#[loss(logits)]
pub fn anchors(z: Logits, y: Labels) -> PerAnchor {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
