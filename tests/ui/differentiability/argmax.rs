// `argmax` returns an index; it has no derivative outside `detach(..)`.
use losskit::prelude::*;

#[loss(logits)]
pub fn hardest(z: Logits, y: Labels) -> PerSample {
    argmax(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
