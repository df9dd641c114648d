// A hyper-parameter needs a default so the loss has a `Default` and a `new()`.
use losskit::prelude::*;

#[loss(logits)]
pub fn scaled(z: Logits, y: Labels, #[hyper(positive)] scale: f64) -> PerSample {
    logsumexp(classes, |k| scale * z[i][k]) - scale * z[i][y[i]]
}

fn main() {}
