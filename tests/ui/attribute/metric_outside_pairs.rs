// A metric only means something to the pairs family, which compares embeddings.
use losskit::prelude::*;

#[loss(logits, metric = Dot)]
pub fn ce(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
