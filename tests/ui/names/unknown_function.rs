// `exq` is not a function of the loss language (a typo of `exp`).
use losskit::prelude::*;

#[loss(logits)]
pub fn typo(z: Logits, y: Labels) -> PerSample {
    ln(sum(classes, |k| exq(z[i][k]))) - z[i][y[i]]
}

fn main() {}
