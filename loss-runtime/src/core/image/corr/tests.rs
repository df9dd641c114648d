//! The field against an O(w²)-per-pixel loop, its gradient against central differences,
//! and the invariances of a correlation.

use dfdx::prelude::*;

use super::*;
use crate::testing::{assert_close, finite_differences, Rng};
use crate::testing_pairs::assert_all_close;

fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.range(-1.0, 1.0)).collect()
}

/// The field written out: each window summed pixel by pixel.
fn naive(a: &[f64], da: [usize; 4], b: &[f64], db: [usize; 4], half: usize) -> Vec<f64> {
    let [n, _, h, w] = da;
    let c = da[1].max(db[1]);
    let at = |x: &[f64], d: [usize; 4], k: usize, ch: usize, i: isize, j: isize| {
        if i < 0 || j < 0 || i >= h as isize || j >= w as isize {
            return 0.0;
        }
        let ch = if d[1] == 1 { 0 } else { ch };
        x[((k * d[1] + ch) * h + i as usize) * w + j as usize]
    };
    let wi = half as isize;
    let area = (4 * half * half) as f64;
    let window = |f: &dyn Fn(isize, isize) -> f64, i: usize, j: usize| {
        let mut s = 0.0;
        for r in i as isize - wi + 1..=i as isize + wi {
            for q in j as isize - wi + 1..=j as isize + wi {
                s += f(r, q);
            }
        }
        s
    };
    let (mut saa, mut sbb, mut sab) = (vec![], vec![], vec![]);
    for k in 0..n {
        for ch in 0..c {
            let ta = |i: isize, j: isize| {
                if i < 0 || j < 0 || i >= h as isize || j >= w as isize {
                    return 0.0;
                }
                let m = window(&|r, q| at(a, da, k, ch, r, q), i as usize, j as usize);
                at(a, da, k, ch, i, j) - m / area
            };
            let tb = |i: isize, j: isize| {
                if i < 0 || j < 0 || i >= h as isize || j >= w as isize {
                    return 0.0;
                }
                let m = window(&|r, q| at(b, db, k, ch, r, q), i as usize, j as usize);
                at(b, db, k, ch, i, j) - m / area
            };
            for i in 0..h {
                for j in 0..w {
                    saa.push(window(&|r, q| ta(r, q) * ta(r, q), i, j));
                    sbb.push(window(&|r, q| tb(r, q) * tb(r, q), i, j));
                    sab.push(window(&|r, q| ta(r, q) * tb(r, q), i, j));
                }
            }
        }
    }
    let top = |v: &[f64]| v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let (ma, mb) = (top(&saa), top(&sbb));
    (0..saa.len())
        .map(|p| {
            let (x, y) = (saa[p].clamp(1e-20, ma), sbb[p].clamp(1e-20, mb));
            sab[p] / ((x * y).sqrt() + 1e-20)
        })
        .collect()
}

#[test]
fn the_field_matches_a_loop() {
    let mut rng = Rng::new(8101);
    for (da, db, half) in [
        ([1, 3, 9, 8], [1, 1, 9, 8], 2),
        ([2, 2, 7, 11], [2, 2, 7, 11], 1),
        ([1, 1, 12, 10], [1, 4, 12, 10], 3),
    ] {
        let a = random(&mut rng, da.iter().product());
        let b = random(&mut rng, db.iter().product());
        let got = local_corr_field_values(&a, da, &b, db, half).unwrap();
        assert_all_close(&got, &naive(&a, da, &b, db, half), 1e-10, "field");
        assert!(got.iter().all(|r| r.abs() <= 1.0 + 1e-12));
    }
}

#[test]
fn the_gradient_matches_central_differences() {
    let mut rng = Rng::new(8102);
    let (da, db, half) = ([1, 2, 7, 6], [1, 1, 7, 6], 2);
    let a = random(&mut rng, 84);
    let b = random(&mut rng, 42);
    let mut u = random(&mut rng, 84);
    // the element at the maximum of σ_AA gets no gradient through its clip (the official
    // convention); a zero weight there makes the loss smooth for the comparison
    let f = field(&a, da, &b, db, half).unwrap();
    let argmax = (0..84).fold(0, |m, k| if f.saa[k] > f.saa[m] { k } else { m });
    u[argmax] = 0.0;
    let dev: Cpu = Default::default();
    let at: Tensor<(usize, usize, usize, usize), f64, Cpu> =
        dev.tensor_from_vec(a.clone(), (1, 2, 7, 6));
    let bt: Tensor<(usize, usize, usize, usize), f64, Cpu> =
        dev.tensor_from_vec(b.clone(), (1, 1, 7, 6));
    let ut = dev.tensor_from_vec(u.clone(), (1, 2, 7, 6));
    let rho = local_corr_field(at.leaky_trace(), &bt, half).unwrap();
    let grad = (rho * ut).sum().backward().get(&at).as_vec();
    let value = |a: &[f64]| -> f64 {
        let r = local_corr_field_values(a, da, &b, db, half).unwrap();
        r.iter().zip(&u).map(|(r, u)| r * u).sum()
    };
    assert_all_close(&grad, &finite_differences(&a, value), 1e-6, "∂⟨u, ρ⟩/∂a");
}

#[test]
fn an_image_correlates_fully_with_itself_and_scaled_copies() {
    let mut rng = Rng::new(8103);
    let d = [2, 3, 10, 9];
    let a = random(&mut rng, 540);
    let b = random(&mut rng, 540);
    for r in local_corr_field_values(&a, d, &a, d, 2).unwrap() {
        assert_close(r, 1.0, 1e-12, 0.0, "ρ(A, A)");
    }
    let rho = local_corr_field_values(&a, d, &b, d, 2).unwrap();
    let scaled: Vec<f64> = a.iter().map(|v| 2.5 * v).collect();
    let small: Vec<f64> = b.iter().map(|v| 0.3 * v).collect();
    let rho_a = local_corr_field_values(&scaled, d, &b, d, 2).unwrap();
    let rho_b = local_corr_field_values(&a, d, &small, d, 2).unwrap();
    assert_all_close(&rho_a, &rho, 1e-12, "ρ(2.5 A, B)");
    assert_all_close(&rho_b, &rho, 1e-12, "ρ(A, 0.3 B)");
    // a constant added: the same far from the border (2w), not necessarily near it
    let shifted: Vec<f64> = a.iter().map(|v| v + 3.0).collect();
    let rho_s = local_corr_field_values(&shifted, d, &b, d, 2).unwrap();
    for k in 0..540 {
        let (i, j) = ((k / 9) % 10, k % 9);
        if (4..6).contains(&i) && (4..5).contains(&j) {
            assert_close(rho_s[k], rho[k], 1e-9, 1e-12, "ρ(A + 3, B) inside");
        }
    }
}

#[test]
fn shapes_are_checked() {
    let a = vec![0.0; 2 * 3 * 4 * 4];
    assert!(matches!(
        local_corr_field_values(&a, [2, 3, 4, 4], &a[..32], [2, 1, 4, 4], 0),
        Err(LossError::InvalidHyper { .. })
    ));
    assert!(matches!(
        local_corr_field_values(&a, [2, 3, 4, 4], &a[..48], [1, 3, 4, 4], 1),
        Err(LossError::BadShape { .. })
    ));
    assert!(matches!(
        local_corr_field_values(&a, [2, 3, 4, 4], &a[..64], [2, 2, 4, 4], 1),
        Err(LossError::BadShape { .. })
    ));
}
