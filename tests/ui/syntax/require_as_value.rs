// `require(..)` is a statement: it needs a `;` and a value after it.
use losskit::prelude::*;

#[loss(logits)]
pub fn checked(z: Logits, y: Labels) -> PerSample {
    require(z[i][y[i]] > 0.0, "positive logit")
}

fn main() {}
