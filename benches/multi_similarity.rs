//! Multi-Similarity, forward + backward from the embeddings: the `#[loss]`-generated loss
//! (similarity op + derived loss head) against the same loss composed from plain dfdx
//! tensor ops on dfdx's tape, at the same sizes in one run.
//!
//! ```text
//! cargo bench --bench multi_similarity
//! ```
//!
//! Setup: `N ∈ {256, 1024, 4096}` embeddings of dimension `d = 128`, `f32`, drawn from a
//! standard normal; labels from P×K sampling, `N/4` classes × 4 instances (the batch an
//! identity sampler gives: P classes, K instances each, so every anchor has K − 1 = 3
//! positives). Both sides use the official mining rule with the default hyper-parameters
//! (α = 2, β = 40, λ = 0.5, ε = 0.1) and cosine similarity. A third benchmark,
//! `losskit_head_only`, times the generated loss head alone from a ready `S`
//! (`Similarities`), to show where the generated side's time goes; `losskit_whole_matrix`
//! and `losskit_row_blocks` force each of the generated loss's two paths (`PairsPath`) at
//! `N ∈ {1024, 4096, 16384}`, 10 s each. Each benchmark stops
//! after 20 s (`--max-time` overrides it). Ratios are recorded in BENCHMARKS.md.
//!
//! Before the benchmarks run, `main` checks on three batches (random and clustered
//! `32 × 16`, and the `256 × 128` benchmark batch) that the two give the same loss and the
//! same gradient, within 1e-4 absolutely and relative to the largest gradient entry; it
//! panics otherwise. The label masks are rebuilt from the labels on every call, as the
//! generated loss does.
//!
//! # `E·Eᵀ` on dfdx's tape
//!
//! dfdx 0.13 panics in `backward()` when one tensor is both operands of a binary op (its
//! backward borrows both operands' gradients mutably and asserts that their ids differ).
//! `with_empty_tape()`, `retaped()`, `permute()` and `reshape()` all keep the tensor's
//! id, so `en.matmul(en.with_empty_tape().permute())` runs forward and then panics. What
//! works is an op that makes a new tensor and routes its gradient back:
//! `en.with_empty_tape().permute().contiguous()` (the copy into row-major order is an op
//! with a new id) or `(en.with_empty_tape() * 1.0).permute()`. Both give the right
//! gradient (checked against `4·S·E` for `Σ S²`); the composed loss uses the first.
//! (`retaped::<NoneTape>()` on one side panics as well, and would drop that side's
//! gradient anyway.)

use std::time::Duration;

use dfdx::prelude::*;
use losskit::prelude::MultiSimilarity;
use losskit::{similarity, with_pairs_path, Loss, Metric, PairsPath, Similarities};

const SIZES: &[usize] = &[256, 1024, 4096];
const DIM: usize = 128;
/// Instances per class (K of P×K sampling).
const PER_CLASS: usize = 4;

type Tp = OwnedTape<f32, Cpu>;
type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;

fn main() {
    check_composed_matches_generated();
    // At most 20 s per benchmark (the composed loss takes seconds at N = 4096); a
    // `--max-time` or `--sample-count` on the command line takes precedence.
    divan::Divan::default()
        .max_time(Duration::from_secs(20))
        .config_with_args()
        .main();
}

/// `N/4` classes × 4 instances, each class's instances next to each other.
fn pk_labels(n: usize) -> Vec<usize> {
    (0..n).map(|i| i / PER_CLASS).collect()
}

fn embeddings(n: usize, d: usize, seed: u64) -> Matrix {
    let dev: Cpu = Cpu::seed_from_u64(seed);
    dev.sample_normal_like(&(n, d))
}

/// Multi-Similarity (official rule, α = 2, β = 40, λ = 0.5, ε = 0.1) written with plain
/// dfdx ops: the L2-normalised rows, `S = Ê·Êᵀ`, boolean masks built as tensors (labels,
/// the self-pair dropped by value `S < 1 − 1e-5`, and the mining thresholds computed from
/// `S`'s values off the tape), then `ln(1 + Σ masked e^{…})` per anchor, as the official
/// code writes it.
fn ms_composed(e: Matrix<Tp>, labels: &[usize]) -> Tensor<(), f32, Cpu, Tp> {
    let (alpha, beta, lambda, eps) = (2.0f32, 40.0f32, 0.5f32, 0.1f32);
    let dev = e.device().clone();
    let (n, d) = *e.shape();
    let nn = (n, n);

    // Ê = E / max(‖e_i‖, 1e-12); S = Ê·Êᵀ (a contiguous copy of Êᵀ has its own id).
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
    let s = en.matmul(en_t);

    // Masks, off the tape.
    let same: Vec<bool> = (0..n * n)
        .map(|ij| labels[ij / n] == labels[ij % n])
        .collect();
    let same: Tensor<(usize, usize), bool, Cpu> = dev.tensor_from_vec(same, nn);
    let sv: Matrix = s.retaped::<NoneTape>();
    let pos = &same & &sv.lt(1.0 - 1e-5);
    let neg = !&same;
    let inf: Matrix = dev.ones_like(&nn) * f32::INFINITY;
    let hardest_neg = neg
        .clone()
        .choose(sv.clone(), -inf.clone())
        .max::<(usize,), Axis<1>>();
    let hardest_pos = pos
        .clone()
        .choose(sv.clone(), inf)
        .min::<(usize,), Axis<1>>();
    let mined_pos = pos & (sv.clone() - eps).lt(&hardest_neg.broadcast_like::<_, Axis<1>>(&nn));
    let mined_neg = neg & (sv + eps).gt(&hardest_pos.broadcast_like::<_, Axis<1>>(&nn));
    let (ones, zeros): (Matrix, Matrix) = (dev.ones_like(&nn), dev.zeros_like(&nn));
    let mp = mined_pos.choose(ones.clone(), zeros.clone());
    let mn = mined_neg.choose(ones, zeros);
    let valid = mp.clone().sum::<(usize,), Axis<1>>().gt(0.0)
        & mn.clone().sum::<(usize,), Axis<1>>().gt(0.0);
    let valid: Tensor<(usize,), f32, Cpu> =
        valid.choose(dev.ones_like(&(n,)), dev.zeros_like(&(n,)));

    // l_i = (1/α) ln(1 + Σ_P̃ e^{−α(S−λ)}) + (1/β) ln(1 + Σ_Ñ e^{β(S−λ)}), 0 if skipped.
    let pos_sum = (((s.with_empty_tape() - lambda) * -alpha).exp() * mp).sum::<(usize,), Axis<1>>();
    let neg_sum = (((s - lambda) * beta).exp() * mn).sum::<(usize,), Axis<1>>();
    let l = (pos_sum + 1.0).ln() / alpha + (neg_sum + 1.0).ln() / beta;
    (l * valid).mean()
}

/// The generated loss: similarity op + loss head, two tape nodes.
fn ms_generated(e: Matrix<Tp>, labels: &[usize]) -> Tensor<(), f32, Cpu, Tp> {
    MultiSimilarity::default().forward(e, labels)
}

/// Loss value and gradient of both versions agree within 1e-4, absolutely and relative to
/// the largest gradient entry, on a random batch, on a clustered one (where most pairs are
/// mined) and on the smallest benchmark batch itself.
fn check_composed_matches_generated() {
    let (n, d) = (32, 16);
    let dev: Cpu = Cpu::seed_from_u64(8);
    let centres: Matrix = dev.sample_normal_like(&(n / PER_CLASS, d));
    let (c, noise) = (centres.as_vec(), embeddings(n, d, 9).as_vec());
    let clustered: Vec<f32> = (0..n * d)
        .map(|k| c[(k / d) / PER_CLASS * d + k % d] + 0.7 * noise[k])
        .collect();
    let clustered: Matrix = dev.tensor_from_vec(clustered, (n, d));
    let cases = [
        ("random", embeddings(n, d, 7)),
        ("clustered", clustered),
        ("benchmark batch", embeddings(SIZES[0], DIM, 0)),
    ];
    for (name, e) in cases {
        let (rows, dim) = *e.shape();
        let labels = pk_labels(rows);
        let a = ms_generated(e.leaky_trace(), &labels);
        let b = ms_composed(e.leaky_trace(), &labels);
        let (va, vb) = (a.array(), b.array());
        let (ga, gb) = (a.backward().get(&e).as_vec(), b.backward().get(&e).as_vec());
        let scale = ga.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        let err = ga
            .iter()
            .zip(&gb)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            (va - vb).abs() <= 1e-4 && err <= 1e-4 && err <= 1e-4 * scale,
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
    let (e, labels) = (embeddings(n, DIM, 0), pk_labels(n));
    bencher.bench_local(|| ms_generated(e.leaky_trace(), &labels).backward());
}

#[divan::bench(args = SIZES)]
fn dfdx_composed(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), pk_labels(n));
    bencher.bench_local(|| ms_composed(e.leaky_trace(), &labels).backward());
}

/// The loss head alone, from a ready similarity matrix (no similarity op): where the
/// generated side's time goes.
#[divan::bench(args = SIZES)]
fn losskit_head_only(bencher: divan::Bencher, &n: &usize) {
    let s = similarity(embeddings(n, DIM, 0), Metric::Cosine);
    let labels = pk_labels(n);
    let loss = MultiSimilarity::default();
    bencher.bench_local(|| {
        loss.forward(Similarities(s.leaky_trace()), labels.as_slice())
            .backward()
    });
}

/// The two paths of the generated loss forced (`losskit_generated` takes the automatic
/// one: the whole matrix below 4096 × 4096 entries, row blocks from there on).
const PATH_SIZES: &[usize] = &[1024, 4096, 16384];

/// The generated loss on the whole similarity matrix.
#[divan::bench(args = PATH_SIZES, max_time = 10)]
fn losskit_whole_matrix(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), pk_labels(n));
    bencher.bench_local(|| {
        with_pairs_path(PairsPath::Materialised, || {
            ms_generated(e.leaky_trace(), &labels)
        })
        .backward()
    });
}

/// The generated loss in row blocks of the automatic size (neither `S` nor `W` whole).
#[divan::bench(args = PATH_SIZES, max_time = 10)]
fn losskit_row_blocks(bencher: divan::Bencher, &n: &usize) {
    let (e, labels) = (embeddings(n, DIM, 0), pk_labels(n));
    let rows = losskit::core::similarity::blocks::block_rows(n);
    bencher.bench_local(|| {
        with_pairs_path(PairsPath::RowBlocks { rows }, || {
            ms_generated(e.leaky_trace(), &labels)
        })
        .backward()
    });
}
