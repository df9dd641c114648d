//! Self-supervised contrastive pre-training on handwritten digits: no labels in training,
//! two random augmentations of every image as its two views, a small MLP embedding
//! trained with a multi-view contrastive loss, then scored by a held-out k-nearest-
//! neighbour probe that uses the labels only to evaluate.
//!
//! ```text
//! cargo run --release --example contrastive_digits                # full run
//! cargo run --release --example contrastive_digits -- --epochs 2  # short (CI)
//! ```
//!
//! The number of epochs comes from `--epochs N`, else the `LOSSKIT_EPOCHS` environment
//! variable, else [`DEFAULT_EPOCHS`].
//!
//! Data: `data/digits.csv` (UCI optdigits, test part), 1797 8×8 images; a stratified split
//! holds out [`TEST_FRACTION`] of each digit, and every pixel is standardised with the
//! training part's statistics. The training part's digits are never read by the losses.
//!
//! Views: each image is augmented twice, independently: shifted by one pixel or none in
//! each direction (the pixels that leave the 8×8 grid are dropped, the new ones are 0,
//! the standardised mean) and given Gaussian pixel noise of standard deviation
//! [`NOISE`]. The batch is `Views([2, B, 32])`, the embeddings of the two views: under
//! `SelfSupervised`, the positives of a row are the other view of its image.
//!
//! Losses, each from the same initial weights:
//! - `NtXent` (SimCLR's loss): each row against the other view of its image, every other
//!   image's rows as negatives;
//! - `MvDhel`: alignment across the two views, uniformity within each view;
//! - `IsogclrUnimodal`: NT-Xent's robust cousin with a temperature learned per training
//!   image, kept in the loss's per-sample state. Halfway through, that state is saved to a
//!   JSON file, the loss is dropped, and a fresh one reloads the file and carries on: what
//!   resuming a training run looks like.
//!
//! Score: the accuracy of a 5-nearest-neighbour vote (cosine similarity of the embeddings)
//! of each test image among the training images, before training (random initial
//! weights), after training with each loss, and on the standardised pixels themselves.
//! Everything is a pure function of [`SEED`].

mod common;
mod digits;

use std::time::Instant;

use common::{counts_from_args, stratified_split, SplitMix64};
use dfdx::optim::Adam;
use digits::{load_digits, DIGITS, PIXELS};
use losskit::prelude::*;

/// Training epochs when neither `--epochs` nor `LOSSKIT_EPOCHS` is given.
const DEFAULT_EPOCHS: usize = 200;
/// Share of each digit held out for testing.
const TEST_FRACTION: f64 = 0.3;
/// Images per batch (each seen in two views: 2·B rows).
const BATCH: usize = 128;
/// Standard deviation of the pixel noise, in standardised units.
const NOISE: f64 = 0.3;
/// Neighbours in the k-NN probe.
const NEIGHBOURS: usize = 5;
/// The losses' temperature.
const TAU: f64 = 0.2;
const LEARNING_RATE: f64 = 1e-3;
const SEED: u64 = 0;

const SIDE: usize = 8;
const HIDDEN: usize = 128;
const EMBEDDING: usize = 32;
type Mlp = (Linear<PIXELS, HIDDEN>, ReLU, Linear<HIDDEN, EMBEDDING>);
type Model = <Mlp as BuildOnDevice<Cpu, f32>>::Built;
type Dataset = digits::Digits;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [epochs] = counts_from_args([("epochs", DEFAULT_EPOCHS)])?;
    let data = load_digits()?;
    let split = stratified_split(&data, 0..DIGITS, TEST_FRACTION, SEED, |sd| {
        if sd > 1e-6 {
            sd
        } else {
            1.0
        }
    });
    let batches = split.train.len() / BATCH;
    println!(
        "setup: UCI optdigits (test part), train {} / test {} images (seed {SEED}); MLP \
         {PIXELS}-{HIDDEN}-{EMBEDDING} (ReLU); two views per image (one-pixel shifts, noise σ \
         {NOISE}); {batches} batches of {BATCH} images per epoch; Adam lr {LEARNING_RATE}; τ \
         {TAU}; {epochs} epochs; no labels in training",
        split.train.len(),
        split.test.len(),
    );
    let dev = Cpu::seed_from_u64(SEED);
    let initial = dev.build_module::<Mlp, f32>();
    let knn = |rows: &[Vec<f32>], test: &[Vec<f32>]| {
        knn_accuracy(rows, &split.train.labels, test, &split.test.labels)
    };
    let pixels: Vec<Vec<f32>> = split.train.rows.iter().map(|r| r.to_vec()).collect();
    let test_pixels: Vec<Vec<f32>> = split.test.rows.iter().map(|r| r.to_vec()).collect();
    println!("held-out {NEIGHBOURS}-NN accuracy (cosine, test images against training images):");
    println!(
        "  standardised pixels (64-d, no model)   {:.4}",
        knn(&pixels, &test_pixels)
    );
    println!(
        "  embedding before training (32-d)       {:.4}",
        knn(
            &embed(&initial, &split.train),
            &embed(&initial, &split.test)
        )
    );
    let nt_xent = NtXent::default().with_tau(TAU);
    let mut model = initial.clone();
    let run = train(&mut model, &split.train, epochs, &mut |z, _, _| {
        Ok(nt_xent.forward(Views(z), &SelfSupervised))
    })?;
    report("nt_xent", &model, run, &knn, &split);
    let dhel = MvDhel::default().with_tau(TAU);
    let mut model = initial.clone();
    let run = train(&mut model, &split.train, epochs, &mut |z, _, _| {
        Ok(dhel.forward(Views(z), &SelfSupervised))
    })?;
    report("mv_dhel", &model, run, &knn, &split);
    let saved = std::env::temp_dir().join("losskit_contrastive_digits_isogclr.json");
    let mut isogclr = IsogclrUnimodal::default().with_dataset_size(split.train.len());
    let mut model = initial.clone();
    let run = train(&mut model, &split.train, epochs, &mut |z, ids, epoch| {
        if epoch == epochs / 2 && isogclr.epoch < epoch as f64 {
            // save the state, drop the loss, and resume from the file
            std::fs::write(&saved, serde_json::to_string(&isogclr.state.get())?)?;
            let state: SampleState = serde_json::from_str(&std::fs::read_to_string(&saved)?)?;
            isogclr = IsogclrUnimodal::default();
            isogclr.state.set(state)?;
            let tau = isogclr.state.get().field("tau").map_or(f64::NAN, mean);
            println!(
                "  (iSogCLR: state of {} images saved to {} before epoch {epoch}, reloaded; mean τ {tau:.4})",
                split.train.len(),
                saved.display()
            );
        }
        isogclr.epoch = epoch as f64;
        Ok(isogclr.forward(WithIds(Views(z), ids), &SelfSupervised))
    })?;
    report("isogclr", &model, run, &knn, &split);
    let tau = isogclr.state.get().field("tau").map_or(f64::NAN, mean);
    println!("  (iSogCLR: mean learned τ after training {tau:.4}, from 0.1)");
    Ok(())
}

/// The k-NN accuracy of test embeddings against training embeddings.
type Knn<'a> = dyn Fn(&[Vec<f32>], &[Vec<f32>]) -> f64 + 'a;

/// Prints the k-NN accuracy of `model` trained with the loss `name`, and how the training
/// went: the mean loss of its first and last epochs, and its seconds.
fn report(
    name: &str,
    model: &Model,
    (first, last, seconds): (f32, f32, f64),
    knn: &Knn<'_>,
    split: &common::Split<PIXELS, usize>,
) {
    let accuracy = knn(&embed(model, &split.train), &embed(model, &split.test));
    println!(
        "  after {name:<10} (32-d)                {accuracy:.4}   (loss {first:.4} → {last:.4}, \
         {seconds:.1}s)"
    );
}

/// The views of a batch, on the model's tape.
type ViewsBatch = Tensor<(Const<2>, usize, Const<EMBEDDING>), f32, Cpu, OwnedTape<f32, Cpu>>;
/// A batch's loss, on the model's tape.
type BatchLoss = Tensor<(), f32, Cpu, OwnedTape<f32, Cpu>>;
/// A training step's loss from the batch's views, their dataset ids and the epoch.
type Step<'a> =
    dyn FnMut(ViewsBatch, &[usize], usize) -> Result<BatchLoss, Box<dyn std::error::Error>> + 'a;

/// Trains `model` on two views of every batch with the loss `step` gives; returns the
/// mean loss of the first and last epochs and the seconds taken.
fn train(
    model: &mut Model,
    data: &Dataset,
    epochs: usize,
    step: &mut Step<'_>,
) -> Result<(f32, f32, f64), Box<dyn std::error::Error>> {
    let dev: Cpu = Default::default();
    let start = Instant::now();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(
        &*model,
        AdamConfig {
            lr: LEARNING_RATE,
            ..Default::default()
        },
    );
    let mut rng = SplitMix64(SEED ^ 0xc0ffee);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for epoch in 0..epochs {
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let chunks = order.chunks_exact(BATCH);
        let count = chunks.len();
        for ids in chunks {
            let mut pixels = Vec::with_capacity(2 * BATCH * PIXELS);
            for _view in 0..2 {
                for &i in ids {
                    pixels.extend(augment(&data.rows[i], &mut rng));
                }
            }
            let x: Tensor<(usize, Const<PIXELS>), f32, Cpu> =
                dev.tensor_from_vec(pixels, (2 * BATCH, Const));
            let z = model.forward_mut(x.traced(grads));
            let views = z.reshape_like(&(Const::<2>, BATCH, Const::<EMBEDDING>));
            let value = step(views, ids, epoch)?;
            total += value.array();
            grads = value.backward();
            opt.update(model, &grads)
                .expect("every parameter has a gradient");
            model.zero_grads(&mut grads);
        }
        let mean = total / count as f32;
        if epoch == 0 {
            first = mean;
        }
        last = mean;
    }
    Ok((first, last, start.elapsed().as_secs_f64()))
}

/// The mean of `xs`.
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// One random view of an image: a shift by −1, 0 or +1 pixel along each axis (pixels
/// shifted in are 0), plus Gaussian noise of standard deviation [`NOISE`].
fn augment(image: &[f32; PIXELS], rng: &mut SplitMix64) -> [f32; PIXELS] {
    let mut step = || (rng.next_u64() % 3) as isize - 1;
    let (dy, dx) = (step(), step());
    let mut out = [0.0; PIXELS];
    for y in 0..SIDE as isize {
        for x in 0..SIDE as isize {
            let (sy, sx) = (y - dy, x - dx);
            if (0..SIDE as isize).contains(&sy) && (0..SIDE as isize).contains(&sx) {
                out[y as usize * SIDE + x as usize] = image[sy as usize * SIDE + sx as usize];
            }
        }
    }
    for v in &mut out {
        *v += (NOISE * normal(rng)) as f32;
    }
    out
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let uniform =
        |rng: &mut SplitMix64| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u, v) = (uniform(rng), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The embeddings of every image of `data`, one row each.
fn embed(model: &Model, data: &Dataset) -> Vec<Vec<f32>> {
    let dev: Cpu = Default::default();
    let all: Vec<usize> = (0..data.len()).collect();
    let (x, _) = data.batch(&dev, &all);
    let flat = model.forward(x).as_vec();
    flat.chunks(EMBEDDING).map(<[f32]>::to_vec).collect()
}

/// The share of `test` rows whose [`NEIGHBOURS`] most cosine-similar `train` rows vote
/// for their label (ties to the smaller label).
fn knn_accuracy(train: &[Vec<f32>], labels: &[usize], test: &[Vec<f32>], truth: &[usize]) -> f64 {
    let unit = |r: &Vec<f32>| {
        let norm = r
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        r.iter().map(|&v| f64::from(v) / norm).collect::<Vec<f64>>()
    };
    let train: Vec<Vec<f64>> = train.iter().map(unit).collect();
    let hits = test
        .iter()
        .zip(truth)
        .filter(|(row, &want)| {
            let row = unit(row);
            let mut scored: Vec<(f64, usize)> = train
                .iter()
                .zip(labels)
                .map(|(t, &y)| (t.iter().zip(&row).map(|(a, b)| a * b).sum(), y))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut votes = [0usize; DIGITS];
            for &(_, y) in scored.iter().take(NEIGHBOURS) {
                votes[y] += 1;
            }
            let best = (0..DIGITS).max_by_key(|&d| (votes[d], std::cmp::Reverse(d)));
            best == Some(want)
        })
        .count();
    hits as f64 / test.len() as f64
}
