//! The row-block path against the whole matrix: the same loss and gradients (up to
//! rounding) for every loss that splits by anchors, with any block size, against the batch
//! and against a reference set, for every metric; the same errors at the same positions.

use super::{with_pairs_path, PairsPath};
use crate::core::kernel::{Kernel, RowBlocks};
use crate::testing::Rng;
use crate::testing_pairs::*;
use crate::{loss, LossError, Metric, PairLabels};
use crate::{
    GpwBinomialDeviance, GpwContrastive, GpwLiftedStructure, GpwTriplet, GpwTripletBatchHard, Icnn,
    MultiSimilarity, ProtoTriplet,
};

const ALL_METRICS: [Metric; 4] = [
    Metric::Cosine,
    Metric::Dot,
    Metric::Euclidean,
    Metric::SquaredEuclidean,
];

/// `(value, ∂/∂embeddings, ∂/∂refs)` of `loss` on `path`: against the batch when `r` is
/// empty, against the reference set `r` otherwise.
fn on_path<L: PairsLoss<f64>>(
    path: PairsPath,
    loss: &L,
    (e, r, d): (&[f64], &[f64], usize),
    (y, y_ref): (&[usize], &[usize]),
) -> (f64, Vec<f64>, Vec<f64>) {
    with_pairs_path(path, || {
        if r.is_empty() {
            let (v, g) = emb_value_and_grad::<f64, _>(loss, e, d, y);
            (v, g, Vec::new())
        } else {
            let labels = PairLabels {
                labels: y,
                ref_labels: y_ref,
            };
            refs_value_and_grads::<f64, _>(loss, e, r, d, &labels)
        }
    })
}

/// The loss with its metric set: every metric through `set_metric`.
fn agrees_on_every_block_size<L: PairsLoss<f64> + Clone>(loss: &L, set: SetMetric<'_, L>) {
    let mut rng = Rng::new(7);
    let (n, m, d) = (11, 9, 4);
    let e = random_embeddings(&mut rng, n, d);
    let r = random_embeddings(&mut rng, m, d);
    let y = random_labels(&mut rng, n, 3);
    let y_ref = random_labels(&mut rng, m, 3);
    for metric in ALL_METRICS {
        let mut loss = loss.clone();
        set(&mut loss, metric);
        for refs in [&[][..], &r[..]] {
            let inputs = (&e[..], refs, d);
            let whole = on_path(PairsPath::Materialised, &loss, inputs, (&y, &y_ref));
            for rows in [1, 3, 4, n, 100] {
                let what = format!(
                    "{} {metric:?}, {} refs, {rows} rows per block",
                    L::INFO.name,
                    refs.len() / d
                );
                let got = on_path(PairsPath::RowBlocks { rows }, &loss, inputs, (&y, &y_ref));
                assert_all_close(&[got.0], &[whole.0], 1e-12, &format!("{what}: value"));
                assert_all_close(&got.1, &whole.1, 1e-12, &format!("{what}: ∂/∂embeddings"));
                assert_all_close(&got.2, &whole.2, 1e-12, &format!("{what}: ∂/∂refs"));
            }
        }
    }
}

macro_rules! metric_setter {
    ($t:ty) => {
        &|l: &mut $t, m: Metric| l.metric = m
    };
}

#[test]
fn the_compiler_says_which_shipped_losses_split_by_anchors() {
    assert_eq!(MultiSimilarity::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(GpwContrastive::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(GpwTripletBatchHard::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(GpwBinomialDeviance::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(GpwLiftedStructure::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(ProtoTriplet::ROW_BLOCKS, RowBlocks::Mean);
    // a mean over the triplets of the batch, and a loss with per-class statistics
    assert_eq!(GpwTriplet::ROW_BLOCKS, RowBlocks::No);
    assert_eq!(Icnn::ROW_BLOCKS, RowBlocks::No);
}

#[test]
fn multi_similarity_in_blocks_agrees_with_the_whole_matrix() {
    agrees_on_every_block_size(&MultiSimilarity::default(), metric_setter!(MultiSimilarity));
    let pml = MultiSimilarity::default().with_pml_style(true);
    agrees_on_every_block_size(&pml, metric_setter!(MultiSimilarity));
}

#[test]
fn gpw_losses_in_blocks_agree_with_the_whole_matrix() {
    agrees_on_every_block_size(&GpwContrastive::default(), metric_setter!(GpwContrastive));
    agrees_on_every_block_size(
        &GpwTripletBatchHard::default(),
        metric_setter!(GpwTripletBatchHard),
    );
    agrees_on_every_block_size(
        &GpwBinomialDeviance::default(),
        metric_setter!(GpwBinomialDeviance),
    );
    agrees_on_every_block_size(
        &GpwLiftedStructure::default(),
        metric_setter!(GpwLiftedStructure),
    );
    agrees_on_every_block_size(&ProtoTriplet::default(), metric_setter!(ProtoTriplet));
}

#[test]
fn a_loss_that_does_not_split_runs_on_the_whole_matrix_whatever_the_path() {
    // the requested blocks are ignored: the results are the same bits
    let mut rng = Rng::new(3);
    let (n, d) = (10, 3);
    let e = random_embeddings(&mut rng, n, d);
    let y = random_labels(&mut rng, n, 3);
    let loss = GpwTriplet::default();
    let whole = on_path(PairsPath::Materialised, &loss, (&e, &[], d), (&y, &[]));
    let blocks = on_path(
        PairsPath::RowBlocks { rows: 2 },
        &loss,
        (&e, &[], d),
        (&y, &[]),
    );
    assert_eq!(whole, blocks);
}

/// A user's loss, written with no thought of blocks: each anchor's softmax over every
/// other row (the self-pair left out by index), with a requirement on its row.
#[loss(pairs)]
pub(crate) fn others_softmax(s: Similarity, y: Labels) -> PerAnchor {
    let row_max = max(others(i), |j| s[i][j]);
    require(row_max < 50.0, "the row's largest similarity is below 50");
    logsumexp(others(i), |j| s[i][j]) - mean(pos(i), |j| s[i][j])
}

/// [`others_softmax`] with plain loops, in f64.
fn naive_others_softmax(s: &[f64], n: usize, y: &[usize]) -> f64 {
    let mut total = 0.0;
    for i in 0..n {
        let row = &s[i * n..(i + 1) * n];
        let others: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| row[j]).collect();
        let max = others.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + others.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        let pos: Vec<f64> = (0..n)
            .filter(|&j| j != i && y[j] == y[i])
            .map(|j| row[j])
            .collect();
        total += lse - pos.iter().sum::<f64>() / pos.len() as f64;
    }
    total / n as f64
}

#[test]
fn a_user_written_loss_runs_in_blocks_with_its_self_pairs_where_they_belong() {
    assert_eq!(OthersSoftmax::ROW_BLOCKS, RowBlocks::Mean);
    let mut rng = Rng::new(11);
    let (n, d) = (12, 5);
    let e = random_embeddings(&mut rng, n, d);
    let y: Vec<usize> = (0..n).map(|i| i / 3).collect();
    let s = naive_similarity(Metric::Cosine, &e, &e, d);
    let want = naive_others_softmax(&s, n, &y);
    let f = |x: &[f64]| naive_others_softmax(&naive_similarity(Metric::Cosine, x, x, d), n, &y);
    let want_grad = central_differences(&f, &e, 1e-6);
    for rows in [1, 5, n] {
        let (v, g, _) = on_path(
            PairsPath::RowBlocks { rows },
            &OthersSoftmax::default(),
            (&e, &[], d),
            (&y, &[]),
        );
        assert_all_close(&[v], &[want], 1e-12, &format!("value, {rows} rows"));
        assert_all_close(&g, &want_grad, 1e-6, &format!("gradient, {rows} rows"));
    }
}

#[test]
fn errors_name_the_same_sample_on_either_path() {
    let (n, d) = (9, 2);
    // row 6 is far larger than the others: under the dot product its row of S exceeds 50
    let mut e: Vec<f64> = (0..n * d).map(|k| (k % 5) as f64 * 0.1 + 0.1).collect();
    e[6 * d] = 100.0;
    let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let loss = OthersSoftmax::default().with_metric(Metric::Dot);
    let s = naive_similarity(Metric::Dot, &e, &e, d);
    let first = (0..n)
        .find(|&i| (0..n).any(|j| j != i && s[i * n + j] >= 50.0))
        .expect("a row over 50");
    assert!(first > 0, "the failing row should not be the first");
    for path in [PairsPath::Materialised, PairsPath::RowBlocks { rows: 4 }] {
        let err = with_pairs_path(path, || emb_value::<f64, _>(&loss, &e, d, &y)).unwrap_err();
        match err {
            LossError::Requirement { sample, .. } => assert_eq!(sample, Some(first), "{path:?}"),
            other => panic!("{path:?}: {other}"),
        }
    }
    // an f32 dot product that overflows: the first non-finite similarity's row
    let mut e = vec![1.0f64; n * d];
    e[5 * d] = 1e30;
    e[5 * d + 1] = 1e30;
    let loss = MultiSimilarity::default().with_metric(Metric::Dot);
    for path in [PairsPath::Materialised, PairsPath::RowBlocks { rows: 4 }] {
        let err = with_pairs_path(path, || emb_value::<f32, _>(&loss, &e, d, &y)).unwrap_err();
        match err {
            LossError::SimilarityOverflow { row, col, .. } => {
                assert_eq!((row, col), (5, 5), "{path:?}")
            }
            other => panic!("{path:?}: {other}"),
        }
    }
}

#[test]
fn the_block_path_without_a_tape_gives_the_same_value() {
    let mut rng = Rng::new(5);
    let (n, d) = (10, 3);
    let e = random_embeddings(&mut rng, n, d);
    let y = random_labels(&mut rng, n, 2);
    let loss = MultiSimilarity::default();
    let whole = with_pairs_path(PairsPath::Materialised, || {
        emb_value::<f64, _>(&loss, &e, d, &y)
    });
    let blocks = with_pairs_path(PairsPath::RowBlocks { rows: 3 }, || {
        emb_value::<f64, _>(&loss, &e, d, &y)
    });
    assert_all_close(&[blocks.unwrap()], &[whole.unwrap()], 1e-12, "value");
    // the thread's path is restored after the scope
    assert_eq!(super::PATH.with(std::cell::Cell::get), PairsPath::Auto);
}
