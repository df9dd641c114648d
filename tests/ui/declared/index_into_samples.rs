// An `Index` holds labels into another set; labels into the batch itself are refused.
use losskit::prelude::*;

#[loss(logits)]
pub fn neighbour(z: Logits, y: Labels, n: Index<samples, samples>) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

fn main() {}
