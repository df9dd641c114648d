//! NoProp's DT, CT and FM objectives against plain loops (the KL against the generic
//! diagonal-Gaussian KL), gradients against central differences, the schedule's checks.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError};

/// KL(N(μ, s²I) ‖ N(0, I)) for a diagonal Gaussian, term by term.
fn gaussian_kl(mu: &[f64], var: f64) -> f64 {
    mu.iter()
        .map(|m| 0.5 * (var + m * m - 1.0 - var.ln()))
        .sum()
}

fn snr(a: f64) -> f64 {
    a / (1.0 - a)
}

/// NoProp-DT's denoising and prior terms, written from the algorithm box.
fn naive_dt(u_hat: &[f64], u: &[f64], e: usize, schedule: &[f64], t: usize, eta: f64) -> f64 {
    let b = u.len() / e;
    let blocks = (schedule.len() - 1) as f64;
    let a0 = schedule[0];
    let weight = blocks / 2.0 * eta * (snr(schedule[t]) - snr(schedule[t - 1]));
    (0..b)
        .map(|i| {
            let row = &u[i * e..(i + 1) * e];
            let mu: Vec<f64> = row.iter().map(|x| a0.sqrt() * x).collect();
            let sq: f64 = (0..e).map(|k| (u_hat[i * e + k] - row[k]).powi(2)).sum();
            gaussian_kl(&mu, 1.0 - a0) + weight * sq
        })
        .sum::<f64>()
        / b as f64
}

fn matrix(v: &[f64], e: usize) -> Tensor<(usize, usize), f64, Cpu> {
    let dev: Cpu = Default::default();
    dev.tensor_from_vec(v.to_vec(), (v.len() / e, e))
}

#[test]
fn dt_matches_the_algorithm_box_and_its_gradient() {
    let mut rng = Rng::new(2701);
    let schedule = cosine_alpha_bar(10);
    for (b, e, t) in [(1, 3, 1), (4, 5, 6), (3, 10, 10)] {
        let u: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
        let u_hat: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
        let loss = NopropDt::for_block(&schedule, t).unwrap();
        let x = matrix(&u_hat, e);
        let out = loss.forward(x.leaky_trace(), &matrix(&u, e));
        let want = naive_dt(&u_hat, &u, e, &schedule, t, 0.1);
        assert_close(out.array(), want, 1e-10, 1e-12, "value");
        let grad = out.backward().get(&x).as_vec();
        let fd = finite_differences(&u_hat, |h| naive_dt(h, &u, e, &schedule, t, 0.1));
        assert_all_close(&grad, &fd, 1e-6, "gradient");
    }
}

#[test]
fn a_perfect_denoiser_leaves_the_kl_which_is_zero_at_a_pure_noise_end() {
    let u = [0.3, -1.0, 2.0, 0.5];
    let schedule = [0.2, 0.5, 0.9];
    let loss = NopropDt::for_block(&schedule, 2).unwrap();
    let value = loss.forward(matrix(&u, 2), &matrix(&u, 2)).array();
    let kl: f64 = u
        .chunks(2)
        .map(|row| {
            gaussian_kl(
                &row.iter().map(|x| 0.2f64.sqrt() * x).collect::<Vec<_>>(),
                0.8,
            )
        })
        .sum::<f64>()
        / 2.0;
    assert_close(value, kl, 1e-12, 0.0, "KL only");
    assert!(kl > 0.0);
    let pure = NopropDt::for_block(&[0.0, 0.5, 0.9], 2).unwrap();
    assert_eq!(pure.forward(matrix(&u, 2), &matrix(&u, 2)).array(), 0.0);
}

#[test]
fn the_schedule_is_checked() {
    assert!(NopropDt::for_block(&[0.1, 0.1, 0.5], 1).is_err());
    assert!(NopropDt::for_block(&[0.1, 0.5, 0.3], 1).is_err());
    assert!(NopropDt::for_block(&[0.1, 1.0], 1).is_err());
    assert!(NopropDt::for_block(&[0.1], 1).is_err());
    assert!(NopropDt::for_block(&[0.1, 0.5], 2).is_err());
    assert!(NopropDt::for_block(&[0.1, 0.5], 0).is_err());
    // a decreasing pair set by hand is refused at the call, not computed
    let loss = NopropDt::default()
        .with_alpha_bar_prev(0.6)
        .with_alpha_bar_t(0.4);
    let x = matrix(&[1.0, 2.0], 2);
    let err = loss.try_forward(x.clone(), &x).unwrap_err();
    assert!(matches!(err, LossError::Requirement { .. }), "{err}");
    let s = cosine_alpha_bar(10);
    assert_eq!(s.len(), 11);
    assert!(s.windows(2).all(|w| w[1] > w[0]), "{s:?}");
    assert!(s[0] < 1e-6 && s[10] == 0.999);
}

#[test]
fn ct_weights_each_sample_by_its_snr_derivative() {
    let mut rng = Rng::new(2702);
    let (b, e) = (4, 3);
    let u: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
    let u_hat: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
    let snr_prime: Vec<f64> = (0..b).map(|_| rng.range(0.1, 5.0)).collect();
    let a0: f64 = 0.05;
    let naive = |u_hat: &[f64], sp: &[f64]| {
        (0..b)
            .map(|i| {
                let row = &u[i * e..(i + 1) * e];
                let mu: Vec<f64> = row.iter().map(|x| a0.sqrt() * x).collect();
                let sq: f64 = (0..e).map(|k| (u_hat[i * e + k] - row[k]).powi(2)).sum();
                gaussian_kl(&mu, 1.0 - a0) + 0.5 * sp[i] * sq
            })
            .sum::<f64>()
            / b as f64
    };
    let dev: Cpu = Default::default();
    let x = matrix(&u_hat, e);
    let sp: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(snr_prime.clone(), (b,));
    let loss = NopropCt::default().with_alpha_bar_0(a0);
    let out = loss.forward((x.leaky_trace(), sp.leaky_trace()), &matrix(&u, e));
    assert_close(out.array(), naive(&u_hat, &snr_prime), 1e-12, 0.0, "value");
    let grads = out.backward();
    let fd_x = finite_differences(&u_hat, |h| naive(h, &snr_prime));
    assert_all_close(&grads.get(&x).as_vec(), &fd_x, 1e-7, "∂/∂û");
    let fd_s = finite_differences(&snr_prime, |s| naive(&u_hat, s));
    assert_all_close(&grads.get(&sp).as_vec(), &fd_s, 1e-7, "∂/∂SNR′");
    let err = loss
        .try_forward(
            (
                x.clone(),
                dev.tensor_from_vec(vec![1.0, 0.0, 1.0, 1.0], (b,)),
            ),
            &matrix(&u, e),
        )
        .unwrap_err();
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
}

#[test]
fn fm_vanishes_at_the_exact_velocity_and_matches_a_loop() {
    let mut rng = Rng::new(2703);
    let (b, e) = (3, 4);
    let u: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
    let z0: Vec<f64> = (0..b * e).map(|_| rng.range(-2.0, 2.0)).collect();
    let exact: Vec<f64> = u.iter().zip(&z0).map(|(u, z)| u - z).collect();
    let value = NopropFm::default()
        .forward((matrix(&exact, e), z0.clone()), &matrix(&u, e))
        .array();
    assert!(value.abs() < 1e-28, "{value}");
    // the extrapolated endpoint z_t + (1 − t)·v of the exact velocity is u_y
    let t = 0.3;
    for k in 0..b * e {
        let z_t = t * u[k] + (1.0 - t) * z0[k];
        assert_close(z_t + (1.0 - t) * exact[k], u[k], 1e-12, 1e-15, "endpoint");
    }
    let v: Vec<f64> = (0..b * e).map(|_| rng.range(-2.0, 2.0)).collect();
    let naive = |v: &[f64]| {
        (0..b * e)
            .map(|k| (v[k] - (u[k] - z0[k])).powi(2))
            .sum::<f64>()
            / b as f64
    };
    let x = matrix(&v, e);
    let out = NopropFm::default().forward((x.leaky_trace(), z0.clone()), &matrix(&u, e));
    assert_close(out.array(), naive(&v), 1e-12, 0.0, "value");
    let fd = finite_differences(&v, naive);
    assert_all_close(&out.backward().get(&x).as_vec(), &fd, 1e-7, "gradient");
}
