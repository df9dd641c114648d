// `frobnicate` is close to no function: the help lists them all.
use losskit::prelude::*;

#[loss(logits)]
pub fn odd(z: Logits, y: Labels) -> PerSample {
    frobnicate(z[i][y[i]])
}

fn main() {}
