//! Softmax cross-entropy, forward + backward: the `#[loss]`-generated kernel against
//! dfdx's hand-written `cross_entropy_with_logits_loss`, at the same sizes in one run.
//!
//! `cargo bench --bench cross_entropy`; ratios are recorded in BENCHMARKS.md.

use dfdx::prelude::*;
use losskit::prelude::SoftmaxCrossEntropy;
use losskit::Loss;

fn main() {
    divan::main();
}

const SIZES: &[(usize, usize)] = &[(1024, 256), (4096, 1024)];

struct Case {
    logits: Tensor<(usize, usize), f32, Cpu>,
    labels: Vec<usize>,
    one_hot: Tensor<(usize, usize), f32, Cpu>,
}

fn case(n: usize, c: usize) -> Case {
    let dev: Cpu = Cpu::seed_from_u64(0);
    let logits: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(n, c));
    let labels: Vec<usize> = (0..n).map(|i| (i * 7919) % c).collect();
    let mut one_hot = vec![0.0f32; n * c];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * c + l] = 1.0;
    }
    let one_hot = dev.tensor_from_vec(one_hot, (n, c));
    Case {
        logits,
        labels,
        one_hot,
    }
}

#[divan::bench(args = SIZES)]
fn losskit_generated(bencher: divan::Bencher, &(n, c): &(usize, usize)) {
    let case = case(n, c);
    let loss = SoftmaxCrossEntropy::default();
    bencher.bench_local(|| {
        let out = loss.forward(case.logits.leaky_trace(), &case.labels);
        out.backward()
    });
}

#[divan::bench(args = SIZES)]
fn dfdx_builtin(bencher: divan::Bencher, &(n, c): &(usize, usize)) {
    let case = case(n, c);
    bencher.bench_local(|| {
        let out = dfdx::losses::cross_entropy_with_logits_loss(
            case.logits.leaky_trace(),
            case.one_hot.clone(),
        );
        out.backward()
    });
}
