// `margin` is neither an input, a hyper-parameter nor a `let`.
use losskit::prelude::*;

#[loss(logits)]
pub fn hinge(z: Logits, y: Labels) -> PerSample {
    max(classes.filter(|k| k != y[i]), |k| relu(margin + z[i][k] - z[i][y[i]]))
}

fn main() {}
