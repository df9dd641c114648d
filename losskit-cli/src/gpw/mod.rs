//! `losskit gpw LOSS`: the pair weights `W = ∂L/∂S` of a pairs loss (General Pair
//! Weighting) on a seeded synthetic batch, as a table by similarity or a PNG plot.

mod batch;
mod plot;
mod stats;
mod table;

use std::path::PathBuf;

use losskit::catalogue::{self, Entry};
use losskit::family::dynamic::{Input, Precision};

use crate::failure::{Failure, Result};
use crate::lookup::{eval_failure, find_loss};
use stats::PairStats;

/// The largest batch `losskit gpw` builds (about `N²` pairs, each a point of the plot).
const MAX_N: usize = 1024;

/// The largest embedding width `losskit gpw` builds.
const MAX_DIM: usize = 4096;

/// The arguments of `losskit gpw`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct GpwArgs {
    /// A pairs loss, by the name `losskit list` shows
    #[arg(value_name = "LOSS")]
    pub loss: String,
    /// Draw a PNG scatter plot of weight against similarity to this file instead of
    /// printing a table
    #[arg(long, value_name = "weights.png")]
    pub out: Option<PathBuf>,
    /// The number of embeddings in the batch
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = count::<2, MAX_N>)]
    pub n: usize,
    /// The number of Gaussian clusters; embedding i is in cluster i mod C, its label
    #[arg(long, value_name = "C", default_value_t = 8, value_parser = count::<1, MAX_N>)]
    pub classes: usize,
    /// The dimension of the embeddings
    #[arg(long, value_name = "D", default_value_t = 16, value_parser = count::<1, MAX_DIM>)]
    pub dim: usize,
    /// The seed of the batch: the same seed gives the same batch
    #[arg(long, value_name = "S", default_value_t = 0, value_parser = seed)]
    pub seed: u64,
}

/// An integer option's value in `MIN..=MAX`; the error completes "`--flag` …".
fn count<const MIN: usize, const MAX: usize>(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(v) if (MIN..=MAX).contains(&v) => Ok(v),
        _ => Err(format!(
            "must be an integer from {MIN} to {MAX}, not `{text}`"
        )),
    }
}

/// The seed's value; the error completes "`--seed` …".
fn seed(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("must be a non-negative integer, not `{text}`"))
}

/// Runs `losskit gpw`; returns what to print.
pub fn run(args: &GpwArgs) -> Result<String> {
    let entry = pairs_loss(&args.loss)?;
    if args.classes > args.n {
        return Err(Failure(format!(
            "`--classes` ({}) must not exceed `--n` ({}): every cluster needs an embedding",
            args.classes, args.n
        )));
    }
    if let Some(path) = &args.out {
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !png {
            return Err(Failure(format!(
                "`--out` must name a .png file, not `{}`",
                path.display()
            )));
        }
    }
    let (embeddings, labels) = batch::synthetic(args.n, args.classes, args.dim, args.seed);
    let inputs = [
        Input::new("embeddings", vec![args.n, args.dim], embeddings),
        Input::new("labels", vec![args.n], labels),
    ];
    let weights = entry
        .pair_weights(&inputs, &[])
        .map_err(|e| eval_failure(&e))?;
    let loss = entry
        .evaluate(&inputs, &[], Precision::F64)
        .map_err(|e| eval_failure(&e))?
        .loss;
    let batch = format!(
        "{} embeddings from {} Gaussian clusters in {} dims (seed {}), labelled by cluster",
        args.n, args.classes, args.dim, args.seed
    );
    let stats = PairStats::new(&weights);
    let Some(path) = &args.out else {
        return Ok(table::text(entry, &weights, &stats, &batch, loss));
    };
    plot::draw(path, entry, &weights, &stats, &batch)?;
    Ok(format!(
        "wrote {}: {} pairs ({} positive, {} negative) of `{}`\n",
        path.display(),
        weights.weights.len(),
        stats.positive.count,
        stats.negative.count,
        entry.name()
    ))
}

/// The loss named `name`, which must be a pairs loss.
fn pairs_loss(name: &str) -> Result<&'static Entry> {
    let entry = find_loss(name)?;
    if entry.has_pair_weights() {
        return Ok(entry);
    }
    let pairs: Vec<String> = catalogue::all()
        .iter()
        .filter(|e| e.has_pair_weights())
        .map(|e| format!("`{}`", e.name()))
        .collect();
    Err(Failure(format!(
        "`{name}` is a `{}` loss; `losskit gpw` shows the pair weights of a `pairs` loss: {}",
        entry.info.family.name(),
        pairs.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked_against_their_range() {
        assert_eq!(count::<2, 10>("2"), Ok(2));
        assert_eq!(count::<2, 10>("10"), Ok(10));
        assert_eq!(
            count::<2, 10>("11"),
            Err("must be an integer from 2 to 10, not `11`".to_string())
        );
        assert!(count::<2, 10>("1").is_err());
        assert!(count::<2, 10>("-3").is_err());
        assert!(count::<2, 10>("two").is_err());
    }

    #[test]
    fn a_seed_is_a_non_negative_integer() {
        assert_eq!(seed("18446744073709551615"), Ok(u64::MAX));
        assert!(seed("-1").unwrap_err().contains("non-negative"));
    }
}
