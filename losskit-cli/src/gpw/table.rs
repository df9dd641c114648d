//! The pair weights as text: counts per side, then the mean weight per similarity bin.

use std::fmt::Write as _;

use losskit::catalogue::Entry;
use losskit::family::dynamic::PairWeights;

use super::stats::{metric_words, PairStats, Side, BINS};

/// `x` with four significant digits, or `-` for none.
fn sci(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.3e}"))
}

/// The table `losskit gpw` prints without `--out`.
pub fn text(entry: &Entry, w: &PairWeights, stats: &PairStats, batch: &str, loss: f64) -> String {
    let (metric, axis) = metric_words(w);
    let mut out = String::new();
    // `write!` into a `String` cannot fail
    let _ = writeln!(
        out,
        "{}: pair weights W = dL/dS (General Pair Weighting)",
        entry.name()
    );
    let _ = writeln!(out, "batch: {batch}");
    let _ = writeln!(
        out,
        "S: {metric}; {} pairs{}; loss L = {loss:.6}",
        w.weights.len(),
        if w.against_itself {
            " (self-pairs left out)"
        } else {
            ""
        }
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "{:10}{:>8}{:>10}{:>12}",
        "", "pairs", "w != 0", "mean |w|"
    );
    for (name, side) in [("positive", &stats.positive), ("negative", &stats.negative)] {
        let _ = writeln!(
            out,
            "{name:10}{:>8}{:>10}{:>12}",
            side.count,
            side.nonzero,
            sci(side.mean_abs())
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "mean w by {axis} ({BINS} bins over [{:.3}, {:.3}]):",
        stats.lo, stats.hi
    );
    let _ = writeln!(
        out,
        "  {:18}{:>10}{:>12}{:>10}{:>12}",
        axis, "positive", "mean w", "negative", "mean w"
    );
    let width = (stats.hi - stats.lo) / BINS as f64;
    for bin in 0..BINS {
        let a = stats.lo + width * bin as f64;
        let b = if bin + 1 == BINS { stats.hi } else { a + width };
        let close = if bin + 1 == BINS { ']' } else { ')' };
        let range = format!("[{a:.3}, {b:.3}{close}");
        let cell = |side: &Side| {
            let (count, sum) = side.bins[bin];
            (count, sci((count > 0).then(|| sum / count as f64)))
        };
        let (pc, pm) = cell(&stats.positive);
        let (nc, nm) = cell(&stats.negative);
        let _ = writeln!(out, "  {range:18}{pc:>10}{pm:>12}{nc:>10}{nm:>12}");
    }
    out
}
