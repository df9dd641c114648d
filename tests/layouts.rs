//! A differentiable input in any dfdx layout — permuted, broadcast, sliced — gives the
//! value and the gradient of the same elements passed as a contiguous tensor.
//!
//! dfdx's `permute` and `broadcast` keep a tensor's storage and change only its strides,
//! and dfdx lays a gradient out like the storage: a permuted input's gradient is the
//! transpose of the contiguous one, and a broadcast input's is the sum over its copies.
//! Every shipped loss is checked this way in every form its family takes, in f64; a loss
//! with declared inputs also with each declared tensor, traced or constant, permuted,
//! broadcast and sliced.

use std::collections::BTreeSet;

use losskit::prelude::*;
use losskit::{catalogue, Family, Kernel};

type Traced<S> = Tensor<S, f64, Cpu, OwnedTape<f64, Cpu>>;
type Out = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>;

/// A value and the gradient of each input's storage, in storage order.
type Run = (f64, Vec<Vec<f64>>);

fn dev() -> Cpu {
    Default::default()
}

fn tensor<S: Shape>(values: &[f64], shape: S) -> Tensor<S, f64, Cpu> {
    dev().tensor_from_vec(values.to_vec(), shape)
}

/// The loss value and the gradient of `x` when `f` runs on `x`, traced.
fn run<S: Shape>(x: &Tensor<S, f64, Cpu>, f: impl FnOnce(Traced<S>) -> Out) -> Run {
    let out = f(x.leaky_trace());
    let value = out.array();
    (value, vec![out.backward().get(x).as_vec()])
}

/// The loss value and the gradients of `a` and `b` when `f` runs on both, traced.
fn run2<A: Shape, B: Shape>(
    a: &Tensor<A, f64, Cpu>,
    b: &Tensor<B, f64, Cpu>,
    f: impl FnOnce(Traced<A>, Traced<B>) -> Out,
) -> Run {
    let out = f(a.leaky_trace(), b.leaky_trace());
    let value = out.array();
    let grads = out.backward();
    (value, vec![grads.get(a).as_vec(), grads.get(b).as_vec()])
}

/// The `cols × rows` transpose of a row-major `rows × cols` matrix.
fn transpose(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols)
        .map(|k| v[(k % rows) * cols + k / rows])
        .collect()
}

/// The sums of the columns of a row-major `rows × cols` matrix: the gradient of a row
/// broadcast to `rows` rows.
fn column_sums(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols)
        .map(|j| (0..rows).map(|i| v[i * cols + j]).sum())
        .collect()
}

/// The sums of the rows of a row-major `rows × cols` matrix: the gradient of a column
/// broadcast to `cols` columns.
fn row_sums(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    v.chunks(cols).take(rows).map(|r| r.iter().sum()).collect()
}

/// `row` repeated `n` times.
fn repeat_rows(row: &[f64], n: usize) -> Vec<f64> {
    row.repeat(n)
}

/// Each element of `column` repeated `m` times in a row.
fn repeat_columns(column: &[f64], m: usize) -> Vec<f64> {
    column
        .iter()
        .flat_map(|&x| std::iter::repeat_n(x, m))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

/// Asserts `got` has `want`'s value and gradients (to ~1e-12).
#[track_caller]
fn assert_same(what: &str, got: &Run, want: &Run) {
    assert!(
        close(got.0, want.0),
        "{what}: value {} vs {}",
        got.0,
        want.0
    );
    assert_eq!(got.1.len(), want.1.len(), "{what}: number of gradients");
    for (k, (g, w)) in got.1.iter().zip(&want.1).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: gradient {k} length");
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(close(*a, *b), "{what}: gradient {k}[{j}] {a} vs {b}");
        }
    }
}

/// Asserts the run has a gradient that is not zero everywhere (so comparing it means
/// something).
#[track_caller]
fn assert_has_gradient(what: &str, got: &Run) {
    assert!(
        got.1.iter().flatten().any(|g| g.abs() > 1e-9),
        "{what}: the case should have a gradient"
    );
}

// ---------------------------------------------------------------------------------------
// binary: predictions [N] or [N, 1]

const N_BINARY: usize = 6;
type Binary = Rank2<N_BINARY, 1>;
const TARGETS: [f64; N_BINARY] = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];

/// A binary loss in every layout, on predictions `x` (probabilities or logits) and one
/// shared value `x0` for the broadcasts.
fn binary_cases(name: &str, x: &[f64], x0: f64, forward: impl Fn(Traced<Binary>) -> Out) {
    let contiguous = |v: &[f64]| run(&tensor(v, Binary::default()), &forward);
    // permuted: a 1 × N row seen as an N × 1 column
    let row = tensor(x, Rank2::<1, N_BINARY>::default());
    let got = run(&row, |t| forward(t.permute()));
    let want = contiguous(x);
    assert_has_gradient(name, &want);
    assert_same(&format!("{name}, permuted"), &got, &want);
    // broadcast: one value for every sample, as [1] → [N, 1] and as a scalar
    let same = contiguous(&[x0; N_BINARY]);
    assert_has_gradient(name, &same);
    let want = (same.0, vec![vec![same.1[0].iter().sum::<f64>()]]);
    let one = tensor(&[x0], Rank1::<1>::default());
    let got = run(&one, |t| forward(t.broadcast::<Binary, _>()));
    assert_same(&format!("{name}, [1] broadcast"), &got, &want);
    let scalar = tensor(&[x0], ());
    let got = run(&scalar, |t| forward(t.broadcast::<Binary, _>()));
    assert_same(&format!("{name}, scalar broadcast"), &got, &want);
    // broadcast along the column's axis of length one: [N] → [N, 1]
    let column = tensor(x, Rank1::<N_BINARY>::default());
    let got = run(&column, |t| forward(t.broadcast::<Binary, _>()));
    assert_same(&format!("{name}, [N] broadcast"), &got, &contiguous(x));
}

fn check_binary<K>(loss: &K) -> &'static str
where
    K: Kernel
        + Loss<Traced<Binary>, Tensor<Binary, f64, Cpu>, Output = Out>
        + Loss<FromLogits<Traced<Binary>>, Tensor<Binary, f64, Cpu>, Output = Out>,
{
    let y = tensor(&TARGETS, Binary::default());
    let name = K::INFO.name;
    // near ½, where the AnyLoss amplification is steep
    let probs = [0.55, 0.45, 0.52, 0.6, 0.4, 0.5];
    binary_cases(&format!("{name} (probs)"), &probs, 0.52, |p| {
        loss.forward(p, &y)
    });
    let logits = [0.8, -1.2, 0.3, 2.0, -0.4, 1.1];
    binary_cases(&format!("{name} (logits)"), &logits, 0.4, |z| {
        loss.forward(FromLogits(z), &y)
    });
    name
}

#[test]
fn binary_losses_in_every_layout() {
    let names = [
        check_binary(&AnylossAccuracy::default()),
        check_binary(&AnylossFbeta::default()),
        check_binary(&AnylossF1::default()),
        check_binary(&AnylossGmean::default()),
        check_binary(&AnylossBalancedAccuracy::default()),
        check_binary(&AnylossMcc::default()),
        check_binary(&AnylossJaccard::default()),
    ];
    assert_covers_family(Family::Binary, &names);
}

/// The repro: one probability broadcast to four samples gets the sum of their
/// gradients (checked against central differences), not a panic in `backward()`.
#[test]
fn a_broadcast_probability_gets_the_sum_over_its_copies() {
    let y: Tensor<Rank2<4, 1>, f64, _> = dev().tensor([[1.0], [0.0], [1.0], [1.0]]);
    let f1 = AnylossF1::new();
    let loss_at = |p0: f64| {
        let p: Tensor<Rank1<1>, f64, _> = dev().tensor([p0]);
        f1.forward(p.broadcast::<Rank2<4, 1>, _>(), &y).array()
    };
    let p: Tensor<Rank1<1>, f64, _> = dev().tensor([0.5]);
    let out = f1.forward(p.leaky_trace().broadcast::<Rank2<4, 1>, _>(), &y);
    assert!(close(out.array(), loss_at(0.5)));
    let grad = out.backward().get(&p).as_vec();
    let h = 1e-6;
    let fd = (loss_at(0.5 + h) - loss_at(0.5 - h)) / (2.0 * h);
    assert!(fd.abs() > 1e-3, "the case should have a gradient: {fd}");
    assert!((grad[0] - fd).abs() < 1e-7, "{} vs {fd}", grad[0]);
}

/// A slice is a copy in dfdx; its rows get their gradient and the rest none.
#[test]
fn a_sliced_binary_input() {
    let y = tensor(&TARGETS[..4], (4, Const::<1>));
    let x = tensor(&[0.9, 0.2, 0.6, 0.75, 0.35, 0.55], Binary::default());
    let got = run(&x, |t| {
        AnylossMcc::default().forward(FromLogits(t.slice((1..5, ..))), &y)
    });
    let want = run(&tensor(&[0.2, 0.6, 0.75, 0.35], (4, Const::<1>)), |t| {
        AnylossMcc::default().forward(FromLogits(t), &y)
    });
    assert_has_gradient("sliced", &want);
    let padded = [&[0.0][..], &want.1[0], &[0.0]].concat();
    assert_same("sliced", &got, &(want.0, vec![padded]));
}

// ---------------------------------------------------------------------------------------
// logits: [N, C] and labels

const LOGITS: [f64; 12] = [
    2.0, 0.5, -1.0, 0.0, 0.3, 3.0, -0.7, 1.2, 0.4, 1.5, -2.0, 0.9,
];
type LogitsShape = Rank2<4, 3>;
const LABELS: [usize; 4] = [0, 2, 1, 2];

fn check_logits<K>(loss: &K) -> &'static str
where
    K: Kernel + Loss<Traced<LogitsShape>, [usize], Output = Out>,
{
    let name = K::INFO.name;
    let forward = |z: Traced<LogitsShape>| loss.forward(z, &LABELS);
    let contiguous = |v: &[f64]| run(&tensor(v, LogitsShape::default()), forward);
    // permuted: the 4 × 3 view of a 3 × 4 tensor
    let stored = tensor(&transpose(&LOGITS, 4, 3), Rank2::<3, 4>::default());
    let got = run(&stored, |t| forward(t.permute()));
    let want = contiguous(&LOGITS);
    assert_has_gradient(name, &want);
    let want = (want.0, vec![transpose(&want.1[0], 4, 3)]);
    assert_same(&format!("{name}, permuted"), &got, &want);
    // broadcast: one row of logits for every sample (with different labels)
    let row = &LOGITS[..3];
    let got = run(&tensor(row, Rank1::<3>::default()), |t| {
        forward(t.broadcast())
    });
    let want = contiguous(&repeat_rows(row, 4));
    assert_has_gradient(name, &want);
    let want = (want.0, vec![column_sums(&want.1[0], 4, 3)]);
    assert_same(&format!("{name}, broadcast"), &got, &want);
    name
}

#[test]
fn logits_losses_in_every_layout() {
    let names = [
        check_logits(&SoftmaxCrossEntropy::default()),
        check_logits(&ZLoss::default()),
        check_logits(&CompSum::default().with_tau(1.5)),
        check_logits(&LdrKl::default()),
        // the paper's target: with identical rows (the broadcast case) the code's target
        // equals the prediction and the gradient vanishes
        check_logits(&DepictClusteringCe::default().with_paper_target(true)),
        // with declared inputs: the family's logits and each declared tensor in every
        // layout (`declared` below)
        check_given_matrix(&KdKl::default()),
        check_given_matrix(&BinaryKl::default()),
        check_given_matrix(&BinaryKlNorm::default()),
        check_dhkd(&Dhkd::default().with_kd_weight(0.5)),
        check_smooth_adv_comp_sum(&SmoothAdvCompSum::default().with_tau(1.5)),
        check_given_vector::<3, _>(&DatasetEquity::default(), &LOGITS, &LABELS),
        // EnsLoss is binary: two logit columns
        check_given_vector::<2, _>(&EnsLoss::default(), &LOGITS[..8], &[1, 0, 0, 1]),
        // margin heads: the logits are cosines (values past ±1 are clamped where the
        // head takes an angle, which every layout sees alike)
        check_logits(&ArcFace::default().with_s(4.0)),
        check_logits(&CosFace::default().with_s(4.0)),
        check_logits(&NormalizedSoftmaxCe::default()),
        check_logits(
            &SFace::default()
                .with_s(4.0)
                .with_k_intra(2.0)
                .with_k_inter(2.0),
        ),
        check_given_vector::<3, _>(&ElasticFaceArc::default().with_s(4.0), &LOGITS, &LABELS),
        check_given_vector::<3, _>(&ElasticFaceCos::default().with_s(4.0), &LOGITS, &LABELS),
        check_unpg(&Unpg::default().with_s(4.0)),
        check_sym_face(&SymFace::default().with_s(4.0)),
        // a 0/1 mask of the labelled rows
        check_vector_input::<3, _>(
            &RssSelfTraining::default(),
            &LOGITS,
            &LABELS,
            [1.0, 0.0, 1.0, 0.0],
            1.0,
        ),
        // its input carries dataset ids (`WithIds`), which `check_logits` does not pass: a
        // transposed batch is checked in loss-runtime's `aldr_kl` tests
        AldrKl::NAME,
    ];
    assert_covers_family(Family::Logits, &names);
}

/// The repro: a transposed tensor's gradient is the transpose of the true one,
/// `(softmax(z_i) − onehot(y_i)) / N`, computed here with plain loops.
#[test]
fn a_transposed_logits_tensor_gets_the_transposed_gradient() {
    let zt: Tensor<Rank2<3, 2>, f64, _> = dev().tensor([[2., 0.], [0.5, 0.2], [-1., 0.1]]);
    let l =
        SoftmaxCrossEntropy::new().forward(zt.leaky_trace().permute::<Rank2<2, 3>, _>(), &[0, 2]);
    let got = l.backward().get(&zt).as_vec();
    let z: [[f64; 3]; 2] = [[2.0, 0.5, -1.0], [0.0, 0.2, 0.1]];
    let mut want = vec![0.0; 6]; // laid out like zt: 3 × 2
    for (i, (row, y)) in z.iter().zip([0, 2]).enumerate() {
        let total: f64 = row.iter().map(|x| x.exp()).sum();
        for (k, x) in row.iter().enumerate() {
            let onehot = if k == y { 1.0 } else { 0.0 };
            want[k * 2 + i] = (x.exp() / total - onehot) / 2.0;
        }
    }
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn a_sliced_logits_input() {
    let x = tensor(&LOGITS, LogitsShape::default());
    let loss = SoftmaxCrossEntropy::default();
    let got = run(&x, |t| loss.forward(t.slice((1..3, ..)), &[2, 1]));
    let want = run(&tensor(&LOGITS[3..9], (2, Const::<3>)), |t| {
        loss.forward(t, &[2, 1])
    });
    let padded = [&[0.0; 3][..], &want.1[0], &[0.0; 3]].concat();
    assert_same("sliced", &got, &(want.0, vec![padded]));
}

// ---------------------------------------------------------------------------------------
// declared inputs (logits family): a declared tensor, traced or constant, permuted,
// broadcast or sliced, against the same elements passed contiguous

/// A second `[4, 3]` tensor of logits (teacher, auxiliary or adversarial).
const SECOND: [f64; 12] = [
    1.0, -0.5, 0.2, 0.4, 0.1, 2.5, -1.0, 0.8, 0.9, 1.2, -1.5, 0.3,
];
type Constant<S> = Tensor<S, f64, Cpu>;
/// The shape of a row-sliced `[4, C]` tensor.
type Rows<const C: usize> = (usize, Const<C>);

/// `v` with `pad` rows of `cols` values around it, above and below (the source of a
/// slice `pad..pad + rows`).
fn padded_rows(v: &[f64], cols: usize, pad: usize) -> Vec<f64> {
    let filler: Vec<f64> = (0..pad * cols).map(|k| 0.25 * k as f64 - 1.0).collect();
    [&filler[..], v, &filler[..]].concat()
}

/// `v` with `pad` zeros before and after it: the gradient of the source of a slice.
fn zero_padded(v: &[f64], pad: usize) -> Vec<f64> {
    [&vec![0.0; pad][..], v, &vec![0.0; pad]].concat()
}

/// A loss of the logits and one constant `[4, 3]` declared tensor `t` (teacher logits):
/// `t` permuted, broadcast (one row for all samples) and sliced, then both inputs
/// permuted, and a broadcast primary beside a contiguous `t`.
fn given_matrix_cases(
    name: &str,
    forward: impl Fn(Traced<LogitsShape>, Constant<LogitsShape>) -> Out,
    sliced: impl Fn(Traced<LogitsShape>, Constant<Rows<3>>) -> Out,
) {
    let z = tensor(&LOGITS, LogitsShape::default());
    let contiguous = |t: &[f64]| run(&z, |z| forward(z, tensor(t, LogitsShape::default())));
    let want = contiguous(&SECOND);
    assert_has_gradient(name, &want);
    let stored = tensor(&transpose(&SECOND, 4, 3), Rank2::<3, 4>::default());
    let got = run(&z, |z| forward(z, stored.clone().permute()));
    assert_same(&format!("{name}, permuted declared constant"), &got, &want);
    let source = tensor(&padded_rows(&SECOND, 3, 1), Rank2::<6, 3>::default());
    let got = run(&z, |z| sliced(z, source.clone().slice((1..5, ..))));
    assert_same(&format!("{name}, sliced declared constant"), &got, &want);
    let row = &SECOND[3..6];
    let got = run(&z, |z| {
        forward(z, tensor(row, Rank1::<3>::default()).broadcast())
    });
    let want_row = contiguous(&repeat_rows(row, 4));
    assert_same(
        &format!("{name}, broadcast declared constant"),
        &got,
        &want_row,
    );
    // the primary permuted too
    let z_stored = tensor(&transpose(&LOGITS, 4, 3), Rank2::<3, 4>::default());
    let got = run(&z_stored, |z| {
        forward(z.permute(), stored.clone().permute())
    });
    let transposed = (want.0, vec![transpose(&want.1[0], 4, 3)]);
    assert_same(
        &format!("{name}, permuted logits and declared constant"),
        &got,
        &transposed,
    );
    // a broadcast primary beside a contiguous declared tensor
    let z_row = &LOGITS[..3];
    let got = run(&tensor(z_row, Rank1::<3>::default()), |z| {
        forward(z.broadcast(), tensor(&SECOND, LogitsShape::default()))
    });
    let want = run(
        &tensor(&repeat_rows(z_row, 4), LogitsShape::default()),
        |z| forward(z, tensor(&SECOND, LogitsShape::default())),
    );
    let want = (want.0, vec![column_sums(&want.1[0], 4, 3)]);
    assert_same(&format!("{name}, broadcast logits"), &got, &want);
}

/// A loss of the logits and one traced `[4, 3]` declared tensor `a`: `a` permuted,
/// broadcast and sliced (its gradient laid out like its storage), then both permuted.
fn traced_matrix_cases(
    name: &str,
    forward: impl Fn(Traced<LogitsShape>, Traced<LogitsShape>) -> Out,
    sliced: impl Fn(Traced<LogitsShape>, Traced<Rows<3>>) -> Out,
) {
    let z = tensor(&LOGITS, LogitsShape::default());
    let contiguous = |a: &[f64]| run2(&z, &tensor(a, LogitsShape::default()), &forward);
    let want = contiguous(&SECOND);
    assert!(
        want.1[1].iter().any(|g| g.abs() > 1e-9),
        "{name}: the declared input should have a gradient"
    );
    let stored = tensor(&transpose(&SECOND, 4, 3), Rank2::<3, 4>::default());
    let got = run2(&z, &stored, |z, a| forward(z, a.permute()));
    let permuted = (want.0, vec![want.1[0].clone(), transpose(&want.1[1], 4, 3)]);
    assert_same(
        &format!("{name}, permuted declared traced"),
        &got,
        &permuted,
    );
    let source = tensor(&padded_rows(&SECOND, 3, 1), Rank2::<6, 3>::default());
    let got = run2(&z, &source, |z, a| sliced(z, a.slice((1..5, ..))));
    let padded = (want.0, vec![want.1[0].clone(), zero_padded(&want.1[1], 3)]);
    assert_same(&format!("{name}, sliced declared traced"), &got, &padded);
    let row = &SECOND[6..9];
    let got = run2(&z, &tensor(row, Rank1::<3>::default()), |z, a| {
        forward(z, a.broadcast())
    });
    let want_row = contiguous(&repeat_rows(row, 4));
    let want_row = (
        want_row.0,
        vec![want_row.1[0].clone(), column_sums(&want_row.1[1], 4, 3)],
    );
    assert_same(
        &format!("{name}, broadcast declared traced"),
        &got,
        &want_row,
    );
    let z_stored = tensor(&transpose(&LOGITS, 4, 3), Rank2::<3, 4>::default());
    let got = run2(&z_stored, &stored, |z, a| forward(z.permute(), a.permute()));
    let both = (
        want.0,
        vec![transpose(&want.1[0], 4, 3), transpose(&want.1[1], 4, 3)],
    );
    assert_same(
        &format!("{name}, permuted logits and declared traced"),
        &got,
        &both,
    );
}

fn check_given_matrix<K>(loss: &K) -> &'static str
where
    K: Kernel
        + Loss<(Traced<LogitsShape>, Constant<LogitsShape>), [usize], Output = Out>
        + Loss<(Traced<LogitsShape>, Constant<Rows<3>>), [usize], Output = Out>,
{
    let name = K::INFO.name;
    given_matrix_cases(
        name,
        |z, t| loss.forward((z, t), &LABELS),
        |z, t| loss.forward((z, t), &LABELS),
    );
    name
}

/// DHKD: the teacher (constant) in every layout beside a constant auxiliary head, and
/// the auxiliary head (traced) in every layout beside a contiguous teacher.
fn check_dhkd(loss: &Dhkd) -> &'static str {
    let aux = tensor(&LOGITS.map(|v| 0.5 * v - 0.2), LogitsShape::default());
    given_matrix_cases(
        "dhkd (teacher)",
        |z, t| loss.forward((z, aux.clone(), t), &LABELS),
        |z, t| loss.forward((z, aux.clone(), t), &LABELS),
    );
    let teacher = tensor(&LOGITS.map(|v| 1.5 - v), LogitsShape::default());
    traced_matrix_cases(
        "dhkd (auxiliary head)",
        |z, a| loss.forward((z, a, teacher.clone()), &LABELS),
        |z, a| loss.forward((z, a, teacher.clone()), &LABELS),
    );
    Dhkd::INFO.name
}

/// A square `[4, 4]` declared tensor (pair or half cosines).
const SQUARE: [f64; 16] = [
    0.9, 0.3, -0.2, 0.5, 0.1, 0.8, 0.6, -0.4, 0.2, -0.7, 0.95, 0.4, 0.3, 0.0, -0.5, 0.7,
];

/// A loss of the logits and one traced square `[4, 4]` declared tensor: stored
/// transposed and permuted back, sliced from a taller tensor, and with the logits
/// permuted as well (each gradient laid out like its storage).
fn traced_square_cases(
    name: &str,
    forward: impl Fn(Traced<LogitsShape>, Traced<Rank2<4, 4>>) -> Out,
    sliced: impl Fn(Traced<LogitsShape>, Traced<Rows<4>>) -> Out,
) {
    let z = tensor(&LOGITS, LogitsShape::default());
    let want = run2(&z, &tensor(&SQUARE, Rank2::<4, 4>::default()), &forward);
    assert!(
        want.1[1].iter().any(|g| g.abs() > 1e-9),
        "{name}: the declared input should have a gradient"
    );
    let stored = tensor(&transpose(&SQUARE, 4, 4), Rank2::<4, 4>::default());
    let got = run2(&z, &stored, |z, a| {
        forward(z, a.permute::<Rank2<4, 4>, Axes2<1, 0>>())
    });
    let permuted = (want.0, vec![want.1[0].clone(), transpose(&want.1[1], 4, 4)]);
    assert_same(
        &format!("{name}, permuted declared traced"),
        &got,
        &permuted,
    );
    let source = tensor(&padded_rows(&SQUARE, 4, 1), Rank2::<6, 4>::default());
    let got = run2(&z, &source, |z, a| sliced(z, a.slice((1..5, ..))));
    let padded = (want.0, vec![want.1[0].clone(), zero_padded(&want.1[1], 4)]);
    assert_same(&format!("{name}, sliced declared traced"), &got, &padded);
    let z_stored = tensor(&transpose(&LOGITS, 4, 3), Rank2::<3, 4>::default());
    let got = run2(&z_stored, &stored, |z, a| {
        forward(z.permute(), a.permute::<Rank2<4, 4>, Axes2<1, 0>>())
    });
    let both = (
        want.0,
        vec![transpose(&want.1[0], 4, 3), transpose(&want.1[1], 4, 4)],
    );
    assert_same(
        &format!("{name}, permuted logits and declared traced"),
        &got,
        &both,
    );
}

/// UNPG: the pair cosines in every layout, every pair with `p < q` kept.
fn check_unpg(loss: &Unpg) -> &'static str {
    let keep: Vec<f64> = (0..16)
        .map(|k| f64::from(u8::from(k / 4 < k % 4)))
        .collect();
    traced_square_cases(
        "unpg",
        |z, a| loss.forward((z, a, &keep[..]), &LABELS),
        |z, a| loss.forward((z, a, &keep[..]), &LABELS),
    );
    Unpg::INFO.name
}

/// SymFace: the half cosines in every layout (only the diagonal has a gradient).
fn check_sym_face(loss: &SymFace) -> &'static str {
    let front = [1.0, 0.0, 1.0, 0.5];
    traced_square_cases(
        "sym_face",
        |z, a| loss.forward((z, a, &front[..]), &LABELS),
        |z, a| loss.forward((z, a, &front[..]), &LABELS),
    );
    SymFace::INFO.name
}

fn check_smooth_adv_comp_sum(loss: &SmoothAdvCompSum) -> &'static str {
    traced_matrix_cases(
        "smooth_adv_comp_sum",
        |z, a| loss.forward((z, a), &LABELS),
        |z, a| loss.forward((z, a), &LABELS),
    );
    SmoothAdvCompSum::INFO.name
}

/// Per-sample values in `(0, 1]`: DatasetEquity's likelihoods, EnsLoss's draws.
const PER_SAMPLE: [f64; 4] = [0.9, 0.25, 0.6, 1.0];

/// A loss of `[4, C]` logits and one constant per-sample declared vector: the vector
/// broadcast from one value and sliced, and the logits permuted beside it.
fn check_given_vector<const C: usize, K>(loss: &K, z: &[f64], labels: &[usize]) -> &'static str
where
    K: Kernel
        + Loss<(Traced<Rank2<4, C>>, Constant<Rank1<4>>), [usize], Output = Out>
        + Loss<(Traced<Rank2<4, C>>, Constant<(usize,)>), [usize], Output = Out>,
{
    check_vector_input::<C, K>(loss, z, labels, PER_SAMPLE, 0.6)
}

/// [`check_given_vector`] with the vector's values given, and the one value broadcast
/// (a 0/1 mask needs 0/1 values).
fn check_vector_input<const C: usize, K>(
    loss: &K,
    z: &[f64],
    labels: &[usize],
    per_sample: [f64; 4],
    one: f64,
) -> &'static str
where
    K: Kernel
        + Loss<(Traced<Rank2<4, C>>, Constant<Rank1<4>>), [usize], Output = Out>
        + Loss<(Traced<Rank2<4, C>>, Constant<(usize,)>), [usize], Output = Out>,
{
    let name = K::INFO.name;
    let forward = |z, w| loss.forward((z, w), labels);
    let zt = tensor(z, Rank2::<4, C>::default());
    let contiguous = |w: &[f64]| run(&zt, |z| forward(z, tensor(w, Rank1::<4>::default())));
    let want = contiguous(&per_sample);
    assert_has_gradient(name, &want);
    let source = tensor(
        &[
            0.3,
            0.7,
            per_sample[0],
            per_sample[1],
            per_sample[2],
            per_sample[3],
            0.2,
            0.4,
        ],
        (8,),
    );
    let got = run(&zt, |z| {
        loss.forward((z, source.clone().slice((2..6,))), labels)
    });
    assert_same(&format!("{name}, sliced declared constant"), &got, &want);
    let got = run(&zt, |z| forward(z, tensor(&[one], ()).broadcast()));
    assert_same(
        &format!("{name}, broadcast declared constant"),
        &got,
        &contiguous(&[one; 4]),
    );
    let z_stored = tensor(&transpose(z, 4, C), Rank2::<C, 4>::default());
    let got = run(&z_stored, |z| {
        forward(z.permute(), tensor(&per_sample, Rank1::<4>::default()))
    });
    let transposed = (want.0, vec![transpose(&want.1[0], 4, C)]);
    assert_same(&format!("{name}, permuted logits"), &got, &transposed);
    name
}

// ---------------------------------------------------------------------------------------
// pairs: embeddings [N, d] (against themselves or a reference set) or similarities

const N: usize = 6;
const D: usize = 3;
const M: usize = 4;
const EMBEDDINGS: [f64; N * D] = [
    1.0, 0.2, -0.1, 0.8, 0.5, 0.0, 0.1, 1.0, 0.3, -0.2, 0.9, 0.6, 0.6, 0.6, 0.2, 0.3, -0.4, 1.0,
];
const REFS: [f64; M * D] = [0.9, 0.1, 0.2, -0.3, 1.0, 0.4, 0.2, 0.3, 0.9, 0.7, -0.6, 0.1];
const PAIR_LABELS: [usize; N] = [0, 0, 1, 1, 2, 2];
const REF_LABELS: [usize; M] = [0, 1, 2, 0];

/// Similarities of the batch against itself, `N × N`, and against the references, `N × M`.
fn similarities(cols: usize) -> Vec<f64> {
    (0..N * cols)
        .map(|k| ((k * 37 % 19) as f64 / 19.0) * 1.6 - 0.8)
        .collect()
}

fn labels() -> PairLabels<'static> {
    PairLabels {
        labels: &PAIR_LABELS,
        ref_labels: &REF_LABELS,
    }
}

/// The embeddings against themselves: permuted, and one row broadcast to all rows.
fn embeddings_cases<K>(loss: &K, name: &str)
where
    K: Loss<Traced<Rank2<N, D>>, [usize], Output = Out>,
{
    let forward = |e: Traced<Rank2<N, D>>| loss.forward(e, &PAIR_LABELS);
    let contiguous = |v: &[f64]| run(&tensor(v, Rank2::<N, D>::default()), forward);
    let stored = tensor(&transpose(&EMBEDDINGS, N, D), Rank2::<D, N>::default());
    let got = run(&stored, |t| forward(t.permute()));
    let want = contiguous(&EMBEDDINGS);
    assert_has_gradient(name, &want);
    let want = (want.0, vec![transpose(&want.1[0], N, D)]);
    assert_same(&format!("{name}, permuted embeddings"), &got, &want);
    let row = &EMBEDDINGS[..D];
    let got = run(&tensor(row, Rank1::<D>::default()), |t| {
        forward(t.broadcast())
    });
    let want = contiguous(&repeat_rows(row, N));
    let want = (want.0, vec![column_sums(&want.1[0], N, D)]);
    assert_same(&format!("{name}, broadcast embeddings"), &got, &want);
}

/// The embeddings against a reference set, both traced: each of them permuted or
/// broadcast while the other is permuted, broadcast or contiguous.
fn with_refs_cases<K>(loss: &K, name: &str)
where
    K: for<'l> Loss<
        WithRefs<Traced<Rank2<N, D>>, Traced<Rank2<M, D>>>,
        PairLabels<'l>,
        Output = Out,
    >,
{
    let forward = |e, r| loss.forward(WithRefs(e, r), &labels());
    let contiguous = |e: &[f64], r: &[f64]| {
        run2(
            &tensor(e, Rank2::<N, D>::default()),
            &tensor(r, Rank2::<M, D>::default()),
            forward,
        )
    };
    let want = contiguous(&EMBEDDINGS, &REFS);
    assert_has_gradient(name, &want);
    let (e_t, r_t) = (transpose(&EMBEDDINGS, N, D), transpose(&REFS, M, D));
    let (e_stored, r_stored) = (
        tensor(&e_t, Rank2::<D, N>::default()),
        tensor(&r_t, Rank2::<D, M>::default()),
    );
    // both permuted
    let got = run2(&e_stored, &r_stored, |e, r| {
        forward(e.permute(), r.permute())
    });
    let both = (
        want.0,
        vec![transpose(&want.1[0], N, D), transpose(&want.1[1], M, D)],
    );
    assert_same(
        &format!("{name}, permuted embeddings and refs"),
        &got,
        &both,
    );
    // contiguous embeddings, permuted refs
    let e = tensor(&EMBEDDINGS, Rank2::<N, D>::default());
    let got = run2(&e, &r_stored, |e, r| forward(e, r.permute()));
    let refs_only = (want.0, vec![want.1[0].clone(), transpose(&want.1[1], M, D)]);
    assert_same(&format!("{name}, permuted refs"), &got, &refs_only);
    // permuted embeddings, one reference row broadcast to every reference
    let r_row = &REFS[..D];
    let got = run2(&e_stored, &tensor(r_row, Rank1::<D>::default()), |e, r| {
        forward(e.permute(), r.broadcast())
    });
    let want = contiguous(&EMBEDDINGS, &repeat_rows(r_row, M));
    let want = (
        want.0,
        vec![transpose(&want.1[0], N, D), column_sums(&want.1[1], M, D)],
    );
    assert_same(&format!("{name}, broadcast refs"), &got, &want);
    // one embedding row broadcast to every row, permuted refs
    let e_row = &EMBEDDINGS[..D];
    let got = run2(&tensor(e_row, Rank1::<D>::default()), &r_stored, |e, r| {
        forward(e.broadcast(), r.permute())
    });
    let want = contiguous(&repeat_rows(e_row, N), &REFS);
    let want = (
        want.0,
        vec![column_sums(&want.1[0], N, D), transpose(&want.1[1], M, D)],
    );
    assert_same(&format!("{name}, broadcast embeddings"), &got, &want);
}

/// A similarity matrix `n × cols` given directly: permuted, one row broadcast to all
/// rows, and one column broadcast to all columns.
fn similarities_cases<const C: usize>(name: &str, forward: impl Fn(Traced<Rank2<N, C>>) -> Out) {
    let s = similarities(C);
    let contiguous = |v: &[f64]| run(&tensor(v, Rank2::<N, C>::default()), &forward);
    let want = contiguous(&s);
    assert_has_gradient(name, &want);
    let stored = tensor(&transpose(&s, N, C), Rank2::<C, N>::default());
    let got = run(&stored, |t| forward(t.permute()));
    let want = (want.0, vec![transpose(&want.1[0], N, C)]);
    assert_same(&format!("{name}, permuted {N} × {C}"), &got, &want);
    let row = &s[..C];
    let got = run(&tensor(row, Rank1::<C>::default()), |t| {
        forward(t.broadcast::<_, Axis<0>>())
    });
    let want = contiguous(&repeat_rows(row, N));
    assert_has_gradient(name, &want);
    let want = (want.0, vec![column_sums(&want.1[0], N, C)]);
    assert_same(&format!("{name}, row broadcast {N} × {C}"), &got, &want);
    let column = &s[..N];
    let got = run(&tensor(column, Rank1::<N>::default()), |t| {
        forward(t.broadcast::<_, Axis<1>>())
    });
    let want = contiguous(&repeat_columns(column, C));
    let want = (want.0, vec![row_sums(&want.1[0], N, C)]);
    assert_same(&format!("{name}, column broadcast {N} × {C}"), &got, &want);
}

fn check_pairs<K>(loss: &K) -> &'static str
where
    K: Kernel
        + Loss<Traced<Rank2<N, D>>, [usize], Output = Out>
        + for<'l> Loss<
            WithRefs<Traced<Rank2<N, D>>, Traced<Rank2<M, D>>>,
            PairLabels<'l>,
            Output = Out,
        > + Loss<Similarities<Traced<Rank2<N, N>>>, [usize], Output = Out>
        + for<'l> Loss<Similarities<Traced<Rank2<N, M>>>, PairLabels<'l>, Output = Out>,
{
    let name = K::INFO.name;
    embeddings_cases(loss, name);
    with_refs_cases(loss, name);
    similarities_cases::<N>(name, |s| loss.forward(Similarities(s), &PAIR_LABELS));
    similarities_cases::<M>(name, |s| loss.forward(Similarities(s), &labels()));
    name
}

#[test]
fn pairs_losses_in_every_layout() {
    let names = [
        check_pairs(&MultiSimilarity::default()),
        check_pairs(&GpwContrastive::default()),
        check_pairs(&GpwTriplet::default()),
        check_pairs(&GpwTripletBatchHard::default()),
        check_pairs(&GpwBinomialDeviance::default()),
        check_pairs(&GpwLiftedStructure::default()),
        check_pairs(&ProtoTriplet::default()),
        check_pairs(&Icnn::default()),
        check_pairs(&NtXent::default()),
        check_pairs(&InfoNce::default()),
        check_pairs(&SimpleContrastive::default()),
        check_pairs(&HardContrastive::default().with_k_hard(2.0)),
        check_pairs(&HardSimpleContrastive::default().with_k_hard(2.0)),
        check_pairs(&Uniformity::default()),
        check_pairs(&losskit::losses::Tolerance::default()),
        check_pairs(&MvInfonce::default()),
        check_pairs(&MvDhel::default()),
        // its input carries dataset ids (`WithIds`), which `check_pairs` does not pass: its
        // state is checked in loss-runtime's `core/state` tests, and a `Views` batch in any
        // layout in `family/pairs/views.rs`
        IsogclrUnimodal::NAME,
        IsogclrBimodal::NAME,
        IsogclrLibaucV1::NAME,
        // declared inputs (temperatures, a mask) after the family's primary input, which
        // `check_pairs` does not pass; the primary input takes the same family code as the
        // losses above, and declared tensors in every layout are checked for the logits
        // family (`check_given_matrix`)
        Amcl::NAME,
        AmclPaper::NAME,
        Simlap::NAME,
    ];
    assert_covers_family(Family::Pairs, &names);
}

#[test]
fn sliced_embeddings() {
    let x = tensor(&EMBEDDINGS, Rank2::<N, D>::default());
    let loss = MultiSimilarity::default();
    let got = run(&x, |t| loss.forward(t.slice((2.., ..)), &[1, 1, 2, 2]));
    let want = run(&tensor(&EMBEDDINGS[2 * D..], (N - 2, Const::<D>)), |t| {
        loss.forward(t, &[1, 1, 2, 2])
    });
    assert_has_gradient("sliced", &want);
    let padded = [&[0.0; 2 * D][..], &want.1[0]].concat();
    assert_same("sliced", &got, &(want.0, vec![padded]));
}

// ---------------------------------------------------------------------------------------
// scores: [Q, D] and a 0/1 relevance of the same shape

type ScoresShape = Rank2<3, 4>;
const SCORES: [f64; 12] = [2.0, 0.5, 1.5, -1.0, 0.0, 1.0, 0.8, 0.9, -0.3, 0.2, 1.7, 0.6];
const RELEVANCE: [f64; 12] = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];

fn check_scores<K>(loss: &K) -> &'static str
where
    K: Kernel + Loss<Traced<ScoresShape>, Tensor<ScoresShape, f64, Cpu>, Output = Out>,
{
    let name = K::INFO.name;
    let r = tensor(&RELEVANCE, ScoresShape::default());
    let forward = |s: Traced<ScoresShape>| loss.forward(s, &r);
    let contiguous = |v: &[f64]| run(&tensor(v, ScoresShape::default()), forward);
    let want = contiguous(&SCORES);
    assert_has_gradient(name, &want);
    let stored = tensor(&transpose(&SCORES, 3, 4), Rank2::<4, 3>::default());
    let got = run(&stored, |t| forward(t.permute()));
    let want = (want.0, vec![transpose(&want.1[0], 3, 4)]);
    assert_same(&format!("{name}, permuted"), &got, &want);
    // one row of scores for every query (each with its own relevance)
    let row = &SCORES[..4];
    let got = run(&tensor(row, Rank1::<4>::default()), |t| {
        forward(t.broadcast())
    });
    let want = contiguous(&repeat_rows(row, 3));
    assert_has_gradient(name, &want);
    let want = (want.0, vec![column_sums(&want.1[0], 3, 4)]);
    assert_same(&format!("{name}, broadcast"), &got, &want);
    name
}

/// NCE, with its declared noise log-densities: a permuted score tensor gets the permuted
/// gradient.
fn check_nce() -> &'static str {
    let loss = Nce::default();
    let log_q: Vec<f64> = (0..12).map(|k| -0.1 * k as f64).collect();
    let r = tensor(&RELEVANCE, ScoresShape::default());
    let forward = |s: Traced<ScoresShape>| loss.forward((s, log_q.clone()), &r);
    let want = run(&tensor(&SCORES, ScoresShape::default()), forward);
    assert_has_gradient(Nce::NAME, &want);
    let stored = tensor(&transpose(&SCORES, 3, 4), Rank2::<4, 3>::default());
    let got = run(&stored, |t| forward(t.permute()));
    let want = (want.0, vec![transpose(&want.1[0], 3, 4)]);
    assert_same("nce, permuted", &got, &want);
    Nce::NAME
}

#[test]
fn scores_losses_in_every_layout() {
    let names = [
        check_scores(&MwAuc::default()),
        check_scores(&DexmlDecoupledSoftmax::default()),
        check_scores(&DexmlSoftmax::default()),
        check_scores(&DexmlBce::default()),
        // K below the 4 documents (the default K = 5 needs more)
        check_scores(&DexmlSoftTopk::default().with_k(2.0)),
        check_nce(),
    ];
    assert_covers_family(Family::Scores, &names);
}

#[test]
fn sliced_scores() {
    let x = tensor(&SCORES, ScoresShape::default());
    let r = tensor(&RELEVANCE[4..], (2, Const::<4>));
    let loss = DexmlSoftmax::default();
    let got = run(&x, |t| loss.forward(t.slice((1.., ..)), &r));
    let want = run(&tensor(&SCORES[4..], (2, Const::<4>)), |t| {
        loss.forward(t, &r)
    });
    assert_has_gradient("sliced", &want);
    let padded = [&[0.0; 4][..], &want.1[0]].concat();
    assert_same("sliced", &got, &(want.0, vec![padded]));
}

/// Every shipped loss of `family` is among those checked.
fn assert_covers_family(family: Family, checked: &[&str]) {
    let shipped: BTreeSet<&str> = catalogue::all()
        .iter()
        .filter(|e| e.info.family == family)
        .map(|e| e.name())
        .collect();
    let checked: BTreeSet<&str> = checked.iter().copied().collect();
    assert_eq!(checked, shipped, "the {family:?} losses checked here");
}
