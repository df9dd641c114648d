//! Face-recognition margin heads on handwritten digits: the same small embedding network
//! trained with plain softmax cross-entropy, with ArcFace and with ElasticFace-Arc+, and
//! scored by held-out accuracy and by Recall@1 of the normalised embeddings (the
//! verification-style evaluation face recognition uses).
//!
//! ```text
//! cargo run --release --example margin_heads_digits                          # full run
//! cargo run --release --example margin_heads_digits -- --epochs 2 --seeds 1  # short (CI)
//! ```
//!
//! Flags: `--epochs N` (else `LOSSKIT_EPOCHS`, else [`DEFAULT_EPOCHS`]), `--seeds N`
//! (else `LOSSKIT_SEEDS`, else [`DEFAULT_SEEDS`]) initialisations.
//!
//! Data: the bundled digits (see `examples/digits/mod.rs`), a stratified split holding
//! out [`TEST_FRACTION`] of each digit, pixels standardised with the training part's
//! statistics.
//!
//! Model: an embedding MLP `64 → 128 → 32` (ReLU) and a class-weight matrix `W` `[10, 32]`,
//! the weight of a bias-free linear layer, trained together by Adam. Softmax CE reads the
//! logits `e·Wᵀ`; the margin heads read the cosines `cos(e_i, w_c)` through
//! `ClassCosines(e, W)`, with scale s = [`SCALE`] (the papers' 64 is tuned for thousands of
//! identities; ten classes want less). ElasticFace-Arc+ takes fresh N(0, 1) draws every
//! step from a generator the run owns, so a run is reproducible. For a seed, the three
//! methods start from the same weights and see the same batches.
//!
//! Scores: held-out accuracy (arg-max logit for CE, arg-max cosine for the margin heads)
//! and Recall@1 — the fraction of test images whose nearest other test image by cosine of
//! the embeddings shows the same digit — mean ± standard deviation over the seeds.

mod common;
mod digits;

use std::time::Instant;

use common::{counts_from_args, stratified_split, SplitMix64};
use dfdx::optim::Adam;
use digits::{load_digits, Digits, DIGITS, PIXELS};
use losskit::prelude::*;
use losskit::{class_cosines, similarity};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Training epochs when neither `--epochs` nor `LOSSKIT_EPOCHS` is given.
const DEFAULT_EPOCHS: usize = 30;
/// Initialisations when neither `--seeds` nor `LOSSKIT_SEEDS` is given.
const DEFAULT_SEEDS: usize = 5;
/// Share of each digit held out for testing.
const TEST_FRACTION: f64 = 0.3;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 2e-3;
/// The margin heads' scale s.
const SCALE: f64 = 16.0;
/// Seed of the split.
const SEED: u64 = 0;

const HIDDEN: usize = 128;
const EMBEDDING: usize = 32;
/// The embedding network and the class weights `W` (one row per digit).
type Net = (
    (Linear<PIXELS, HIDDEN>, ReLU, Linear<HIDDEN, EMBEDDING>),
    UnbiasedLinear<EMBEDDING, DIGITS>,
);
type Model = <Net as BuildOnDevice<Cpu, f32>>::Built;
type Traced = OwnedTape<f32, Cpu>;
type Embeddings<T = NoneTape> = Tensor<(usize, Const<EMBEDDING>), f32, Cpu, T>;

/// How the network is trained.
#[derive(Clone, Copy)]
enum Method {
    CrossEntropy,
    ArcFace,
    ElasticArcPlus,
}

impl Method {
    const ALL: [Method; 3] = [
        Method::CrossEntropy,
        Method::ArcFace,
        Method::ElasticArcPlus,
    ];

    fn label(self) -> &'static str {
        match self {
            Method::CrossEntropy => "softmax CE on e·Wᵀ",
            Method::ArcFace => "ArcFace (s 16, m 0.5)",
            Method::ElasticArcPlus => "ElasticFace-Arc+ (s 16, m 0.5, σ 0.0175)",
        }
    }

    /// Whether the method classifies by cosine (the margin heads) rather than by logit.
    fn by_cosine(self) -> bool {
        !matches!(self, Method::CrossEntropy)
    }

    /// The loss of a batch of embeddings.
    fn loss(
        self,
        model: &Model,
        emb: Embeddings<Traced>,
        labels: &[usize],
        rng: &mut StdRng,
    ) -> Tensor<(), f32, Cpu, Traced> {
        // W on the same tape as the embeddings: its gradient comes back with theirs
        let w = model.1.weight.retaped::<Traced>();
        match self {
            Method::CrossEntropy => {
                SoftmaxCrossEntropy::default().forward(model.1.forward(emb), labels)
            }
            Method::ArcFace => ArcFace::default()
                .with_s(SCALE)
                .forward(ClassCosines(emb, w), labels),
            Method::ElasticArcPlus => {
                let eps: Vec<f32> = standard_normal_draws(rng, labels.len());
                ElasticFaceArc::plus_defaults()
                    .with_s(SCALE)
                    .forward((ClassCosines(emb, w), eps), labels)
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [epochs, seeds] = counts_from_args([("epochs", DEFAULT_EPOCHS), ("seeds", DEFAULT_SEEDS)])?;
    let data = load_digits()?;
    let split = stratified_split(&data, 0..DIGITS, TEST_FRACTION, SEED, |sd| {
        // A pixel constant over the training part is only centred.
        if sd > 1e-6 {
            sd
        } else {
            1.0
        }
    });
    println!(
        "setup: digits, train {} / test {}; embedding MLP {PIXELS}-{HIDDEN}-{EMBEDDING} and \
         class weights W [{DIGITS}, {EMBEDDING}]; Adam lr {LEARNING_RATE}, batch {BATCH}, \
         {epochs} epochs, {seeds} seeds",
        split.train.len(),
        split.test.len(),
    );
    let start = Instant::now();
    let mut scores = vec![(Vec::new(), Vec::new()); Method::ALL.len()];
    for seed in 1..=seeds as u64 {
        let init = Cpu::seed_from_u64(seed).build_module::<Net, f32>();
        for (method, (accuracy, recall)) in Method::ALL.into_iter().zip(&mut scores) {
            let mut model = init.clone();
            train(&mut model, method, &split.train, epochs, seed);
            let (a, r) = evaluate(&model, method, &split.test);
            accuracy.push(a);
            recall.push(r);
        }
    }
    println!("held-out scores, mean ± sd over {seeds} seeds:");
    println!("  {:<42} {:>17} {:>17}", "method", "accuracy", "Recall@1");
    for (method, (accuracy, recall)) in Method::ALL.into_iter().zip(&scores) {
        let (am, asd) = mean_sd(accuracy);
        let (rm, rsd) = mean_sd(recall);
        println!(
            "  {:<42} {am:.4} ± {asd:.4}   {rm:.4} ± {rsd:.4}",
            method.label()
        );
    }
    println!("({:.1}s in all)", start.elapsed().as_secs_f64());
    Ok(())
}

/// Trains `model` with Adam for `epochs` passes over `data` in shuffled batches of
/// [`BATCH`]. The batches depend on `seed` only; ElasticFace's draws come from a
/// generator seeded by it too.
fn train(model: &mut Model, method: Method, data: &Digits, epochs: usize, seed: u64) {
    let dev: Cpu = Default::default();
    let config = AdamConfig {
        lr: LEARNING_RATE,
        ..Default::default()
    };
    let mut opt = Adam::new(model, config);
    let mut grads = model.alloc_grads();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut batches = SplitMix64(seed ^ 0xface);
    let mut draws = StdRng::seed_from_u64(seed ^ 0xe1a5);
    for _ in 0..epochs {
        batches.shuffle(&mut order);
        for rows in order.chunks(BATCH) {
            let (x, labels) = data.batch(&dev, rows);
            let emb = model.0.forward_mut(x.traced(grads));
            grads = method.loss(model, emb, &labels, &mut draws).backward();
            opt.update(model, &grads)
                .expect("every parameter has a gradient");
            model.zero_grads(&mut grads);
        }
    }
}

/// Held-out accuracy and Recall@1 of the normalised embeddings.
fn evaluate(model: &Model, method: Method, data: &Digits) -> (f64, f64) {
    let dev: Cpu = Default::default();
    let all: Vec<usize> = (0..data.len()).collect();
    let (x, labels) = data.batch(&dev, &all);
    let emb = model.0.forward(x);
    let scores = if method.by_cosine() {
        class_cosines(emb.clone(), model.1.weight.clone()).as_vec()
    } else {
        model.1.forward(emb.clone()).as_vec()
    };
    let hits = scores
        .chunks(DIGITS)
        .zip(&labels)
        .filter(|(row, &y)| (0..DIGITS).max_by(|&a, &b| row[a].total_cmp(&row[b])) == Some(y))
        .count();
    let accuracy = hits as f64 / labels.len() as f64;
    (accuracy, recall_at_1(emb, &labels))
}

/// The fraction of rows whose most cosine-similar other row has the same label.
fn recall_at_1(emb: Embeddings, labels: &[usize]) -> f64 {
    let s = similarity(emb, Metric::Cosine).as_vec();
    let n = labels.len();
    let hits = (0..n)
        .filter(|&i| {
            let row = &s[i * n..(i + 1) * n];
            let nearest = (0..n)
                .filter(|&j| j != i)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]));
            nearest.is_some_and(|j| labels[j] == labels[i])
        })
        .count();
    hits as f64 / n as f64
}

/// Mean and sample standard deviation (0 for a single value).
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
