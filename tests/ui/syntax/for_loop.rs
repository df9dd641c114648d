// A loss is an expression: reductions such as `sum(classes, |k| ..)` replace loops.
use losskit::prelude::*;

#[loss(logits)]
pub fn looped(z: Logits, y: Labels) -> PerSample {
    for k in 0..10 {}
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
