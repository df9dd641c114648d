//! iSogCLR as LibAUC's `GCLoss_v1(enable_isogclr=True)`, against its forward written as
//! plain f64 loops (the batch's first-visit rule included): the surrogate, its gradient
//! (weights held constant) and every state variable over two epochs; the per-sample
//! first-visit rule where it differs from LibAUC's batch rule.

use dfdx::prelude::*;

use crate::testing::Rng;
use crate::testing_pairs::{
    assert_all_close, central_differences, naive_similarity, random_embeddings,
};
use crate::{IsogclrLibaucV1, Loss, Metric, SelfSupervised, Views, WithIds};

#[derive(Clone, Debug, PartialEq)]
struct State {
    u: Vec<f64>,
    tau: Vec<f64>,
    momentum: Vec<f64>,
}

impl State {
    fn of(loss: &IsogclrLibaucV1) -> Self {
        let s = loss.state.get();
        let field = |n: &str| s.field(n).expect("a state variable").to_vec();
        State {
            u: field("u"),
            tau: field("tau"),
            momentum: field("momentum"),
        }
    }
}

/// One `GCLoss_v1.forward` with LibAUC's defaults on views `z` `[2, b, d]` (view-major);
/// `rule_active` is LibAUC's `self.gamma > gamma_min` (before `adjust_gamma(epoch ≥ 1)`).
fn libauc_step(
    z: &[f64],
    weights_from: &[f64],
    (b, d): (usize, usize),
    ids: &[usize],
    rule_active: bool,
    state: &mut State,
) -> f64 {
    let (gamma_min, rho, beta, eta, tau_min, tau_max) = (0.9, 0.3, 0.9, 0.01, 0.05, 0.7);
    let rows = 2 * b;
    let sim = naive_similarity(Metric::Cosine, z, z, d);
    let w_sim = naive_similarity(Metric::Cosine, weights_from, weights_from, d);
    let negatives = (2 * (b - 1)) as f64;
    let gamma = if rule_active && ids.iter().map(|&id| state.u[id]).sum::<f64>() == 0.0 {
        1.0
    } else {
        gamma_min
    };
    let (mut loss, mut new_u, mut grads) = (0.0, vec![0.0; rows], vec![0.0; rows]);
    for r in 0..rows {
        let id = ids[r % b];
        let tau = state.tau[id];
        let neg = (0..rows).filter(|j| j % b != r % b);
        let e = |j: usize| (w_sim[r * rows + j] / tau).exp();
        let u = (1.0 - gamma) * state.u[id] + gamma * neg.clone().map(e).sum::<f64>() / negatives;
        let p = |j: usize| e(j) / u.max(1e-8);
        let weighted = neg.clone().map(|j| p(j) * sim[r * rows + j]).sum::<f64>() / negatives;
        loss += (weighted - sim[r * rows + (r + b) % rows]) / b as f64;
        let w_weighted = neg.map(|j| p(j) * w_sim[r * rows + j] / tau).sum::<f64>() / negatives;
        new_u[r] = u;
        grads[r] = u.ln() + rho - w_weighted;
    }
    for k in 0..b {
        let id = ids[k];
        state.u[id] = (new_u[k] + new_u[k + b]) / 2.0;
        let g = (grads[k] + grads[k + b]) / 2.0;
        state.momentum[id] = (1.0 - beta) * state.momentum[id] + beta * g;
        state.tau[id] = (state.tau[id] - eta * state.momentum[id]).clamp(tau_min, tau_max);
    }
    loss
}

fn call(
    loss: &IsogclrLibaucV1,
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

/// Two epochs, each sample once per epoch: LibAUC's batch rule and the per-sample rule
/// agree, with γ never adjusted (`first_visit_always`) and with `adjust_gamma(epoch)`
/// called every epoch (`first_visit_always = false`, `epoch` set).
#[test]
fn two_epochs_match_libauc() {
    for always in [true, false] {
        let mut rng = Rng::new(if always { 31 } else { 32 });
        let (b, d, samples) = (4, 3, 8);
        let mut loss = IsogclrLibaucV1::default()
            .with_first_visit_always(always)
            .with_dataset_size(samples);
        let mut naive = State {
            u: vec![0.0; samples],
            tau: vec![0.1; samples],
            momentum: vec![0.0; samples],
        };
        for epoch in 0..2 {
            loss.epoch = epoch as f64;
            let order = rng.permutation(samples);
            for (k, ids) in order.chunks(b).enumerate() {
                let z = random_embeddings(&mut rng, 2 * b, d);
                let rule_active = always || epoch == 0;
                let before = naive.clone();
                let (value, grad) = call(&loss, &z, (b, d), ids);
                let want = libauc_step(&z, &z, (b, d), ids, rule_active, &mut naive);
                let what = format!("always {always}, epoch {epoch}, batch {k}");
                assert_all_close(&[value], &[want], 1e-10, &format!("{what}: surrogate"));
                let fd = central_differences(
                    &|x| libauc_step(x, &z, (b, d), ids, rule_active, &mut before.clone()),
                    &z,
                    1e-6,
                );
                assert_all_close(&grad, &fd, 1e-6, &format!("{what}: gradient"));
                let got = State::of(&loss);
                assert_all_close(&got.u, &naive.u, 1e-10, &format!("{what}: u"));
                assert_all_close(&got.momentum, &naive.momentum, 1e-10, &format!("{what}: m"));
                assert_all_close(&got.tau, &naive.tau, 1e-10, &format!("{what}: τ"));
            }
        }
    }
}

/// A batch mixing a sample seen before with unseen ones: the unseen ones still take
/// γ = 1 (u = g) with `first_visit_always`, and γ after epoch 0 without it.
#[test]
fn the_first_visit_rule_is_per_sample() {
    let mut rng = Rng::new(33);
    let (b, d) = (3, 4);
    for always in [true, false] {
        let mut loss = IsogclrLibaucV1::default()
            .with_first_visit_always(always)
            .with_dataset_size(6);
        call(
            &loss,
            &random_embeddings(&mut rng, 2 * b, d),
            (b, d),
            &[0, 1, 2],
        );
        loss.epoch = 1.0;
        let z = random_embeddings(&mut rng, 2 * b, d);
        let start = State::of(&loss);
        call(&loss, &z, (b, d), &[2, 3, 4]);
        // what u' would be with γ = 1 for sample 3 (item 1 of the batch): the mean of g
        // over its two rows
        let sim = naive_similarity(Metric::Cosine, &z, &z, d);
        let rows = 2 * b;
        let g = |r: usize| {
            (0..rows)
                .filter(|j| j % b != r % b)
                .map(|j| (sim[r * rows + j] / 0.1).exp())
                .sum::<f64>()
                / (rows - 2) as f64
        };
        let fresh = (g(1) + g(1 + b)) / 2.0;
        let want = if always { fresh } else { 0.9 * fresh };
        let got = State::of(&loss).u[3];
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "always {always}: {got} vs {want}"
        );
        assert_eq!(start.u[3], 0.0);
    }
}
