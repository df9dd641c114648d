//! The filter, padding and decimation against plain loops; their backward passes against
//! central differences along a random direction.

use dfdx::prelude::*;

use super::*;
use crate::testing::{assert_close, Rng};
use crate::testing_pairs::assert_all_close;

fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.range(-1.0, 1.0)).collect()
}

fn image(v: &[f64], d: [usize; 4]) -> Image<f64> {
    let dev: Cpu = Default::default();
    dev.tensor_from_vec(v.to_vec(), (d[0], d[1], d[2], d[3]))
}

/// `⟨u, f(x)⟩`, its gradient through the tape, and the central difference of the value
/// along a random direction, compared with the gradient's projection on it.
fn check_vjp(
    dims: [usize; 4],
    seed: u64,
    f: impl Fn(Image<f64, OwnedTape<f64, Cpu>>) -> Image<f64, OwnedTape<f64, Cpu>>,
) {
    let mut rng = Rng::new(seed);
    let n: usize = dims.iter().product();
    let x = random(&mut rng, n);
    let xt = image(&x, dims);
    let y = f(xt.leaky_trace());
    let yd = *y.shape();
    let u = random(&mut rng, yd.0 * yd.1 * yd.2 * yd.3);
    let ut = image(&u, [yd.0, yd.1, yd.2, yd.3]);
    let grad = (y * ut.clone()).sum().backward().get(&xt).as_vec();
    let value = |x: &[f64]| -> f64 {
        let y = f(image(x, dims).leaky_trace()).retaped::<NoneTape>();
        y.as_vec().iter().zip(&u).map(|(a, b)| a * b).sum()
    };
    let dir = random(&mut rng, n);
    let eps = 1e-4;
    let plus: Vec<f64> = x.iter().zip(&dir).map(|(a, d)| a + eps * d).collect();
    let minus: Vec<f64> = x.iter().zip(&dir).map(|(a, d)| a - eps * d).collect();
    let fd = (value(&plus) - value(&minus)) / (2.0 * eps);
    let projected: f64 = grad.iter().zip(&dir).map(|(g, d)| g * d).sum();
    assert_close(projected, fd, 1e-8, 1e-10, "⟨∇, v⟩ vs central difference");
}

#[test]
fn the_filter_matches_a_loop() {
    let mut rng = Rng::new(7001);
    let dims = [2, 4, 43, 44];
    let x = random(&mut rng, dims.iter().product());
    let y = mtf_filter_valid(image(&x, dims), Sensor::Qb).unwrap();
    assert_eq!(y.shape(), &(2, 4, 3, 4));
    let ks = mtf_kernels(Sensor::Qb);
    let mut naive = Vec::new();
    for b in 0..2 {
        for c in 0..4 {
            for i in 0..3 {
                for j in 0..4 {
                    let mut s = 0.0;
                    for p in 0..41 {
                        for q in 0..41 {
                            s += ks[c][p * 41 + q] * x[((b * 4 + c) * 43 + i + p) * 44 + j + q];
                        }
                    }
                    naive.push(s);
                }
            }
        }
    }
    assert_all_close(&y.as_vec(), &naive, 1e-12, "filter");
}

#[test]
fn padding_and_decimation_match_loops() {
    let mut rng = Rng::new(7002);
    let dims = [1, 2, 5, 6];
    let x = random(&mut rng, 60);
    let at = |c: usize, i: isize, j: isize| {
        let (i, j) = (i.clamp(0, 4) as usize, j.clamp(0, 5) as usize);
        x[(c * 5 + i) * 6 + j]
    };
    let p = pad(image(&x, dims), 3, Padding::Replicate).unwrap();
    assert_eq!(p.shape(), &(1, 2, 11, 12));
    let naive: Vec<f64> = (0..2)
        .flat_map(|c| (0..11).flat_map(move |i| (0..12).map(move |j| (c, i, j))))
        .map(|(c, i, j)| at(c, i as isize - 3, j as isize - 3))
        .collect();
    assert_eq!(p.as_vec(), naive);
    // reflect: x[−k] = x[k], x[n−1+k] = x[n−1−k]
    let r = pad(image(&x, dims), 2, Padding::Reflect).unwrap().as_vec();
    assert_eq!(r[0], x[2 * 6 + 2]); // (−2, −2) ← (2, 2)
    assert_eq!(r[8 * 10 + 9], x[2 * 6 + 3]); // (6, 7) ← (2, 3)
    assert!(pad(image(&x, dims), 5, Padding::Reflect).is_err());
    let d = decimate(image(&x, dims), 2, 4).unwrap();
    assert_eq!(d.shape(), &(1, 2, 1, 1));
    assert_eq!(d.as_vec(), vec![x[2 * 6 + 2], x[30 + 2 * 6 + 2]]);
    let d = decimate(image(&x, dims), 1, 2).unwrap();
    assert_eq!(d.shape(), &(1, 2, 2, 3));
    assert_eq!(d.as_vec()[4], x[3 * 6 + 3]);
    assert!(decimate(image(&x, dims), 0, 0).is_err());
    assert!(decimate(image(&x, dims), 5, 1).is_err());
}

#[test]
fn backward_passes_match_central_differences() {
    check_vjp([1, 2, 9, 7], 7003, |x| {
        pad(x, 4, Padding::Replicate).unwrap()
    });
    check_vjp([1, 2, 9, 7], 7004, |x| pad(x, 4, Padding::Reflect).unwrap());
    check_vjp([2, 1, 9, 7], 7005, |x| decimate(x, 2, 4).unwrap());
    check_vjp([1, 4, 44, 45], 7006, |x| {
        mtf_filter_valid(x, Sensor::Ge1).unwrap()
    });
    check_vjp([1, 4, 12, 16], 7007, |x| {
        mtf_downgrade(x, Sensor::Ikonos).unwrap()
    });
}

#[test]
fn the_downgrade_keeps_constants_and_shapes() {
    let dims = [1, 8, 20, 24];
    let x = vec![0.7; 8 * 20 * 24];
    let d = mtf_downgrade(image(&x, dims), Sensor::Wv2).unwrap();
    assert_eq!(d.shape(), &(1, 8, 5, 6));
    assert!(d.as_vec().iter().all(|v| (v - 0.7).abs() < 1e-13));
}

#[test]
fn wrong_shapes_are_refused() {
    let dev: Cpu = Default::default();
    let x: Tensor<Rank3<4, 41, 41>, f64, _> = dev.zeros();
    assert!(matches!(
        mtf_filter_valid(x, Sensor::Ge1),
        Err(LossError::BadShape { .. })
    ));
    let x: Tensor<Rank4<1, 3, 41, 41>, f64, _> = dev.zeros();
    assert!(mtf_filter_valid(x, Sensor::Ge1).is_err());
    let x: Tensor<Rank4<1, 4, 40, 41>, f64, _> = dev.zeros();
    assert!(mtf_filter_valid(x, Sensor::Ge1).is_err());
    let x: Tensor<Rank4<1, 4, 8, 8>, f64, _> = dev.zeros();
    assert!(mtf_downgrade(x, Sensor::Wv3).is_err());
}
