//! Shows how to define your own loss with `#[loss]`: a label-smoothed cross-entropy written
//! as math, its value, its derived gradient (checked against the closed form), and the
//! gradient formula the compiler derived, as text.
//!
//! ```text
//! cargo run --release --example 02_define_your_own
//! ```

use losskit::prelude::*;

/// Cross-entropy against a smoothed target: `1 − s` on the label and `s` spread evenly over
/// all `C` classes.
///
/// ```text
/// L = (1/N) Σᵢ [ logsumexp_k z[i][k] − (1 − s)·z[i][y[i]] − s·mean_k z[i][k] ]
/// ```
///
/// Its gradient is `(softmax(z[i]) − (1 − s)·onehot(y[i]) − s/C) / N`.
#[loss(logits)]
pub fn smoothed_cross_entropy(
    z: Logits,
    y: Labels,
    #[hyper(
        default = 0.1,
        range(0.0, 1.0),
        doc = "s: probability mass moved off the label"
    )]
    smoothing: f64,
) -> PerSample {
    logsumexp(classes, |k| z[i][k])
        - (1.0 - smoothing) * z[i][y[i]]
        - smoothing * mean(classes, |k| z[i][k])
}

fn main() {
    let dev: Cpu = Default::default();
    let logits: Tensor<Rank2<3, 4>, f64, _> = dev.tensor([
        [2.0, 0.5, -1.0, 0.0],
        [0.1, 0.2, 0.3, 0.4],
        [-1.0, 3.0, 0.0, 1.0],
    ]);
    let labels = [0, 3, 2];

    // The macro generated `SmoothedCrossEntropy` with a `smoothing` field, `Default`
    // (smoothing = 0.1) and a `with_smoothing` builder.
    let loss_fn = SmoothedCrossEntropy::default();
    let loss = loss_fn.forward(logits.leaky_trace(), &labels);
    println!(
        "{} (smoothing {}), labels {labels:?}",
        SmoothedCrossEntropy::NAME,
        loss_fn.smoothing
    );
    println!("  loss  = {:.6}", loss.array());
    let grad = loss.backward().get(&logits).array();

    // The same gradient by hand, to show the derived one is right.
    let (n, c) = (labels.len() as f64, 4.0);
    let s = loss_fn.smoothing;
    let mut worst = 0.0f64;
    println!("  dL/dz (derived)");
    for ((row, z), &y) in grad.iter().zip(logits.array()).zip(&labels) {
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = z.iter().map(|v| (v - m).exp()).sum();
        for (k, (&g, &zk)) in row.iter().zip(&z).enumerate() {
            let onehot = if k == y { 1.0 } else { 0.0 };
            let by_hand = ((zk - m).exp() / total - (1.0 - s) * onehot - s / c) / n;
            worst = worst.max((g - by_hand).abs());
        }
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>9.5}")).collect();
        println!("    [{}]", cells.join(","));
    }
    println!("  largest difference from the closed form: {worst:.1e}");
    assert!(worst < 1e-12);

    // With smoothing 0 it is the shipped softmax cross-entropy.
    let plain = SoftmaxCrossEntropy::default()
        .forward(logits.clone(), &labels)
        .array();
    let unsmoothed = loss_fn
        .clone()
        .with_smoothing(0.0)
        .forward(logits.clone(), &labels)
        .array();
    println!("  smoothing 0: {unsmoothed:.6}, SoftmaxCrossEntropy: {plain:.6}");

    // Hyper-parameters are checked when the loss runs.
    match loss_fn
        .clone()
        .with_smoothing(1.5)
        .try_forward(logits, &labels)
    {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => println!("  smoothing 1.5 -> {e}"),
    }

    // What the compiler understood, and the gradient it derived, in readable math.
    let info = <SmoothedCrossEntropy as losskit::Kernel>::INFO;
    println!();
    println!("definition, as compiled:\n{}", indent(info.definition));
    println!("derived gradient:\n{}", indent(info.gradient));
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
