// `logit` is not a loss family (a typo of `logits`).
use losskit::prelude::*;

#[loss(logit)]
pub fn typo(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
