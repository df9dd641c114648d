//! No silent non-finite result from finite input: a loss that comes out NaN or infinite is
//! a `LossError` naming the loss and the first offending sample (for user-defined losses
//! as for shipped ones), hyper-parameters are checked in the dtype the loss runs in, and a
//! similarity that overflows is reported against the embeddings it came from.

use losskit::family::dynamic::{evaluate, pair_weights, EvalError, Input, Precision};
use losskit::prelude::*;
use losskit::Real;

/// A z-score without the usual epsilon: `0/0` on a row whose logits are all equal.
#[loss(logits)]
pub fn bare_z_score(z: Logits, y: Labels) -> PerSample {
    let mu = mean(classes, |k| z[i][k]);
    let sd = sqrt(mean(classes, |k| sq(z[i][k] - mu)));
    -(z[i][y[i]] - mu) / sd
}

/// The largest positive logit: `max` over an empty set (`-∞`) on a row without one.
#[loss(logits)]
pub fn largest_positive_logit(z: Logits, y: Labels) -> PerSample {
    max(classes.filter(|k| z[i][k] > 0.0), |k| z[i][k]) - z[i][y[i]]
}

/// `√z_y`: finite at `z_y = 0`, with an infinite derivative there.
#[loss(logits)]
pub fn root_of_target_logit(z: Logits, y: Labels) -> PerSample {
    sqrt(z[i][y[i]])
}

/// A hyper-parameter used as a divisor, to check its representability per dtype.
#[loss(logits)]
pub fn scaled_margin(
    z: Logits,
    y: Labels,
    #[hyper(default = 1.0, positive)] scale: f64,
) -> PerSample {
    relu(1.0 - z[i][y[i]] / scale)
}

fn logits<E: Dtype + Real>(rows: &[[f64; 3]]) -> Tensor<(usize, usize), E, Cpu>
where
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    let flat = rows
        .iter()
        .flatten()
        .map(|&x| <E as Real>::from_f64(x))
        .collect();
    dev.tensor_from_vec(flat, (rows.len(), 3))
}

fn expect_non_finite<E, L>(loss: &L, rows: &[[f64; 3]], labels: &[usize]) -> (LossError, String)
where
    E: Dtype + Real,
    Cpu: Device<E>,
    L: Loss<Tensor<(usize, usize), E, Cpu>, [usize]>,
{
    let err = loss
        .try_forward(logits::<E>(rows), labels)
        .map(|_| ())
        .expect_err("a non-finite loss must be an error");
    let message = err.to_string();
    (err, message)
}

#[test]
fn a_zero_over_zero_in_a_user_loss_names_the_loss_and_the_sample() {
    let rows = [
        [1.0, 2.0, 0.5],
        [0.0, -1.0, 3.0],
        [4.0, 4.0, 4.0],
        [1.0, 1.0, 1.0],
    ];
    for (err, message) in [
        expect_non_finite::<f32, _>(&BareZScore::new(), &rows, &[0, 2, 1, 0]),
        expect_non_finite::<f64, _>(&BareZScore::new(), &rows, &[0, 2, 1, 0]),
    ] {
        assert!(
            matches!(err, LossError::NonFiniteLoss { loss: "bare_z_score", value, sample: Some(2) } if value.is_nan()),
            "{err:?}"
        );
        assert!(
            message.contains("`bare_z_score`") && message.contains("sample 2"),
            "{message}"
        );
    }
    // the same loss on rows that are not constant is fine
    let ok = BareZScore::new().try_forward(logits::<f64>(&rows[..2]), &[0, 2]);
    assert!(ok.is_ok_and(|t| t.array().is_finite()));
}

#[test]
fn a_max_over_an_empty_set_is_an_error_not_minus_infinity() {
    let rows = [[1.0, 2.0, -0.5], [-1.0, -2.0, -3.0]];
    for (err, message) in [
        expect_non_finite::<f32, _>(&LargestPositiveLogit::new(), &rows, &[0, 1]),
        expect_non_finite::<f64, _>(&LargestPositiveLogit::new(), &rows, &[0, 1]),
    ] {
        assert_eq!(
            err,
            LossError::NonFiniteLoss {
                loss: "largest_positive_logit",
                value: f64::NEG_INFINITY,
                sample: Some(1),
            }
        );
        assert!(
            message.contains("-inf") && message.contains("sample 1"),
            "{message}"
        );
    }
}

#[test]
fn a_shipped_loss_that_overflows_is_an_error() {
    let rows = [[1.0, 2.0, 0.0], [3e38, -3e38, 0.0]];
    let (err, _) = expect_non_finite::<f32, _>(&SoftmaxCrossEntropy::new(), &rows, &[0, 1]);
    assert!(
        matches!(
            err,
            LossError::NonFiniteLoss {
                loss: "softmax_cross_entropy",
                sample: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    // f64 holds the same logits
    let ok = SoftmaxCrossEntropy::new().try_forward(logits::<f64>(&rows), &[0, 1]);
    assert!(ok.is_ok_and(|t| t.array().is_finite()));
}

#[test]
fn the_evaluator_reports_a_non_finite_gradient() {
    let inputs = [
        Input::new("logits", vec![2, 3], vec![0.0, 1.0, 2.0, 4.0, 1.0, 0.0]),
        Input::new("labels", vec![2], vec![0.0, 2.0]),
    ];
    for precision in [Precision::F32, Precision::F64] {
        let err = evaluate::<RootOfTargetLogit>(&inputs, &[], precision)
            .expect_err("an infinite gradient must be an error");
        assert!(
            matches!(
                err,
                EvalError::Loss(LossError::NonFiniteGradient {
                    loss: "root_of_target_logit",
                    input: "logits",
                    index: 0,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("although the loss is finite"));
    }
}

/// Through the typed API a backward pass cannot return an error: debug builds panic with
/// the same message.
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "the gradient of `root_of_target_logit` with respect to `logits` is inf")]
fn a_non_finite_gradient_panics_in_debug_builds() {
    let z = logits::<f64>(&[[0.0, 1.0, 2.0]]);
    let out = RootOfTargetLogit::new().forward(z.leaky_trace(), &[0]);
    assert!(out.array().is_finite());
    let _ = out.backward();
}

#[test]
fn hyper_parameters_are_checked_in_the_run_dtype() {
    let rows = [[1.0, 2.0, 0.5]];
    for scale in [1e-40, 1e39] {
        let loss = ScaledMargin::new().with_scale(scale);
        let err = loss
            .try_forward(logits::<f32>(&rows), &[0])
            .map(|_| ())
            .expect_err("not representable in f32");
        assert!(
            matches!(
                err,
                LossError::InvalidHyper {
                    loss: "scaled_margin",
                    name: "scale",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("representable in f32"), "{err}");
        // f64 holds it
        assert!(loss.try_forward(logits::<f64>(&rows), &[0]).is_ok());
    }
    // shipped losses too, through the evaluator
    let inputs = [
        Input::new("probs", vec![2], vec![0.7, 0.2]),
        Input::new("targets", vec![2], vec![1.0, 0.0]),
    ];
    let err = evaluate::<AnylossFbeta>(&inputs, &[("beta", 1e40)], Precision::F32)
        .expect_err("β = 1e40 overflows f32");
    assert!(err.to_string().contains("`beta`"), "{err}");
    let ok = evaluate::<AnylossFbeta>(&inputs, &[("beta", 1e40)], Precision::F64);
    assert!(ok.is_ok_and(|e| e.loss.is_finite()));
}

#[test]
fn an_overflowing_similarity_names_the_embeddings() {
    let dev: Cpu = Default::default();
    let e: Tensor<(usize, usize), f32, Cpu> =
        dev.tensor_from_vec(vec![1e20, 0.0, 0.5, 1.0, -1e20, 2.0, 0.1, 0.3], (4, 2));
    let labels = [0, 0, 1, 1];
    for metric in [Metric::Dot, Metric::SquaredEuclidean, Metric::Euclidean] {
        let loss = MultiSimilarity::new().with_metric(metric);
        let err = loss
            .try_forward(e.clone(), &labels)
            .map(|_| ())
            .expect_err("the similarity overflows f32");
        assert!(
            matches!(
                err,
                LossError::SimilarityOverflow {
                    input: "embeddings",
                    row: 0,
                    ..
                }
            ),
            "{metric:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(!message.contains("`similarities`") && message.contains("`embeddings`"));
    }
    // cosine normalises each row first (without squaring 1e20 in f32): the same rows
    // scaled down give the same loss
    let small: Tensor<(usize, usize), f32, Cpu> =
        dev.tensor_from_vec(vec![1.0, 0.0, 0.5, 1.0, -1.0, 2e-20, 0.1, 0.3], (4, 2));
    let big = MultiSimilarity::new().forward(e.clone(), &labels).array();
    let scaled = MultiSimilarity::new().forward(small, &labels).array();
    assert!(
        big.is_finite() && (big - scaled).abs() < 1e-5,
        "{big} vs {scaled}"
    );
    // the pair weights of the evaluator name the embeddings too
    let inputs = [
        Input::new(
            "embeddings",
            vec![4, 2],
            vec![1e200, 0.0, 0.5, 1.0, -1e200, 2.0, 0.1, 0.3],
        ),
        Input::new("labels", vec![4], vec![0.0, 0.0, 1.0, 1.0]),
    ];
    let err = pair_weights::<ProtoTriplet>(&inputs, &[]).expect_err("overflows f64");
    assert!(
        err.to_string()
            .contains("computed from `embeddings` overflowed"),
        "{err}"
    );
}
