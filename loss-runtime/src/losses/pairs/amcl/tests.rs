//! Both AMCL losses against plain f64 loops (the official code's broadcast, the paper's
//! equation), their gradients — embeddings and temperatures — against central
//! differences, softplus's stability, the mining utility against brute force, and the
//! refusals.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError, PairLabels, SelfSupervised, Views, WithRefs};

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The official training step for one head: `sim [B] / temp [B, 1]` broadcast to
/// `[B, B]`, `−ln(e^s/(e^s + e^{−s}))` averaged, plus `β·mean((B/2)·ln τ + 1/τ)`.
fn naive_official(z1: &[f64], z2: &[f64], tau: &[f64], d: usize, beta: f64) -> f64 {
    let b = tau.len();
    let sim: Vec<f64> = (0..b)
        .map(|k| cosine(&z1[k * d..(k + 1) * d], &z2[k * d..(k + 1) * d]))
        .collect();
    let mut fit = 0.0;
    for &t in tau {
        for &s in &sim {
            fit += softplus(-2.0 * s / t) / (b * b) as f64;
        }
    }
    let reg: f64 = tau
        .iter()
        .map(|&t| b as f64 / 2.0 * t.ln() + 1.0 / t)
        .sum::<f64>()
        / b as f64;
    fit + beta * reg
}

/// The paper's Eq. 2.1 for one head over `2N` view-major rows.
fn naive_paper(z: &[f64], n: usize, d: usize, tp: &[f64], tn: &[f64], beta: f64, dim: f64) -> f64 {
    let rows = 2 * n;
    let row = |a: usize| &z[a * d..(a + 1) * d];
    let omega = |t: f64| dim / 2.0 * t.ln() + 1.0 / t;
    let mut total = 0.0;
    for i in 0..rows {
        let positive = cosine(row(i), row((i + n) % rows));
        let hardest = (0..rows)
            .filter(|j| j % n != i % n)
            .map(|j| cosine(row(i), row(j)))
            .fold(f64::NEG_INFINITY, f64::max);
        total += -positive / tp[i] + hardest / tn[i] + beta * (omega(tp[i]) - omega(tn[i]));
    }
    total / rows as f64
}

type Matrix = Tensor<(usize, usize), f64, Cpu>;
type Vector = Tensor<(usize,), f64, Cpu>;

/// The official loss's value and gradient, `[∂z1, ∂z2, ∂τ]` concatenated.
fn official(
    loss: &Amcl,
    z1: &[f64],
    z2: &[f64],
    tau: &[f64],
    d: usize,
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let b = tau.len();
    let (a, r): (Matrix, Matrix) = (
        dev.tensor_from_vec(z1.to_vec(), (b, d)),
        dev.tensor_from_vec(z2.to_vec(), (b, d)),
    );
    let t: Vector = dev.tensor_from_vec(tau.to_vec(), (b,));
    let ids: Vec<usize> = (0..b).collect();
    let labels = PairLabels {
        labels: &ids,
        ref_labels: &ids,
    };
    let out = loss.try_forward(
        (WithRefs(a.leaky_trace(), r.leaky_trace()), t.leaky_trace()),
        &labels,
    )?;
    let value = out.array();
    let grads = out.backward();
    let mut g = grads.get(&a).as_vec();
    g.extend(grads.get(&r).as_vec());
    g.extend(grads.get(&t).as_vec());
    Ok((value, g))
}

/// The paper loss's value and gradient, `[∂z, ∂τ⁺, ∂τ⁻]` concatenated.
fn paper(
    loss: &AmclPaper,
    z: &[f64],
    n: usize,
    d: usize,
    tp: &[f64],
    tn: &[f64],
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let v: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.to_vec(), (2, n, d));
    let (p, q): (Vector, Vector) = (
        dev.tensor_from_vec(tp.to_vec(), (2 * n,)),
        dev.tensor_from_vec(tn.to_vec(), (2 * n,)),
    );
    let out = loss.try_forward(
        (Views(v.leaky_trace()), p.leaky_trace(), q.leaky_trace()),
        &SelfSupervised,
    )?;
    let value = out.array();
    let grads = out.backward();
    let mut g = grads.get(&v).as_vec();
    g.extend(grads.get(&p).as_vec());
    g.extend(grads.get(&q).as_vec());
    Ok((value, g))
}

fn normals(rng: &mut Rng, count: usize) -> Vec<f64> {
    (0..count).map(|_| rng.range(-1.0, 1.0)).collect()
}

fn temperatures(rng: &mut Rng, count: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..count).map(|_| rng.range(lo, hi)).collect()
}

#[test]
fn official_value_and_gradient_match_the_broadcast_computation() {
    let mut rng = Rng::new(601);
    for (b, d) in [(1, 3), (3, 4), (6, 5)] {
        for beta in [0.0, 0.1, 1.0] {
            let (z1, z2) = (normals(&mut rng, b * d), normals(&mut rng, b * d));
            let tau = temperatures(&mut rng, b, 0.05, 2.0);
            let loss = Amcl::new().with_beta(beta);
            let (value, grad) = official(&loss, &z1, &z2, &tau, d).unwrap();
            let want = naive_official(&z1, &z2, &tau, d, beta);
            assert_close(value, want, 1e-12, 1e-14, &format!("B={b} β={beta}: value"));
            let x: Vec<f64> = [z1.clone(), z2.clone(), tau.clone()].concat();
            let want_grad = finite_differences(&x, |x| {
                let (z1, rest) = x.split_at(b * d);
                let (z2, tau) = rest.split_at(b * d);
                naive_official(z1, z2, tau, d, beta)
            });
            assert_all_close(
                &grad,
                &want_grad,
                1e-6,
                &format!("B={b} β={beta}: gradient"),
            );
        }
    }
}

/// τ = 1e-5 puts `|s/τ|` near 1e5, where the code's `exp` overflows: the value is the
/// softplus formula's, and finite, as is the gradient.
#[test]
fn official_tiny_temperatures_stay_finite() {
    let mut rng = Rng::new(602);
    let (b, d) = (4, 3);
    let (z1, z2) = (normals(&mut rng, b * d), normals(&mut rng, b * d));
    let tau = vec![1e-5; b];
    let (value, grad) = official(&Amcl::new(), &z1, &z2, &tau, d).unwrap();
    assert_close(
        value,
        naive_official(&z1, &z2, &tau, d, 0.1),
        1e-12,
        0.0,
        "value",
    );
    assert!(grad.iter().all(|g| g.is_finite()), "{grad:?}");
}

#[test]
fn paper_value_and_gradient_match_the_equation() {
    let mut rng = Rng::new(603);
    for (n, d) in [(2, 3), (4, 4)] {
        for (beta, dim) in [(0.0, 128.0), (0.1, 128.0), (0.5, 4.0)] {
            let z = normals(&mut rng, 2 * n * d);
            let tp = temperatures(&mut rng, 2 * n, 0.05, 2.0);
            let tn = temperatures(&mut rng, 2 * n, 0.05, 2.0);
            let loss = AmclPaper::new().with_beta(beta).with_dim(dim);
            let (value, grad) = paper(&loss, &z, n, d, &tp, &tn).unwrap();
            let what = format!("N={n} β={beta} d′={dim}");
            assert_close(
                value,
                naive_paper(&z, n, d, &tp, &tn, beta, dim),
                1e-12,
                1e-14,
                &what,
            );
            let x: Vec<f64> = [z.clone(), tp.clone(), tn.clone()].concat();
            let want_grad = finite_differences(&x, |x| {
                let (z, rest) = x.split_at(2 * n * d);
                let (tp, tn) = rest.split_at(2 * n);
                naive_paper(z, n, d, tp, tn, beta, dim)
            });
            assert_all_close(&grad, &want_grad, 1e-5, &format!("{what}: gradient"));
        }
    }
}

/// Ω′(τ) = d′/(2τ) − 1/τ², zero at τ = 2/d′: the derived gradient of the regulariser alone
/// (the similarity terms are independent of β) is β·Ω′ on τ⁺ and −β·Ω′ on τ⁻.
#[test]
fn paper_regulariser_gradient_is_omega_prime() {
    let mut rng = Rng::new(604);
    let (n, d, dim) = (3, 4, 16.0);
    let z = normals(&mut rng, 2 * n * d);
    let mut tp = temperatures(&mut rng, 2 * n, 0.05, 1.0);
    tp[0] = 2.0 / dim;
    let tn = temperatures(&mut rng, 2 * n, 0.05, 1.0);
    let with = paper(
        &AmclPaper::new().with_beta(1.0).with_dim(dim),
        &z,
        n,
        d,
        &tp,
        &tn,
    )
    .unwrap()
    .1;
    let without = paper(
        &AmclPaper::new().with_beta(0.0).with_dim(dim),
        &z,
        n,
        d,
        &tp,
        &tn,
    )
    .unwrap()
    .1;
    let omega_prime = |t: f64| dim / (2.0 * t) - 1.0 / (t * t);
    let rows = 2 * n;
    for k in 0..rows {
        let (gp, gn) = (2 * n * d + k, 2 * n * d + rows + k);
        let what = format!("row {k}");
        assert_close(
            with[gp] - without[gp],
            omega_prime(tp[k]) / rows as f64,
            1e-10,
            1e-12,
            &what,
        );
        assert_close(
            with[gn] - without[gn],
            -omega_prime(tn[k]) / rows as f64,
            1e-10,
            1e-12,
            &what,
        );
    }
    assert!(
        (with[2 * n * d] - without[2 * n * d]).abs() < 1e-12,
        "Ω′(2/d′) = 0"
    );
}

#[test]
fn hardest_negatives_match_brute_force() {
    let mut rng = Rng::new(605);
    let (n, d) = (5, 3);
    let z = normals(&mut rng, 2 * n * d);
    let dev: Cpu = Default::default();
    let v: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.clone(), (2, n, d));
    let got = hardest_negatives(&v).expect("five items");
    for (i, &h) in got.iter().enumerate() {
        assert_ne!(h % n, i % n, "row {i}: {h} is the same item");
        let c = cosine(&z[i * d..(i + 1) * d], &z[h * d..(h + 1) * d]);
        for j in (0..2 * n).filter(|j| j % n != i % n) {
            assert!(
                cosine(&z[i * d..(i + 1) * d], &z[j * d..(j + 1) * d]) <= c,
                "row {i}"
            );
        }
    }
    let one: Tensor<(usize, usize, usize), f64, Cpu> =
        dev.tensor_from_vec(vec![1.0; 2 * d], (2, 1, d));
    assert_eq!(hardest_negatives(&one), None);
}

#[test]
fn bad_temperatures_and_pairings_are_refused() {
    let mut rng = Rng::new(606);
    let (b, d) = (3, 2);
    let (z1, z2) = (normals(&mut rng, b * d), normals(&mut rng, b * d));
    let err = official(&Amcl::new(), &z1, &z2, &[0.1, 0.0, 0.3], d).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                loss: "amcl",
                sample: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    let err = paper(
        &AmclPaper::new(),
        &normals(&mut rng, 2 * b * d),
        b,
        d,
        &[0.1; 6],
        &[0.1, 0.1, -1.0, 0.1, 0.1, 0.1],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                loss: "amcl_paper",
                sample: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    // one item: no negatives
    let err = paper(
        &AmclPaper::new(),
        &normals(&mut rng, 2 * d),
        1,
        d,
        &[0.1; 2],
        &[0.1; 2],
    )
    .unwrap_err();
    assert!(matches!(err, LossError::Requirement { .. }), "{err:?}");
}
