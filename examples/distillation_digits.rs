//! Knowledge distillation on handwritten digits: a wide teacher MLP trained with
//! cross-entropy, and a narrow student trained three ways from the same initial weights —
//! cross-entropy alone, cross-entropy plus KD-KL to the teacher, and the Dual-Head KD total
//! (cross-entropy on the main head, BinaryKL-Norm to the teacher on an auxiliary head).
//!
//! ```text
//! cargo run --release --example distillation_digits                          # full run
//! cargo run --release --example distillation_digits -- --epochs 2 --seeds 1  # short (CI)
//! ```
//!
//! Flags: `--epochs N` (else `LOSSKIT_EPOCHS`, else [`DEFAULT_EPOCHS`]) for every model,
//! `--seeds N` (else `LOSSKIT_SEEDS`, else [`DEFAULT_SEEDS`]) student initialisations.
//!
//! Data: the bundled digits (see `examples/digits/mod.rs`), a stratified split holding
//! out [`TEST_FRACTION`] of each digit, pixels standardised with the training part's
//! statistics.
//!
//! Models: the teacher is `64 → 256 → 10` (ReLU), trained once; its logits on the
//! training images are computed once, in inference, and are a constant input of the
//! distillation losses. The student is `64 → 12` (ReLU) followed by two linear heads
//! `12 → 10`: the main head, which is the one evaluated, and an auxiliary head, which only
//! the DHKD run trains (the official default `--linear` head). For a seed, the three
//! students start from the same weights and see the same batches.
//!
//! Losses: `SoftmaxCrossEntropy`; `SoftmaxCrossEntropy + KdKl` (T = 4, the official
//! `--kd_T`); `Dhkd::default()` (γ = 1, α = 1, T = 2). The official DHKD recipe also aligns
//! the two losses' gradients in its optimiser; that step is not part of the loss and is
//! not used here.
//!
//! Score: held-out accuracy of the main head, mean ± standard deviation over the seeds.

mod common;
mod digits;

use std::time::Instant;

use common::{counts_from_args, stratified_split, SplitMix64};
use dfdx::optim::Adam;
use digits::{load_digits, Digits, DIGITS, PIXELS};
use losskit::prelude::*;

/// Training epochs (teacher and students) when neither `--epochs` nor `LOSSKIT_EPOCHS`
/// is given.
const DEFAULT_EPOCHS: usize = 30;
/// Student initialisations when neither `--seeds` nor `LOSSKIT_SEEDS` is given.
const DEFAULT_SEEDS: usize = 5;
/// Share of each digit held out for testing.
const TEST_FRACTION: f64 = 0.3;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 2e-3;
/// Seed of the split and of the teacher.
const SEED: u64 = 0;

const TEACHER_HIDDEN: usize = 256;
const STUDENT_HIDDEN: usize = 12;
type TeacherMlp = (
    Linear<PIXELS, TEACHER_HIDDEN>,
    ReLU,
    Linear<TEACHER_HIDDEN, DIGITS>,
);
/// A shared backbone and two heads: `(main, auxiliary)` logits.
type StudentMlp = (
    (Linear<PIXELS, STUDENT_HIDDEN>, ReLU),
    SplitInto<(
        Linear<STUDENT_HIDDEN, DIGITS>,
        Linear<STUDENT_HIDDEN, DIGITS>,
    )>,
);
type Logits<T = NoneTape> = Tensor<(usize, Const<DIGITS>), f32, Cpu, T>;
type Traced = OwnedTape<f32, Cpu>;

/// How a student is trained.
#[derive(Clone, Copy)]
enum Method {
    CrossEntropy,
    KdKl,
    Dhkd,
}

impl Method {
    const ALL: [Method; 3] = [Method::CrossEntropy, Method::KdKl, Method::Dhkd];

    fn label(self) -> &'static str {
        match self {
            Method::CrossEntropy => "CE alone",
            Method::KdKl => "CE + KD-KL (T 4)",
            Method::Dhkd => "DHKD (CE + BinaryKL-Norm on aux head, T 2)",
        }
    }

    /// The loss of a batch, from the student's two heads and the teacher's logits.
    fn loss(
        self,
        (main, aux): (Logits<Traced>, Logits<Traced>),
        teacher: Logits,
        labels: &[usize],
    ) -> Tensor<(), f32, Cpu, Traced> {
        let ce = SoftmaxCrossEntropy::default();
        match self {
            Method::CrossEntropy => ce.forward(main, labels),
            Method::KdKl => {
                let kd = KdKl::default().forward((main.retaped::<Traced>(), teacher), labels);
                ce.forward(main, labels) + kd
            }
            Method::Dhkd => Dhkd::default().forward((main, aux, teacher), labels),
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
        "setup: digits, train {} / test {}; teacher MLP {PIXELS}-{TEACHER_HIDDEN}-{DIGITS}, \
         student {PIXELS}-{STUDENT_HIDDEN}-{DIGITS} with an auxiliary {STUDENT_HIDDEN}-{DIGITS} \
         head; Adam lr {LEARNING_RATE}, batch {BATCH}, {epochs} epochs, {seeds} student seeds",
        split.train.len(),
        split.test.len(),
    );
    let start = Instant::now();

    let dev = Cpu::seed_from_u64(SEED);
    let mut teacher = dev.build_module::<TeacherMlp, f32>();
    train(
        &mut teacher,
        &split.train,
        epochs,
        SEED,
        |model, x, labels, _| SoftmaxCrossEntropy::default().forward(model.forward_mut(x), labels),
    );
    let all: Vec<usize> = (0..split.train.len()).collect();
    let (x, _) = split.train.batch(&dev, &all);
    let teacher_logits = teacher.forward(x).as_vec();
    println!(
        "teacher: held-out accuracy {:.4}",
        accuracy(|x| teacher.forward(x), &split.test)
    );

    let mut scores = vec![Vec::with_capacity(seeds); Method::ALL.len()];
    for seed in 1..=seeds as u64 {
        let init = Cpu::seed_from_u64(seed).build_module::<StudentMlp, f32>();
        for (method, score) in Method::ALL.into_iter().zip(&mut scores) {
            let mut student = init.clone();
            train(
                &mut student,
                &split.train,
                epochs,
                seed,
                |model, x, labels, rows| {
                    let t: Vec<f32> = rows
                        .iter()
                        .flat_map(|&i| teacher_logits[i * DIGITS..(i + 1) * DIGITS].iter().copied())
                        .collect();
                    let t: Logits = dev.tensor_from_vec(t, (rows.len(), Const));
                    method.loss(model.forward_mut(x), t, labels)
                },
            );
            score.push(accuracy(|x| student.forward(x).0, &split.test));
        }
    }

    println!("student held-out accuracy (main head), mean ± sd over {seeds} seeds:");
    for (method, score) in Method::ALL.into_iter().zip(&scores) {
        let (mean, sd) = mean_sd(score);
        println!("  {:<44} {mean:.4} ± {sd:.4}", method.label());
    }
    println!("({:.1}s in all)", start.elapsed().as_secs_f64());
    Ok(())
}

/// Trains `model` with Adam for `epochs` passes over `data` in shuffled batches of
/// [`BATCH`]; `loss` gets the model, the traced batch, its labels and its row indices.
fn train<M, F>(model: &mut M, data: &Digits, epochs: usize, seed: u64, loss: F)
where
    M: TensorCollection<f32, Cpu> + ZeroGrads<f32, Cpu>,
    F: Fn(
        &mut M,
        Tensor<(usize, Const<PIXELS>), f32, Cpu, Traced>,
        &[usize],
        &[usize],
    ) -> Tensor<(), f32, Cpu, Traced>,
{
    let dev: Cpu = Default::default();
    let config = AdamConfig {
        lr: LEARNING_RATE,
        ..Default::default()
    };
    let mut opt = Adam::new(model, config);
    let mut grads = model.alloc_grads();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = SplitMix64(seed ^ 0xd157);
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for rows in order.chunks(BATCH) {
            let (x, labels) = data.batch(&dev, rows);
            let value = loss(model, x.traced(grads), &labels, rows);
            grads = value.backward();
            opt.update(model, &grads)
                .expect("every parameter has a gradient");
            model.zero_grads(&mut grads);
        }
    }
}

/// The fraction of `data` whose arg-max logit is its digit.
fn accuracy(
    forward: impl Fn(Tensor<(usize, Const<PIXELS>), f32, Cpu>) -> Logits,
    data: &Digits,
) -> f64 {
    let dev: Cpu = Default::default();
    let all: Vec<usize> = (0..data.len()).collect();
    let (x, labels) = data.batch(&dev, &all);
    let logits = forward(x).as_vec();
    let hits = logits
        .chunks(DIGITS)
        .zip(&labels)
        .filter(|(row, &y)| {
            let best = (0..DIGITS).max_by(|&a, &b| row[a].total_cmp(&row[b]));
            best == Some(y)
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// Mean and sample standard deviation (0 for a single value).
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
