//! RSS self-training against cross-entropy written as loops with the arg-max labels taken
//! beforehand, its gradient against central differences, and its limiting cases.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::Loss;

fn ce(row: &[f64], c: usize) -> f64 {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - row[c]
}

/// The loss with the pseudo-labels fixed to `pseudo` (what the paper differentiates).
fn naive(
    z: &[f64],
    c: usize,
    y: &[usize],
    labelled: &[bool],
    pseudo: &[usize],
    lambda: f64,
) -> f64 {
    let mean = |pick: bool, label: &dyn Fn(usize) -> usize| {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| labelled[i] == pick).collect();
        if rows.is_empty() {
            return 0.0;
        }
        rows.iter()
            .map(|&i| ce(&z[i * c..(i + 1) * c], label(i)))
            .sum::<f64>()
            / rows.len() as f64
    };
    mean(true, &|i| y[i]) + lambda * mean(false, &|i| pseudo[i])
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap()
}

#[test]
fn value_and_gradient_are_ce_against_fixed_pseudo_labels() {
    let mut rng = Rng::new(1601);
    let dev: Cpu = Default::default();
    for (n, c, lambda) in [(6, 3, 1.0), (9, 5, 0.3), (4, 2, 2.0)] {
        let z: Vec<f64> = (0..n * c).map(|_| rng.range(-3.0, 3.0)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let labelled: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
        let pseudo: Vec<usize> = z.chunks(c).map(argmax).collect();
        let mask: Vec<f64> = labelled
            .iter()
            .map(|&l| if l { 1.0 } else { 0.0 })
            .collect();
        let x: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z.clone(), (n, c));
        let out = RssSelfTraining::default()
            .with_lambda(lambda)
            .forward((x.leaky_trace(), mask), &y[..]);
        let want = naive(&z, c, &y, &labelled, &pseudo, lambda);
        assert_close(out.array(), want, 1e-12, 0.0, "value");
        let fd = finite_differences(&z, |z| naive(z, c, &y, &labelled, &pseudo, lambda));
        assert_all_close(&out.backward().get(&x).as_vec(), &fd, 1e-7, "gradient");
    }
}

#[test]
fn lambda_zero_or_all_labelled_is_plain_cross_entropy() {
    let mut rng = Rng::new(1602);
    let dev: Cpu = Default::default();
    let (n, c) = (5, 4);
    let z: Vec<f64> = (0..n * c).map(|_| rng.range(-2.0, 2.0)).collect();
    let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
    let x: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z.clone(), (n, c));
    let plain = crate::SoftmaxCrossEntropy::default()
        .forward(x.clone(), &y[..])
        .array();
    let all = RssSelfTraining::default().forward((x.clone(), vec![1.0; n]), &y[..]);
    assert_close(all.array(), plain, 1e-12, 0.0, "all labelled");
    let mask = vec![1.0, 0.0, 1.0, 0.0, 1.0];
    let labelled_only: f64 = [0, 2, 4]
        .iter()
        .map(|&i| ce(&z[i * c..(i + 1) * c], y[i]))
        .sum::<f64>()
        / 3.0;
    let no_lambda = RssSelfTraining::default()
        .with_lambda(0.0)
        .forward((x, mask), &y[..]);
    assert_close(no_lambda.array(), labelled_only, 1e-12, 0.0, "λ = 0");
}
