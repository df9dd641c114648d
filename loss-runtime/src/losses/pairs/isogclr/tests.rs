//! iSogCLR (unimodal) against the official algorithm's steps written as plain f64 loops:
//! the surrogate's value, its gradient (the weights held constant), and every state
//! variable after each step, over several steps and epochs; the state saved and restored
//! continues bit for bit; τ stays within its bounds and only the batch's state moves.

use dfdx::prelude::*;

use crate::testing::Rng;
use crate::testing_pairs::{
    assert_all_close, central_differences, naive_similarity, random_embeddings,
};
use crate::{IsogclrUnimodal, Loss, Metric, SelfSupervised, Views, WithIds};

/// The per-sample state, by dataset id.
#[derive(Clone, Debug, PartialEq)]
struct State {
    sbar: Vec<f64>,
    tau: Vec<f64>,
    u: Vec<f64>,
}

/// One call of `SogCLR_DRO_Loss.forward` (README defaults): the surrogate, with the
/// weights `E/s̄'` computed from `weights_from` (the same rows, for the value) and
/// held constant; `state` updated.
fn official_step(
    z: &[f64],
    weights_from: &[f64],
    (b, d): (usize, usize),
    ids: &[usize],
    epoch: usize,
    state: &mut State,
) -> f64 {
    let (gamma, rho, beta_u, eta, tau_min, tau_max, clip) = (0.8, 0.4, 0.5, 0.03, 0.05, 1.0, 3.0);
    let rows = 2 * b;
    let sim = naive_similarity(Metric::Cosine, z, z, d);
    let w_sim = naive_similarity(Metric::Cosine, weights_from, weights_from, d);
    let neg = |r: usize, j: usize| j % b != r % b;
    let n_neg = (rows - 2) as f64;
    let tau: Vec<f64> = (0..rows).map(|r| state.tau[ids[r % b]]).collect();
    let mut loss = 0.0;
    let (mut new_sbar, mut grads) = (vec![0.0; rows], vec![0.0; rows]);
    for r in 0..rows {
        let e = |j: usize| (w_sim[r * rows + j] / tau[r]).exp();
        let g = (0..rows).filter(|&j| neg(r, j)).map(e).sum::<f64>() / n_neg;
        let old = state.sbar[ids[r % b]];
        let sbar = if epoch == 0 {
            g
        } else {
            (1.0 - gamma) * old + gamma * g
        };
        new_sbar[r] = sbar;
        let weighted = (0..rows)
            .filter(|&j| neg(r, j))
            .map(|j| e(j) / sbar * sim[r * rows + j])
            .sum::<f64>()
            / n_neg;
        let positive = sim[r * rows + (r + b) % rows];
        loss += (weighted - positive) / b as f64;
        let w_weighted = (0..rows)
            .filter(|&j| neg(r, j))
            .map(|j| e(j) / sbar * w_sim[r * rows + j] / tau[r])
            .sum::<f64>()
            / n_neg;
        grads[r] = sbar.ln() + rho - w_weighted;
    }
    for k in 0..b {
        let id = ids[k];
        state.sbar[id] = (new_sbar[k] + new_sbar[k + b]) / 2.0;
        let g = ((grads[k] + grads[k + b]) / 2.0).clamp(-clip, clip);
        state.u[id] = (1.0 - beta_u) * state.u[id] + beta_u * g;
        state.tau[id] = (state.tau[id] - eta * state.u[id]).clamp(tau_min, tau_max);
    }
    loss
}

fn state_of(loss: &IsogclrUnimodal) -> State {
    let s = loss.state.get();
    let field = |n: &str| s.field(n).expect("a state variable").to_vec();
    State {
        sbar: field("sbar"),
        tau: field("tau"),
        u: field("u"),
    }
}

/// `(surrogate, ∂/∂z)` of one call on views `z` `[2, b, d]`.
fn call(
    loss: &IsogclrUnimodal,
    z: &[f64],
    (b, d): (usize, usize),
    ids: &[usize],
) -> (f64, Vec<f64>) {
    let dev: Cpu = Default::default();
    let t: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.to_vec(), (2, b, d));
    let out = loss.forward(WithIds(Views(t.leaky_trace()), ids), &SelfSupervised);
    let value = out.array();
    (value, out.backward().get(&t).as_vec())
}

#[test]
fn steps_match_the_official_algorithm() {
    let mut rng = Rng::new(22);
    let (b, d, samples) = (5, 4, 12);
    let mut loss = IsogclrUnimodal::default().with_dataset_size(samples);
    let mut naive = State {
        sbar: vec![0.0; samples],
        tau: vec![0.1; samples],
        u: vec![0.0; samples],
    };
    for step in 0..6 {
        let epoch = step / 2;
        loss.epoch = epoch as f64;
        let z = random_embeddings(&mut rng, 2 * b, d);
        let ids = rng.permutation(samples)[..b].to_vec();
        let before = naive.clone();
        let held = state_of(&loss);
        let (value, grad) = call(&loss, &z, (b, d), &ids);
        let want = official_step(&z, &z, (b, d), &ids, epoch, &mut naive);
        let what = format!("step {step} (epoch {epoch})");
        assert_all_close(&[value], &[want], 1e-10, &format!("{what}: surrogate"));
        let fd = central_differences(
            &|x| official_step(x, &z, (b, d), &ids, epoch, &mut before.clone()),
            &z,
            1e-6,
        );
        assert_all_close(&grad, &fd, 1e-6, &format!("{what}: gradient"));
        let got = state_of(&loss);
        assert_all_close(&got.sbar, &naive.sbar, 1e-10, &format!("{what}: s̄"));
        assert_all_close(&got.u, &naive.u, 1e-10, &format!("{what}: u"));
        assert_all_close(&got.tau, &naive.tau, 1e-10, &format!("{what}: τ"));
        assert!(
            got.tau.iter().all(|t| (0.05..=1.0).contains(t)),
            "{what}: τ out of bounds"
        );
        for id in (0..samples).filter(|id| !ids.contains(id)) {
            assert_eq!(
                got.tau[id], held.tau[id],
                "{what}: τ of sample {id}, not in the batch"
            );
            assert_eq!(
                got.sbar[id], held.sbar[id],
                "{what}: s̄ of sample {id}, not in the batch"
            );
        }
    }
}

#[test]
fn a_large_eta_keeps_tau_within_its_bounds() {
    let mut rng = Rng::new(3);
    let (b, d, samples) = (4, 3, 4);
    let loss = IsogclrUnimodal {
        eta: 50.0,
        ..Default::default()
    }
    .with_dataset_size(samples);
    for _ in 0..4 {
        let z = random_embeddings(&mut rng, 2 * b, d);
        let (value, _) = call(&loss, &z, (b, d), &[0, 1, 2, 3]);
        assert!(value.is_finite());
        let tau = state_of(&loss).tau;
        assert!(tau.iter().all(|t| (0.05..=1.0).contains(t)), "{tau:?}");
    }
}
