// The soft top-k threshold is found by bisection: it has no derivative of its own, so it
// must be detached (the loss writes the implicit-function derivative itself).
use losskit::prelude::*;

#[loss(scores)]
pub fn top2(s: Scores, r: Relevance) -> PerQuery {
    let t = topk_threshold(docs, |d| s[i][d], 2.0, 2.0, 32.0);
    mean(relevant(i), |d| softplus(-(s[i][d] + t)))
}

fn main() {}
