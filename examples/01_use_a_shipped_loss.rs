//! Shows how to call a shipped loss: its value and gradient on a tiny batch, its
//! hyper-parameters, and `try_forward` returning a `LossError` for bad input.
//!
//! ```text
//! cargo run --release --example 01_use_a_shipped_loss
//! ```

use losskit::prelude::*;

fn main() {
    let dev: Cpu = Default::default();

    // A multi-class loss: 3 samples, 4 classes, one integer label per sample.
    let logits: Tensor<Rank2<3, 4>, f64, _> = dev.tensor([
        [2.0, 0.5, -1.0, 0.0],
        [0.1, 0.2, 0.3, 0.4],
        [-1.0, 3.0, 0.0, 1.0],
    ]);
    let labels = [0, 3, 2];
    let ce = SoftmaxCrossEntropy::default();
    // `leaky_trace` records the operations, so the output can be back-propagated.
    let loss = ce.forward(logits.leaky_trace(), &labels);
    println!("softmax cross-entropy, labels {labels:?}");
    println!("  loss     = {:.6}", loss.array());
    let grads = loss.backward();
    // The derived gradient is (softmax(z[i]) - onehot(y[i])) / N: each row sums to zero.
    println!("  dL/dz    =");
    for row in grads.get(&logits).array() {
        println!("    {}", format_row(&row));
    }

    // A binary metric loss: AnyLoss F1 over the batch's soft confusion matrix. The
    // predictions here are logits, so they are wrapped in `FromLogits`.
    let scores: Tensor<Rank1<6>, f32, _> = dev.tensor([2.5, -1.0, 0.3, -2.0, 1.2, -0.4]);
    let targets: Tensor<Rank1<6>, f32, _> = dev.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    let f1 = AnylossF1::default().with_amplification(10.0);
    println!();
    println!(
        "AnylossF1 (amplification {}, epsilon {}) on logits {:?}, targets {:?}",
        f1.amplification,
        f1.epsilon,
        scores.array(),
        targets.array()
    );
    let loss = f1.forward(FromLogits(scores.leaky_trace()), &targets);
    println!("  loss     = {:.6}", loss.array());
    let grads = loss.backward();
    println!("  dL/dz    = {}", format_row(&grads.get(&scores).array()));

    // `try_forward` validates the input and says what is wrong instead of panicking;
    // `forward` would panic with the same message.
    println!();
    println!("bad input, caught by try_forward:");
    let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]);
    match ce.try_forward(z.clone(), &[1, 3]) {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => {
            println!("  labels [1, 3] with 3 classes -> {e}");
            assert!(matches!(e, LossError::LabelOutOfRange { label: 3, .. }));
        }
    }
    match ce.try_forward(z, &[0]) {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => println!("  2 rows of logits, 1 label  -> {e}"),
    }
    let p: Tensor<Rank1<3>, f32, _> = dev.tensor([0.9, 0.2, 0.7]);
    let soft: Tensor<Rank1<3>, f32, _> = dev.tensor([1.0, 0.5, 0.0]);
    match f1.try_forward(p, &soft) {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => println!("  target 0.5 for AnylossF1   -> {e}"),
    }
    let not_probs: Tensor<Rank1<3>, f32, _> = dev.tensor([2.5, -1.0, 0.3]);
    let hard: Tensor<Rank1<3>, f32, _> = dev.tensor([1.0, 0.0, 1.0]);
    match f1.try_forward(not_probs, &hard) {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => println!("  logits passed as probs     -> {e}"),
    }
    match AnylossF1::default().with_epsilon(0.0).try_forward(
        FromLogits(dev.tensor([1.0f32, -1.0])),
        &dev.tensor([1.0f32, 0.0]),
    ) {
        Ok(v) => println!("  unexpected success: {}", v.array()),
        Err(e) => println!("  epsilon = 0                -> {e}"),
    }
}

fn format_row<E: std::fmt::Display>(row: &[E]) -> String {
    let cells: Vec<String> = row.iter().map(|v| format!("{v:>9.5}")).collect();
    format!("[{}]", cells.join(","))
}
