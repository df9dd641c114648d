// The first index of `z` ranges over samples; `y[i]` is a class.
use losskit::prelude::*;

#[loss(logits)]
pub fn swapped(z: Logits, y: Labels) -> PerSample {
    z[y[i]][i]
}

fn main() {}
