//! An ArcFace training step, forward + backward to the embeddings and the class weights:
//! the class-cosine op and the `#[loss]`-generated head, at the size of a face-recognition
//! batch (embeddings `[512, 128]`, `C = 10,000` classes), `f32`.
//!
//! `cargo bench --bench arcface`; `benches/pytorch_arcface.py` times
//! pytorch-metric-learning's `ArcFaceLoss` on the same sizes, and BENCHMARKS.md records
//! the ratio.
//!
//! - **step**: `ArcFace::default().forward(ClassCosines(e, w), &labels)`, then
//!   `backward()`, from freshly `leaky_trace`d `e` and `w` (two tape nodes: the op and the
//!   head).
//! - **cosines only**: the class-cosine op and `sum().backward()`, to show where the time
//!   goes.
//! - **head only**: the generated head on a ready cosine matrix.

use dfdx::prelude::*;
use losskit::prelude::{ArcFace, ClassCosines};
use losskit::{class_cosines, Loss};

fn main() {
    divan::main();
}

const SIZES: &[(usize, usize, usize)] = &[(512, 128, 10_000)];

struct Case {
    emb: Tensor<(usize, usize), f32, Cpu>,
    weights: Tensor<(usize, usize), f32, Cpu>,
    cosines: Tensor<(usize, usize), f32, Cpu>,
    labels: Vec<usize>,
}

fn case(n: usize, d: usize, c: usize) -> Case {
    let dev: Cpu = Cpu::seed_from_u64(0);
    let emb: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, d));
    let weights: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(c, d));
    let cosines = class_cosines(emb.clone(), weights.clone());
    let labels = (0..n).map(|i| (i * 7919) % c).collect();
    Case {
        emb,
        weights,
        cosines,
        labels,
    }
}

#[divan::bench(args = SIZES)]
fn step(bencher: divan::Bencher, &(n, d, c): &(usize, usize, usize)) {
    let case = case(n, d, c);
    let loss = ArcFace::default();
    bencher.bench_local(|| {
        let input = ClassCosines(case.emb.leaky_trace(), case.weights.leaky_trace());
        loss.forward(input, &case.labels).backward()
    });
}

#[divan::bench(args = SIZES)]
fn cosines_only(bencher: divan::Bencher, &(n, d, c): &(usize, usize, usize)) {
    let case = case(n, d, c);
    bencher.bench_local(|| {
        class_cosines(case.emb.leaky_trace(), case.weights.leaky_trace())
            .sum()
            .backward()
    });
}

#[divan::bench(args = SIZES)]
fn head_only(bencher: divan::Bencher, &(n, d, c): &(usize, usize, usize)) {
    let case = case(n, d, c);
    let loss = ArcFace::default();
    bencher.bench_local(|| {
        loss.forward(case.cosines.leaky_trace(), &case.labels)
            .backward()
    });
}
