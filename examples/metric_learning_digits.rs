//! Deep metric learning on handwritten digits: a small MLP embedding trained with the
//! Multi-Similarity loss on P×K batches, scored by held-out Recall@1.
//!
//! ```text
//! cargo run --release --example metric_learning_digits                # full run
//! cargo run --release --example metric_learning_digits -- --epochs 3  # short (CI)
//! ```
//!
//! The number of epochs comes from `--epochs N`, else the `LOSSKIT_EPOCHS` environment
//! variable, else [`DEFAULT_EPOCHS`].
//!
//! Data: `data/digits.csv` (UCI optdigits, test part, see `data/README.md`): 1797 8×8
//! images as 64 pixel counts 0–16, digits 0–9. A stratified split holds out
//! [`TEST_FRACTION`] of each digit; every pixel is standardised with the training part's
//! mean and standard deviation (a pixel constant over the training part is only
//! centred).
//!
//! Model: `64 → 128 → 32` with a ReLU, its 32-d output used as the embedding. The loss,
//! `MultiSimilarity::default()`, compares the embeddings by cosine similarity (the op
//! normalises the rows itself), with the official mining rule and α = 2, β = 40, λ = 0.5,
//! ε = 0.1.
//!
//! Batches: P×K sampling, as metric learning needs: every batch holds [`K`] images of each
//! of the [`P`] digits, so every anchor has K − 1 positives and (P − 1)·K negatives. Each
//! digit's training images are drawn without replacement from a shuffled queue, refilled
//! and reshuffled when it runs out; an epoch is `⌈train size / (P·K)⌉` batches.
//!
//! Score: Recall@1 on the test part — the fraction of test images whose nearest other
//! test image (by cosine similarity of the embeddings, excluding itself) shows the same
//! digit — before training (random initial weights), after training, and, for reference,
//! on the standardised pixels themselves. Everything is a pure function of [`SEED`]: two
//! runs print the same figures (the timings aside).

mod common;
mod digits;

use std::time::Instant;

use common::{counts_from_args, stratified_split, SplitMix64};
use dfdx::optim::Adam;
use digits::{load_digits, DIGITS, PIXELS};
use losskit::prelude::*;

/// Training epochs when neither `--epochs` nor `LOSSKIT_EPOCHS` is given.
const DEFAULT_EPOCHS: usize = 40;
/// Share of each digit held out for testing.
const TEST_FRACTION: f64 = 0.3;
/// Classes per batch (P of P×K): all ten digits.
const P: usize = 10;
/// Images per class in a batch (K of P×K).
const K: usize = 8;
const LEARNING_RATE: f64 = 1e-3;
const SEED: u64 = 0;

const FEATURES: usize = PIXELS;
const HIDDEN: usize = 128;
const EMBEDDING: usize = 32;
const CLASSES: usize = DIGITS;
type Mlp = (Linear<FEATURES, HIDDEN>, ReLU, Linear<HIDDEN, EMBEDDING>);
type Model = <Mlp as BuildOnDevice<Cpu, f32>>::Built;
/// Images (standardised pixels once split) and their digits.
type Dataset = digits::Digits;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [epochs] = counts_from_args([("epochs", DEFAULT_EPOCHS)])?;
    let data = load_digits()?;
    let split = stratified_split(&data, 0..CLASSES, TEST_FRACTION, SEED, |sd| {
        // A pixel constant over the training part is only centred.
        if sd > 1e-6 {
            sd
        } else {
            1.0
        }
    });
    let batches_per_epoch = split.train.len().div_ceil(P * K);
    println!(
        "setup: UCI optdigits (test part), {} images × {FEATURES} pixels, {CLASSES} digits; \
         stratified split train {} / test {} (seed {SEED}); MLP {FEATURES}-{HIDDEN}-{EMBEDDING} \
         (ReLU); MultiSimilarity::default() (cosine, α 2, β 40, λ 0.5, ε 0.1); P×K batches \
         {P} digits × {K} images, {batches_per_epoch} per epoch; Adam lr {LEARNING_RATE}; \
         {epochs} epochs",
        data.len(),
        split.train.len(),
        split.test.len(),
    );

    let dev = Cpu::seed_from_u64(SEED);
    let mut model = dev.build_module::<Mlp, f32>();
    let pixels = recall_at_1(&split.test.rows, &split.test.labels);
    let before = recall_at_1(&embed(&model, &split.test), &split.test.labels);

    let start = Instant::now();
    let loss = MultiSimilarity::default();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: LEARNING_RATE,
            ..Default::default()
        },
    );
    let mut sampler = PkSampler::new(&split.train.labels, SEED ^ 0x5eed);
    let mut epoch_losses = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        let mut total = 0.0;
        for _ in 0..batches_per_epoch {
            let indices = sampler.batch();
            let (x, labels) = split.train.batch(&dev, &indices);
            let emb = model.forward_mut(x.traced(grads));
            let value = loss.forward(emb, &labels);
            total += value.array();
            grads = value.backward();
            opt.update(&mut model, &grads)
                .expect("every parameter has a gradient");
            model.zero_grads(&mut grads);
        }
        epoch_losses.push(total / batches_per_epoch as f32);
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = recall_at_1(&embed(&model, &split.test), &split.test.labels);

    println!(
        "training loss (mean over an epoch's batches): first epoch {:.4}, last epoch {:.4}",
        epoch_losses.first().copied().unwrap_or(f32::NAN),
        epoch_losses.last().copied().unwrap_or(f32::NAN)
    );
    println!(
        "held-out Recall@1 (cosine nearest neighbour among the {} test images, self \
         excluded):",
        split.test.len()
    );
    println!("  standardised pixels (64-d, no model)  {pixels:.4}");
    println!("  embedding before training (32-d)      {before:.4}");
    println!("  embedding after training  (32-d)      {after:.4}   ({seconds:.1}s of training)");
    Ok(())
}

/// The test images' embeddings, one row of [`EMBEDDING`] numbers per image.
fn embed(model: &Model, data: &Dataset) -> Vec<Vec<f32>> {
    let dev: Cpu = Default::default();
    let all: Vec<usize> = (0..data.len()).collect();
    let (x, _) = data.batch(&dev, &all);
    let flat = model.forward(x).as_vec();
    flat.chunks(EMBEDDING).map(<[f32]>::to_vec).collect()
}

/// The fraction of rows whose most cosine-similar other row has the same label.
fn recall_at_1<R: AsRef<[f32]>>(rows: &[R], labels: &[usize]) -> f64 {
    let unit: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let r = r.as_ref();
            let norm = r
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            r.iter().map(|&v| f64::from(v) / norm).collect()
        })
        .collect();
    let hits = (0..unit.len())
        .filter(|&i| {
            let nearest = (0..unit.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let s: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum();
                    (s, j)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, j)| j);
            nearest.is_some_and(|j| labels[j] == labels[i])
        })
        .count();
    hits as f64 / unit.len() as f64
}

/// P×K batches: [`K`] images of each of the [`P`] = all ten digits, drawn without
/// replacement from one shuffled queue per digit, reshuffled when it runs out.
struct PkSampler {
    queues: Vec<Vec<usize>>,
    next: Vec<usize>,
    rng: SplitMix64,
}

impl PkSampler {
    fn new(labels: &[usize], seed: u64) -> Self {
        let mut queues = vec![Vec::new(); CLASSES];
        for (i, &y) in labels.iter().enumerate() {
            queues[y].push(i);
        }
        assert!(
            queues.iter().all(|q| q.len() >= K),
            "every digit needs at least K = {K} training images"
        );
        let mut rng = SplitMix64(seed);
        for q in &mut queues {
            rng.shuffle(q);
        }
        Self {
            next: vec![0; CLASSES],
            queues,
            rng,
        }
    }

    fn batch(&mut self) -> Vec<usize> {
        let mut out = Vec::with_capacity(P * K);
        for class in 0..P {
            for _ in 0..K {
                if self.next[class] == self.queues[class].len() {
                    self.rng.shuffle(&mut self.queues[class]);
                    self.next[class] = 0;
                }
                out.push(self.queues[class][self.next[class]]);
                self.next[class] += 1;
            }
        }
        out
    }
}
