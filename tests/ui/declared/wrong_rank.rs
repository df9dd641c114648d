// `t` is declared `[N, C]` but used with one index.
use losskit::prelude::*;

#[loss(logits)]
pub fn teacher_weighted(z: Logits, y: Labels, t: Given<samples, classes>) -> PerSample {
    t[i] * (logsumexp(classes, |k| z[i][k]) - z[i][y[i]])
}

fn main() {}
