// Values have no methods; functions are called as `exp(x)`, and `foo` is none of them.
use losskit::prelude::*;

#[loss(logits)]
pub fn method(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k].foo()) - z[i][y[i]]
}

fn main() {}
