// The default `-1.0` breaks the declared `positive` constraint.
use losskit::prelude::*;

#[loss(logits)]
pub fn tempered(
    z: Logits,
    y: Labels,
    #[hyper(default = -1.0, positive)] temperature: f64,
) -> PerSample {
    logsumexp(classes, |k| z[i][k] / temperature) - z[i][y[i]] / temperature
}

fn main() {}
