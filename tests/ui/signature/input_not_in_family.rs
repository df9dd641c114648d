// The `binary` family provides probabilities, not a `Logits` matrix.
use losskit::prelude::*;

#[loss(binary)]
pub fn wrong_input(z: Logits, y: Targets) -> PerSample {
    y[i] * z[i][0]
}

fn main() {}
