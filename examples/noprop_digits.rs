//! NoProp-DT on handwritten digits: a few blocks, each trained only on its own local
//! denoising objective (`noprop_dt`), with no gradient crossing blocks and no end-to-end
//! backpropagation; against the same amount of network trained end to end with
//! cross-entropy.
//!
//! ```text
//! cargo run --release --example noprop_digits                # full run
//! cargo run --release --example noprop_digits -- --epochs 2  # short (CI)
//! ```
//!
//! Flags: `--epochs N` (else `LOSSKIT_EPOCHS`, else [`DEFAULT_EPOCHS`]).
//!
//! Data: the bundled digits (see `examples/digits/mod.rs`), a stratified split holding
//! out [`TEST_FRACTION`] of each digit, pixels standardised with the training part's
//! statistics.
//!
//! NoProp (Li, Teh & Pascanu, 2025): the label embeddings are fixed one-hot vectors `u_y`
//! (E = 10), and the schedule is [`cosine_alpha_bar`]`(T)` with `ᾱ₀ ≈ 0` (noise) up to
//! `ᾱ_T = 0.999` (clean). Block `t ∈ 1..=T` is an MLP `(x, z_{t−1}) → 10` logits whose
//! softmax times the embedding table is its guess `û` of the clean embedding; it sees a
//! latent drawn directly from `q(z_{t−1}|y) = N(√ᾱ_{t−1}·u_y, (1 − ᾱ_{t−1})·I)` (no pass
//! through the earlier blocks) and is trained with `NopropDt::for_block(schedule, t)` and
//! its own optimiser. The output classifier, a linear layer on `z_T ~ q(z_T|y)`, is
//! trained with cross-entropy (with fixed embeddings the CE term of each block's loss
//! reaches only the classifier, so one classifier step per batch is the same update).
//!
//! Inference runs the blocks in order from `z₀ ~ N(0, I)`: block `t` guesses `û` from
//! `z_{t−1}`, and `z_t = √ᾱ_t·û + √(1 − ᾱ_t)·ε̂` with the noise `ε̂ = (z_{t−1} −
//! √ᾱ_{t−1}·û)/√(1 − ᾱ_{t−1})` implied by the guess (a deterministic, DDIM-style step;
//! the paper's stochastic step with its `a_t, b_t, c_t` is not reproduced), then the
//! classifier reads `z_T`.
//!
//! Baseline: one MLP `64 → H → 10` per block stacked is not a fair comparison, so the
//! baseline is `64 → H → H → 10` trained end to end with `SoftmaxCrossEntropy`, with the
//! same optimiser, batches and epochs. Score: held-out accuracy of each.

mod common;
mod digits;

use std::time::Instant;

use common::{counts_from_args, stratified_split, SplitMix64};
use dfdx::optim::Adam;
use digits::{load_digits, Digits, DIGITS, PIXELS};
use losskit::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

/// Training epochs when neither `--epochs` nor `LOSSKIT_EPOCHS` is given.
const DEFAULT_EPOCHS: usize = 40;
/// Share of each digit held out for testing.
const TEST_FRACTION: f64 = 0.3;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 2e-3;
const SEED: u64 = 0;
/// The number of NoProp blocks, T.
const BLOCKS: usize = 3;
const HIDDEN: usize = 96;
/// A block's input: the image and the noisy label latent.
const BLOCK_IN: usize = PIXELS + DIGITS;

type Block = (Linear<BLOCK_IN, HIDDEN>, ReLU, Linear<HIDDEN, DIGITS>);
type Classifier = Linear<DIGITS, DIGITS>;
type Baseline = (
    (Linear<PIXELS, HIDDEN>, ReLU),
    (Linear<HIDDEN, HIDDEN>, ReLU),
    Linear<HIDDEN, DIGITS>,
);
/// The built (parameterised) modules.
type BlockNet = <Block as BuildOnDevice<Cpu, f32>>::Built;
type ClassifierNet = <Classifier as BuildOnDevice<Cpu, f32>>::Built;
type BaselineNet = <Baseline as BuildOnDevice<Cpu, f32>>::Built;
type Rows<const F: usize, T = NoneTape> = Tensor<(usize, Const<F>), f32, Cpu, T>;

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
    let schedule = cosine_alpha_bar(BLOCKS);
    println!(
        "setup: digits, train {} / test {}; NoProp-DT with {BLOCKS} blocks {BLOCK_IN}-{HIDDEN}-{DIGITS}, \
         one-hot embeddings, cosine ᾱ = {:?}; baseline {PIXELS}-{HIDDEN}-{HIDDEN}-{DIGITS} with CE; \
         Adam lr {LEARNING_RATE}, batch {BATCH}, {epochs} epochs",
        split.train.len(),
        split.test.len(),
        schedule.iter().map(|a| (a * 1e4).round() / 1e4).collect::<Vec<_>>(),
    );
    let start = Instant::now();
    let noprop = train_noprop(&split.train, &schedule, epochs)?;
    let noprop_accuracy = noprop.accuracy(&split.test, &schedule);
    let baseline = train_baseline(&split.train, epochs);
    let baseline_accuracy = accuracy(&split.test, |x| baseline.forward(x));
    println!("held-out accuracy:");
    println!("  NoProp-DT, each block on its own objective  {noprop_accuracy:.4}");
    println!("  end to end with cross-entropy               {baseline_accuracy:.4}");
    println!("({:.1}s in all)", start.elapsed().as_secs_f64());
    Ok(())
}

/// The trained blocks and output classifier.
struct NoProp {
    blocks: Vec<BlockNet>,
    classifier: ClassifierNet,
}

/// The one-hot embeddings `u_y` of a batch's labels, `[B, 10]`.
fn embeddings(labels: &[usize]) -> Vec<f32> {
    let mut u = vec![0.0; labels.len() * DIGITS];
    for (row, &y) in labels.iter().enumerate() {
        u[row * DIGITS + y] = 1.0;
    }
    u
}

/// `√ᾱ·u + √(1 − ᾱ)·ε`, a draw from `q(z|y)` at schedule value `alpha_bar`.
fn noisy(u: &[f32], alpha_bar: f64, rng: &mut StdRng) -> Vec<f32> {
    let eps: Vec<f32> = standard_normal_draws(rng, u.len());
    let (a, b) = (alpha_bar.sqrt() as f32, (1.0 - alpha_bar).sqrt() as f32);
    u.iter().zip(&eps).map(|(u, e)| a * u + b * e).collect()
}

/// Each image's pixels followed by its latent, `[B, 74]`.
fn block_input(x: &[f32], z: &[f32]) -> Vec<f32> {
    x.chunks(PIXELS)
        .zip(z.chunks(DIGITS))
        .flat_map(|(x, z)| x.iter().chain(z).copied())
        .collect()
}

fn adam_config() -> AdamConfig {
    AdamConfig {
        lr: LEARNING_RATE,
        ..Default::default()
    }
}

/// Trains every block on its own NoProp-DT objective and the classifier on CE, batch by
/// batch; each has its own optimiser and gradients, so nothing crosses blocks.
fn train_noprop(data: &Digits, schedule: &[f64], epochs: usize) -> Result<NoProp, LossError> {
    let dev = Cpu::seed_from_u64(SEED);
    let mut blocks: Vec<BlockNet> = (0..BLOCKS)
        .map(|_| dev.build_module::<Block, f32>())
        .collect();
    let mut classifier = dev.build_module::<Classifier, f32>();
    let losses: Vec<NopropDt> = (1..=BLOCKS)
        .map(|t| NopropDt::for_block(schedule, t))
        .collect::<Result<_, _>>()?;
    let mut opts: Vec<_> = blocks.iter().map(|b| Adam::new(b, adam_config())).collect();
    let mut grads: Vec<_> = blocks.iter().map(|b| b.alloc_grads()).collect();
    let mut classifier_opt = Adam::new(&classifier, adam_config());
    let mut classifier_grads = classifier.alloc_grads();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut shuffle = SplitMix64(SEED ^ 0x9e37);
    let mut rng = StdRng::seed_from_u64(SEED);
    for _ in 0..epochs {
        shuffle.shuffle(&mut order);
        for rows in order.chunks(BATCH) {
            let (x, labels) = data.batch(&dev, rows);
            let x = x.as_vec();
            let u = embeddings(&labels);
            let target: Rows<DIGITS> = dev.tensor_from_vec(u.clone(), (rows.len(), Const));
            for (t, block) in blocks.iter_mut().enumerate() {
                // block t + 1 denoises a latent drawn at ᾱ_t, straight from q
                let z = noisy(&u, schedule[t], &mut rng);
                let input: Rows<BLOCK_IN> =
                    dev.tensor_from_vec(block_input(&x, &z), (rows.len(), Const));
                let logits = block.forward_mut(input.traced(grads[t].clone()));
                // û = softmax(logits) · W_embed, with the identity as the embedding table
                let u_hat = logits.softmax::<Axis<1>>();
                let g = losses[t].try_forward(u_hat, &target)?.backward();
                opts[t]
                    .update(block, &g)
                    .expect("every parameter has a gradient");
                block.zero_grads(&mut grads[t]);
            }
            let z_clean = noisy(&u, schedule[BLOCKS], &mut rng);
            let z_clean: Rows<DIGITS> = dev.tensor_from_vec(z_clean, (rows.len(), Const));
            let logits = classifier.forward_mut(z_clean.traced(classifier_grads.clone()));
            let g = SoftmaxCrossEntropy::default()
                .try_forward(logits, &labels[..])?
                .backward();
            classifier_opt
                .update(&mut classifier, &g)
                .expect("every parameter has a gradient");
            classifier.zero_grads(&mut classifier_grads);
        }
    }
    Ok(NoProp { blocks, classifier })
}

impl NoProp {
    /// The held-out accuracy of the blocks run in order from pure noise, then the
    /// classifier on `z_T`.
    fn accuracy(&self, data: &Digits, schedule: &[f64]) -> f64 {
        let dev: Cpu = Default::default();
        let all: Vec<usize> = (0..data.len()).collect();
        let (x, labels) = data.batch(&dev, &all);
        let x = x.as_vec();
        let mut rng = StdRng::seed_from_u64(SEED ^ 1);
        let mut z: Vec<f32> = standard_normal_draws(&mut rng, labels.len() * DIGITS);
        for (t, block) in self.blocks.iter().enumerate() {
            let input: Rows<BLOCK_IN> =
                dev.tensor_from_vec(block_input(&x, &z), (labels.len(), Const));
            let u_hat = block.forward(input).softmax::<Axis<1>>().as_vec();
            let (prev, next) = (schedule[t], schedule[t + 1]);
            let implied =
                |z: f32, u: f32| (z - prev.sqrt() as f32 * u) / (1.0 - prev).sqrt() as f32;
            z = z
                .iter()
                .zip(&u_hat)
                .map(|(&z, &u)| next.sqrt() as f32 * u + (1.0 - next).sqrt() as f32 * implied(z, u))
                .collect();
        }
        let z: Rows<DIGITS> = dev.tensor_from_vec(z, (labels.len(), Const));
        hits(&self.classifier.forward(z).as_vec(), &labels)
    }
}

/// The baseline MLP, trained end to end with cross-entropy.
fn train_baseline(data: &Digits, epochs: usize) -> BaselineNet {
    let dev = Cpu::seed_from_u64(SEED);
    let mut model = dev.build_module::<Baseline, f32>();
    let mut opt = Adam::new(&model, adam_config());
    let mut grads = model.alloc_grads();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut shuffle = SplitMix64(SEED ^ 0x9e37);
    for _ in 0..epochs {
        shuffle.shuffle(&mut order);
        for rows in order.chunks(BATCH) {
            let (x, labels) = data.batch(&dev, rows);
            let logits = model.forward_mut(x.traced(grads));
            grads = SoftmaxCrossEntropy::default()
                .forward(logits, &labels[..])
                .backward();
            opt.update(&mut model, &grads)
                .expect("every parameter has a gradient");
            model.zero_grads(&mut grads);
        }
    }
    model
}

/// The held-out accuracy of `forward`'s logits.
fn accuracy(data: &Digits, forward: impl Fn(Rows<PIXELS>) -> Rows<DIGITS>) -> f64 {
    let dev: Cpu = Default::default();
    let all: Vec<usize> = (0..data.len()).collect();
    let (x, labels) = data.batch(&dev, &all);
    hits(&forward(x).as_vec(), &labels)
}

/// The fraction of rows of `logits` whose arg-max is the label.
fn hits(logits: &[f32], labels: &[usize]) -> f64 {
    let correct = logits
        .chunks(DIGITS)
        .zip(labels)
        .filter(|(row, &y)| (0..DIGITS).max_by(|&a, &b| row[a].total_cmp(&row[b])) == Some(y))
        .count();
    correct as f64 / labels.len() as f64
}
