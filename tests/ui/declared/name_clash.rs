// A declared input may not take the name of one of the family's own inputs: `losskit eval`
// takes inputs by name, and the `logits` family's are `logits` and `labels`.
use losskit::prelude::*;

#[loss(logits)]
pub fn relabelled(z: Logits, y: Labels, labels: Index<samples, classes>) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][labels[i]]
}

fn main() {}
