//! Peak memory of forward + backward of a pairs loss (Multi-Similarity: similarity op +
//! generated loss head), measured with a counting global allocator.
//!
//! ```text
//! cargo run --release --example memory_pairs               # N = 4096 and N = 16384
//! cargo run --release --example memory_pairs -- 1024 2048  # other batch sizes
//! ```
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
//! `f32` matrix. The claim checked is that forward + backward holds at most the similarity
//! matrix, the weight matrix `W = ∂L/∂S` and O(N) row statistics beyond dfdx's own tensors
//! (the `N × d` gradient of the embeddings and the op's `O(N·d)` saved rows), i.e. a peak of
//! about `2·|S|`.
//!
//! The gradients are traced with `leaky_trace`, so dfdx keeps every intermediate gradient,
//! `W` included, in the returned `Gradients`; a model's `alloc_grads` would drop it after
//! `backward`. dfdx's `Cpu` allocation cache is off (its default), so freed buffers are
//! returned to the system and do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dfdx::prelude::*;
use losskit::prelude::MultiSimilarity;
use losskit::Loss;

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

fn measure(n: usize) -> Measured {
    let before_inputs = Counting::current();
    let dev: Cpu = Cpu::seed_from_u64(0);
    let e: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, DIM));
    let labels: Vec<usize> = (0..n).map(|i| i / PER_CLASS).collect();
    let loss = MultiSimilarity::default();
    let base = Counting::current();

    Counting::reset_peak();
    let start = Instant::now();
    let out = loss.forward(e.leaky_trace(), &labels);
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

fn main() -> Result<(), String> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|_| format!("not a batch size: {a:?}")))
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![4096, 16384]
    } else {
        sizes
    };
    println!(
        "setup: MultiSimilarity::default() (cosine similarity op + generated head), forward + \
         backward from leaky-traced embeddings N × {DIM} f32, N/{PER_CLASS} classes × \
         {PER_CLASS}; bytes counted by a global allocator, above the inputs; |S| = N² × 4 B"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>20} {:>20} {:>20} {:>20} {:>8}",
        "N",
        "|S| MiB",
        "inputs MiB",
        "forward peak",
        "held after forward",
        "peak (fwd + bwd)",
        "held by Gradients",
        "time"
    );
    for n in sizes {
        let m = measure(n);
        let s = (m.n * m.n * 4) as f64;
        let cell = |bytes: usize| {
            format!(
                "{:.1} MiB ({:.3}·|S|)",
                bytes as f64 / MIB,
                bytes as f64 / s
            )
        };
        println!(
            "{:>6} {:>10.1} {:>10.2} {:>20} {:>20} {:>20} {:>20} {:>7.2}s",
            m.n,
            s / MIB,
            m.inputs as f64 / MIB,
            cell(m.forward_peak),
            cell(m.after_forward),
            cell(m.peak),
            cell(m.in_gradients),
            m.seconds
        );
        let beyond = m.peak as f64 - 2.0 * s;
        println!(
            "        peak − 2·|S| = {:.2} MiB  (embeddings N × d × 4 B = {:.2} MiB, one row \
             statistic N × 4 B = {:.3} MiB)",
            beyond / MIB,
            (m.n * DIM * 4) as f64 / MIB,
            (m.n * 4) as f64 / MIB
        );
    }
    Ok(())
}
