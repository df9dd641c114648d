//! The [`Views`](super::Views) input: views `[V, N, d]` laid out as `V·N` rows, the row's
//! view `v[i]` and the `same_view(i)` set, against plain loops; the same values and
//! gradients as the flat embeddings with item labels; both paths; the errors.

use dfdx::prelude::*;

use super::{with_pairs_path, PairsPath};
use crate::testing::Rng;
use crate::testing_pairs::*;
use crate::{loss, Loss, LossError, Metric, MultiSimilarity, SelfSupervised, Views};

/// Within-view uniformity against cross-view alignment, reading `v[i]`, `same_view(i)`
/// and `pos(i)`: every construct a multi-view loss needs.
#[loss(pairs, metric = Cosine)]
fn view_probe(s: Similarity, y: Labels, v: Views) -> PerAnchor {
    let within = logsumexp(same_view(i), |j| 2.0 * s[i][j]);
    let across = mean(refs.filter(|j| v[j] != v[i] && y[j] == y[i]), |j| s[i][j]);
    let later = sum(refs.filter(|j| v[j] > v[i]), |j| 0.1 * s[i][j]);
    within - across + later
}

/// The probe as plain loops over the cosine similarities of the `V·N` rows.
fn naive_probe(rows: &[f64], d: usize, n: usize, labels: &[usize]) -> f64 {
    let total = rows.len() / d;
    let s = naive_similarity(Metric::Cosine, rows, rows, d);
    let view = |r: usize| r / n;
    let mut sum = 0.0;
    for i in 0..total {
        let (mut lse, mut across, mut count, mut later) = (Vec::new(), 0.0, 0.0, 0.0);
        for j in 0..total {
            let sij = s[i * total + j];
            if j != i && view(j) == view(i) {
                lse.push(2.0 * sij);
            }
            if view(j) != view(i) && labels[j] == labels[i] {
                across += sij;
                count += 1.0;
            }
            if view(j) > view(i) {
                later += 0.1 * sij;
            }
        }
        let max = lse.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let within = max + lse.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        let across = if count > 0.0 { across / count } else { 0.0 };
        sum += within - across + later;
    }
    sum / total as f64
}

/// `(value, ∂/∂views)` of `loss` on views `[v, n, d]` (flat, view-major).
fn views_value_and_grad<L>(
    loss: &L,
    z: &[f64],
    (v, n, d): (usize, usize, usize),
    labels: Option<&[usize]>,
) -> (f64, Vec<f64>)
where
    L: Loss3,
{
    let dev: Cpu = Default::default();
    let t: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(z.to_vec(), (v, n, d));
    let out = loss
        .run(Views(t.leaky_trace()), labels)
        .expect("a valid batch");
    let value = out.array();
    let g = out.backward();
    (value, g.get(&t).as_vec())
}

/// Views on a tape, and the loss they give.
type TracedViews = Views<Tensor<(usize, usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>>;
type Traced0 = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>;

/// A pairs loss on a dynamic views tensor with either target.
trait Loss3 {
    fn run(&self, views: TracedViews, labels: Option<&[usize]>) -> Result<Traced0, LossError>;
}

impl<L> Loss3 for L
where
    L: crate::Loss<TracedViews, [usize], Output = Traced0>
        + crate::Loss<TracedViews, SelfSupervised, Output = Traced0>,
{
    fn run(&self, views: TracedViews, labels: Option<&[usize]>) -> Result<Traced0, LossError> {
        match labels {
            Some(l) => self.try_forward(views, l),
            None => self.try_forward(views, &SelfSupervised),
        }
    }
}

#[test]
fn views_read_as_rows_view_by_view() {
    let mut rng = Rng::new(3);
    let (v, n, d) = (3, 5, 4);
    let z = random_embeddings(&mut rng, v * n, d);
    let items: Vec<usize> = (0..v * n).map(|r| r % n).collect();
    let loss = ViewProbe::default();
    for path in [PairsPath::Materialised, PairsPath::RowBlocks { rows: 4 }] {
        let (value, grad) =
            with_pairs_path(path, || views_value_and_grad(&loss, &z, (v, n, d), None));
        let want = naive_probe(&z, d, n, &items);
        assert_all_close(&[value], &[want], 1e-12, &format!("{path:?}: value"));
        let fd = central_differences(&|x| naive_probe(x, d, n, &items), &z, 1e-6);
        assert_all_close(&grad, &fd, 1e-6, &format!("{path:?}: ∂/∂views"));
    }
}

#[test]
fn item_labels_are_shared_by_the_views_of_an_item() {
    let mut rng = Rng::new(5);
    let (v, n, d) = (2, 6, 3);
    let z = random_embeddings(&mut rng, v * n, d);
    let classes = [0, 1, 0, 2, 1, 2];
    let rows: Vec<usize> = (0..v * n).map(|r| classes[r % n]).collect();
    let loss = ViewProbe::default();
    let (value, _) = views_value_and_grad(&loss, &z, (v, n, d), Some(&classes));
    assert_all_close(&[value], &[naive_probe(&z, d, n, &rows)], 1e-12, "value");
}

#[test]
fn a_loss_without_views_gives_the_same_as_flat_rows_with_item_labels() {
    let mut rng = Rng::new(11);
    let (v, n, d) = (2, 7, 5);
    let z = random_embeddings(&mut rng, v * n, d);
    let items: Vec<usize> = (0..v * n).map(|r| r % n).collect();
    let loss = MultiSimilarity::default();
    let (value, grad) = views_value_and_grad(&loss, &z, (v, n, d), None);
    let (flat, flat_grad) = emb_value_and_grad::<f64, _>(&loss, &z, d, &items);
    assert_all_close(&[value], &[flat], 1e-12, "value");
    assert_all_close(&grad, &flat_grad, 1e-12, "gradient");
}

#[test]
fn a_permuted_views_tensor_gets_its_own_gradient() {
    // [N, V, d] permuted to [V, N, d]: the reshape must follow the strides
    let mut rng = Rng::new(13);
    let (v, n, d) = (2, 4, 3);
    let z = random_embeddings(&mut rng, v * n, d);
    let dev: Cpu = Default::default();
    let mut item_major = vec![0.0; v * n * d];
    for view in 0..v {
        for item in 0..n {
            for k in 0..d {
                item_major[(item * v + view) * d + k] = z[(view * n + item) * d + k];
            }
        }
    }
    let t: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(item_major, (n, v, d));
    let loss = ViewProbe::default();
    let out = loss.forward(
        Views(t.leaky_trace().permute::<_, Axes3<1, 0, 2>>()),
        &SelfSupervised,
    );
    let value = out.array();
    let g = out.backward().get(&t).as_vec();
    let (want_value, want_grad) = views_value_and_grad(&loss, &z, (v, n, d), None);
    assert_all_close(&[value], &[want_value], 1e-12, "value");
    for view in 0..v {
        for item in 0..n {
            for k in 0..d {
                let got = g[(item * v + view) * d + k];
                let want = want_grad[(view * n + item) * d + k];
                assert!(
                    (got - want).abs() < 1e-12,
                    "view {view} item {item} k {k}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn bad_views_are_errors() {
    let dev: Cpu = Default::default();
    let loss = ViewProbe::default();
    let z: Tensor<(usize, usize, usize), f64, Cpu> = dev.zeros_like(&(2, 3, 4));
    let err = loss
        .try_forward(Views(z.clone()), &[0usize, 1][..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::BatchSizeMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let empty: Tensor<(usize, usize, usize), f64, Cpu> = dev.zeros_like(&(2, 0, 4));
    let err = loss.try_forward(Views(empty), &SelfSupervised).unwrap_err();
    assert!(
        matches!(err, LossError::EmptyBatch { input: "views" }),
        "{err}"
    );
    let mut bad = z.as_vec();
    bad[5] = f64::NAN;
    let bad: Tensor<(usize, usize, usize), f64, Cpu> = dev.tensor_from_vec(bad, (2, 3, 4));
    let err = loss.try_forward(Views(bad), &SelfSupervised).unwrap_err();
    assert!(
        matches!(err, LossError::NonFinite { input: "views", .. }),
        "{err}"
    );
}
