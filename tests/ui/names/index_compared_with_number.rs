// `k` is a class position, not a number: it may be compared with an index or a label only.
use losskit::prelude::*;

#[loss(logits)]
pub fn skip_first(z: Logits, y: Labels) -> PerSample {
    sum(classes.filter(|k| k > 0), |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
