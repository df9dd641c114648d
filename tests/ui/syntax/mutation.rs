// Bindings are immutable: `let mut` and `+=` have no meaning in a loss.
use losskit::prelude::*;

#[loss(logits)]
pub fn accumulate(z: Logits, y: Labels) -> PerSample {
    let mut total = logsumexp(classes, |k| z[i][k]);
    total += 1.0;
    total - z[i][y[i]]
}

fn main() {}
