// `#[loss(..)]` takes the family and `paper = ".."`; `reduction` is not an argument.
use losskit::prelude::*;

#[loss(logits, reduction = "sum")]
pub fn summed(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
