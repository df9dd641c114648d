//! iSogCLR (bimodal) against the official `SogCLR_DRO_Loss` of the CLIP experiments,
//! written as plain f64 loops: two instances (image and text anchors) give the official
//! loss and every state variable step by step, the gradient of the surrogate (weights held
//! constant) matches central differences, the running maximum keeps f32 finite at small
//! τ, and a one-pair batch is refused.

use dfdx::prelude::*;

use crate::testing::Rng;
use crate::testing_pairs::{
    assert_all_close, central_differences, naive_similarity, random_embeddings,
};
use crate::{IsogclrBimodal, Loss, LossError, Metric, PairLabels, Real, WithIds, WithRefs};

/// One direction's state, by dataset id.
#[derive(Clone, Debug, PartialEq)]
struct Side {
    sbar: Vec<f64>,
    shift: Vec<f64>,
    tau: Vec<f64>,
    u: Vec<f64>,
}

impl Side {
    fn new(samples: usize) -> Self {
        Side {
            sbar: vec![0.0; samples],
            shift: vec![0.0; samples],
            tau: vec![0.01; samples],
            u: vec![0.0; samples],
        }
    }

    fn of(loss: &IsogclrBimodal) -> Self {
        let s = loss.state.get();
        let field = |n: &str| s.field(n).expect("a state variable").to_vec();
        Side {
            sbar: field("sbar"),
            shift: field("shift"),
            tau: field("tau"),
            u: field("u"),
        }
    }
}

/// One direction of the official forward (README defaults) on the anchor-major matrix
/// `sim` `[B, B]` (positive on the diagonal): the surrogate, with the weights computed
/// from `weights_from` and held constant; `side` updated.
fn official_direction(
    sim: &[f64],
    weights_from: &[f64],
    ids: &[usize],
    side: &mut Side,
    exclude_positive: bool,
) -> f64 {
    let (gamma, rho, beta_u, eta, tau_min, tau_max, clip) = (0.8, 6.0, 0.9, 0.03, 0.005, 1.0, 5.0);
    let b = ids.len();
    let others = (b - 1) as f64;
    let mut loss = 0.0;
    for i in 0..b {
        let id = ids[i];
        let tau = side.tau[id];
        let d = |j: usize| sim[i * b + j] - sim[i * b + i];
        let dw = |j: usize| (weights_from[i * b + j] - weights_from[i * b + i]) / tau;
        let old_shift = side.shift[id];
        let shift = (0..b).map(dw).fold(old_shift, f64::max);
        let e = |j: usize| (dw(j) - shift).exp();
        let g = (0..b)
            .filter(|&j| !exclude_positive || j != i)
            .map(e)
            .sum::<f64>()
            / others;
        let sbar = (1.0 - gamma) * side.sbar[id] * (old_shift - shift).exp() + gamma * g;
        let w = |j: usize| e(j) / (sbar + 1e-10);
        loss += (0..b).map(|j| w(j) * d(j)).sum::<f64>() / others / b as f64;
        let grad = sbar.ln() + shift + rho - (0..b).map(|j| w(j) * dw(j)).sum::<f64>() / others;
        side.u[id] = (1.0 - beta_u) * side.u[id] + beta_u * grad.clamp(-clip, clip);
        side.tau[id] = (tau - eta * side.u[id]).clamp(tau_min, tau_max);
        side.sbar[id] = sbar;
        side.shift[id] = shift;
    }
    loss
}

fn transpose(m: &[f64], b: usize) -> Vec<f64> {
    (0..b * b).map(|k| m[(k % b) * b + k / b]).collect()
}

/// The official bimodal step: the image and the text halves; both sides updated.
fn official_step(
    x: &[f64],
    weights_from: &[f64],
    (b, d): (usize, usize),
    (image_ids, text_ids): (&[usize], &[usize]),
    (images, texts): (&mut Side, &mut Side),
    exclude_positive: bool,
) -> f64 {
    let sim = naive_similarity(Metric::Cosine, &x[..b * d], &x[b * d..], d);
    let w = naive_similarity(
        Metric::Cosine,
        &weights_from[..b * d],
        &weights_from[b * d..],
        d,
    );
    official_direction(&sim, &w, image_ids, images, exclude_positive)
        + official_direction(
            &transpose(&sim, b),
            &transpose(&w, b),
            text_ids,
            texts,
            exclude_positive,
        )
}

/// Both halves on `x = [images; texts]`: the summed surrogate and `∂/∂x`.
fn call<E: Dtype + Real>(
    (images, texts): (&IsogclrBimodal, &IsogclrBimodal),
    x: &[f64],
    (b, d): (usize, usize),
    (image_ids, text_ids): (&[usize], &[usize]),
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let cast: Vec<E> = x.iter().map(|&v| <E as Real>::from_f64(v)).collect();
    let img: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(cast[..b * d].to_vec(), (b, d));
    let txt: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(cast[b * d..].to_vec(), (b, d));
    let batch: Vec<usize> = (0..b).collect();
    let pairs = PairLabels {
        labels: &batch,
        ref_labels: &batch,
    };
    let i2t = images.try_forward(
        WithIds(WithRefs(img.leaky_trace(), txt.leaky_trace()), image_ids),
        &pairs,
    )?;
    let t2i = texts.try_forward(
        WithIds(WithRefs(txt.leaky_trace(), img.leaky_trace()), text_ids),
        &pairs,
    )?;
    let value = Real::to_f64(i2t.array()) + Real::to_f64(t2i.array());
    // the two calls have their own tapes: add their gradients
    let (a, b2) = (i2t.backward(), t2i.backward());
    let sum = |t: &Tensor<(usize, usize), E, Cpu>| -> Vec<f64> {
        let (x, y) = (a.get(t).as_vec(), b2.get(t).as_vec());
        x.into_iter()
            .zip(y)
            .map(|(x, y)| Real::to_f64(x) + Real::to_f64(y))
            .collect()
    };
    let mut g = sum(&img);
    g.extend(sum(&txt));
    Ok((value, g))
}

fn check_steps(exclude_positive: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let (b, d, samples) = (5, 4, 9);
    let make = || {
        IsogclrBimodal::default()
            .with_exclude_positive(exclude_positive)
            .with_dataset_size(samples)
    };
    let (images, texts) = (make(), make());
    let (mut naive_images, mut naive_texts) = (Side::new(samples), Side::new(samples));
    for step in 0..5 {
        let x = random_embeddings(&mut rng, 2 * b, d);
        let image_ids = rng.permutation(samples)[..b].to_vec();
        let text_ids = rng.permutation(samples)[..b].to_vec();
        let ids = (&image_ids[..], &text_ids[..]);
        let before = (naive_images.clone(), naive_texts.clone());
        let held = Side::of(&images);
        let (value, grad) = call::<f64>((&images, &texts), &x, (b, d), ids).unwrap();
        let want = official_step(
            &x,
            &x,
            (b, d),
            ids,
            (&mut naive_images, &mut naive_texts),
            exclude_positive,
        );
        let what = format!("exclude_positive {exclude_positive}, step {step}");
        assert_all_close(&[value], &[want], 1e-10, &format!("{what}: surrogate"));
        let fd = central_differences(
            &|y| {
                let (mut i, mut t) = before.clone();
                official_step(y, &x, (b, d), ids, (&mut i, &mut t), exclude_positive)
            },
            &x,
            1e-6,
        );
        assert_all_close(&grad, &fd, 1e-6, &format!("{what}: gradient"));
        for (got, want, side) in [
            (Side::of(&images), &naive_images, "image"),
            (Side::of(&texts), &naive_texts, "text"),
        ] {
            let what = format!("{what}, {side} state");
            assert_all_close(&got.sbar, &want.sbar, 1e-10, &format!("{what}: s̄"));
            assert_all_close(&got.shift, &want.shift, 1e-10, &format!("{what}: b"));
            assert_all_close(&got.u, &want.u, 1e-10, &format!("{what}: u"));
            assert_all_close(&got.tau, &want.tau, 1e-10, &format!("{what}: τ"));
        }
        let got = Side::of(&images);
        for id in (0..samples).filter(|id| !image_ids.contains(id)) {
            assert_eq!(got.tau[id], held.tau[id], "{what}: τ of sample {id}");
            assert_eq!(got.sbar[id], held.sbar[id], "{what}: s̄ of sample {id}");
        }
    }
}

#[test]
fn steps_match_the_official_algorithm() {
    check_steps(false, 221);
}

#[test]
fn steps_without_the_positive_in_the_normaliser() {
    check_steps(true, 222);
}

/// At τ = 0.01 the scaled differences reach ±200, past f32's `exp` range: the running
/// maximum keeps every exponential at most 1, and f32 follows f64.
#[test]
fn small_temperatures_stay_finite_in_f32() {
    let mut rng = Rng::new(223);
    let (b, d, samples) = (6, 3, 6);
    let make = || IsogclrBimodal::default().with_dataset_size(samples);
    let (i32_, t32, i64_, t64) = (make(), make(), make(), make());
    let ids: Vec<usize> = (0..b).collect();
    for _ in 0..3 {
        let x = random_embeddings(&mut rng, 2 * b, d);
        let (v32, g32) = call::<f32>((&i32_, &t32), &x, (b, d), (&ids, &ids)).unwrap();
        let (v64, g64) = call::<f64>((&i64_, &t64), &x, (b, d), (&ids, &ids)).unwrap();
        assert!(v32.is_finite() && g32.iter().all(|g| g.is_finite()));
        assert_all_close(&[v32], &[v64], 1e-3, "value");
        assert_all_close(&g32, &g64, 1e-2, "gradient");
    }
}

#[test]
fn a_single_pair_is_refused() {
    let loss = IsogclrBimodal::default().with_dataset_size(2);
    let err = call::<f64>(
        (&loss, &loss.clone()),
        &[1.0, 0.0, 0.0, 1.0],
        (1, 2),
        (&[0], &[1]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Requirement {
                loss: "isogclr_bimodal",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        loss.state.get(),
        IsogclrBimodal::default().with_dataset_size(2).state.get()
    );
}
