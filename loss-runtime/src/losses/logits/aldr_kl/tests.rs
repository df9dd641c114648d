//! ALDR-KL against the official algorithm written as plain loops in f64, step by step:
//! the value, the state, and the gradient (central differences with λ held at its new
//! value, which the official code detaches); λ's range; scale invariance; refused rows.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError, WithIds};

/// The hyper-parameters of one run.
#[derive(Clone, Copy, Debug)]
struct Setting {
    margin: f64,
    lambda0: f64,
    alpha: f64,
    softplus: bool,
}

impl Setting {
    fn loss(self) -> AldrKl {
        AldrKl::new()
            .with_margin(self.margin)
            .with_lambda0(self.lambda0)
            .with_alpha(self.alpha)
            .with_softplus_first(self.softplus)
    }
}

/// One row of `ALDRLoss_V1.forward`: the normalised logits, the new λ from the old
/// one, and the row's loss at a given λ (so the gradient can be checked with λ fixed).
fn normalised(row: &[f64], s: Setting) -> Vec<f64> {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let f: Vec<f64> = row
        .iter()
        .map(|&v| if s.softplus { softplus(v) } else { v })
        .collect();
    let denorm = f.iter().map(|v| v.abs()).sum::<f64>() / f.len() as f64;
    f.iter().map(|v| v / denorm).collect()
}

fn new_lambda(row: &[f64], old: f64, s: Setting) -> f64 {
    let f = normalised(row, s);
    let k = f.len() as f64;
    let m = f.iter().map(|v| v / old).fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = f.iter().map(|v| (v / old - m).exp()).collect();
    let total: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|v| v / total + 1e-5).collect();
    let l1: f64 = p.iter().sum();
    let kl: f64 = p.iter().map(|v| v / l1 * (k * v / l1).ln()).sum();
    s.lambda0 - s.lambda0 * kl / (s.alpha * k.ln())
}

fn row_loss(row: &[f64], label: usize, lambda: f64, s: Setting) -> f64 {
    let f = normalised(row, s);
    let k = f.len() as f64;
    let d: Vec<f64> = (0..f.len())
        .map(|j| {
            let c = if j == label { 0.0 } else { s.margin };
            (c + f[j] - f[label]) / lambda
        })
        .collect();
    let m = d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mean = d.iter().map(|v| (v - m).exp()).sum::<f64>() / k;
    let extra = -0.5 * s.alpha * k.ln() / s.lambda0 * (lambda - s.lambda0).powi(2);
    lambda * (mean.ln() + m) + extra
}

/// One official step: the value and the new λ of every row; `lambdas` (absolute Λ per
/// dataset sample) is updated.
fn naive_step(
    z: &[f64],
    c: usize,
    y: &[usize],
    ids: &[usize],
    lambdas: &mut [f64],
    s: Setting,
) -> (f64, Vec<f64>) {
    let n = y.len();
    let mut value = 0.0;
    let mut fresh = Vec::with_capacity(n);
    for i in 0..n {
        let row = &z[i * c..(i + 1) * c];
        let lambda = new_lambda(row, lambdas[ids[i]], s);
        lambdas[ids[i]] = lambda;
        value += row_loss(row, y[i], lambda, s) / n as f64;
        fresh.push(lambda);
    }
    (value, fresh)
}

/// ∂L/∂z by central differences with every row's λ held fixed.
fn naive_gradient(z: &[f64], c: usize, y: &[usize], fresh: &[f64], s: Setting) -> Vec<f64> {
    let n = y.len();
    finite_differences(z, |z| {
        (0..n)
            .map(|i| row_loss(&z[i * c..(i + 1) * c], y[i], fresh[i], s) / n as f64)
            .sum()
    })
}

fn step<E: Dtype + crate::Real>(
    loss: &AldrKl,
    z: &[f64],
    c: usize,
    y: &[usize],
    ids: &[usize],
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let t: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(to_e(z), (y.len(), c));
    let out = loss.try_forward(WithIds(t.leaky_trace(), ids), y)?;
    let value = crate::Real::to_f64(out.array());
    let grad = out.backward().get(&t).as_vec();
    Ok((
        value,
        grad.iter().map(|&g| crate::Real::to_f64(g)).collect(),
    ))
}

fn batch(
    rng: &mut Rng,
    n: usize,
    c: usize,
    samples: usize,
    scale: f64,
) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let (z, y) = random_logits(rng, n, c, scale);
    let ids = rng.permutation(samples)[..n].to_vec();
    (z, y, ids)
}

const SETTINGS: [Setting; 3] = [
    Setting {
        margin: 0.1,
        lambda0: 10.0,
        alpha: 2.0,
        softplus: false,
    },
    Setting {
        margin: 0.1,
        lambda0: 10.0,
        alpha: 2.0,
        softplus: true,
    },
    Setting {
        margin: 1.0,
        lambda0: 0.5,
        alpha: 1.5,
        softplus: false,
    },
];

#[test]
fn every_step_matches_the_official_algorithm() {
    let mut rng = Rng::new(1331);
    let (samples, n) = (10, 4);
    for s in SETTINGS {
        for c in [3, 7] {
            let loss = s.loss().with_dataset_size(samples);
            let mut lambdas = vec![s.lambda0; samples];
            for t in 0..5 {
                let what = format!("{s:?} C={c} step {t}");
                let (z, y, ids) = batch(&mut rng, n, c, samples, 4.0);
                let (value, grad) = step::<f64>(&loss, &z, c, &y, &ids).expect("a valid batch");
                let (want, fresh) = naive_step(&z, c, &y, &ids, &mut lambdas, s);
                assert_close(value, want, 1e-12, 1e-14, &format!("{what}: value"));
                let want_grad = naive_gradient(&z, c, &y, &fresh, s);
                assert_all_close(&grad, &want_grad, 1e-6, &format!("{what}: gradient"));
                let ratios: Vec<f64> = lambdas.iter().map(|l| l / s.lambda0).collect();
                let state = loss.state.get();
                let got = state.field("ratio").expect("the state has `ratio`");
                assert_all_close(got, &ratios, 1e-12, &format!("{what}: state"));
            }
        }
    }
}

/// λ stays in `[λ0(1 − 1/α), λ0]`, for typical and for extreme logits, and only the
/// batch's samples move.
#[test]
fn lambda_stays_in_its_range_and_only_the_batch_moves() {
    let mut rng = Rng::new(1332);
    let samples = 16;
    for s in SETTINGS {
        let loss = s.loss().with_dataset_size(samples);
        for scale in [0.1, 5.0, 300.0] {
            let before = loss.state.get().field("ratio").unwrap().to_vec();
            let (z, y, ids) = batch(&mut rng, 6, 5, samples, scale);
            let (value, grad) = step::<f64>(&loss, &z, 5, &y, &ids).expect("a valid batch");
            assert!(value.is_finite() && grad.iter().all(|g| g.is_finite()));
            let after = loss.state.get().field("ratio").unwrap().to_vec();
            for q in 0..samples {
                if ids.contains(&q) {
                    let r = after[q];
                    assert!(
                        (1.0 - 1.0 / s.alpha - 1e-12..=1.0 + 1e-12).contains(&r),
                        "{s:?} scale {scale}: ratio {r}"
                    );
                } else {
                    assert_eq!(after[q], before[q], "sample {q} is not in the batch");
                }
            }
        }
    }
}

/// Without softplus the L1 normalisation makes the loss and the new state invariant to
/// a positive rescaling of each row.
#[test]
fn without_softplus_a_row_scale_changes_nothing() {
    let mut rng = Rng::new(1333);
    let s = SETTINGS[0];
    let (z, y, ids) = batch(&mut rng, 5, 4, 5, 3.0);
    let scaled: Vec<f64> = z
        .iter()
        .enumerate()
        .map(|(k, v)| v * [0.01, 1.0, 7.5, 300.0, 2.0][k / 4])
        .collect();
    let (a, b) = (s.loss().with_dataset_size(5), s.loss().with_dataset_size(5));
    let (va, _) = step::<f64>(&a, &z, 4, &y, &ids).unwrap();
    let (vb, _) = step::<f64>(&b, &scaled, 4, &y, &ids).unwrap();
    assert_close(va, vb, 1e-12, 1e-14, "value");
    assert_all_close(
        a.state.get().field("ratio").unwrap(),
        b.state.get().field("ratio").unwrap(),
        1e-12,
        "state",
    );
}

/// An all-zero row (without softplus) and α ≤ 1 are refused, naming the sample where
/// there is one, and leave the state as it was.
#[test]
fn a_zero_row_and_alpha_at_most_one_are_refused() {
    let z = [1.0, -2.0, 0.5, 0.0, 0.0, 0.0];
    let loss = SETTINGS[0].loss().with_dataset_size(4);
    let before = loss.state.get();
    let err = step::<f64>(&loss, &z, 3, &[0, 1], &[2, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                loss: "aldr_kl",
                sample: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(loss.state.get(), before, "a refused call changes nothing");
    // with softplus the same row is fine
    let soft = SETTINGS[1].loss().with_dataset_size(4);
    assert!(step::<f64>(&soft, &z, 3, &[0, 1], &[2, 3]).is_ok());
    let weak = SETTINGS[0].loss().with_alpha(1.0).with_dataset_size(4);
    let err = step::<f64>(&weak, &[1.0, 2.0, 3.0], 3, &[0], &[0]).unwrap_err();
    assert!(
        matches!(err, LossError::Requirement { sample: None, .. }),
        "{err:?}"
    );
}

#[test]
fn f32_agrees_with_f64_over_several_steps() {
    let mut rng = Rng::new(1334);
    for s in SETTINGS {
        let (l32, l64) = (s.loss().with_dataset_size(8), s.loss().with_dataset_size(8));
        for _ in 0..3 {
            let (z, y, ids) = batch(&mut rng, 5, 6, 8, 3.0);
            let (v32, g32) = step::<f32>(&l32, &z, 6, &y, &ids).unwrap();
            let (v64, g64) = step::<f64>(&l64, &z, 6, &y, &ids).unwrap();
            assert_close(v32, v64, 1e-4, 1e-5, &format!("{s:?}: value"));
            assert_all_close(&g32, &g64, 1e-3, &format!("{s:?}: gradient"));
        }
    }
}

/// A transposed (permuted) logits tensor gives the same value, state and gradient as
/// its contiguous copy.
#[test]
fn a_transposed_batch_gives_the_same_step() {
    let mut rng = Rng::new(1335);
    let (n, c) = (4, 5);
    let (z, y, ids) = batch(&mut rng, n, c, 6, 3.0);
    let dev: Cpu = Default::default();
    let mut zt = vec![0.0; n * c];
    for i in 0..n {
        for k in 0..c {
            zt[k * n + i] = z[i * c + k];
        }
    }
    let t: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(zt, (c, n));
    let permuted = SETTINGS[1].loss().with_dataset_size(6);
    let out = permuted.forward(
        WithIds(
            t.leaky_trace().permute::<(usize, usize), Axes2<1, 0>>(),
            &ids,
        ),
        &y[..],
    );
    let value = out.array();
    let grad_t = out.backward().get(&t).as_vec();
    let contiguous = SETTINGS[1].loss().with_dataset_size(6);
    let (want, want_grad) = step::<f64>(&contiguous, &z, c, &y, &ids).unwrap();
    assert_close(value, want, 1e-14, 0.0, "value");
    let grad: Vec<f64> = (0..n * c).map(|r| grad_t[(r % c) * n + r / c]).collect();
    assert_all_close(&grad, &want_grad, 1e-14, "gradient");
    assert_eq!(permuted.state.get(), contiguous.state.get(), "state");
}
