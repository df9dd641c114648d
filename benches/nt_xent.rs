//! NT-Xent, forward + backward from the embeddings: the `#[loss]`-generated loss
//! (similarity op + derived loss head) against the same loss composed from plain dfdx
//! tensor ops on dfdx's tape, at the same sizes in one run.
//!
//! ```text
//! cargo bench --bench nt_xent
//! ```
//!
//! Setup: two views of `B` items stacked, `N = 2B ∈ {256, 8192}` embeddings of dimension
//! `d = 128`, `f32`, drawn from a standard normal; labels `[0..B, 0..B]` (each anchor's one
//! positive is its other view, every other row a negative, as in SimCLR). Both sides use
//! τ = 0.07 (PML's default), cosine similarity and PML's reduction (the mean over the
//! positive pairs). `losskit_info_nce` times the generated [`InfoNce`] at the same τ on the
//! same batch: with one positive per anchor it is the same value, but as a mean of
//! per-anchor terms it takes the row-block path at N = 8192 (NT-Xent's mean over pairs
//! does not). Each benchmark stops after 20 s (`--max-time` overrides it). Figures and
//! ratios are recorded in BENCHMARKS.md, with `benches/pytorch_nt_xent.py` timing
//! pytorch-metric-learning's `NTXentLoss` on the same batches.
//!
//! Before the benchmarks run, `main` checks on two batches (random `32 × 16` with four
//! views of eight items, and the `256 × 128` benchmark batch) that the generated and the
//! composed loss give the same value and gradient, within 1e-4 absolutely and relative to
//! the largest gradient entry; it panics otherwise.
//!
//! `E·Eᵀ` on dfdx's tape needs a copy of `Eᵀ` with its own id (see
//! `benches/multi_similarity.rs`): dfdx 0.13 panics when one tensor is both operands of a
//! matmul.

use std::time::Duration;

use dfdx::prelude::*;
use losskit::prelude::{InfoNce, NtXent};
use losskit::Loss;

const SIZES: &[usize] = &[256, 8192];
const DIM: usize = 128;
const TAU: f32 = 0.07;

type Tp = OwnedTape<f32, Cpu>;
type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;

fn main() {
    check_composed_matches_generated();
    divan::Divan::default()
        .max_time(Duration::from_secs(20))
        .config_with_args()
        .main();
}

/// `views` views of `n / views` items, stacked view after view: row `r` is item
/// `r % (n / views)`.
fn view_labels(n: usize, views: usize) -> Vec<usize> {
    (0..n).map(|r| r % (n / views)).collect()
}

fn embeddings(n: usize, d: usize, seed: u64) -> Matrix {
    let dev: Cpu = Cpu::seed_from_u64(seed);
    dev.sample_normal_like(&(n, d))
}

/// NT-Xent written with plain dfdx ops: the L2-normalised rows, `S = Ê·Êᵀ/τ`, the
/// negatives' log-sum-exp per row (non-negatives set to −∞ by a mask built from the
/// labels), then `softplus(lse_a − S_ap/τ)` on every positive pair (as `ln(1 + eˣ)`; `x`
/// stays below 40 here) and the mean over the positive pairs.
fn nt_xent_composed(e: Matrix<Tp>, labels: &[usize]) -> Tensor<(), f32, Cpu, Tp> {
    let dev = e.device().clone();
    let (n, d) = *e.shape();
    let nn = (n, n);

    let norm = e
        .with_empty_tape()
        .square()
        .sum::<(usize,), Axis<1>>()
        .sqrt()
        .clamp(1e-12, f64::INFINITY);
    let en = e / norm.broadcast_like::<_, Axis<1>>(&(n, d));
    let en_t = en
        .with_empty_tape()
        .permute::<(usize, usize), Axes2<1, 0>>()
        .contiguous();
    let logits = en.matmul(en_t) / TAU;

    // masks, off the tape: positives (same label, not the diagonal) and negatives
    let pos: Vec<f32> = (0..n * n)
        .map(|ij| f32::from(labels[ij / n] == labels[ij % n] && ij / n != ij % n))
        .collect();
    let pairs: f32 = pos.iter().sum();
    let neg: Vec<f32> = (0..n * n)
        .map(|ij| {
            if labels[ij / n] != labels[ij % n] {
                0.0
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    let pos: Matrix = dev.tensor_from_vec(pos, nn);
    let neg: Matrix = dev.tensor_from_vec(neg, nn);

    let lse = (logits.with_empty_tape() + neg).logsumexp::<(usize,), Axis<1>>();
    let x = lse.broadcast_like::<_, Axis<1>>(&nn) - logits;
    let l = (x.exp() + 1.0).ln() * pos;
    l.sum() / pairs
}

/// The generated loss: similarity op + loss head, two tape nodes.
fn nt_xent_generated(e: Matrix<Tp>, labels: &[usize]) -> Tensor<(), f32, Cpu, Tp> {
    NtXent::default().forward(e, labels)
}

/// Loss value and gradient of both versions agree within 1e-4, absolutely and relative to
/// the largest gradient entry.
fn check_composed_matches_generated() {
    let cases = [
        ("random, 4 views", embeddings(32, 16, 7), view_labels(32, 4)),
        (
            "benchmark batch",
            embeddings(SIZES[0], DIM, 0),
            view_labels(SIZES[0], 2),
        ),
    ];
    for (name, e, labels) in cases {
        let (rows, dim) = *e.shape();
        let a = nt_xent_generated(e.leaky_trace(), &labels);
        let b = nt_xent_composed(e.leaky_trace(), &labels);
        let (va, vb) = (a.array(), b.array());
        let (ga, gb) = (a.backward().get(&e).as_vec(), b.backward().get(&e).as_vec());
        let scale = ga.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        let err = ga
            .iter()
            .zip(&gb)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            (va - vb).abs() <= 1e-4 * va.abs().max(1.0) && err <= 1e-4 * scale.max(1.0),
            "{name}: generated {va} vs composed {vb}; max |Δgrad| {err:e} (max |grad| {scale:e})"
        );
        assert!(va > 0.0 && scale > 1e-6, "{name}: degenerate check case");
        eprintln!(
            "check ({name}, N = {rows}, d = {dim}): loss {va:.6} vs {vb:.6}, max |Δgrad| \
             {err:.1e} (max |grad| {scale:.1e})"
        );
    }
}

#[divan::bench(args = SIZES)]
fn losskit_generated(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), view_labels(n, 2));
    bencher.bench_local(|| nt_xent_generated(e.leaky_trace(), &labels).backward());
}

#[divan::bench(args = SIZES)]
fn dfdx_composed(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), view_labels(n, 2));
    bencher.bench_local(|| nt_xent_composed(e.leaky_trace(), &labels).backward());
}

/// InfoNCE at τ = 0.07 on the same batch: the same value here (one positive per anchor),
/// a mean of per-anchor terms, so row blocks from 4096 × 4096 entries on.
#[divan::bench(args = SIZES)]
fn losskit_info_nce(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), view_labels(n, 2));
    let loss = InfoNce::default().with_tau(f64::from(TAU));
    bencher.bench_local(|| loss.forward(e.leaky_trace(), &labels).backward());
}
