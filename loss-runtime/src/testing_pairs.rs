//! Test support for the pairs family, next to [`crate::testing`].
//!
//! - [`Pairs`]: a similarity matrix with its labels as the naive references see it, with
//!   the family's set rules (`pos(i)` leaves out `j = i` only when the references are
//!   the batch) written as plain comparisons.
//! - Random cases: embeddings, labels, similarity matrices, and the naive similarity of
//!   every [`Metric`], with plain loops.
//! - Every input form through dfdx: embeddings, [`WithRefs`], [`Similarities`] (with plain
//!   labels or [`PairLabels`]), with and without a tape, and the family's `pair_weights`.
//! - Suites every pairs loss shares, each taking the loss and its naive f64 value: values
//!   against the naive loops, gradients through the similarity op against central finite
//!   differences, `pair_weights` against finite differences in `S`, permutation
//!   invariance, f32 against f64, the no-valid-pairs contract, and the input errors.

use dfdx::prelude::*;

use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::similarity::Metric;
use crate::family::pairs::{self, PairLabels, Similarities, WithRefs};
use crate::testing::{assert_close, max_abs, panic_message, Rng};
use crate::{Loss, LossError};

// ---------------------------------------------------------------------------------------
// The naive view of a batch
// ---------------------------------------------------------------------------------------

/// An `n × m` similarity matrix (row-major) with the anchors' and references' labels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pairs<'a> {
    pub(crate) s: &'a [f64],
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) labels: &'a [usize],
    pub(crate) ref_labels: &'a [usize],
    /// The references are the batch itself: `j = i` is the self-pair.
    pub(crate) batch: bool,
}

impl<'a> Pairs<'a> {
    /// The batch against itself (`s` is `n × n`).
    pub(crate) fn batch(s: &'a [f64], labels: &'a [usize]) -> Self {
        let n = labels.len();
        assert_eq!(s.len(), n * n);
        Self {
            s,
            n,
            m: n,
            labels,
            ref_labels: labels,
            batch: true,
        }
    }

    /// Anchors against a reference set (`s` is `n × m`); no self-pair.
    pub(crate) fn refs(s: &'a [f64], labels: &'a [usize], ref_labels: &'a [usize]) -> Self {
        assert_eq!(s.len(), labels.len() * ref_labels.len());
        Self {
            s,
            n: labels.len(),
            m: ref_labels.len(),
            labels,
            ref_labels,
            batch: false,
        }
    }

    /// `S[i][j]`.
    pub(crate) fn at(&self, i: usize, j: usize) -> f64 {
        self.s[i * self.m + j]
    }

    /// Whether `j` is a positive of anchor `i`: same label, and not the self-pair.
    pub(crate) fn is_pos(&self, i: usize, j: usize) -> bool {
        self.labels[i] == self.ref_labels[j] && !(self.batch && i == j)
    }

    /// Whether `j` is a negative of anchor `i`: a different label.
    pub(crate) fn is_neg(&self, i: usize, j: usize) -> bool {
        self.labels[i] != self.ref_labels[j]
    }
}

/// A naive loss: its f64 value on a batch, with plain loops.
pub(crate) type Naive<'a> = &'a dyn Fn(&Pairs) -> f64;

// ---------------------------------------------------------------------------------------
// Random cases and the naive similarity
// ---------------------------------------------------------------------------------------

/// `rows × d` embeddings uniform in `[−1, 1)`.
pub(crate) fn random_embeddings(rng: &mut Rng, rows: usize, d: usize) -> Vec<f64> {
    (0..rows * d).map(|_| rng.range(-1.0, 1.0)).collect()
}

/// `n` labels drawn from `0..classes`, with labels 0 and 1 each used at least twice
/// when `n ≥ 4` (so there are positives and negatives), shuffled.
pub(crate) fn random_labels(rng: &mut Rng, n: usize, classes: usize) -> Vec<usize> {
    let mut y: Vec<usize> = (0..n).map(|_| rng.below(classes)).collect();
    if n >= 4 && classes >= 2 {
        y[..4].copy_from_slice(&[0, 0, 1, 1]);
    }
    rng.permutation(n).into_iter().map(|k| y[k]).collect()
}

/// An `n × m` similarity matrix uniform in `[−1, 1)`; with `unit_diagonal`, `S_ii = 1`
/// (what cosine gives the batch against itself).
pub(crate) fn random_similarities(
    rng: &mut Rng,
    n: usize,
    m: usize,
    unit_diagonal: bool,
) -> Vec<f64> {
    let mut s: Vec<f64> = (0..n * m).map(|_| rng.range(-1.0, 1.0)).collect();
    if unit_diagonal {
        for i in 0..n.min(m) {
            s[i * m + i] = 1.0;
        }
    }
    s
}

/// `metric(e_i, r_j)` for every pair, with plain loops (cosine divides each row by
/// `max(‖row‖, 1e-12)`).
pub(crate) fn naive_similarity(metric: Metric, e: &[f64], r: &[f64], d: usize) -> Vec<f64> {
    let (n, m) = (e.len() / d, r.len() / d);
    let norm = |row: &[f64]| row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    let mut s = vec![0.0; n * m];
    for i in 0..n {
        let a = &e[i * d..(i + 1) * d];
        for j in 0..m {
            let b = &r[j * d..(j + 1) * d];
            let mut dot = 0.0;
            let mut sq = 0.0;
            for k in 0..d {
                dot += a[k] * b[k];
                sq += (a[k] - b[k]) * (a[k] - b[k]);
            }
            s[i * m + j] = match metric {
                Metric::Cosine => dot / (norm(a) * norm(b)),
                Metric::Dot => dot,
                Metric::Euclidean => sq.sqrt(),
                Metric::SquaredEuclidean => sq,
            };
        }
    }
    s
}

/// Central finite differences of `f` at every coordinate of `x`.
pub(crate) fn central_differences(f: &dyn Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|k| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[k] += h;
            down[k] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Every input form through dfdx
// ---------------------------------------------------------------------------------------

/// A dynamic-shape matrix.
pub(crate) type Mat<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
type Scalar<E, T = NoneTape> = Tensor<(), E, Cpu, T>;
type Owned<E> = OwnedTape<E, Cpu>;

/// A pairs-family loss in precision `E`: embeddings, a reference set and a similarity
/// matrix, with and without a tape.
pub(crate) trait PairsLoss<E: Dtype>:
    Kernel
    + Loss<Mat<E>, [usize], Output = Scalar<E>>
    + Loss<Mat<E, Owned<E>>, [usize], Output = Scalar<E, Owned<E>>>
    + for<'a> Loss<WithRefs<Mat<E>, Mat<E>>, PairLabels<'a>, Output = Scalar<E>>
    + for<'a> Loss<
        WithRefs<Mat<E, Owned<E>>, Mat<E, Owned<E>>>,
        PairLabels<'a>,
        Output = Scalar<E, Owned<E>>,
    > + Loss<Similarities<Mat<E>>, [usize], Output = Scalar<E>>
    + Loss<Similarities<Mat<E, Owned<E>>>, [usize], Output = Scalar<E, Owned<E>>>
    + for<'a> Loss<Similarities<Mat<E>>, PairLabels<'a>, Output = Scalar<E>>
    + for<'a> Loss<Similarities<Mat<E, Owned<E>>>, PairLabels<'a>, Output = Scalar<E, Owned<E>>>
{
}

impl<E: Dtype, L> PairsLoss<E> for L where
    L: Kernel
        + Loss<Mat<E>, [usize], Output = Scalar<E>>
        + Loss<Mat<E, Owned<E>>, [usize], Output = Scalar<E, Owned<E>>>
        + for<'a> Loss<WithRefs<Mat<E>, Mat<E>>, PairLabels<'a>, Output = Scalar<E>>
        + for<'a> Loss<
            WithRefs<Mat<E, Owned<E>>, Mat<E, Owned<E>>>,
            PairLabels<'a>,
            Output = Scalar<E, Owned<E>>,
        > + Loss<Similarities<Mat<E>>, [usize], Output = Scalar<E>>
        + Loss<Similarities<Mat<E, Owned<E>>>, [usize], Output = Scalar<E, Owned<E>>>
        + for<'a> Loss<Similarities<Mat<E>>, PairLabels<'a>, Output = Scalar<E>>
        + for<'a> Loss<Similarities<Mat<E, Owned<E>>>, PairLabels<'a>, Output = Scalar<E, Owned<E>>>
{
}

/// A `rows × cols` matrix in precision `E`.
pub(crate) fn matrix<E: Dtype + Real>(v: &[f64], rows: usize, cols: usize) -> Mat<E> {
    assert_eq!(v.len(), rows * cols);
    let dev: Cpu = Default::default();
    dev.tensor_from_vec(
        v.iter().map(|&x| <E as Real>::from_f64(x)).collect(),
        (rows, cols),
    )
}

fn widen<E: Real>(xs: Vec<E>) -> Vec<f64> {
    xs.into_iter().map(|x| x.to_f64()).collect()
}

/// The loss on `n × d` embeddings against themselves, without a tape.
pub(crate) fn emb_value<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    e: &[f64],
    d: usize,
    labels: &[usize],
) -> Result<f64, LossError> {
    let x = matrix::<E>(e, e.len() / d, d);
    Ok(<L as Loss<Mat<E>, [usize]>>::try_forward(loss, x, labels)?
        .array()
        .to_f64())
}

/// The loss on embeddings and its gradient with respect to them, through the similarity
/// op: `forward(e.leaky_trace(), labels)`, `backward()`, `grads.get(&e)`.
pub(crate) fn emb_value_and_grad<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    e: &[f64],
    d: usize,
    labels: &[usize],
) -> (f64, Vec<f64>) {
    let x = matrix::<E>(e, e.len() / d, d);
    let out = <L as Loss<Mat<E, Owned<E>>, [usize]>>::forward(loss, x.leaky_trace(), labels);
    let value = out.array().to_f64();
    let grads = out.backward();
    (value, widen(grads.get(&x).as_vec()))
}

/// The loss on embeddings against a reference set, without a tape.
pub(crate) fn refs_value<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    e: &[f64],
    r: &[f64],
    d: usize,
    labels: &PairLabels<'_>,
) -> Result<f64, LossError> {
    let (x, y) = (
        matrix::<E>(e, e.len() / d, d),
        matrix::<E>(r, r.len() / d, d),
    );
    let input = WithRefs(x, y);
    Ok(
        <L as Loss<WithRefs<Mat<E>, Mat<E>>, PairLabels>>::try_forward(loss, input, labels)?
            .array()
            .to_f64(),
    )
}

/// The loss against a reference set and its gradients with respect to the embeddings and
/// the references (both traced).
pub(crate) fn refs_value_and_grads<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    e: &[f64],
    r: &[f64],
    d: usize,
    labels: &PairLabels<'_>,
) -> (f64, Vec<f64>, Vec<f64>) {
    let (x, y) = (
        matrix::<E>(e, e.len() / d, d),
        matrix::<E>(r, r.len() / d, d),
    );
    let input = WithRefs(x.leaky_trace(), y.leaky_trace());
    let out = <L as Loss<WithRefs<Mat<E, Owned<E>>, Mat<E, Owned<E>>>, PairLabels>>::forward(
        loss, input, labels,
    );
    let value = out.array().to_f64();
    let grads = out.backward();
    (
        value,
        widen(grads.get(&x).as_vec()),
        widen(grads.get(&y).as_vec()),
    )
}

/// The loss on a similarity matrix `n × m`, without a tape: plain labels when
/// `ref_labels` is `None` (the batch against itself), [`PairLabels`] otherwise.
pub(crate) fn sim_value<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    s: &[f64],
    labels: &[usize],
    ref_labels: Option<&[usize]>,
) -> Result<f64, LossError> {
    let m = ref_labels.map_or(labels.len(), <[usize]>::len);
    let st = Similarities(matrix::<E>(s, labels.len(), m));
    let out = match ref_labels {
        None => <L as Loss<Similarities<Mat<E>>, [usize]>>::try_forward(loss, st, labels)?,
        Some(ref_labels) => <L as Loss<Similarities<Mat<E>>, PairLabels>>::try_forward(
            loss,
            st,
            &PairLabels { labels, ref_labels },
        )?,
    };
    Ok(out.array().to_f64())
}

/// The loss on a similarity matrix and its gradient with respect to it, through the tape.
pub(crate) fn sim_value_and_grad<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    s: &[f64],
    labels: &[usize],
    ref_labels: Option<&[usize]>,
) -> (f64, Vec<f64>) {
    let m = ref_labels.map_or(labels.len(), <[usize]>::len);
    let st = matrix::<E>(s, labels.len(), m);
    let input = Similarities(st.leaky_trace());
    let out = match ref_labels {
        None => <L as Loss<Similarities<Mat<E, Owned<E>>>, [usize]>>::forward(loss, input, labels),
        Some(ref_labels) => <L as Loss<Similarities<Mat<E, Owned<E>>>, PairLabels>>::forward(
            loss,
            input,
            &PairLabels { labels, ref_labels },
        ),
    };
    let value = out.array().to_f64();
    let grads = out.backward();
    (value, widen(grads.get(&st).as_vec()))
}

/// The family's `pair_weights` (what the generated `pair_weights` and
/// `pair_weights_with_refs` call): `∂L/∂S` as an `n × m` row-major vector.
pub(crate) fn weights<E: Dtype + Real, L: PairsLoss<E>>(
    loss: &L,
    s: &[f64],
    labels: &[usize],
    ref_labels: Option<&[usize]>,
) -> Result<Vec<f64>, LossError> {
    let m = ref_labels.map_or(labels.len(), <[usize]>::len);
    let st = matrix::<E>(s, labels.len(), m);
    Ok(widen(
        pairs::pair_weights(loss, &st, labels, ref_labels)?.as_vec(),
    ))
}

/// Asserts two vectors agree entry by entry: `|got − want| ≤ tol·(1 + |want|)`.
#[track_caller]
pub(crate) fn assert_all_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, tol, tol, &format!("{what} [{k}]"));
    }
}

// ---------------------------------------------------------------------------------------
// Suites
// ---------------------------------------------------------------------------------------

/// The metrics the suites differentiate through: cosine (the default) and dot.
pub(crate) const METRICS: [Metric; 2] = [Metric::Cosine, Metric::Dot];

/// The loss with its `metric` field set (through a round trip of its hyper-parameters,
/// which do not include the metric, so through `Clone` and a setter closure).
fn with_metric<L: Clone>(loss: &L, metric: Metric, set: &dyn Fn(&mut L, Metric)) -> L {
    let mut l = loss.clone();
    set(&mut l, metric);
    l
}

/// How a suite sets the loss's metric (`|l, m| l.metric = m`).
pub(crate) type SetMetric<'a, L> = &'a dyn Fn(&mut L, Metric);

/// Asserts the value equals the naive one: on similarity matrices (plain labels and
/// [`PairLabels`]), on embeddings for every metric in [`METRICS`] (naive similarity,
/// then the naive loss), and against a reference set; the taped and untaped values agree.
pub(crate) fn check_pairs_values<L: PairsLoss<f64>>(
    loss: &L,
    set_metric: SetMetric<L>,
    naive: Naive,
    rel: f64,
) {
    let mut rng = Rng::new(0x9a1e_0001);
    for &(n, m, classes) in &[(2, 3, 2), (4, 2, 2), (7, 5, 3), (12, 9, 4), (5, 6, 5)] {
        // a similarity matrix of the batch against itself
        let y = random_labels(&mut rng, n, classes);
        let s = random_similarities(&mut rng, n, n, true);
        let got = sim_value::<f64, _>(loss, &s, &y, None).unwrap();
        let want = naive(&Pairs::batch(&s, &y));
        assert_close(got, want, rel, rel, &format!("similarities, y={y:?}"));
        let (taped, _) = sim_value_and_grad::<f64, _>(loss, &s, &y, None);
        assert_eq!(taped, got, "taped and untaped values differ");

        // a similarity matrix against a reference set: no self-exclusion
        let ry = random_labels(&mut rng, m, classes);
        let s = random_similarities(&mut rng, n, m, false);
        let got = sim_value::<f64, _>(loss, &s, &y, Some(&ry)).unwrap();
        let want = naive(&Pairs::refs(&s, &y, &ry));
        assert_close(got, want, rel, rel, &format!("refs, y={y:?} ry={ry:?}"));

        for metric in METRICS {
            let l = with_metric(loss, metric, set_metric);
            let d = 3;
            let e = random_embeddings(&mut rng, n, d);
            let got = emb_value::<f64, _>(&l, &e, d, &y).unwrap();
            let want = naive(&Pairs::batch(&naive_similarity(metric, &e, &e, d), &y));
            assert_close(got, want, rel, rel, &format!("{metric:?} embeddings"));
            let (taped, _) = emb_value_and_grad::<f64, _>(&l, &e, d, &y);
            assert_eq!(taped, got, "taped and untaped values differ");

            let r = random_embeddings(&mut rng, m, d);
            let labels = PairLabels {
                labels: &y,
                ref_labels: &ry,
            };
            let got = refs_value::<f64, _>(&l, &e, &r, d, &labels).unwrap();
            let want = naive(&Pairs::refs(&naive_similarity(metric, &e, &r, d), &y, &ry));
            assert_close(got, want, rel, rel, &format!("{metric:?} with refs"));
        }
    }
    // a square reference set with the batch's own labels is not the batch: the
    // diagonal is a positive pair there
    let y = [0, 0, 1, 1, 2];
    let s = random_similarities(&mut rng, 5, 5, false);
    let got = sim_value::<f64, _>(loss, &s, &y, Some(&y)).unwrap();
    assert_close(
        got,
        naive(&Pairs::refs(&s, &y, &y)),
        rel,
        rel,
        "square refs",
    );
}

/// Asserts the derived gradient with respect to the embeddings (through the similarity
/// op, for every metric in [`METRICS`]) and with respect to both sides of a reference
/// set matches central finite differences of the value: `|g − fd| ≤ tol·(1 + |fd|)`.
pub(crate) fn check_pairs_gradients<L: PairsLoss<f64>>(
    loss: &L,
    set_metric: SetMetric<L>,
    tol: f64,
) {
    let mut rng = Rng::new(0x9a1e_0002);
    let h = 1e-6;
    for &(n, m, classes, d) in &[(4, 3, 2, 3), (7, 6, 3, 4), (9, 5, 3, 2)] {
        let y = random_labels(&mut rng, n, classes);
        let ry = random_labels(&mut rng, m, classes);
        for metric in METRICS {
            let l = with_metric(loss, metric, set_metric);
            let e = random_embeddings(&mut rng, n, d);
            let (_, g) = emb_value_and_grad::<f64, _>(&l, &e, d, &y);
            let fd = central_differences(&|e| emb_value::<f64, _>(&l, e, d, &y).unwrap(), &e, h);
            assert_all_close(&g, &fd, tol, &format!("{metric:?} embeddings, y={y:?}"));
            assert!(max_abs(&g) > 0.0, "{metric:?}: the gradient vanishes");

            let r = random_embeddings(&mut rng, m, d);
            let labels = PairLabels {
                labels: &y,
                ref_labels: &ry,
            };
            let (_, ge, gr) = refs_value_and_grads::<f64, _>(&l, &e, &r, d, &labels);
            let fe = central_differences(
                &|e| refs_value::<f64, _>(&l, e, &r, d, &labels).unwrap(),
                &e,
                h,
            );
            let fr = central_differences(
                &|r| refs_value::<f64, _>(&l, &e, r, d, &labels).unwrap(),
                &r,
                h,
            );
            assert_all_close(&ge, &fe, tol, &format!("{metric:?} with refs, embeddings"));
            assert_all_close(&gr, &fr, tol, &format!("{metric:?} with refs, refs"));
        }
    }
}

/// Asserts `pair_weights` is `∂L/∂S`: it equals central finite differences of the value
/// in each entry of `S` (the batch against itself and a reference set), and, exactly,
/// the gradient the tape gives a [`Similarities`] input.
pub(crate) fn check_pairs_weights<L: PairsLoss<f64>>(loss: &L, tol: f64) {
    let mut rng = Rng::new(0x9a1e_0003);
    for &(n, m, classes) in &[(4, 3, 2), (8, 6, 3), (6, 7, 2)] {
        let y = random_labels(&mut rng, n, classes);
        let ry = random_labels(&mut rng, m, classes);
        let s = random_similarities(&mut rng, n, n, true);
        let w = weights::<f64, _>(loss, &s, &y, None).unwrap();
        let fd = central_differences(
            &|s| sim_value::<f64, _>(loss, s, &y, None).unwrap(),
            &s,
            1e-6,
        );
        assert_all_close(&w, &fd, tol, &format!("batch weights, y={y:?}"));
        let (_, g) = sim_value_and_grad::<f64, _>(loss, &s, &y, None);
        assert_eq!(w, g, "pair_weights and the taped gradient differ");
        assert!(max_abs(&w) > 0.0, "the weights vanish");

        let s = random_similarities(&mut rng, n, m, false);
        let w = weights::<f64, _>(loss, &s, &y, Some(&ry)).unwrap();
        let fd = central_differences(
            &|s| sim_value::<f64, _>(loss, s, &y, Some(&ry)).unwrap(),
            &s,
            1e-6,
        );
        assert_all_close(&w, &fd, tol, &format!("refs weights, y={y:?} ry={ry:?}"));
        let (_, g) = sim_value_and_grad::<f64, _>(loss, &s, &y, Some(&ry));
        assert_eq!(w, g, "pair_weights_with_refs and the taped gradient differ");
    }
}

/// Asserts value and gradient are invariant under a joint permutation of the batch
/// (embeddings and labels), and under a relabelling of the classes.
pub(crate) fn check_pairs_permutation<L: PairsLoss<f64>>(loss: &L) {
    let mut rng = Rng::new(0x9a1e_0004);
    let (n, d) = (11, 4);
    for _ in 0..3 {
        let y = random_labels(&mut rng, n, 4);
        let e = random_embeddings(&mut rng, n, d);
        let order = rng.permutation(n);
        let yp: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        let ep: Vec<f64> = order
            .iter()
            .flat_map(|&i| e[i * d..(i + 1) * d].to_vec())
            .collect();
        let (v, g) = emb_value_and_grad::<f64, _>(loss, &e, d, &y);
        let (vp, gp) = emb_value_and_grad::<f64, _>(loss, &ep, d, &yp);
        assert_close(vp, v, 1e-12, 1e-14, "permuted value");
        for (k, &i) in order.iter().enumerate() {
            for c in 0..d {
                assert_close(
                    gp[k * d + c],
                    g[i * d + c],
                    1e-10,
                    1e-14,
                    "permuted gradient",
                );
            }
        }
        let relabelled: Vec<usize> = y.iter().map(|&c| 100 + 7 * (3 - c)).collect();
        let (vr, gr) = emb_value_and_grad::<f64, _>(loss, &e, d, &relabelled);
        assert_eq!((vr, &gr), (v, &g), "relabelled classes");
    }
}

/// Asserts f32 values and gradients (through cosine similarity) agree with f64 on the
/// same f32-representable embeddings: values within `rel`, gradients within `rel` of the
/// largest component.
pub(crate) fn check_pairs_precisions<L: PairsLoss<f32> + PairsLoss<f64>>(loss: &L, rel: f64) {
    let mut rng = Rng::new(0x9a1e_0005);
    for &(n, classes, d) in &[(4, 2, 3), (10, 3, 5), (16, 4, 8)] {
        let y = random_labels(&mut rng, n, classes);
        let e: Vec<f64> = random_embeddings(&mut rng, n, d)
            .into_iter()
            .map(|x| x as f32 as f64)
            .collect();
        let (v64, g64) = emb_value_and_grad::<f64, _>(loss, &e, d, &y);
        let (v32, g32) = emb_value_and_grad::<f32, _>(loss, &e, d, &y);
        assert_close(v32, v64, rel, rel, &format!("f32 value, y={y:?}"));
        let scale = max_abs(&g64);
        assert!(scale > 0.0, "the f64 gradient vanishes");
        for (k, (&a, &b)) in g32.iter().zip(&g64).enumerate() {
            assert_close(a, b, 0.0, rel * scale, &format!("f32 gradient [{k}]"));
        }
    }
}

/// Asserts batches without a valid pair give exactly 0 with an all-zero gradient (no
/// NaN), in f32 and f64, on embeddings, similarity matrices and reference sets: every
/// label different, a single class, a single sample.
pub(crate) fn check_no_valid_pairs<L: PairsLoss<f32> + PairsLoss<f64>>(loss: &L) {
    let mut rng = Rng::new(0x9a1e_0006);
    let d = 3;
    for y in [vec![0, 1, 2, 3, 4], vec![3; 5], vec![7], vec![2, 2]] {
        let n = y.len();
        let e = random_embeddings(&mut rng, n, d);
        let what = format!("y={y:?}");
        let (v, g) = emb_value_and_grad::<f64, _>(loss, &e, d, &y);
        assert_eq!(v, 0.0, "f64 value, {what}");
        assert!(g.iter().all(|&x| x == 0.0), "f64 gradient {g:?}, {what}");
        let (v, g) = emb_value_and_grad::<f32, _>(loss, &e, d, &y);
        assert_eq!(v, 0.0, "f32 value, {what}");
        assert!(g.iter().all(|&x| x == 0.0), "f32 gradient {g:?}, {what}");
        let s = random_similarities(&mut rng, n, n, true);
        let (v, g) = sim_value_and_grad::<f64, _>(loss, &s, &y, None);
        assert_eq!(v, 0.0, "similarities, {what}");
        assert!(g.iter().all(|&x| x == 0.0), "similarities {g:?}, {what}");
        let w = weights::<f64, _>(loss, &s, &y, None).unwrap();
        assert!(w.iter().all(|&x| x == 0.0), "pair_weights {w:?}, {what}");
    }
    // a reference set with no shared label, and one with a single label everywhere
    for (y, ry) in [(vec![0, 1], vec![2, 3, 4]), (vec![5, 5, 5], vec![5, 5])] {
        let (e, r) = (
            random_embeddings(&mut rng, y.len(), d),
            random_embeddings(&mut rng, ry.len(), d),
        );
        let labels = PairLabels {
            labels: &y,
            ref_labels: &ry,
        };
        let (v, ge, gr) = refs_value_and_grads::<f64, _>(loss, &e, &r, d, &labels);
        assert_eq!(v, 0.0, "refs y={y:?} ry={ry:?}");
        assert!(ge.iter().chain(&gr).all(|&x| x == 0.0), "refs gradient");
    }
}

/// Asserts every malformed input is refused with the right [`LossError`] and message,
/// by `try_forward`, by `forward` (as a panic) and by `pair_weights`.
pub(crate) fn check_pairs_errors<L: PairsLoss<f64> + std::panic::RefUnwindSafe>(loss: &L) {
    let e = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    let try_emb = |e: &[f64], rows: usize, d: usize, y: &[usize]| {
        <L as Loss<Mat<f64>, [usize]>>::try_forward(loss, matrix(e, rows, d), y).unwrap_err()
    };
    let try_refs = |e: &[f64], rows: usize, r: &[f64], m: usize, d: usize, l: &PairLabels| {
        let input = WithRefs(matrix(e, rows, d), matrix(r, m, d));
        <L as Loss<WithRefs<Mat<f64>, Mat<f64>>, PairLabels>>::try_forward(loss, input, l)
            .unwrap_err()
    };
    let try_sim = |s: &[f64], n: usize, m: usize, y: &[usize], ry: Option<&[usize]>| {
        let st = Similarities(matrix::<f64>(s, n, m));
        match ry {
            None => <L as Loss<Similarities<Mat<f64>>, [usize]>>::try_forward(loss, st, y),
            Some(ry) => <L as Loss<Similarities<Mat<f64>>, PairLabels>>::try_forward(
                loss,
                st,
                &PairLabels {
                    labels: y,
                    ref_labels: ry,
                },
            ),
        }
        .unwrap_err()
    };
    let check = |err: LossError, want: LossError, message: &str| {
        assert_eq!(err, want);
        assert_eq!(err.to_string(), message);
    };

    // labels of the wrong length
    check(
        try_emb(&e, 3, 2, &[0, 1]),
        LossError::BatchSizeMismatch {
            expected_by: "embeddings",
            expected: 3,
            found_in: "labels",
            found: 2,
        },
        "batch size mismatch: `embeddings` has 3 samples but `labels` has 2",
    );
    check(
        try_sim(&[1.0, 0.5, 0.5, 1.0], 2, 2, &[0, 0, 1], None),
        LossError::BatchSizeMismatch {
            expected_by: "similarities",
            expected: 2,
            found_in: "labels",
            found: 3,
        },
        "batch size mismatch: `similarities` has 2 samples but `labels` has 3",
    );
    check(
        try_refs(
            &e[..4],
            2,
            &e,
            3,
            2,
            &PairLabels {
                labels: &[0],
                ref_labels: &[0, 1, 1],
            },
        ),
        LossError::BatchSizeMismatch {
            expected_by: "embeddings",
            expected: 2,
            found_in: "labels",
            found: 1,
        },
        "batch size mismatch: `embeddings` has 2 samples but `labels` has 1",
    );
    // reference labels of the wrong length
    check(
        try_refs(
            &e[..4],
            2,
            &e,
            3,
            2,
            &PairLabels {
                labels: &[0, 1],
                ref_labels: &[0, 1],
            },
        ),
        LossError::BatchSizeMismatch {
            expected_by: "ref_embeddings",
            expected: 3,
            found_in: "ref_labels",
            found: 2,
        },
        "batch size mismatch: `ref_embeddings` has 3 samples but `ref_labels` has 2",
    );
    check(
        try_sim(&e, 2, 3, &[0, 1], Some(&[0, 1, 1, 0])),
        LossError::ReferenceCountMismatch {
            input: "similarities",
            columns: 3,
            found_in: "ref_labels",
            found: 4,
        },
        "`similarities` has 3 columns (references) but `ref_labels` has 4",
    );
    check(
        try_sim(&e, 2, 3, &[0, 1], Some(&[0, 1])),
        LossError::ReferenceCountMismatch {
            input: "similarities",
            columns: 3,
            found_in: "ref_labels",
            found: 2,
        },
        "`similarities` has 3 columns (references) but `ref_labels` has 2",
    );
    // empty batches
    for (rows, d) in [(0, 3), (3, 0)] {
        let y = vec![0; rows];
        check(
            try_emb(&[], rows, d, &y),
            LossError::EmptyBatch {
                input: "embeddings",
            },
            "empty batch: `embeddings` has no elements",
        );
    }
    check(
        try_sim(&[], 0, 0, &[], None),
        LossError::EmptyBatch {
            input: "similarities",
        },
        "empty batch: `similarities` has no elements",
    );
    check(
        try_refs(
            &e,
            3,
            &[],
            0,
            2,
            &PairLabels {
                labels: &[0, 1, 1],
                ref_labels: &[],
            },
        ),
        LossError::EmptyBatch {
            input: "ref_embeddings",
        },
        "empty batch: `ref_embeddings` has no elements",
    );
    // non-finite values
    let mut bad = e;
    bad[4] = f64::INFINITY;
    check(
        try_emb(&bad, 3, 2, &[0, 0, 1]),
        LossError::NonFinite {
            input: "embeddings",
            index: 4,
            position: vec![2, 0],
            value: f64::INFINITY,
        },
        "non-finite value at `embeddings[2][0]`: inf",
    );
    bad[4] = f64::NAN;
    let err = try_emb(&bad, 3, 2, &[0, 0, 1]);
    assert!(
        matches!(err, LossError::NonFinite { input: "embeddings", index: 4, ref position, value } if value.is_nan() && position == &[2, 0]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "non-finite value at `embeddings[2][0]`: NaN"
    );
    bad[4] = f64::INFINITY;
    check(
        try_refs(
            &e[..4],
            2,
            &bad,
            3,
            2,
            &PairLabels {
                labels: &[0, 1],
                ref_labels: &[0, 1, 1],
            },
        ),
        LossError::NonFinite {
            input: "ref_embeddings",
            index: 4,
            position: vec![2, 0],
            value: f64::INFINITY,
        },
        "non-finite value at `ref_embeddings[2][0]`: inf",
    );
    check(
        try_sim(&[1.0, f64::NEG_INFINITY, 0.0, 1.0], 2, 2, &[0, 1], None),
        LossError::NonFinite {
            input: "similarities",
            index: 1,
            position: vec![0, 1],
            value: f64::NEG_INFINITY,
        },
        "non-finite value at `similarities[0][1]`: -inf",
    );
    // a non-square similarity matrix with plain labels
    let square = "a square [N, N] matrix when the references are the batch (pass `PairLabels` for a reference set)";
    let want = LossError::BadShape {
        input: "similarities",
        shape: vec![2, 3],
        expected: square,
    };
    let message = format!("bad shape for `similarities`: got [2, 3], expected {square}");
    check(try_sim(&e, 2, 3, &[0, 1], None), want.clone(), &message);
    assert_eq!(
        pairs::pair_weights(loss, &matrix::<f64>(&e, 2, 3), &[0, 1], None).unwrap_err(),
        want
    );
    // `forward` panics with the message
    let got = panic_message(|| {
        let _ = <L as Loss<Similarities<Mat<f64>>, [usize]>>::forward(
            loss,
            Similarities(matrix(&e, 2, 3)),
            &[0, 1],
        );
    });
    assert_eq!(got, message);
    let got = panic_message(|| {
        let _ = <L as Loss<Mat<f64>, [usize]>>::forward(loss, matrix(&e, 3, 2), &[0]);
    });
    assert_eq!(
        got,
        "batch size mismatch: `embeddings` has 3 samples but `labels` has 1"
    );
    // `pair_weights` checks its input as `forward` does
    assert_eq!(
        pairs::pair_weights(loss, &matrix::<f64>(&e, 2, 3), &[0, 1], Some(&[0, 1])).unwrap_err(),
        LossError::ReferenceCountMismatch {
            input: "similarities",
            columns: 3,
            found_in: "ref_labels",
            found: 2,
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::similarity::similarity_with;

    /// The naive similarity agrees with the similarity op, for every metric.
    #[test]
    fn naive_similarity_matches_the_similarity_op() {
        let mut rng = Rng::new(0x9a1e_0007);
        let (e, r) = (
            random_embeddings(&mut rng, 4, 3),
            random_embeddings(&mut rng, 5, 3),
        );
        for metric in [
            Metric::Cosine,
            Metric::Dot,
            Metric::Euclidean,
            Metric::SquaredEuclidean,
        ] {
            let s = similarity_with(matrix::<f64>(&e, 4, 3), matrix::<f64>(&r, 5, 3), metric);
            assert_all_close(
                &s.as_vec(),
                &naive_similarity(metric, &e, &r, 3),
                1e-12,
                &format!("{metric:?}"),
            );
        }
    }

    /// The set rules: the self-pair is not a positive of the batch, but is one of a
    /// reference set with the same labels.
    #[test]
    fn self_pairs_are_left_out_only_for_the_batch() {
        let s = [1.0, 0.5, 0.5, 1.0];
        let y = [3, 3];
        let batch = Pairs::batch(&s, &y);
        let refs = Pairs::refs(&s, &y, &y);
        assert!(!batch.is_pos(0, 0) && batch.is_pos(0, 1) && !batch.is_neg(0, 0));
        assert!(refs.is_pos(0, 0) && refs.is_pos(1, 1));
    }
}
