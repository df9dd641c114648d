//! Weighted MSE against a plain loop and central differences, the closed-form gradient,
//! refusals; the Christoffel weights on a constant and a Legendre basis.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError};

fn naive(v: &[f64], f: &[f64], w: &[f64]) -> f64 {
    let n = w.len();
    let per = v.len() / n;
    (0..n)
        .map(|i| {
            let sq: f64 = (0..per)
                .map(|e| (v[i * per + e] - f[i * per + e]).powi(2))
                .sum();
            w[i] * sq
        })
        .sum::<f64>()
        / n as f64
}

fn call(v: &[f64], f: &[f64], w: &[f64], per: usize) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let n = w.len();
    let x: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(v.to_vec(), (n, per));
    let t = dev.tensor_from_vec(f.to_vec(), (n, per));
    let out = WeightedMse::default().try_forward((x.leaky_trace(), w.to_vec()), &t)?;
    let value = out.array();
    Ok((value, out.backward().get(&x).as_vec()))
}

#[test]
fn value_and_gradient_match_a_loop() {
    let mut rng = Rng::new(3101);
    for (n, per) in [(1, 1), (7, 1), (5, 3)] {
        let v: Vec<f64> = (0..n * per).map(|_| rng.range(-2.0, 2.0)).collect();
        let f: Vec<f64> = (0..n * per).map(|_| rng.range(-2.0, 2.0)).collect();
        let w: Vec<f64> = (0..n).map(|_| rng.range(0.0, 3.0)).collect();
        let (value, grad) = call(&v, &f, &w, per).unwrap();
        assert_close(value, naive(&v, &f, &w), 1e-12, 1e-14, "value");
        let closed: Vec<f64> = (0..n * per)
            .map(|k| 2.0 * w[k / per] * (v[k] - f[k]) / n as f64)
            .collect();
        assert_all_close(&grad, &closed, 1e-12, "2w(v − f)/n");
        let fd = finite_differences(&v, |v| naive(v, &f, &w));
        assert_all_close(&grad, &fd, 1e-7, "central differences");
    }
}

#[test]
fn negative_or_misshapen_weights_are_refused() {
    let err = call(&[1.0, 2.0], &[0.0, 0.0], &[1.0, -0.5], 1).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                sample: Some(1),
                ..
            }
        ),
        "{err}"
    );
    let dev: Cpu = Default::default();
    let x: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(vec![1.0, 2.0], (2,));
    let err = WeightedMse::default()
        .try_forward((x.clone(), vec![1.0, 2.0, 3.0]), &x)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::BadShape { .. } | LossError::AxisMismatch { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_constant_basis_gives_unit_weights_and_the_plain_mse() {
    let w = christoffel_weights(&[1.0; 6], 1).unwrap();
    assert_eq!(w, vec![1.0; 6]);
    let mut rng = Rng::new(3102);
    let v: Vec<f64> = (0..6).map(|_| rng.range(-1.0, 1.0)).collect();
    let f: Vec<f64> = (0..6).map(|_| rng.range(-1.0, 1.0)).collect();
    let mse = v.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / 6.0;
    assert_close(call(&v, &f, &w, 1).unwrap().0, mse, 1e-12, 0.0, "plain MSE");
}

/// The orthonormal Legendre polynomials on [−1, 1] under the uniform probability measure.
fn legendre(x: f64, m: usize) -> Vec<f64> {
    let mut p = vec![1.0, x];
    for n in 1..m {
        let nf = n as f64;
        p.push(((2.0 * nf + 1.0) * x * p[n] - nf * p[n - 1]) / (nf + 1.0));
    }
    (0..m)
        .map(|n| p[n] * (2.0 * n as f64 + 1.0).sqrt())
        .collect()
}

#[test]
fn legendre_christoffel_function_averages_to_m_and_weights_average_to_one() {
    let m = 5;
    let grid: Vec<f64> = (0..20_001)
        .map(|k| -1.0 + 2.0 * k as f64 / 20_000.0)
        .collect();
    let phi: Vec<f64> = grid.iter().flat_map(|&x| legendre(x, m)).collect();
    let w = christoffel_weights(&phi, m).unwrap();
    // k_m = m/w: its mean under μ (uniform) is m (orthonormality)
    let mean_k = w.iter().map(|w| m as f64 / w).sum::<f64>() / w.len() as f64;
    assert_close(mean_k, m as f64, 1e-3, 0.0, "mean of k_m under μ");
    // E_ρ[w] = ∫ w·(k_m/m) dμ = 1 under the optimal density
    let mean_w_rho = w.iter().map(|w| w * (m as f64 / w) / m as f64).sum::<f64>() / w.len() as f64;
    assert_close(mean_w_rho, 1.0, 1e-12, 0.0, "E_ρ[w]");
}

#[test]
fn christoffel_weights_refuse_bad_input() {
    assert!(matches!(
        christoffel_weights(&[1.0; 5], 2),
        Err(LossError::BadShape { .. })
    ));
    assert!(matches!(
        christoffel_weights(&[1.0, f64::NAN], 1),
        Err(LossError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        christoffel_weights(&[1.0, 0.0, 0.0, 0.0], 2),
        Err(LossError::Requirement {
            sample: Some(1),
            ..
        })
    ));
}
