//! Denoising MSE against a plain loop, its gradient `2(f − t)/B` and central differences,
//! shape handling, refusals; the noise-level sampler's range, law and determinism.

use dfdx::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, LossError};

fn naive(f: &[f64], t: &[f64], batch: usize) -> f64 {
    f.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / batch as f64
}

/// The loss and its gradient for `[B, C, H, W]` images.
fn call(f: &[f64], t: &[f64], dims: [usize; 4]) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let shape = (dims[0], dims[1], dims[2], dims[3]);
    let x: Tensor<(usize, usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(f.to_vec(), shape);
    let y = dev.tensor_from_vec(t.to_vec(), shape);
    let out = DenoisingMse::default().try_forward(x.leaky_trace(), &y)?;
    let value = out.array();
    Ok((value, out.backward().get(&x).as_vec()))
}

#[test]
fn value_and_gradient_match_the_summed_error_over_the_batch() {
    let mut rng = Rng::new(1801);
    for dims in [[1, 1, 1, 1], [2, 3, 4, 5], [4, 1, 3, 2]] {
        let n: usize = dims.iter().product();
        let f: Vec<f64> = (0..n).map(|_| rng.range(-2.0, 2.0)).collect();
        let t: Vec<f64> = (0..n).map(|_| rng.range(-1.0, 1.0)).collect();
        let (value, grad) = call(&f, &t, dims).unwrap();
        assert_close(value, naive(&f, &t, dims[0]), 1e-12, 1e-14, "value");
        let closed: Vec<f64> = f
            .iter()
            .zip(&t)
            .map(|(a, b)| 2.0 * (a - b) / dims[0] as f64)
            .collect();
        assert_all_close(&grad, &closed, 1e-12, "2(f − t)/B");
        let fd = finite_differences(&f, |f| naive(f, &t, dims[0]));
        assert_all_close(&grad, &fd, 1e-7, "central differences");
    }
}

#[test]
fn a_perfect_prediction_costs_nothing_and_flat_shapes_agree() {
    let dev: Cpu = Default::default();
    let f: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    let zero = DenoisingMse::default().forward(f.clone(), &f.clone());
    assert_eq!(zero.array(), 0.0);
    // [B, E] and [B, C, H, W] with the same elements per image give the same value
    let t: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    let flat = DenoisingMse::default().forward(f.clone(), &t).array();
    let f4: Tensor<Rank4<3, 1, 2, 2>, f64, _> = dev.tensor_from_vec(f.as_vec(), Rank4::default());
    let t4: Tensor<Rank4<3, 1, 2, 2>, f64, _> = dev.tensor_from_vec(t.as_vec(), Rank4::default());
    let image = DenoisingMse::default().forward(f4, &t4).array();
    assert_close(flat, image, 1e-14, 0.0, "flattening");
}

#[test]
fn mismatched_or_non_finite_inputs_are_refused() {
    let dev: Cpu = Default::default();
    let f: Tensor<(usize, usize), f64, Cpu> = dev.zeros_like(&(2, 3));
    let t: Tensor<(usize, usize), f64, Cpu> = dev.zeros_like(&(3, 2));
    let err = DenoisingMse::default()
        .try_forward(f.clone(), &t)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::BadShape {
                input: "target",
                ..
            }
        ),
        "{err}"
    );
    let mut bad = vec![0.0; 6];
    bad[4] = f64::NAN;
    let t = dev.tensor_from_vec(bad, (2, 3));
    let err = DenoisingMse::default().try_forward(f, &t).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::NonFinite {
                input: "target",
                index: 4,
                ..
            }
        ),
        "{err}"
    );
    let empty: Tensor<(usize, usize), f64, Cpu> = dev.zeros_like(&(0, 3));
    let err = DenoisingMse::default()
        .try_forward(empty.clone(), &empty)
        .unwrap_err();
    assert!(matches!(err, LossError::EmptyBatch { .. }), "{err}");
}

#[test]
fn noise_levels_have_uniform_roots_within_the_bounds() {
    let mut rng = StdRng::seed_from_u64(7);
    let (min, max) = (4.0, 100.0);
    let sigmas = noise_level_sampler(&mut rng, 20_000, min, max).unwrap();
    assert!(sigmas
        .iter()
        .all(|&s| (min / 255.0..=max / 255.0).contains(&s)));
    // √(255σ) is uniform on [√min, √max]: its mean and variance
    let roots: Vec<f64> = sigmas.iter().map(|s| (255.0 * s).sqrt()).collect();
    let mean = roots.iter().sum::<f64>() / roots.len() as f64;
    let var = roots.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / roots.len() as f64;
    let (lo, hi) = (min.sqrt(), max.sqrt());
    assert_close(mean, (lo + hi) / 2.0, 0.01, 0.0, "mean of the roots");
    assert_close(
        var,
        (hi - lo).powi(2) / 12.0,
        0.03,
        0.0,
        "variance of the roots",
    );
    // the same seed, the same levels
    let again = noise_level_sampler(&mut StdRng::seed_from_u64(7), 20_000, min, max).unwrap();
    assert_eq!(sigmas, again);
    for (lo, hi) in [(-1.0, 5.0), (5.0, 1.0), (0.0, f64::INFINITY)] {
        assert!(noise_level_sampler(&mut rng, 3, lo, hi).is_err());
    }
}

#[test]
fn depict_reconstruction_is_the_mean_over_every_element() {
    let mut rng = Rng::new(1201);
    let dev: Cpu = Default::default();
    let (b, e) = (3, 8);
    let f: Vec<f64> = (0..b * e).map(|_| rng.range(-2.0, 2.0)).collect();
    let t: Vec<f64> = (0..b * e).map(|_| rng.range(-1.0, 1.0)).collect();
    let naive = |f: &[f64]| naive(f, &t, 1) / (b * e) as f64;
    let x: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(f.clone(), (b, e));
    let out = DepictReconstruction::default()
        .forward(x.leaky_trace(), &dev.tensor_from_vec(t.clone(), (b, e)));
    assert_close(out.array(), naive(&f), 1e-12, 0.0, "value");
    let fd = finite_differences(&f, naive);
    assert_all_close(&out.backward().get(&x).as_vec(), &fd, 1e-7, "gradient");
}
