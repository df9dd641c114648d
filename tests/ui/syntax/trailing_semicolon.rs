// The loss is the body's final expression; a `;` after it leaves the body without a value.
use losskit::prelude::*;

#[loss(logits)]
pub fn unterminated(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]];
}

fn main() {}
