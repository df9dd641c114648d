//! The pair weights summarised by side (positive or negative pairs) and by similarity
//! bin, for the table and the plot.

use losskit::family::dynamic::PairWeights;
use losskit::Metric;

/// The number of similarity bins in the table.
pub const BINS: usize = 10;

/// Counts and bin means of one side (positive or negative pairs).
#[derive(Default)]
pub struct Side {
    /// The number of pairs.
    pub count: usize,
    /// The number of pairs with a weight other than zero.
    pub nonzero: usize,
    sum_abs: f64,
    /// Per similarity bin: the number of pairs and the sum of their weights.
    pub bins: [(usize, f64); BINS],
    /// The `(similarity, weight)` of each pair, for the plot.
    pub points: Vec<(f64, f64)>,
}

impl Side {
    /// The mean `|w|`, or `None` without pairs.
    pub fn mean_abs(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_abs / self.count as f64)
    }
}

/// The pair weights summarised for the table and the plot.
pub struct PairStats {
    /// The positive pairs (same label).
    pub positive: Side,
    /// The negative pairs.
    pub negative: Side,
    /// The similarity range the bins split evenly.
    pub lo: f64,
    /// See [`PairStats::lo`].
    pub hi: f64,
}

impl PairStats {
    /// Sorts every pair of `w` into its side and its bin.
    pub fn new(w: &PairWeights) -> Self {
        let lo = w.similarities.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = w
            .similarities
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let mut stats = Self {
            positive: Side::default(),
            negative: Side::default(),
            lo,
            hi,
        };
        let width = (hi - lo) / BINS as f64;
        for ((&s, &weight), &positive) in w.similarities.iter().zip(&w.weights).zip(&w.positive) {
            let side = if positive {
                &mut stats.positive
            } else {
                &mut stats.negative
            };
            side.count += 1;
            side.nonzero += usize::from(weight != 0.0);
            side.sum_abs += weight.abs();
            let bin = if width > 0.0 {
                (((s - lo) / width) as usize).min(BINS - 1)
            } else {
                0
            };
            side.bins[bin].0 += 1;
            side.bins[bin].1 += weight;
            side.points.push((s, weight));
        }
        stats
    }
}

/// What `S` holds, in words, and its axis name.
pub fn metric_words(w: &PairWeights) -> (&'static str, &'static str) {
    match w.metric {
        Some(Metric::Cosine) => ("cosine similarity", "similarity"),
        Some(Metric::Dot) => ("dot-product similarity", "similarity"),
        Some(Metric::Euclidean) => ("Euclidean distance", "distance"),
        Some(Metric::SquaredEuclidean) => ("squared Euclidean distance", "distance"),
        _ => ("given similarities", "similarity"),
    }
}
