// Labels are integers with no gradient: an `Index` cannot be `Traced`.
use losskit::prelude::*;

#[loss(logits)]
pub fn second_labels(z: Logits, y: Labels, g: Traced<Index>) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
