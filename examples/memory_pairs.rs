//! Peak memory of forward + backward of a pairs loss (Multi-Similarity by default:
//! similarity op + generated loss head), measured with a counting global allocator.
//!
//! ```text
//! cargo run --release --example memory_pairs                    # N = 4096 and N = 16384
//! cargo run --release --example memory_pairs -- 65536           # S alone would be 16 GiB
//! cargo run --release --example memory_pairs -- 4096 --path whole   # or blocks, auto
//! cargo run --release --example memory_pairs -- 8192 --loss nt_xent # or info_nce
//! ```
//!
//! `--loss` chooses the loss: `multi_similarity` (the default), or `nt_xent` / `info_nce`
//! (τ = 0.07) on two views of `N/2` items (labels `[0..N/2, 0..N/2]`). `nt_xent` averages
//! over positive pairs, a statistic of the whole batch, so it never splits into row blocks
//! and always takes the whole matrix; `info_nce` is a mean of per-anchor terms and does.
//!
//! `--path` chooses how the loss reaches its similarity matrix (`losskit::PairsPath`):
//! `auto` (the default: the whole matrix below 4096 × 4096 entries, blocks of rows from
//! there on), `whole` or `blocks`. On the block path neither `S` nor `W` exists whole.
//!
//! Every heap allocation of the process goes through [`Counting`], which keeps the bytes
//! currently allocated and the largest value that count has reached. For each batch size
//! `N` (embeddings `N × 128`, `f32`, labels `N/4` classes × 4 instances) the example creates
//! the inputs, resets the peak to the current count, and reports, above that baseline:
//!
//! - the peak during `forward` and what the tape holds once it returns;
//! - the peak during `backward` (over the whole forward + backward) and what the returned
//!   `Gradients` hold.
//!
//! Each figure is also given in units of `|S| = N² × 4` bytes, the size of one `N × N`
//! `f32` matrix. On the whole-matrix path, forward + backward holds the similarity matrix,
//! the weight matrix `W = ∂L/∂S` and the loss head's copy of `S` at once (about `3·|S|`);
//! on the block path, one block of rows of each (`block_rows(N) × N` entries, about 8 MiB)
//! and `O(N·d)` rows, a small fraction of `|S|` that shrinks as `N` grows. The process's
//! peak resident set (`VmHWM`) is printed last.
//!
//! The gradients are traced with `leaky_trace`, so dfdx keeps every intermediate gradient,
//! `W` included, in the returned `Gradients`; a model's `alloc_grads` would drop it after
//! `backward` (the block path never creates `W`). dfdx's `Cpu` allocation cache is off (its default), so freed buffers are
//! returned to the system and do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dfdx::prelude::*;
use losskit::core::similarity::blocks::block_rows;
use losskit::family::pairs::AUTO_BLOCKED_ENTRIES;
use losskit::prelude::{InfoNce, MultiSimilarity, NtXent};
use losskit::Loss;
use losskit::{with_pairs_path, PairsPath};

/// Wraps the system allocator, counting the bytes currently allocated and their peak.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(bytes: usize) {
        let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
    fn shrank(bytes: usize) {
        CURRENT.fetch_sub(bytes, Ordering::Relaxed);
    }
    fn current() -> usize {
        CURRENT.load(Ordering::Relaxed)
    }
    fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
    /// Starts a new measurement: the peak becomes the current count.
    fn reset_peak() {
        PEAK.store(Self::current(), Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        Self::shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            Self::grew(new_size);
            Self::shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DIM: usize = 128;
const PER_CLASS: usize = 4;
const MIB: f64 = 1024.0 * 1024.0;

struct Measured {
    n: usize,
    inputs: usize,
    forward_peak: usize,
    after_forward: usize,
    peak: usize,
    in_gradients: usize,
    seconds: f64,
}

/// The loss measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    MultiSimilarity,
    NtXent,
    InfoNce,
}

impl Which {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "multi_similarity" => Ok(Self::MultiSimilarity),
            "nt_xent" => Ok(Self::NtXent),
            "info_nce" => Ok(Self::InfoNce),
            _ => Err(format!(
                "--loss takes multi_similarity, nt_xent or info_nce, not {name:?}"
            )),
        }
    }

    /// The labels of an `n`-row batch: `N/4` classes × 4, or two views of `n/2` items.
    fn labels(self, n: usize) -> Vec<usize> {
        match self {
            Self::MultiSimilarity => (0..n).map(|i| i / PER_CLASS).collect(),
            Self::NtXent | Self::InfoNce => (0..n).map(|i| i % (n / 2).max(1)).collect(),
        }
    }

    /// Whether the loss is a mean of per-anchor terms (it can take the row blocks).
    fn splits(self) -> bool {
        self != Self::NtXent
    }

    fn setup(self) -> &'static str {
        match self {
            Self::MultiSimilarity => "MultiSimilarity::default(), N/4 classes × 4",
            Self::NtXent => "NtXent::default() (τ = 0.07), two views of N/2 items",
            Self::InfoNce => "InfoNce::default().with_tau(0.07), two views of N/2 items",
        }
    }
}

fn measure(n: usize, path: PairsPath, which: Which) -> Measured {
    let before_inputs = Counting::current();
    let dev: Cpu = Cpu::seed_from_u64(0);
    let e: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, DIM));
    let labels = which.labels(n);
    let base = Counting::current();

    Counting::reset_peak();
    let start = Instant::now();
    // `blocks`: as many rows per block as the automatic path takes
    let path = match path {
        PairsPath::RowBlocks { .. } => PairsPath::RowBlocks {
            rows: block_rows(n),
        },
        other => other,
    };
    let out = with_pairs_path(path, || match which {
        Which::MultiSimilarity => MultiSimilarity::default().forward(e.leaky_trace(), &labels),
        Which::NtXent => NtXent::default().forward(e.leaky_trace(), &labels),
        Which::InfoNce => InfoNce::default()
            .with_tau(0.07)
            .forward(e.leaky_trace(), &labels),
    });
    let forward_peak = Counting::peak() - base;
    let after_forward = Counting::current() - base;
    let grads = out.backward();
    let seconds = start.elapsed().as_secs_f64();
    let peak = Counting::peak() - base;
    let in_gradients = Counting::current() - base;
    assert_eq!(grads.get(&e).shape(), &(n, DIM));
    Measured {
        n,
        inputs: base - before_inputs,
        forward_peak,
        after_forward,
        peak,
        in_gradients,
        seconds,
    }
}

/// The process's peak resident set so far (`VmHWM` in `/proc/self/status`), in bytes,
/// where the system reports it.
fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The path `--path` names.
fn parse_path(name: &str) -> Result<PairsPath, String> {
    match name {
        "auto" => Ok(PairsPath::Auto),
        "whole" => Ok(PairsPath::Materialised),
        "blocks" => Ok(PairsPath::RowBlocks { rows: 0 }),
        _ => Err(format!("--path takes auto, whole or blocks, not {name:?}")),
    }
}

/// What `path` does at batch size `n` for a loss that splits by anchors or not.
fn describe(path: PairsPath, n: usize, splits: bool) -> &'static str {
    match path {
        _ if !splits => "whole",
        PairsPath::Materialised => "whole",
        PairsPath::RowBlocks { .. } => "blocks",
        PairsPath::Auto if n * n >= AUTO_BLOCKED_ENTRIES => "blocks",
        PairsPath::Auto => "whole",
    }
}

fn main() -> Result<(), String> {
    let mut sizes = Vec::new();
    let mut path = PairsPath::Auto;
    let mut which = Which::MultiSimilarity;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--path" {
            path = parse_path(&args.next().ok_or("--path needs a value")?)?;
        } else if a == "--loss" {
            which = Which::parse(&args.next().ok_or("--loss needs a value")?)?;
        } else {
            sizes.push(a.parse().map_err(|_| format!("not a batch size: {a:?}"))?);
        }
    }
    if sizes.is_empty() {
        sizes = vec![4096, 16384];
    }
    println!(
        "setup: {} (cosine similarity op + generated head), forward + backward from \
         leaky-traced embeddings N × {DIM} f32; bytes counted by a global allocator, above \
         the inputs; |S| = N² × 4 B",
        which.setup()
    );
    println!(
        "{:>6} {:>7} {:>10} {:>10} {:>20} {:>20} {:>20} {:>20} {:>8}",
        "N",
        "path",
        "|S| MiB",
        "inputs MiB",
        "forward peak",
        "held after forward",
        "peak (fwd + bwd)",
        "held by Gradients",
        "time"
    );
    for n in sizes {
        let m = measure(n, path, which);
        let s = (m.n * m.n * 4) as f64;
        let cell = |bytes: usize| {
            format!(
                "{:.1} MiB ({:.3}·|S|)",
                bytes as f64 / MIB,
                bytes as f64 / s
            )
        };
        println!(
            "{:>6} {:>7} {:>10.1} {:>10.2} {:>20} {:>20} {:>20} {:>20} {:>7.2}s",
            m.n,
            describe(path, n, which.splits()),
            s / MIB,
            m.inputs as f64 / MIB,
            cell(m.forward_peak),
            cell(m.after_forward),
            cell(m.peak),
            cell(m.in_gradients),
            m.seconds
        );
        println!(
            "        peak {:.2} MiB against |S| = {:.1} MiB; embeddings N × d × 4 B = {:.2} MiB",
            m.peak as f64 / MIB,
            s / MIB,
            (m.n * DIM * 4) as f64 / MIB,
        );
    }
    if let Some(rss) = peak_rss() {
        println!(
            "peak resident set of the process (VmHWM): {:.1} MiB",
            rss as f64 / MIB
        );
    }
    Ok(())
}
