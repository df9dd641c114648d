//! Tests of evaluation by name.

use super::*;
use crate::family::pairs::{PairLabels, Similarities, WithRefs};
use crate::loss;
use crate::losses::{AnylossF1, MultiSimilarity, SoftmaxCrossEntropy};
use crate::Loss;

/// A small scores loss: the mean over queries of the mean hinge between each relevant
/// and each irrelevant document.
#[loss(scores)]
fn pairwise_hinge(
    s: Scores,
    r: Relevance,
    #[hyper(default = 1.0, positive)] margin: f64,
) -> PerQuery {
    mean(relevant(i), |d| {
        mean(irrelevant(i), |e| relu(margin - s[i][d] + s[i][e]))
    })
}

fn binary_inputs(pred: &str) -> Vec<Input> {
    vec![
        Input::new(pred, vec![4], vec![0.9, 0.2, 0.6, 0.4]),
        Input::new("targets", vec![4], vec![1.0, 0.0, 1.0, 0.0]),
    ]
}

#[test]
fn matches_the_typed_api() {
    let dev: Cpu = Default::default();
    let p: Tensor<Rank1<4>, f64, _> = dev.tensor([0.9, 0.2, 0.6, 0.4]);
    let y: Tensor<Rank1<4>, f64, _> = dev.tensor([1.0, 0.0, 1.0, 0.0]);
    let loss = crate::Loss::forward(&AnylossF1::default(), p.leaky_trace(), &y);
    let want = loss.array();
    let grads = loss.backward();
    let got = evaluate::<AnylossF1>(&binary_inputs("probs"), &[], Precision::F64).unwrap();
    assert_eq!(got.loss, want);
    assert_eq!(got.grads[0].values, grads.get(&p).as_vec());
}

#[test]
fn column_shapes_and_params() {
    let inputs = [
        Input::new("logits", vec![2, 1], vec![2.0, -1.0]),
        Input::new("targets", vec![2, 1], vec![1.0, 0.0]),
    ];
    let out = evaluate::<AnylossF1>(&inputs, &[("amplify", 0.0)], Precision::F32).unwrap();
    assert_eq!(out.grads[0].input, "logits");
    assert_eq!(out.grads[0].shape, vec![2, 1]);
    assert!(out.loss > 0.0 && out.loss < 0.5);
}

#[test]
fn refuses_bad_inputs() {
    let err = |inputs: &[Input]| {
        evaluate::<AnylossF1>(inputs, &[], Precision::F32)
            .unwrap_err()
            .to_string()
    };
    let mut both = binary_inputs("probs");
    both.push(Input::new("logits", vec![4], vec![0.0; 4]));
    assert_eq!(
        err(&both),
        "both `probs` and `logits` given; give exactly one of them"
    );
    assert_eq!(
        err(&binary_inputs("prob")),
        "`anyloss_f1` has no input named `prob`; its inputs are `probs`, `logits`, `targets`"
    );
    assert_eq!(
        err(&binary_inputs("probs")[1..]),
        "missing input `probs` or `logits` (needed by `anyloss_f1`)"
    );
    assert_eq!(
        err(&binary_inputs("logits")[..1]),
        "missing input `targets` (needed by `anyloss_f1`)"
    );
    let mut rank = binary_inputs("probs");
    rank[1].shape = vec![2, 2];
    assert_eq!(
        err(&rank),
        "bad shape for `targets`: got [2, 2], expected [N]"
    );
    let mut short_targets = binary_inputs("probs");
    short_targets[1] = Input::new("targets", vec![3], vec![1.0, 0.0, 1.0]);
    assert_eq!(
        err(&short_targets),
        "`targets` has 3 along `samples`, but `probs` has 4"
    );
    let mut not_binary = binary_inputs("logits");
    not_binary[1].values[2] = 0.5;
    assert_eq!(
        err(&not_binary),
        "`targets` at index 2 is 0.5, but `targets` must be 0 or 1 (a mask)"
    );
    let mut not_probability = binary_inputs("probs");
    not_probability[0].values[3] = 1.5;
    assert!(
        err(&not_probability).contains("1.5"),
        "{}",
        err(&not_probability)
    );
    // a column `[N, 1]` is an `[N]`, whatever the other input's rank
    let mut column = binary_inputs("probs");
    column[1].shape = vec![4, 1];
    let got = evaluate::<AnylossF1>(&column, &[], Precision::F64).unwrap();
    let want = evaluate::<AnylossF1>(&binary_inputs("probs"), &[], Precision::F64).unwrap();
    assert_eq!(got, want);
    let mut short = binary_inputs("probs");
    short[0].values.pop();
    assert_eq!(
        err(&short),
        "`probs` has shape [4] (4 elements) but 3 values"
    );
}

#[test]
fn refuses_bad_labels_and_hypers() {
    let inputs = [
        Input::new("logits", vec![2, 2], vec![0.0, 1.0, 2.0, 3.0]),
        Input::new("labels", vec![2], vec![1.0, 0.5]),
    ];
    let err = evaluate::<SoftmaxCrossEntropy>(&inputs, &[], Precision::F64).unwrap_err();
    assert_eq!(
        err,
        EvalError::BadLabel {
            input: "labels",
            index: 1,
            value: 0.5
        }
    );
    assert_eq!(
        err.to_string(),
        "`labels[1]` is 0.5, but labels must be non-negative integers"
    );
    let err = evaluate::<AnylossF1>(
        &binary_inputs("probs"),
        &[("epsilon", -1.0)],
        Precision::F32,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        EvalError::Loss(LossError::InvalidHyper { .. })
    ));
}

#[test]
fn logits_inputs_are_checked_against_the_sets_of_their_axes() {
    let err = |logits: Vec<f64>, labels: Vec<f64>| {
        let inputs = [
            Input::new("logits", vec![2, 3], logits),
            Input::new("labels", vec![labels.len()], labels),
        ];
        evaluate::<SoftmaxCrossEntropy>(&inputs, &[], Precision::F64).unwrap_err()
    };
    let z = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(
        err(z.clone(), vec![0.0, 3.0]),
        EvalError::Loss(LossError::IndexOutOfRange {
            input: "labels",
            index: 1,
            label: 3,
            set: "classes",
            size: 3,
        })
    );
    assert_eq!(
        err(z.clone(), vec![0.0, 1.0, 2.0]),
        EvalError::Loss(LossError::AxisMismatch {
            axis: "samples",
            expected_by: "logits",
            expected: 2,
            found_in: "labels",
            found: 3,
        })
    );
    let mut inf = z;
    inf[4] = f64::INFINITY;
    assert_eq!(
        err(inf, vec![0.0, 1.0]).to_string(),
        "non-finite value at `logits[1][1]`: inf"
    );
}

// ---- pairs

const EMB: [[f64; 3]; 5] = [
    [1.0, 0.2, -0.1],
    [0.8, 0.5, 0.0],
    [0.1, 1.0, 0.3],
    [-0.2, 0.9, 0.6],
    [0.6, 0.6, 0.2],
];
const LABELS: [usize; 5] = [0, 0, 1, 1, 0];
const REFS: [[f64; 3]; 3] = [[0.9, 0.4, 0.1], [0.0, 1.0, 0.2], [0.5, 0.5, 0.9]];
const REF_LABELS: [usize; 3] = [0, 1, 2];

fn flat<const D: usize>(rows: &[[f64; D]]) -> Vec<f64> {
    rows.iter().flatten().copied().collect()
}

fn labels_input(name: &str, labels: &[usize]) -> Input {
    Input::new(
        name,
        vec![labels.len()],
        labels.iter().map(|&l| l as f64).collect(),
    )
}

fn pairs_inputs(refs: bool) -> Vec<Input> {
    let mut inputs = vec![
        Input::new("embeddings", vec![5, 3], flat(&EMB)),
        labels_input("labels", &LABELS),
    ];
    if refs {
        inputs.push(Input::new("ref_embeddings", vec![3, 3], flat(&REFS)));
        inputs.push(labels_input("ref_labels", &REF_LABELS));
    }
    inputs
}

/// A loss whose gradients are all non-zero on the batches above.
fn loss() -> MultiSimilarity {
    MultiSimilarity::new()
        .with_pml_style(true)
        .with_epsilon(2.0)
}

const PARAMS: [(&str, f64); 2] = [("pml_style", 1.0), ("epsilon", 2.0)];

#[test]
fn pairs_embeddings_match_the_typed_api() {
    let dev: Cpu = Default::default();
    let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
    let out = loss().forward(e.leaky_trace(), &LABELS);
    let want = out.array();
    let grads = out.backward();
    let got = evaluate::<MultiSimilarity>(&pairs_inputs(false), &PARAMS, Precision::F64).unwrap();
    assert_eq!(got.loss, want);
    assert_eq!(got.grads.len(), 1);
    assert_eq!(got.grads[0].input, "embeddings");
    assert_eq!(got.grads[0].values, grads.get(&e).as_vec());
    assert!(got.grads[0].values.iter().any(|&g| g != 0.0));
}

#[test]
fn pairs_with_refs_match_the_typed_api() {
    let dev: Cpu = Default::default();
    let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
    let r: Tensor<Rank2<3, 3>, f64, _> = dev.tensor(REFS);
    let labels = PairLabels {
        labels: &LABELS,
        ref_labels: &REF_LABELS,
    };
    let out = loss().forward(WithRefs(e.leaky_trace(), r.leaky_trace()), &labels);
    let want = out.array();
    let grads = out.backward();
    let got = evaluate::<MultiSimilarity>(&pairs_inputs(true), &PARAMS, Precision::F64).unwrap();
    assert_eq!(got.loss, want);
    let names: Vec<_> = got.grads.iter().map(|g| g.input).collect();
    assert_eq!(names, ["embeddings", "ref_embeddings"]);
    assert_eq!(got.grads[1].shape, vec![3, 3]);
    assert_eq!(got.grads[0].values, grads.get(&e).as_vec());
    assert_eq!(got.grads[1].values, grads.get(&r).as_vec());
    assert!(got.grads[1].values.iter().any(|&g| g != 0.0));
}

#[test]
fn pairs_similarities_match_the_typed_api() {
    let dev: Cpu = Default::default();
    // square, the batch against itself
    let s: Tensor<Rank2<3, 3>, f64, _> =
        dev.tensor([[1.0, 0.7, 0.2], [0.7, 1.0, 0.6], [0.2, 0.6, 1.0]]);
    let labels: [usize; 3] = [0, 0, 1];
    let out = loss().forward(Similarities(s.leaky_trace()), &labels[..]);
    let (want, grads) = (out.array(), out.backward());
    let inputs = [
        Input::new("similarities", vec![3, 3], s.as_vec()),
        labels_input("labels", &labels),
    ];
    let got = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F64).unwrap();
    assert_eq!(got.loss, want);
    assert_eq!(got.grads[0].input, "similarities");
    assert_eq!(got.grads[0].values, grads.get(&s).as_vec());
    // a reference set: [2, 3] with `ref_labels`
    let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.9, 0.1, 0.4], [0.3, 0.8, 0.5]]);
    let pair_labels = PairLabels {
        labels: &[0, 1],
        ref_labels: &[0, 1, 1],
    };
    let out = loss().forward(Similarities(s.leaky_trace()), &pair_labels);
    let (want, grads) = (out.array(), out.backward());
    let inputs = [
        Input::new("similarities", vec![2, 3], s.as_vec()),
        labels_input("labels", &[0, 1]),
        labels_input("ref_labels", &[0, 1, 1]),
    ];
    let got = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F32).unwrap();
    assert!((got.loss - want).abs() < 1e-6);
    for (g, w) in got.grads[0].values.iter().zip(grads.get(&s).as_vec()) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn pairs_refuse_bad_combinations() {
    let err = |inputs: &[Input]| {
        evaluate::<MultiSimilarity>(inputs, &[], Precision::F64)
            .unwrap_err()
            .to_string()
    };
    let all = pairs_inputs(true);
    assert_eq!(
        err(&all[1..2]),
        "missing input `embeddings` or `similarities` (needed by `multi_similarity`)"
    );
    assert_eq!(
        err(&[all[0].clone(), all[2].clone()]),
        "missing input `labels` (needed by `multi_similarity`)"
    );
    assert_eq!(
        err(&all[..3]),
        "`ref_embeddings` given without `ref_labels`; give one label per reference"
    );
    assert_eq!(
        err(&[all[0].clone(), all[1].clone(), all[3].clone()]),
        "`ref_labels` given without `ref_embeddings`; give both for a reference set, or neither to compare the batch with itself"
    );
    let square = Input::new("similarities", vec![2, 2], vec![1.0, 0.5, 0.5, 1.0]);
    let wide = Input::new("similarities", vec![2, 3], vec![0.0; 6]);
    let two = labels_input("labels", &[0, 1]);
    assert_eq!(
        err(&[wide.clone(), two.clone()]),
        "bad shape for `similarities`: got [2, 3], expected a square [N, N] matrix (the batch against itself); give `ref_labels` for a reference set [N, M]"
    );
    assert_eq!(
        err(&[square, two.clone(), all[2].clone()]),
        "`ref_embeddings` cannot be given with `similarities`; give the similarities against the references [N, M] with `ref_labels`"
    );
    let mut narrow = all.clone();
    narrow[2] = Input::new("ref_embeddings", vec![3, 2], vec![0.5; 6]);
    assert_eq!(
        err(&narrow),
        "`ref_embeddings` has shape [3, 2] but `embeddings` has shape [5, 3]; give both the same number of columns"
    );
    let mut bad_ref = all.clone();
    bad_ref[3].values[2] = -1.0;
    assert_eq!(
        err(&bad_ref),
        "`ref_labels[2]` is -1, but labels must be non-negative integers"
    );
    let mut short = all;
    short[3] = labels_input("ref_labels", &[0, 1]);
    assert_eq!(
        err(&short),
        "`ref_labels` has 2 along `refs`, but `ref_embeddings` has 3"
    );
    assert_eq!(
        err(&[wide, two, labels_input("ref_labels", &[0])]),
        "`ref_labels` has 1 along `refs`, but `similarities` has 3"
    );
}

#[test]
fn pair_weights_are_the_gradient_wrt_similarities() {
    let got = pair_weights::<MultiSimilarity>(&pairs_inputs(false), &PARAMS).unwrap();
    assert_eq!((got.anchors, got.refs, got.against_itself), (5, 5, true));
    assert_eq!(got.metric, Some(Metric::Cosine));
    assert_eq!(got.weights.len(), 20);
    // the same numbers as `evaluate` on the similarity matrix
    let dev: Cpu = Default::default();
    let e: Tensor<Rank2<5, 3>, f64, _> = dev.tensor(EMB);
    let s = similarity(e, Metric::Cosine).as_vec();
    let inputs = [
        Input::new("similarities", vec![5, 5], s.clone()),
        labels_input("labels", &LABELS),
    ];
    let full = evaluate::<MultiSimilarity>(&inputs, &PARAMS, Precision::F64).unwrap();
    let off_diagonal =
        |xs: &[f64]| -> Vec<f64> { (0..25).filter(|k| k / 5 != k % 5).map(|k| xs[k]).collect() };
    assert_eq!(got.similarities, off_diagonal(&s));
    assert_eq!(got.weights, off_diagonal(&full.grads[0].values));
    let positives = got.positive.iter().filter(|&&p| p).count();
    assert_eq!(positives, 3 * 2 + 2);
    // positive pairs pull (w < 0), negative pairs push (w > 0)
    for (w, p) in got.weights.iter().zip(&got.positive) {
        assert!(if *p { *w <= 0.0 } else { *w >= 0.0 }, "{w} {p}");
    }
    let refs = pair_weights::<MultiSimilarity>(&pairs_inputs(true), &PARAMS).unwrap();
    assert_eq!(
        (refs.anchors, refs.refs, refs.against_itself),
        (5, 3, false)
    );
    assert_eq!(refs.weights.len(), 15);
    let err = pair_weights::<AnylossF1>(&binary_inputs("probs"), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`anyloss_f1` is a `binary` loss; pair weights exist only for `pairs` losses"
    );
}

// ---- scores

const SCORES: [[f64; 4]; 2] = [[2.0, 0.5, 1.5, -1.0], [0.0, 1.0, 0.8, 0.9]];
const RELEVANCE: [[f64; 4]; 2] = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]];

#[test]
fn scores_match_the_typed_api() {
    let dev: Cpu = Default::default();
    let s: Tensor<Rank2<2, 4>, f64, _> = dev.tensor(SCORES);
    let r: Tensor<Rank2<2, 4>, f64, _> = dev.tensor(RELEVANCE);
    let out = PairwiseHinge::new().forward(s.leaky_trace(), &r);
    let (want, grads) = (out.array(), out.backward());
    let inputs = [
        Input::new("scores", vec![2, 4], flat(&SCORES)),
        Input::new("relevance", vec![2, 4], flat(&RELEVANCE)),
    ];
    for precision in Precision::ALL {
        let got = evaluate::<PairwiseHinge>(&inputs, &[], precision).unwrap();
        assert!((got.loss - want).abs() < 1e-6);
        assert_eq!(got.grads.len(), 1);
        assert_eq!(got.grads[0].input, "scores");
        assert_eq!(got.grads[0].shape, vec![2, 4]);
        for (g, w) in got.grads[0].values.iter().zip(grads.get(&s).as_vec()) {
            assert!((g - w).abs() < 1e-6);
        }
    }
    let err = |inputs: &[Input]| {
        evaluate::<PairwiseHinge>(inputs, &[], Precision::F64)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&inputs[..1]),
        "missing input `relevance` (needed by `pairwise_hinge`)"
    );
    let wrong = [
        inputs[0].clone(),
        Input::new("relevance", vec![4, 2], flat(&RELEVANCE)),
    ];
    assert!(err(&wrong).contains("`relevance`"), "{}", err(&wrong));
    let vector = [
        Input::new("scores", vec![8], flat(&SCORES)),
        inputs[1].clone(),
    ];
    assert_eq!(
        err(&vector),
        "bad shape for `scores`: got [8], expected [Q, D]"
    );
    let none = [
        inputs[0].clone(),
        Input::new("relevance", vec![2, 4], vec![0.0; 8]),
    ];
    assert!(matches!(
        evaluate::<PairwiseHinge>(&none, &[], Precision::F64),
        Err(EvalError::Loss(LossError::NoRelevant { .. }))
    ));
}

/// A logits loss with declared inputs of every kind: CE of the primary `z` at `y`,
/// CE of the traced head `a` at the labels `g`, and a pull of `a` towards `z` weighted
/// by the constant `t` and the mask `m`.
#[loss(logits)]
fn guided_heads(
    z: Logits,
    y: Labels,
    t: Given<samples, classes>,
    a: Traced<samples, classes>,
    m: Mask<samples, classes>,
    g: Index<samples, classes>,
) -> PerSample {
    let lz = logsumexp(classes, |k| z[i][k]);
    let la = logsumexp(classes, |k| a[i][k]);
    lz - z[i][y[i]] + la - a[i][g[i]] + sum(classes, |k| m[i][k] * t[i][k] * sq(z[i][k] - a[i][k]))
}

const Z: [[f64; 3]; 2] = [[1.0, -0.5, 0.3], [0.2, 0.9, -1.1]];
const T: [[f64; 3]; 2] = [[0.5, 1.5, 0.25], [2.0, 0.1, 0.7]];
const A: [[f64; 3]; 2] = [[-0.3, 0.8, 0.4], [1.2, -0.6, 0.05]];
const M: [[f64; 3]; 2] = [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]];

fn guided_inputs() -> Vec<Input> {
    vec![
        Input::new("logits", vec![2, 3], flat(&Z)),
        labels_input("labels", &[2, 0]),
        Input::new("t", vec![2, 3], flat(&T)),
        Input::new("a", vec![2, 3], flat(&A)),
        Input::new("m", vec![2, 3], flat(&M)),
        labels_input("g", &[1, 2]),
    ]
}

/// `guided_heads` by plain loops in f64.
fn guided_naive(z: &[f64], a: &[f64]) -> f64 {
    let lse = |xs: &[f64]| xs.iter().map(|x| x.exp()).sum::<f64>().ln();
    let (y, g) = ([2, 0], [1, 2]);
    let mut total = 0.0;
    for i in 0..2 {
        let (zr, ar) = (&z[i * 3..i * 3 + 3], &a[i * 3..i * 3 + 3]);
        total += lse(zr) - zr[y[i]] + lse(ar) - ar[g[i]];
        for k in 0..3 {
            total += M[i][k] * T[i][k] * (zr[k] - ar[k]).powi(2);
        }
    }
    total / 2.0
}

#[test]
fn declared_inputs_by_name_match_a_naive_loop_and_finite_differences() {
    let inputs = guided_inputs();
    let (z, a) = (flat(&Z), flat(&A));
    for precision in Precision::ALL {
        let out = evaluate::<GuidedHeads>(&inputs, &[], precision).unwrap();
        let tol = if precision == Precision::F64 {
            1e-12
        } else {
            1e-5
        };
        assert!(
            (out.loss - guided_naive(&z, &a)).abs() < tol,
            "{precision:?}"
        );
        let names: Vec<_> = out
            .grads
            .iter()
            .map(|g| (g.input, g.shape.clone()))
            .collect();
        assert_eq!(names, vec![("logits", vec![2, 3]), ("a", vec![2, 3])]);
    }
    // the gradients against central differences of the naive loop
    let out = evaluate::<GuidedHeads>(&inputs, &[], Precision::F64).unwrap();
    let h = 1e-6;
    for (which, grad) in out.grads.iter().enumerate() {
        for k in 0..6 {
            let shifted = |d: f64| {
                let (mut z, mut a) = (z.clone(), a.clone());
                [&mut z, &mut a][which][k] += d;
                guided_naive(&z, &a)
            };
            let want = (shifted(h) - shifted(-h)) / (2.0 * h);
            assert!((grad.values[k] - want).abs() < 1e-7, "{} {k}", grad.input);
        }
    }
    // the same numbers as the typed call
    let dev: Cpu = Default::default();
    let zt: Tensor<Rank2<2, 3>, f64, _> = dev.tensor(Z);
    let at: Tensor<Rank2<2, 3>, f64, _> = dev.tensor(A);
    let (t, m): (Tensor<Rank2<2, 3>, f64, _>, Tensor<Rank2<2, 3>, f64, _>) =
        (dev.tensor(T), dev.tensor(M));
    let typed = GuidedHeads::default().forward(
        (zt.leaky_trace(), t, at.leaky_trace(), m, &[1usize, 2][..]),
        &[2usize, 0][..],
    );
    assert_eq!(typed.array(), out.loss);
    let grads = typed.backward();
    assert_eq!(grads.get(&zt).as_vec(), out.grads[0].values);
    assert_eq!(grads.get(&at).as_vec(), out.grads[1].values);
}

#[test]
fn declared_inputs_refused_by_name() {
    let err = |inputs: &[Input]| {
        evaluate::<GuidedHeads>(inputs, &[], Precision::F64)
            .unwrap_err()
            .to_string()
    };
    let with = |k: usize, input: Input| {
        let mut inputs = guided_inputs();
        inputs[k] = input;
        err(&inputs)
    };
    let mut missing = guided_inputs();
    missing.remove(3);
    assert_eq!(
        err(&missing),
        "missing input `a` (needed by `guided_heads`)"
    );
    assert_eq!(
        with(3, Input::new("b", vec![2, 3], flat(&A))),
        "`guided_heads` has no input named `b`; its inputs are `logits`, `labels`, `t`, `a`, `m`, `g`"
    );
    let mut twice = guided_inputs();
    twice.push(Input::new("t", vec![2, 3], flat(&T)));
    assert_eq!(err(&twice), "input `t` is given twice");
    assert_eq!(
        with(2, Input::new("t", vec![2, 3], vec![0.0; 5])),
        "`t` has shape [2, 3] (6 elements) but 5 values"
    );
    // a shared axis that disagrees names both inputs and the set
    assert_eq!(
        with(3, Input::new("a", vec![2, 2], vec![0.0; 4])),
        "`a` has 2 along `classes`, but `logits` has 3"
    );
    assert_eq!(
        with(2, Input::new("t", vec![3, 2], flat(&T))),
        "`t` has 3 along `samples`, but `logits` has 2"
    );
    assert!(
        with(2, Input::new("t", vec![1, 2, 3], flat(&T))).starts_with("bad shape for `t`"),
        "{}",
        with(2, Input::new("t", vec![1, 2, 3], flat(&T)))
    );
    assert_eq!(
        with(5, Input::new("g", vec![2], vec![1.0, 0.5])),
        "`g[1]` is 0.5, but labels must be non-negative integers"
    );
    assert!(matches!(
        evaluate::<GuidedHeads>(
            &{
                let mut i = guided_inputs();
                i[5] = labels_input("g", &[1, 3]);
                i
            },
            &[],
            Precision::F64
        ),
        Err(EvalError::Loss(LossError::IndexOutOfRange {
            input: "g",
            index: 1,
            ..
        }))
    ));
    assert!(matches!(
        evaluate::<GuidedHeads>(
            &{
                let mut i = guided_inputs();
                i[4].values[0] = 0.5;
                i
            },
            &[],
            Precision::F64
        ),
        Err(EvalError::Loss(LossError::NotAMask {
            input: "m",
            index: 0,
            ..
        }))
    ));
    assert!(matches!(
        evaluate::<GuidedHeads>(
            &{
                let mut i = guided_inputs();
                i[3].values[4] = f64::NAN;
                i
            },
            &[],
            Precision::F64
        ),
        Err(EvalError::Loss(LossError::NonFinite {
            input: "a",
            index: 4,
            ..
        }))
    ));
}
