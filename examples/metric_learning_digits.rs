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

use std::time::Instant;

use dfdx::optim::Adam;
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

const FEATURES: usize = 64;
const HIDDEN: usize = 128;
const EMBEDDING: usize = 32;
const CLASSES: usize = 10;
type Mlp = (Linear<FEATURES, HIDDEN>, ReLU, Linear<HIDDEN, EMBEDDING>);
type Model = <Mlp as BuildOnDevice<Cpu, f32>>::Built;
type Input = Tensor<(usize, Const<FEATURES>), f32, Cpu>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs = epochs_from_args()?;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");
    let data = load_digits(path)?;
    let split = stratified_split(&data, TEST_FRACTION, SEED);
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

/// Images (standardised pixels) and their digits.
#[derive(Clone, Default)]
struct Dataset {
    rows: Vec<[f32; FEATURES]>,
    labels: Vec<usize>,
}

impl Dataset {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn push(&mut self, row: [f32; FEATURES], label: usize) {
        self.rows.push(row);
        self.labels.push(label);
    }
    /// The rows at `indices` as an `[n, 64]` input, with their labels.
    fn batch(&self, dev: &Cpu, indices: &[usize]) -> (Input, Vec<usize>) {
        let x: Vec<f32> = indices.iter().flat_map(|&i| self.rows[i]).collect();
        let y = indices.iter().map(|&i| self.labels[i]).collect();
        (
            dev.tensor_from_vec(x, (indices.len(), Const::<FEATURES>)),
            y,
        )
    }
}

/// Parses `digits.csv`: no header; 64 pixel counts then the digit on each line.
fn load_digits(path: &str) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut data = Dataset::default();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |what: &str| format!("{path}:{}: {what}", line_no + 1);
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != FEATURES + 1 {
            return Err(bad(&format!(
                "{} fields, expected {}",
                fields.len(),
                FEATURES + 1
            )));
        }
        let mut row = [0.0f32; FEATURES];
        for (value, field) in row.iter_mut().zip(&fields) {
            *value = field
                .trim()
                .parse()
                .map_err(|_| bad(&format!("bad number {field:?}")))?;
        }
        let digit: usize = fields[FEATURES]
            .trim()
            .parse()
            .map_err(|_| bad("bad digit"))?;
        if digit >= CLASSES {
            return Err(bad(&format!("digit {digit} out of range")));
        }
        data.push(row, digit);
    }
    if data.len() == 0 {
        return Err(format!("{path}: no rows"));
    }
    Ok(data)
}

struct Split {
    train: Dataset,
    test: Dataset,
}

/// Shuffles each digit with `seed` and holds out `test_fraction` of it (rounded); then
/// standardises every pixel with the mean and standard deviation of the training part
/// (a pixel constant there is only centred).
fn stratified_split(data: &Dataset, test_fraction: f64, seed: u64) -> Split {
    let mut rng = SplitMix64(seed);
    let (mut train, mut test) = (Dataset::default(), Dataset::default());
    for class in 0..CLASSES {
        let mut idx: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] == class)
            .collect();
        rng.shuffle(&mut idx);
        let n_test = (idx.len() as f64 * test_fraction).round() as usize;
        for (k, &i) in idx.iter().enumerate() {
            let part = if k < n_test { &mut test } else { &mut train };
            part.push(data.rows[i], class);
        }
    }
    let n = train.len() as f64;
    let mut mean = [0.0f64; FEATURES];
    let mut var = [0.0f64; FEATURES];
    for row in &train.rows {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v) / n;
        }
    }
    for row in &train.rows {
        for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
            *s += (f64::from(v) - m).powi(2) / n;
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|&v| if v.sqrt() > 1e-6 { v.sqrt() } else { 1.0 })
        .collect();
    for part in [&mut train, &mut test] {
        for row in &mut part.rows {
            for ((v, &m), &s) in row.iter_mut().zip(&mean).zip(&scale) {
                *v = ((f64::from(*v) - m) / s) as f32;
            }
        }
    }
    Split { train, test }
}

/// A tiny, seedable generator (SplitMix64), so the example needs nothing beyond std.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// `--epochs N` / `--epochs=N`, else `LOSSKIT_EPOCHS`, else the default.
fn epochs_from_args() -> Result<usize, String> {
    let parse = |s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("epochs must be a positive integer, got {s:?}"))
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, n] if flag == "--epochs" => return parse(n),
        [arg] if arg.starts_with("--epochs=") => return parse(&arg["--epochs=".len()..]),
        _ => {
            return Err(format!(
                "unexpected arguments {args:?}; usage: metric_learning_digits [--epochs N]"
            ))
        }
    }
    match std::env::var("LOSSKIT_EPOCHS") {
        Ok(v) => parse(&v),
        Err(_) => Ok(DEFAULT_EPOCHS),
    }
}
