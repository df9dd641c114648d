// Two parameters are both named `a`.
use losskit::prelude::*;

#[loss(logits)]
pub fn twice(
    z: Logits,
    y: Labels,
    #[hyper(default = 1.0)] a: f64,
    #[hyper(default = 2.0)] a: f64,
) -> PerSample {
    a * (logsumexp(classes, |k| z[i][k]) - z[i][y[i]])
}

fn main() {}
