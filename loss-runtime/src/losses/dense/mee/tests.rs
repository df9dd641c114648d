//! MEE's DLLE and DIsoMap terms against plain loops of the official formulas, their
//! gradients against central differences, and the invariances they encode.

use dfdx::prelude::*;

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::Loss;

fn matrix(v: &[f64], k: usize) -> Tensor<(usize, usize), f64, Cpu> {
    let dev: Cpu = Default::default();
    dev.tensor_from_vec(v.to_vec(), (v.len() / k, k))
}

fn mse(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
}

#[test]
fn dlle_is_the_real_mse_plus_the_fake_mse() {
    let mut rng = Rng::new(3301);
    let (b, k) = (4, 3);
    let d: Vec<f64> = (0..2 * b * k).map(|_| rng.range(-1.0, 1.0)).collect();
    let d_aug: Vec<f64> = (0..2 * b * k).map(|_| rng.range(-1.0, 1.0)).collect();
    let half = b * k;
    let naive = |d: &[f64]| mse(&d[..half], &d_aug[..half]) + mse(&d[half..], &d_aug[half..]);
    let x = matrix(&d, k);
    let out = MeeDlle::default().forward(x.leaky_trace(), &matrix(&d_aug, k));
    assert_close(out.array(), naive(&d), 1e-12, 0.0, "value");
    let fd = finite_differences(&d, naive);
    assert_all_close(&out.backward().get(&x).as_vec(), &fd, 1e-7, "gradient");
    let same = MeeDlle::default().forward(matrix(&d, k), &matrix(&d, k));
    assert_eq!(same.array(), 0.0);
}

#[test]
fn disomap_matches_the_official_target_and_vanishes_for_an_affine_map() {
    let mut rng = Rng::new(3302);
    let (b, k) = (5, 2);
    let d_mix: Vec<f64> = (0..b * k).map(|_| rng.range(-1.0, 1.0)).collect();
    let d_real: Vec<f64> = (0..b * k).map(|_| rng.range(-1.0, 1.0)).collect();
    let d_fake: Vec<f64> = (0..b * k).map(|_| rng.range(-1.0, 1.0)).collect();
    let alpha: Vec<f64> = (0..b).map(|_| rng.range(-2.0, 2.0)).collect();
    let noise: Vec<f64> = (0..b * k).map(|_| rng.range(-0.1, 0.1)).collect();
    let target: Vec<f64> = (0..b * k)
        .map(|n| alpha[n / k] * d_real[n] + (1.0 - alpha[n / k]) * d_fake[n] + noise[n])
        .collect();
    let x = matrix(&d_mix, k);
    let call = |x: Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>| {
        MeeDisomap::default().forward(
            (x, d_real.clone(), alpha.clone(), noise.clone()),
            &matrix(&d_fake, k),
        )
    };
    let out = call(x.leaky_trace());
    assert_close(out.array(), mse(&d_mix, &target), 1e-12, 0.0, "value");
    let fd = finite_differences(&d_mix, |m| mse(m, &target));
    assert_all_close(&out.backward().get(&x).as_vec(), &fd, 1e-7, "gradient");
    // an affine D(x) = A x + c on 1-d inputs, zero noise: the mix embeds as the mix
    let d = |x: f64| [2.0 * x + 0.5, -x + 1.0];
    let (xr, xf): (Vec<f64>, Vec<f64>) = (0..b)
        .map(|_| (rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)))
        .unzip();
    let embed = |xs: &[f64]| xs.iter().flat_map(|&x| d(x)).collect::<Vec<f64>>();
    let mix: Vec<f64> = (0..b)
        .map(|i| alpha[i] * xr[i] + (1.0 - alpha[i]) * xf[i])
        .collect();
    let value = MeeDisomap::default()
        .forward(
            (
                matrix(&embed(&mix), k),
                embed(&xr),
                alpha.clone(),
                vec![0.0; b * k],
            ),
            &matrix(&embed(&xf), k),
        )
        .array();
    assert!(value < 1e-28, "{value}");
}
