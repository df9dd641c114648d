//! The other shipped losses, forward + backward, at one realistic size per family: the
//! AnyLoss family (binary), the GPW pair losses, the Mann-Whitney loss and the DEXML
//! losses (scores). Each is timed against its PyTorch formulation by
//! `benches/pytorch_shipped_losses.py`, on the same inputs; ratios are in BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench shipped_losses
//! ```
//!
//! One call is the forward and `backward()` from a freshly `leaky_trace`d input, `f32`:
//!
//! - **binary** (`binary::<Loss>`): `N = 65 536` predictions `p ∈ [0, 1)`, targets 1 with
//!   probability 0.3; default hyper-parameters (amplification L = 73).
//! - **pairs** (`pairs::<Loss>`): embeddings `1024 × 128` in `[−1, 1)`, labels from P×K
//!   sampling (`N/4` classes × 4 instances, as `benches/multi_similarity.rs`), cosine
//!   similarity; the call is the similarity op and the generated loss head.
//! - **Mann-Whitney** (`mw_auc`): the paper's batch, `B = 64` queries × `B·(1 + H) = 384`
//!   passages (H = 5 hard negatives), cosine scores in `[−1, 1)`, one positive per row
//!   (query `i`'s own passage, column `i`), τ = 0.01: `64 × 24 512` pairs. (At `1024 × 1024`
//!   the loss has a billion pairs; no PyTorch formulation that forms them fits in memory.)
//! - **DEXML** (`scores::<Loss>`): scaled scores `⟨x, y⟩/τ` of `1024` queries × `1024`
//!   labels in `[−5, 5)`, 1 to 4 positives per row (query `i` has `1 + i mod 4`, at columns
//!   `(i·7919 + t·104 729) mod 1024`); soft top-k with its defaults (K = 5, α = 2).
//!
//! Inputs come from a 64-bit LCG (Knuth's MMIX constants), 24 random bits per uniform, so
//! that the Python script draws exactly the same `f32` inputs. Before the benchmarks run,
//! `main` prints every loss's value on these inputs (`value <loss> <value>`); the script
//! checks its PyTorch values against them.

use std::time::Duration;

use dfdx::prelude::*;
use losskit::prelude::*;

type Tp = OwnedTape<f32, Cpu>;
type Vector<T = NoneTape> = Tensor<(usize,), f32, Cpu, T>;
type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;
type Scalar = Tensor<(), f32, Cpu, Tp>;

const BINARY_N: usize = 65_536;
const PAIRS_N: usize = 1024;
const DIM: usize = 128;
/// Instances per class (K of P×K sampling).
const PER_CLASS: usize = 4;
/// The Mann-Whitney batch: B queries, B·(1 + H) passages.
const MW: (usize, usize) = (64, 384);
const SCORES: (usize, usize) = (1024, 1024);

fn main() {
    print_values();
    // At most 10 s per benchmark; a `--max-time` on the command line takes precedence.
    divan::Divan::default()
        .max_time(Duration::from_secs(10))
        .config_with_args()
        .main();
}

/// Uniforms in `[0, 1)` with 24 random bits each (exact in `f32`), from a 64-bit LCG;
/// `benches/pytorch_shipped_losses.py` draws the same stream.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn draw(seed: u64, len: usize, f: impl Fn(f32) -> f32) -> Vec<f32> {
        let mut rng = Lcg(seed);
        (0..len).map(|_| f(rng.uniform())).collect()
    }
}

fn dev() -> Cpu {
    Cpu::default()
}

/// Predictions in `[0, 1)` (seed 1) and 0/1 targets, 1 with probability 0.3 (seed 2).
fn binary_case() -> (Vector, Vector) {
    let n = BINARY_N;
    let p = Lcg::draw(1, n, |u| u);
    let y = Lcg::draw(2, n, |u| if u < 0.3 { 1.0 } else { 0.0 });
    (
        dev().tensor_from_vec(p, (n,)),
        dev().tensor_from_vec(y, (n,)),
    )
}

/// Embeddings in `[−1, 1)` (seed 3) and P×K labels.
fn pairs_case() -> (Matrix, Vec<usize>) {
    let (n, d) = (PAIRS_N, DIM);
    let e = Lcg::draw(3, n * d, |u| 2.0 * u - 1.0);
    let labels = (0..n).map(|i| i / PER_CLASS).collect();
    (dev().tensor_from_vec(e, (n, d)), labels)
}

/// Cosine scores in `[−1, 1)` (seed 4), one positive per row at column `i`.
fn mw_case() -> (Matrix, Matrix) {
    let (q, d) = MW;
    let s = Lcg::draw(4, q * d, |u| 2.0 * u - 1.0);
    let mut r = vec![0.0f32; q * d];
    for i in 0..q {
        r[i * d + i] = 1.0;
    }
    (
        dev().tensor_from_vec(s, (q, d)),
        dev().tensor_from_vec(r, (q, d)),
    )
}

/// Scaled scores in `[−5, 5)` (seed 5); query `i` has `1 + i mod 4` positives, at columns
/// `(i·7919 + t·104 729) mod D`.
fn scores_case() -> (Matrix, Matrix) {
    let (q, d) = SCORES;
    let s = Lcg::draw(5, q * d, |u| 5.0 * (2.0 * u - 1.0));
    let mut r = vec![0.0f32; q * d];
    for i in 0..q {
        for t in 0..1 + i % 4 {
            r[i * d + (i * 7919 + t * 104_729) % d] = 1.0;
        }
    }
    (
        dev().tensor_from_vec(s, (q, d)),
        dev().tensor_from_vec(r, (q, d)),
    )
}

/// A binary-family loss on `f32` probabilities.
trait Binary: Loss<Vector<Tp>, Vector, Output = Scalar> + Default {}
impl<L: Loss<Vector<Tp>, Vector, Output = Scalar> + Default> Binary for L {}

/// A pairs-family loss on `f32` embeddings with labels.
trait Pairs: Loss<Matrix<Tp>, [usize], Output = Scalar> + Default {}
impl<L: Loss<Matrix<Tp>, [usize], Output = Scalar> + Default> Pairs for L {}

/// A scores-family loss on an `f32` score matrix with a relevance mask.
trait Scores: Loss<Matrix<Tp>, Matrix, Output = Scalar> + Default {}
impl<L: Loss<Matrix<Tp>, Matrix, Output = Scalar> + Default> Scores for L {}

/// Every loss's value on the benchmark inputs, for the Python script's check.
fn print_values() {
    fn show(name: &str, out: Scalar) {
        println!("value {name} {:.7e}", out.array());
    }
    let (p, y) = binary_case();
    macro_rules! binary {
        ($($l:ident),*) => {$(show(stringify!($l), $l::default().forward(p.leaky_trace(), &y));)*};
    }
    binary!(
        AnylossAccuracy,
        AnylossFbeta,
        AnylossF1,
        AnylossGmean,
        AnylossBalancedAccuracy,
        AnylossMcc,
        AnylossJaccard
    );
    let (e, labels) = pairs_case();
    macro_rules! pairs {
        ($($l:ident),*) => {$(
            show(stringify!($l), $l::default().forward(e.leaky_trace(), labels.as_slice()));
        )*};
    }
    pairs!(
        GpwContrastive,
        GpwTriplet,
        GpwTripletBatchHard,
        GpwBinomialDeviance,
        GpwLiftedStructure
    );
    let (s, r) = mw_case();
    show("MwAuc", MwAuc::default().forward(s.leaky_trace(), &r));
    let (s, r) = scores_case();
    macro_rules! scores {
        ($($l:ident),*) => {$(show(stringify!($l), $l::default().forward(s.leaky_trace(), &r));)*};
    }
    scores!(DexmlDecoupledSoftmax, DexmlSoftmax, DexmlBce, DexmlSoftTopk);
}

#[divan::bench(types = [
    AnylossAccuracy,
    AnylossFbeta,
    AnylossF1,
    AnylossGmean,
    AnylossBalancedAccuracy,
    AnylossMcc,
    AnylossJaccard,
])]
fn binary<L: Binary>(bencher: divan::Bencher) {
    let (p, y) = binary_case();
    let loss = L::default();
    bencher.bench_local(|| loss.forward(p.leaky_trace(), &y).backward());
}

#[divan::bench(types = [
    GpwContrastive,
    GpwTriplet,
    GpwTripletBatchHard,
    GpwBinomialDeviance,
    GpwLiftedStructure,
])]
fn pairs<L: Pairs>(bencher: divan::Bencher) {
    let (e, labels) = pairs_case();
    let loss = L::default();
    bencher.bench_local(|| loss.forward(e.leaky_trace(), labels.as_slice()).backward());
}

#[divan::bench]
fn mw_auc(bencher: divan::Bencher) {
    let (s, r) = mw_case();
    let loss = MwAuc::default();
    bencher.bench_local(|| loss.forward(s.leaky_trace(), &r).backward());
}

#[divan::bench(types = [DexmlDecoupledSoftmax, DexmlSoftmax, DexmlBce, DexmlSoftTopk])]
fn scores<L: Scores>(bencher: divan::Bencher) {
    let (s, r) = scores_case();
    let loss = L::default();
    bencher.bench_local(|| loss.forward(s.leaky_trace(), &r).backward());
}
