// `clases` is not an index set of the `logits` family (a typo of `classes`).
use losskit::prelude::*;

#[loss(logits)]
pub fn typo(z: Logits, y: Labels) -> PerSample {
    logsumexp(clases, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
