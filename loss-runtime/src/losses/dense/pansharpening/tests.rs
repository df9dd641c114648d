//! The Z-PNN heads against plain loops, their invariants and gradient masks, the
//! threshold, and the composite's gradient against central differences.

use dfdx::prelude::*;

use super::*;
use crate::core::image::corr::local_corr_field_values;
use crate::testing::{assert_close, Rng};
use crate::testing_pairs::assert_all_close;

fn random(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.range(lo, hi)).collect()
}

fn image(v: &[f64], d: [usize; 4]) -> Image<f64> {
    let dev: Cpu = Default::default();
    dev.tensor_from_vec(v.to_vec(), (d[0], d[1], d[2], d[3]))
}

const D: [usize; 4] = [1, 4, 48, 48];

/// The spectral term written out: the filter at the grid pixels only, then the mean
/// absolute error against the cropped MS.
fn naive_spectral(out: &[f64], ms: &[f64], sensor: Sensor) -> f64 {
    let [_, c, h, w] = D;
    let ks = mtf_kernels(sensor);
    let (mut total, mut count) = (0.0, 0);
    for b in 0..c {
        let mut i = 2;
        while i < h - 40 {
            let mut j = 2;
            while j < w - 40 {
                let mut s = 0.0;
                for p in 0..41 {
                    for q in 0..41 {
                        s += ks[b][p * 41 + q] * out[(b * h + i + p) * w + j + q];
                    }
                }
                total += (s - ms[(b * h + i + 20) * w + j + 20]).abs();
                count += 1;
                j += 4;
            }
            i += 4;
        }
    }
    total / count as f64
}

/// The structural term written out from the field's values.
fn naive_structural(out: &[f64], pan: &[f64], thr: &[f64]) -> f64 {
    let rho = local_corr_field_values(out, D, pan, [1, 1, 48, 48], 2).unwrap();
    let total: f64 = rho
        .iter()
        .zip(thr)
        .map(|(r, t)| {
            let x = 1.0 - r.max(-1.0);
            if x > *t {
                x
            } else {
                0.0
            }
        })
        .sum();
    total / rho.len() as f64
}

fn zpnn_value(out: &[f64], ms: &[f64], pan: &[f64], thr: &[f64], beta: f64) -> f64 {
    let pan = image(pan, [1, 1, 48, 48]);
    zpnn(image(out, D), &image(ms, D), &pan, thr, Sensor::Ge1, beta)
        .unwrap()
        .array()
}

#[test]
fn the_composite_matches_plain_loops() {
    let mut rng = Rng::new(9101);
    let out = random(&mut rng, 4 * 48 * 48, 0.0, 1.0);
    let ms = random(&mut rng, 4 * 48 * 48, 0.0, 1.0);
    let pan = random(&mut rng, 48 * 48, 0.0, 1.0);
    let thr = random(&mut rng, 4 * 48 * 48, 0.0, 1.5);
    let spectral = naive_spectral(&out, &ms, Sensor::Ge1);
    let structural = naive_structural(&out, &pan, &thr);
    assert_close(
        zpnn_value(&out, &ms, &pan, &thr, 0.0),
        spectral,
        1e-12,
        0.0,
        "L_spec",
    );
    assert_close(
        zpnn_value(&out, &ms, &pan, &thr, 0.25),
        spectral + 0.25 * structural,
        1e-12,
        0.0,
        "L_spec + β L_struct",
    );
}

#[test]
fn constant_images_have_no_spectral_loss_and_pan_bands_no_structural_loss() {
    let mut rng = Rng::new(9102);
    let c = vec![0.3; 4 * 48 * 48];
    let pan = random(&mut rng, 48 * 48, 0.0, 1.0);
    let thr = vec![0.0; 4 * 48 * 48];
    assert_close(
        zpnn_value(&c, &c, &pan, &thr, 0.0),
        0.0,
        0.0,
        1e-14,
        "constant",
    );
    // every band the PAN: ρ = 1, X = 0 (and the spectral term against itself filtered)
    let bands: Vec<f64> = (0..4).flat_map(|_| pan.iter().copied()).collect();
    let rho = local_corr_field(image(&bands, D), &image(&pan, [1, 1, 48, 48]), 2).unwrap();
    let dev: Cpu = Default::default();
    let thr_t: Image<f64> = dev.tensor_from_vec(thr, (1, 4, 48, 48));
    let s = PnnStructural::default().forward(rho, &thr_t).array();
    assert_close(s, 0.0, 0.0, 1e-12, "structural loss of PAN bands");
}

#[test]
fn a_negative_threshold_penalises_every_pixel() {
    let mut rng = Rng::new(9103);
    let rho = random(&mut rng, 2 * 3 * 5 * 5, -1.5, 1.0);
    let dev: Cpu = Default::default();
    let rt: Image<f64> = dev.tensor_from_vec(rho.clone(), (2, 3, 5, 5));
    let thr: Image<f64> = dev.tensor_from_vec(vec![-10.0; 150], (2, 3, 5, 5));
    let mean_x = rho.iter().map(|r| 1.0 - r.max(-1.0)).sum::<f64>() / 150.0;
    let got = PnnStructural::default().forward(rt, &thr).array();
    assert_close(got, mean_x, 1e-12, 0.0, "mean X");
}

#[test]
fn the_structural_gradient_is_masked_by_the_threshold() {
    let mut rng = Rng::new(9104);
    let rho = random(&mut rng, 2 * 40, -1.5, 1.0);
    let thr = random(&mut rng, 2 * 40, 0.0, 1.5);
    let dev: Cpu = Default::default();
    let rt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(rho.clone(), (2, 40));
    let tt = dev.tensor_from_vec(thr.clone(), (2, 40));
    let g = PnnStructural::default()
        .forward(rt.leaky_trace(), &tt)
        .backward()
        .get(&rt)
        .as_vec();
    let want: Vec<f64> = rho
        .iter()
        .zip(&thr)
        .map(|(&r, &t)| {
            let x = 1.0 - r.max(-1.0);
            if x > t && r >= -1.0 {
                -1.0 / 80.0
            } else {
                0.0
            }
        })
        .collect();
    assert_all_close(&g, &want, 1e-15, "∂L_struct/∂ρ");
}

#[test]
fn the_spectral_gradient_lives_on_the_grid() {
    let mut rng = Rng::new(9105);
    let d = [1, 4, 16, 16];
    let x = random(&mut rng, 4 * 256, 0.0, 1.0);
    let xt = image(&x, d);
    let grid = decimate(xt.leaky_trace(), 2, 4).unwrap();
    let y: Image<f64> = Cpu::default().tensor_from_vec(vec![0.5; 4 * 16], (1, 4, 4, 4));
    let g = ZpnnSpectral::default()
        .forward(grid, &y)
        .backward()
        .get(&xt)
        .as_vec();
    for (k, gk) in g.iter().enumerate() {
        let (i, j) = ((k / 16) % 16, k % 16);
        let on_grid = i % 4 == 2 && j % 4 == 2;
        assert_eq!(*gk != 0.0, on_grid, "pixel {k}");
        if on_grid {
            assert_eq!(gk.abs(), 1.0 / 64.0);
        }
    }
}

#[test]
fn the_composite_gradient_matches_central_differences() {
    let mut rng = Rng::new(9106);
    let out = random(&mut rng, 4 * 48 * 48, 0.0, 1.0);
    let ms = random(&mut rng, 4 * 48 * 48, 0.0, 1.0);
    let pan = random(&mut rng, 48 * 48, 0.0, 1.0);
    let pt = image(&pan, [1, 1, 48, 48]);
    let mut thr = zpnn_threshold(&pt, &image(&ms, D), Sensor::Ge1).unwrap();
    // the pixel at the maximum of σ_AA gets no gradient through its clip (the official
    // convention, which central differences do not see): leave it unpenalised
    let saa = crate::core::image::corr::field(&out, D, &pan, [1, 1, 48, 48], 2)
        .unwrap()
        .saa;
    let argmax = (0..saa.len()).fold(0, |m, k| if saa[k] > saa[m] { k } else { m });
    thr[argmax] = 10.0;
    let ot = image(&out, D);
    let g = zpnn(
        ot.leaky_trace(),
        &image(&ms, D),
        &pt,
        &thr,
        Sensor::Ge1,
        0.25,
    )
    .unwrap()
    .backward()
    .get(&ot)
    .as_vec();
    for seed in 0..3 {
        let mut r = Rng::new(9200 + seed);
        let dir = random(&mut r, out.len(), -1.0, 1.0);
        let eps = 1e-6;
        let at = |s: f64| -> Vec<f64> { out.iter().zip(&dir).map(|(o, d)| o + s * d).collect() };
        let fd = (zpnn_value(&at(eps), &ms, &pan, &thr, 0.25)
            - zpnn_value(&at(-eps), &ms, &pan, &thr, 0.25))
            / (2.0 * eps);
        let projected: f64 = g.iter().zip(&dir).map(|(g, d)| g * d).sum();
        assert_close(projected, fd, 1e-6, 1e-9, "⟨∇L, v⟩ vs central difference");
    }
}

#[test]
fn the_threshold_is_zero_when_the_ms_is_the_low_passed_pan() {
    let mut rng = Rng::new(9107);
    let pan = random(&mut rng, 48 * 48, 0.0, 1.0);
    let (padded, pd) = pad_values(&pan, [1, 1, 48, 48], 20, Padding::Reflect);
    let (low, _) = filter_values(&padded, pd, &mtf_kernels(Sensor::Wv3)[..1]);
    let ms: Vec<f64> = (0..8).flat_map(|_| low.iter().copied()).collect();
    let thr = zpnn_threshold(
        &image(&pan, [1, 1, 48, 48]),
        &image(&ms, [1, 8, 48, 48]),
        Sensor::Wv3,
    )
    .unwrap();
    assert_eq!(thr.len(), 8 * 48 * 48);
    assert!(thr.iter().all(|t| t.abs() < 1e-9), "thr of matching images");
    let other = random(&mut rng, 8 * 48 * 48, 0.0, 1.0);
    let thr = zpnn_threshold(
        &image(&pan, [1, 1, 48, 48]),
        &image(&other, [1, 8, 48, 48]),
        Sensor::Wv3,
    )
    .unwrap();
    assert!(thr.iter().all(|t| (-1e-12..=2.0 + 1e-12).contains(t)));
}

#[test]
fn wrong_inputs_are_refused() {
    let pan = image(&[0.0; 48 * 48], [1, 1, 48, 48]);
    let ms = image(&[0.0; 4 * 48 * 48], D);
    assert!(matches!(
        zpnn_threshold(&pan, &ms, Sensor::Wv2),
        Err(LossError::BadShape { input: "ms_up", .. })
    ));
    assert!(matches!(
        zpnn_threshold(&ms, &ms, Sensor::Ge1),
        Err(LossError::BadShape { input: "pan", .. })
    ));
    let thr = vec![0.0; 4 * 48 * 48];
    assert!(matches!(
        zpnn(ms.clone(), &ms, &pan, &thr[1..], Sensor::Ge1, 0.25),
        Err(LossError::BadShape { input: "thr", .. })
    ));
    assert!(matches!(
        zpnn(ms.clone(), &ms, &pan, &thr, Sensor::Ge1, -1.0),
        Err(LossError::InvalidHyper { .. })
    ));
}
