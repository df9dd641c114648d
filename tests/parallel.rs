//! Large batches run the generated loops on several threads (rows of the output, and
//! the outer sum over samples in fixed chunks). The results must not depend on it: the
//! same input gives bit-identical values and gradients on one thread and on many.

use losskit::prelude::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

/// Runs `f` on one thread and on four, and checks the outputs are bit-identical.
fn same_on_any_threads(f: impl Fn() -> (f32, Vec<f32>) + Sync + Send) {
    let (v1, g1) = pool(1).install(&f);
    let (v4, g4) = pool(4).install(&f);
    assert_eq!(v1.to_bits(), v4.to_bits(), "value {v1} vs {v4}");
    assert_eq!(g1.len(), g4.len());
    for (k, (a, b)) in g1.iter().zip(&g4).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "gradient {k}: {a} vs {b}");
    }
    assert!(
        g1.iter().any(|g| *g != 0.0),
        "the case should have a gradient"
    );
}

#[test]
fn cross_entropy_over_a_large_batch() {
    let (n, c) = (600usize, 128usize);
    let z: Vec<f32> = (0..n * c)
        .map(|k| ((k * 7919 % 1000) as f32 / 100.0) - 5.0)
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| (i * 31) % c).collect();
    same_on_any_threads(|| {
        let dev: Cpu = Default::default();
        let x = dev.tensor_from_vec(z.clone(), (n, c));
        let out = SoftmaxCrossEntropy::default().forward(x.leaky_trace(), &labels);
        let v = out.array();
        (v, out.backward().get(&x).as_vec())
    });
}

#[test]
fn pair_losses_over_a_large_batch() {
    let (n, d) = (300usize, 16usize);
    let e: Vec<f32> = (0..n * d)
        .map(|k| ((k * 104729 % 997) as f32 / 997.0) - 0.5)
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i / 5).collect();
    same_on_any_threads(|| {
        let dev: Cpu = Default::default();
        let x = dev.tensor_from_vec(e.clone(), (n, d));
        let out = MultiSimilarity::default().forward(x.leaky_trace(), &labels);
        let v = out.array();
        (v, out.backward().get(&x).as_vec())
    });
    same_on_any_threads(|| {
        let dev: Cpu = Default::default();
        let x = dev.tensor_from_vec(e.clone(), (n, d));
        let out = GpwTriplet::default().forward(x.leaky_trace(), &labels);
        let v = out.array();
        (v, out.backward().get(&x).as_vec())
    });
}

#[test]
fn pair_losses_in_row_blocks() {
    // blocks of 64 anchors: the products and the head run on several threads within a block
    let (n, d) = (300usize, 16usize);
    let e: Vec<f32> = (0..n * d)
        .map(|k| ((k * 7907 % 991) as f32 / 991.0) - 0.5)
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i / 4).collect();
    same_on_any_threads(|| {
        let dev: Cpu = Default::default();
        let x = dev.tensor_from_vec(e.clone(), (n, d));
        let out = with_pairs_path(PairsPath::RowBlocks { rows: 64 }, || {
            MultiSimilarity::default().forward(x.leaky_trace(), &labels)
        });
        let v = out.array();
        (v, out.backward().get(&x).as_vec())
    });
}
