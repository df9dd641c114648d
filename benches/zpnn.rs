//! The Z-PNN loss, forward + backward from the network output: [`zpnn`] (the runtime's
//! MTF filter, decimation and local correlation field, then the two `#[loss(dense)]`
//! heads), on the issue's 4 × 512 × 512 image.
//!
//! ```text
//! cargo bench --bench zpnn
//! ```
//!
//! Setup: one GE1 image (4 bands), `f32` inputs uniform in [0, 1), β = 0.25, the
//! threshold computed once with [`zpnn_threshold`] outside the timed call. Each benchmark
//! stops after 20 s. `benches/pytorch_zpnn.py` times the official formulation in PyTorch
//! (grouped `conv2d`, the grid mask, the cumulative-sum correlation) on the same sizes;
//! BENCHMARKS.md records both.

use std::time::Duration;

use dfdx::prelude::*;
use losskit::{zpnn, zpnn_threshold, Sensor};

const BANDS: usize = 4;
const SIZE: usize = 512;

type Image<T = NoneTape> = Tensor<(usize, usize, usize, usize), f32, Cpu, T>;

fn main() {
    divan::Divan::default()
        .max_time(Duration::from_secs(20))
        .config_with_args()
        .main();
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn zpnn_forward_backward(bencher: divan::Bencher) {
    let dev = Cpu::seed_from_u64(0);
    let ms_up: Image = dev.sample_uniform_like(&(1, BANDS, SIZE, SIZE));
    let pan: Image = dev.sample_uniform_like(&(1, 1, SIZE, SIZE));
    let out: Image = dev.sample_uniform_like(&(1, BANDS, SIZE, SIZE));
    let thr = zpnn_threshold(&pan, &ms_up, Sensor::Ge1).expect("a valid image");
    let beta = Sensor::Ge1.zpnn_beta();
    bencher.bench_local(|| {
        let loss =
            zpnn(out.leaky_trace(), &ms_up, &pan, &thr, Sensor::Ge1, beta).expect("a valid image");
        divan::black_box(loss.backward());
    });
}
