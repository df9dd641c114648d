// Five independent mistakes; one compile reports each of them, in source order.
use losskit::prelude::*;

#[loss(logits)]
pub fn many(
    z: Logits,
    y: Labels,
    #[hyper(default = 0.0, positive)] scale: f64,
) -> PerSample {
    let lse = logsumexp(clases, |k| z[i][k]);
    let hard = max(classes, |k| z[i][k] * scle);
    let snapped = round(hard);
    lse - z[i][y[i]] + exq(snapped)
}

fn main() {}
