// A comparison is a condition (0 or 1), which has no derivative when used as a number.
use losskit::prelude::*;

#[loss(binary)]
pub fn step(p: Probs, y: Targets) -> PerSample {
    (p[i] > 0.5) * y[i]
}

fn main() {}
