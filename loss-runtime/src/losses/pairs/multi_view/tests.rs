//! MV-InfoNCE and MV-DHEL against the official code's direct formulas, written as plain
//! f64 loops over the view-major rows; gradients against central differences; the
//! invariances the paper states; finiteness where the direct form overflows.

use dfdx::prelude::*;

use crate::testing::Rng;
use crate::testing_pairs::{assert_all_close, central_differences, random_embeddings};
use crate::{Loss, MvDhel, MvInfonce, SelfSupervised, Views};

/// The rows `[K·N, d]` L2-normalised, and their dot products, as `u[r]·u[q]`.
fn cosines(z: &[f64], d: usize) -> Vec<Vec<f64>> {
    let rows: Vec<Vec<f64>> = z
        .chunks(d)
        .map(|r| {
            let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            r.iter().map(|x| x / norm).collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    rows.iter()
        .map(|a| rows.iter().map(|b| dot(a, b)).collect())
        .collect()
}

/// MVINFONCE as the official code computes it: exponentials, then the logs.
fn direct_mv_infonce(z: &[f64], (k, n, d): (usize, usize, usize), tau: f64) -> f64 {
    let s = cosines(z, d);
    let row = |item: usize, view: usize| view * n + item;
    let mut total = 0.0;
    for item in 0..n {
        let (mut pos, mut neg) = (0.0, 0.0);
        for l in 0..k {
            let a = row(item, l);
            for l2 in (0..k).filter(|&l2| l2 != l) {
                pos += (s[a][row(item, l2)] / tau).exp();
            }
            for r in (0..k * n).filter(|&r| r != a) {
                neg += (s[a][r] / tau).exp();
            }
        }
        total += -(pos / neg).ln();
    }
    total / n as f64
}

/// MVDHEL as the official code computes it.
fn direct_mv_dhel(z: &[f64], (k, n, d): (usize, usize, usize), tau: f64) -> f64 {
    let s = cosines(z, d);
    let row = |item: usize, view: usize| view * n + item;
    let mut total = 0.0;
    for item in 0..n {
        let mut pos = 0.0;
        for l in 0..k {
            for l2 in l + 1..k {
                pos += (s[row(item, l)][row(item, l2)] / tau).exp();
            }
        }
        let mut neg = 1.0;
        for l in 0..k {
            let a = row(item, l);
            neg *= (0..n)
                .filter(|&m| m != item)
                .map(|m| (s[a][row(m, l)] / tau).exp())
                .sum::<f64>();
        }
        total += -pos.ln() + neg.ln();
    }
    total / n as f64
}

type Traced = Tensor<(usize, usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>;

/// `(value, ∂/∂z)` of `loss` on views `z` `[k, n, d]`.
fn run<L>(loss: &L, z: &[f64], (k, n, d): (usize, usize, usize)) -> (f64, Vec<f64>)
where
    L: Loss<Views<Traced>, SelfSupervised, Output = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>>,
{
    let dev: Cpu = Default::default();
    let t: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.to_vec(), (k, n, d));
    let out = loss.forward(Views(t.leaky_trace()), &SelfSupervised);
    let value = out.array();
    (value, out.backward().get(&t).as_vec())
}

#[test]
fn values_and_gradients_match_the_official_formulas() {
    let mut rng = Rng::new(25);
    for (k, n, d, tau) in [(2, 5, 4, 0.5), (3, 4, 3, 0.2), (4, 3, 5, 1.0)] {
        let z = random_embeddings(&mut rng, k * n, d);
        let dims = (k, n, d);
        let what = format!("K = {k}, N = {n}, τ = {tau}");
        let (v, g) = run(
            &MvInfonce {
                tau,
                ..Default::default()
            },
            &z,
            dims,
        );
        assert_all_close(
            &[v],
            &[direct_mv_infonce(&z, dims, tau)],
            1e-10,
            &format!("mv_infonce {what}"),
        );
        let fd = central_differences(&|x| direct_mv_infonce(x, dims, tau), &z, 1e-6);
        assert_all_close(&g, &fd, 1e-6, &format!("mv_infonce gradient {what}"));
        let (v, g) = run(
            &MvDhel {
                tau,
                ..Default::default()
            },
            &z,
            dims,
        );
        assert_all_close(
            &[v],
            &[direct_mv_dhel(&z, dims, tau)],
            1e-10,
            &format!("mv_dhel {what}"),
        );
        let fd = central_differences(&|x| direct_mv_dhel(x, dims, tau), &z, 1e-6);
        assert_all_close(&g, &fd, 1e-6, &format!("mv_dhel gradient {what}"));
    }
}

#[test]
fn mv_infonce_is_nonnegative_and_both_ignore_the_order_of_items_views_and_row_scale() {
    let mut rng = Rng::new(7);
    let (k, n, d) = (3, 6, 4);
    let z = random_embeddings(&mut rng, k * n, d);
    let items = rng.permutation(n);
    let views = rng.permutation(k);
    let mut moved = vec![0.0; z.len()];
    for (l, &view) in views.iter().enumerate() {
        for (m, &item) in items.iter().enumerate() {
            let (from, to) = ((l * n + m) * d, (view * n + item) * d);
            let scale = 1.0 + (l + m) as f64;
            for c in 0..d {
                moved[to + c] = scale * z[from + c];
            }
        }
    }
    for tau in [0.1, 0.5] {
        let (a, _) = run(
            &MvInfonce {
                tau,
                ..Default::default()
            },
            &z,
            (k, n, d),
        );
        let (b, _) = run(
            &MvInfonce {
                tau,
                ..Default::default()
            },
            &moved,
            (k, n, d),
        );
        assert!(a >= 0.0, "mv_infonce = {a}");
        assert_all_close(&[b], &[a], 1e-10, "mv_infonce, permuted and scaled");
        let (a, _) = run(
            &MvDhel {
                tau,
                ..Default::default()
            },
            &z,
            (k, n, d),
        );
        let (b, _) = run(
            &MvDhel {
                tau,
                ..Default::default()
            },
            &moved,
            (k, n, d),
        );
        assert_all_close(&[b], &[a], 1e-10, "mv_dhel, permuted and scaled");
    }
}

#[test]
fn small_temperatures_stay_finite_in_f32_where_the_direct_form_overflows() {
    let mut rng = Rng::new(3);
    let (k, n, d, tau) = (4, 8, 6, 0.01);
    let z = random_embeddings(&mut rng, k * n, d);
    let dev: Cpu = Default::default();
    let z32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
    // the direct form in f32: e^{1/τ} = e^100 overflows
    assert!((100.0f32).exp().is_infinite());
    for (name, got, want) in [
        (
            "mv_infonce",
            {
                let t: Tensor<(usize, usize, usize), f32, Cpu> =
                    dev.tensor_from_vec(z32.clone(), (k, n, d));
                MvInfonce {
                    tau,
                    ..Default::default()
                }
                .forward(Views(t), &SelfSupervised)
                .array()
            },
            direct_mv_infonce(&z, (k, n, d), tau),
        ),
        (
            "mv_dhel",
            {
                let t: Tensor<(usize, usize, usize), f32, Cpu> =
                    dev.tensor_from_vec(z32.clone(), (k, n, d));
                MvDhel {
                    tau,
                    ..Default::default()
                }
                .forward(Views(t), &SelfSupervised)
                .array()
            },
            direct_mv_dhel(&z, (k, n, d), tau),
        ),
    ] {
        assert!(got.is_finite(), "{name}: {got}");
        let rel = ((got as f64 - want) / want.abs().max(1.0)).abs();
        assert!(rel < 1e-3, "{name}: f32 {got} vs f64 direct {want}");
    }
}
