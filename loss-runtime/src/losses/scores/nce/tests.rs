//! NCE against its textbook form (logistic regression with logit G, plain f64 loops), its
//! gradient against central differences, the closed-form gradient in a bias `c`, stability
//! at extreme logits, refusals.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError};

fn log_sigmoid(x: f64) -> f64 {
    -(x.max(0.0) - x + (-x.abs()).exp().ln_1p())
}

/// The textbook NCE of each row: `−mean_data ln σ(G) − ν·mean_noise ln σ(−G)`.
fn naive(f: &[f64], log_q: &[f64], data: &[bool], cols: usize) -> f64 {
    let rows = f.len() / cols;
    let mut total = 0.0;
    for i in 0..rows {
        let idx = |k: usize| i * cols + k;
        let n = (0..cols).filter(|&k| data[idx(k)]).count() as f64;
        let m = cols as f64 - n;
        let nu = m / n;
        let g = |k: usize| f[idx(k)] - log_q[idx(k)] - nu.ln();
        let d: f64 = (0..cols)
            .filter(|&k| data[idx(k)])
            .map(|k| log_sigmoid(g(k)))
            .sum();
        let q: f64 = (0..cols)
            .filter(|&k| !data[idx(k)])
            .map(|k| log_sigmoid(-g(k)))
            .sum();
        total += -d / n - nu * q / m;
    }
    total / rows as f64
}

fn call(
    f: &[f64],
    log_q: &[f64],
    data: &[bool],
    cols: usize,
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let rows = f.len() / cols;
    let t: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(f.to_vec(), (rows, cols));
    let r: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(
        data.iter().map(|&d| if d { 1.0 } else { 0.0 }).collect(),
        (rows, cols),
    );
    let out = Nce::new().try_forward((t.leaky_trace(), log_q.to_vec()), &r)?;
    let value = out.array();
    Ok((value, out.backward().get(&t).as_vec()))
}

fn problem(
    rng: &mut Rng,
    rows: usize,
    n: usize,
    m: usize,
    scale: f64,
) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let cols = n + m;
    let f = (0..rows * cols).map(|_| rng.range(-scale, scale)).collect();
    let log_q = (0..rows * cols).map(|_| rng.range(-3.0, 0.0)).collect();
    let data = (0..rows * cols).map(|k| k % cols < n).collect();
    (f, log_q, data)
}

#[test]
fn value_and_gradient_match_the_textbook_form() {
    let mut rng = Rng::new(501);
    for (rows, n, m) in [(1, 3, 5), (2, 4, 4), (3, 2, 9)] {
        let (f, log_q, data) = problem(&mut rng, rows, n, m, 2.0);
        let cols = n + m;
        let (value, grad) = call(&f, &log_q, &data, cols).unwrap();
        assert_close(value, naive(&f, &log_q, &data, cols), 1e-12, 1e-14, "value");
        let fd = finite_differences(&f, |f| naive(f, &log_q, &data, cols));
        assert_all_close(&grad, &fd, 1e-7, "gradient");
    }
}

/// The gradient in a bias `c` of the model (`f − c`): `mean_data σ(−G) − ν·mean_noise σ(G)`,
/// the sum of the derived gradient over one row with the sign flipped.
#[test]
fn gradient_in_the_normaliser_is_closed_form() {
    let mut rng = Rng::new(502);
    let (n, m) = (4, 6);
    let (f, log_q, data) = problem(&mut rng, 1, n, m, 1.5);
    let grad = call(&f, &log_q, &data, n + m).unwrap().1;
    let nu = m as f64 / n as f64;
    let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
    let g = |k: usize| f[k] - log_q[k] - nu.ln();
    let want = (0..n).map(|k| logistic(-g(k))).sum::<f64>() / n as f64
        - nu * (n..n + m).map(|k| logistic(g(k))).sum::<f64>() / m as f64;
    assert_close(-grad.iter().sum::<f64>(), want, 1e-12, 1e-14, "∂L/∂c");
}

#[test]
fn extreme_logits_stay_finite() {
    let f = [800.0, -800.0, 900.0, -900.0];
    let log_q = [-1.0; 4];
    let data = [true, true, false, false];
    let (value, grad) = call(&f, &log_q, &data, 4).unwrap();
    assert_close(value, naive(&f, &log_q, &data, 4), 1e-12, 0.0, "value");
    assert!(
        value.is_finite() && grad.iter().all(|g| g.is_finite()),
        "{value} {grad:?}"
    );
}

#[test]
fn rows_without_data_or_noise_are_refused() {
    let err = call(
        &[0.0, 1.0, 2.0, 3.0],
        &[0.0; 4],
        &[true, false, false, false],
        2,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                loss: "nce",
                sample: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
}
