//! A stateful loss against a naive loop, step by step: the values, the gradients, the
//! state after every step; saving and restoring the state through serde continues
//! bit for bit; bad ids and foreign states are errors; a failed call changes nothing.

use dfdx::prelude::*;

use crate::testing::Rng;
use crate::testing_pairs::assert_all_close;
use crate::{loss, Loss, LossError, SampleState, WithIds};

/// Cross-entropy divided by a moving average of each sample's own cross-entropy, kept
/// per dataset sample (the shape of iSogCLR's and ALDR-KL's state): the average is
/// updated first, `u ← (1 − γ)·u + γ·ce`, and read as a constant.
#[loss(logits)]
fn averaged_ce(
    z: Logits,
    y: Labels,
    #[state(init = 0.5)] u: State<samples>,
    #[hyper(default = 0.3)] gamma: f64,
) -> PerSample {
    let ce = logsumexp(classes, |k| z[i][k]) - z[i][y[i]];
    let avg = update(u[i], (1.0 - gamma) * u[i] + gamma * ce);
    ce / (1.0 + avg)
}

/// One step of [`averaged_ce`] as plain loops: the value, `∂/∂z`, and `state` updated.
fn naive_step(
    z: &[f64],
    c: usize,
    y: &[usize],
    ids: &[usize],
    state: &mut [f64],
) -> (f64, Vec<f64>) {
    let (n, gamma) = (y.len(), 0.3);
    let (mut value, mut grad) = (0.0, vec![0.0; n * c]);
    for i in 0..n {
        let row = &z[i * c..(i + 1) * c];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let ce = max + sum.ln() - row[y[i]];
        let avg = (1.0 - gamma) * state[ids[i]] + gamma * ce;
        value += ce / (1.0 + avg) / n as f64;
        for k in 0..c {
            let p = (row[k] - max).exp() / sum;
            let hot = if k == y[i] { 1.0 } else { 0.0 };
            grad[i * c + k] = (p - hot) / (1.0 + avg) / n as f64;
        }
        state[ids[i]] = avg;
    }
    (value, grad)
}

type Matrix<E> = Tensor<(usize, usize), E, Cpu>;

/// One call on `loss`: the value and `∂/∂z`.
fn step(
    loss: &AveragedCe,
    z: &[f64],
    c: usize,
    y: &[usize],
    ids: &[usize],
) -> Result<(f64, Vec<f64>), LossError> {
    let dev: Cpu = Default::default();
    let t: Matrix<f64> = dev.tensor_from_vec(z.to_vec(), (y.len(), c));
    let out = loss.try_forward(WithIds(t.leaky_trace(), ids), y)?;
    let value = out.array();
    Ok((value, out.backward().get(&t).as_vec()))
}

/// A batch of `n` samples out of `samples`, without repeats.
fn batch(rng: &mut Rng, n: usize, c: usize, samples: usize) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let z = (0..n * c).map(|_| rng.range(-3.0, 3.0)).collect();
    let y = (0..n).map(|_| rng.below(c)).collect();
    let ids = rng.permutation(samples)[..n].to_vec();
    (z, y, ids)
}

#[test]
fn every_step_matches_a_naive_loop_and_updates_only_its_samples() {
    let mut rng = Rng::new(22);
    let (samples, n, c) = (9, 4, 3);
    let loss = AveragedCe::default().with_dataset_size(samples);
    let mut naive = vec![0.5; samples];
    for t in 0..5 {
        let (z, y, ids) = batch(&mut rng, n, c, samples);
        let (value, grad) = step(&loss, &z, c, &y, &ids).expect("a valid batch");
        let (want, want_grad) = naive_step(&z, c, &y, &ids, &mut naive);
        assert_all_close(&[value], &[want], 1e-12, &format!("step {t}: value"));
        assert_all_close(&grad, &want_grad, 1e-12, &format!("step {t}: gradient"));
        let state = loss.state.get();
        assert_all_close(
            state.field("u").expect("u"),
            &naive,
            1e-12,
            &format!("step {t}: state"),
        );
    }
}

#[test]
fn a_saved_state_resumes_bit_for_bit() {
    let mut rng = Rng::new(5);
    let (samples, n, c) = (12, 5, 4);
    let batches: Vec<_> = (0..6).map(|_| batch(&mut rng, n, c, samples)).collect();
    let dev: Cpu = Default::default();
    let run = |loss: &AveragedCe, (z, y, ids): &(Vec<f64>, Vec<usize>, Vec<usize>)| {
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let t: Matrix<f32> = dev.tensor_from_vec(z32, (y.len(), c));
        let out = loss.forward(WithIds(t.leaky_trace(), ids), &y[..]);
        let value = out.array();
        (
            value.to_bits(),
            out.backward()
                .get(&t)
                .as_vec()
                .iter()
                .map(|g| g.to_bits())
                .collect::<Vec<_>>(),
        )
    };
    let straight = AveragedCe::default().with_dataset_size(samples);
    let first: Vec<_> = batches.iter().map(|b| run(&straight, b)).collect();
    let stopped = AveragedCe::default().with_dataset_size(samples);
    for b in &batches[..3] {
        run(&stopped, b);
    }
    let saved = serde_json::to_string(&stopped.state.get()).expect("a state serialises");
    drop(stopped);
    let resumed = AveragedCe::default();
    let state: SampleState = serde_json::from_str(&saved).expect("and reads back");
    resumed.state.set(state).expect("the state of this loss");
    let second: Vec<_> = batches[3..].iter().map(|b| run(&resumed, b)).collect();
    assert_eq!(
        first[3..],
        second[..],
        "values and gradients after resuming"
    );
    assert_eq!(
        straight.state.get(),
        resumed.state.get(),
        "the state after resuming"
    );
}

#[test]
fn bad_ids_are_errors_and_a_failed_call_changes_nothing() {
    let (samples, c) = (6, 3);
    let loss = AveragedCe::default().with_dataset_size(samples);
    let z = vec![0.1; 3 * c];
    let y = [0, 1, 2];
    let before = loss.state.get();
    let err = step(&loss, &z, c, &y, &[0, 6, 1]).unwrap_err();
    assert_eq!(
        err,
        LossError::IdOutOfRange {
            position: 1,
            id: 6,
            samples
        }
    );
    let err = step(&loss, &z, c, &y, &[4, 2, 4]).unwrap_err();
    assert_eq!(err, LossError::DuplicateId { position: 2, id: 4 });
    let err = step(&loss, &z, c, &y, &[0, 1]).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::BatchSizeMismatch {
                found_in: "ids",
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let mut bad = z.clone();
    bad[4] = f64::NAN;
    let err = step(&loss, &bad, c, &y, &[0, 1, 2]).unwrap_err();
    assert!(matches!(err, LossError::NonFinite { .. }), "{err}");
    assert_eq!(
        loss.state.get(),
        before,
        "no call above may change the state"
    );
    let unsized_loss = AveragedCe::default();
    let err = step(&unsized_loss, &z, c, &y, &[0, 1, 2]).unwrap_err();
    assert!(err.to_string().contains("with_dataset_size"), "{err}");
}

#[test]
fn each_loss_owns_its_state_and_reset_starts_over() {
    let (samples, c) = (4, 2);
    let a = AveragedCe::default().with_dataset_size(samples);
    let b = a.clone();
    step(&a, &[1.0, -1.0, 0.5, 2.0], c, &[0, 1], &[3, 0]).expect("a valid batch");
    assert_ne!(a.state.get(), b.state.get(), "a clone has its own state");
    assert_eq!(b.state.get().field("u"), Some(&[0.5; 4][..]));
    a.state.reset();
    assert_eq!(a.state.get(), b.state.get());
    let mut foreign = a.state.get();
    foreign.loss = "another_loss".into();
    assert!(matches!(
        a.state.set(foreign),
        Err(LossError::StateMismatch { .. })
    ));
}

/// A pairs loss with state, for views: each row reads its item's state.
#[loss(pairs, metric = Cosine)]
fn view_state_probe(s: Similarity, y: Labels, #[state(init = 1.0)] u: State<samples>) -> PerAnchor {
    let a = update(u[i], 0.5 * u[i] + mean(neg(i), |j| s[i][j]));
    a * mean(pos(i), |j| s[i][j])
}

#[test]
fn the_views_of_an_item_share_its_state_and_average_their_updates() {
    use crate::testing_pairs::{naive_similarity, random_embeddings};
    use crate::{Metric, SelfSupervised, Views};
    let mut rng = Rng::new(9);
    let (v, n, d, samples) = (2, 4, 3, 7);
    let z = random_embeddings(&mut rng, v * n, d);
    let ids = [5, 0, 3, 6];
    let loss = ViewStateProbe::default().with_dataset_size(samples);
    let dev: Cpu = Default::default();
    let t: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.clone(), (v, n, d));
    let value = loss
        .try_forward(WithIds(Views(t.clone()), &ids[..]), &SelfSupervised)
        .expect("a valid batch")
        .array();
    let s = naive_similarity(Metric::Cosine, &z, &z, d);
    let rows = v * n;
    let (mut want, mut state) = (0.0, vec![1.0; samples]);
    let mut sums = vec![0.0; samples];
    for r in 0..rows {
        let (item, partner) = (r % n, (r + n) % rows);
        let negs: Vec<f64> = (0..rows)
            .filter(|&j| j % n != item)
            .map(|j| s[r * rows + j])
            .collect();
        let a = 0.5 * 1.0 + negs.iter().sum::<f64>() / negs.len() as f64;
        want += a * s[r * rows + partner] / rows as f64;
        sums[ids[item]] += a / v as f64;
    }
    for &id in &ids {
        state[id] = sums[id];
    }
    assert_all_close(&[value], &[want], 1e-12, "value");
    assert_all_close(
        loss.state.get().field("u").expect("u"),
        &state,
        1e-12,
        "state",
    );
    let err = loss
        .try_forward(WithIds(Views(t), &ids[..3]), &SelfSupervised)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::BatchSizeMismatch {
                found_in: "ids",
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
}
