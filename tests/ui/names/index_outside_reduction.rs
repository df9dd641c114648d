// `k` is bound by the `sum` closure only; after it, `k` no longer exists.
use losskit::prelude::*;

#[loss(logits)]
pub fn leaky(z: Logits, y: Labels) -> PerSample {
    let total = sum(classes, |k| exp(z[i][k]));
    ln(total) - z[i][k]
}

fn main() {}
