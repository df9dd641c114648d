// The closure is there; the third argument is one too many.
use losskit::prelude::*;

#[loss(logits)]
pub fn scaled(z: Logits, y: Labels) -> PerSample {
    sum(classes, |k| z[i][k], 2.0) - z[i][y[i]]
}

fn main() {}
