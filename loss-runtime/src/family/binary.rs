//! The `binary` family: predictions `[N]` (or `[N, 1]`) and 0/1 targets of the same shape.
//!
//! Predictions are probabilities by default; wrap them in [`FromLogits`] to pass logits,
//! which the generated kernel maps through a sigmoid before anything else (so AnyLoss
//! amplification still applies to the probability, as the paper specifies).

use dfdx::prelude::*;

use crate::core::info::{Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;

/// Marks binary predictions as logits rather than probabilities.
///
/// ```
/// # use dfdx::prelude::*;
/// # use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank1<4>, f32, _> = dev.tensor([2.0, -1.0, 0.5, -3.0]);
/// let y: Tensor<Rank1<4>, f32, _> = dev.tensor([1.0, 0.0, 1.0, 0.0]);
/// let loss = AnylossF1::default().forward(FromLogits(z), &y);
/// assert!(loss.array() < 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct FromLogits<T>(pub T);

/// The inputs of the binary family, in call order.
pub const INPUTS: &[InputInfo] = Family::Binary.inputs();

fn check_shape(input: &'static str, dims: &[usize]) -> Result<usize, LossError> {
    match dims {
        [n] | [n, 1] => Ok(*n),
        _ => Err(LossError::BadShape {
            input,
            shape: dims.to_vec(),
            expected: "[N] or [N, 1]",
        }),
    }
}

/// Checks predictions and targets; returns the batch size.
fn check_inputs<R: Real>(
    pred_name: &'static str,
    pred_dims: &[usize],
    preds: &[R],
    target_dims: &[usize],
    targets: &[R],
    from_logits: bool,
) -> Result<usize, LossError> {
    let n = check_shape(pred_name, pred_dims)?;
    let m = check_shape("targets", target_dims)?;
    if n == 0 {
        return Err(LossError::EmptyBatch { input: pred_name });
    }
    if m != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: pred_name,
            expected: n,
            found_in: "targets",
            found: m,
        });
    }
    super::check_finite(pred_name, pred_dims, preds)?;
    if !from_logits {
        if let Some(index) = preds
            .iter()
            .position(|&p| !(p >= R::zero() && p <= R::one()))
        {
            return Err(LossError::ProbabilityOutOfRange {
                index,
                value: preds[index].to_f64(),
            });
        }
    }
    if let Some(index) = targets
        .iter()
        .position(|&y| y != R::zero() && y != R::one())
    {
        return Err(LossError::TargetNotBinary {
            index,
            value: targets[index].to_f64(),
        });
    }
    Ok(n)
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    preds: Tensor<S, E, Cpu, T>,
    targets: &Tensor<S, E, Cpu>,
    from_logits: bool,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    try_forward_declared(kernel, preds, targets, from_logits, Declared::none())
}

/// [`try_forward`] with the loss's declared inputs (see [`super::declared`]).
pub fn try_forward_declared<K, S, E, T>(
    kernel: &K,
    preds: Tensor<S, E, Cpu, T>,
    targets: &Tensor<S, E, Cpu>,
    from_logits: bool,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let pred_name = if from_logits { "logits" } else { "probs" };
    let p = tape::try_elements("a copy of the predictions", &preds)?;
    let y = tape::try_elements("a copy of `targets`", targets)?;
    let n = check_inputs(
        pred_name,
        preds.shape().concrete().as_ref(),
        &p,
        targets.shape().concrete().as_ref(),
        &y,
        from_logits,
    )?;
    let layout = super::Layout {
        from_logits,
        ..super::Layout::samples(n)
    };
    super::run(
        kernel,
        (preds, pred_name),
        vec![p, y],
        Vec::new(),
        layout,
        declared,
    )
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use crate::testing::panic_message;
    use crate::{AnylossAccuracy, AnylossF1, AnylossFbeta, FromLogits, Kernel, Loss, LossError};

    fn dev() -> Cpu {
        Default::default()
    }

    fn vector(xs: &[f64]) -> Tensor<(usize,), f64, Cpu> {
        dev().tensor_from_vec(xs.to_vec(), (xs.len(),))
    }

    /// `try_forward` on probabilities.
    fn probs<L>(loss: &L, p: &[f64], y: &[f64]) -> Result<f64, LossError>
    where
        L: Loss<
            Tensor<(usize,), f64, Cpu>,
            Tensor<(usize,), f64, Cpu>,
            Output = Tensor<(), f64, Cpu>,
        >,
    {
        loss.try_forward(vector(p), &vector(y)).map(|t| t.array())
    }

    /// `try_forward` on logits.
    fn logits<L>(loss: &L, z: &[f64], y: &[f64]) -> Result<f64, LossError>
    where
        L: Loss<
            FromLogits<Tensor<(usize,), f64, Cpu>>,
            Tensor<(usize,), f64, Cpu>,
            Output = Tensor<(), f64, Cpu>,
        >,
    {
        loss.try_forward(FromLogits(vector(z)), &vector(y))
            .map(|t| t.array())
    }

    /// Asserts the error and that its message names every piece of `names`.
    #[track_caller]
    fn assert_refused(got: Result<f64, LossError>, want: LossError, names: &[&str]) {
        let err = got.expect_err("the input should be refused");
        assert_eq!(err, want);
        let message = err.to_string();
        for name in names {
            assert!(
                message.contains(name),
                "message {message:?} does not name {name:?}"
            );
        }
    }

    #[test]
    fn batch_size_mismatch() {
        let loss = AnylossAccuracy::new();
        assert_refused(
            probs(&loss, &[0.2, 0.9, 0.4], &[1.0, 0.0, 1.0, 0.0]),
            LossError::BatchSizeMismatch {
                expected_by: "probs",
                expected: 3,
                found_in: "targets",
                found: 4,
            },
            &["`probs` has 3", "`targets` has 4"],
        );
        assert_refused(
            logits(&loss, &[0.2, 0.9, 0.4, 2.0], &[1.0, 0.0]),
            LossError::BatchSizeMismatch {
                expected_by: "logits",
                expected: 4,
                found_in: "targets",
                found: 2,
            },
            &["`logits` has 4", "`targets` has 2"],
        );
    }

    #[test]
    fn target_not_binary() {
        let loss = AnylossF1::new();
        for (bad, shown) in [(0.5, "0.5"), (2.0, "2"), (-1.0, "-1"), (f64::NAN, "NaN")] {
            let got = probs(&loss, &[0.2, 0.9, 0.4], &[1.0, 0.0, bad]);
            let err = got.clone().expect_err("refused");
            assert!(
                matches!(err, LossError::TargetNotBinary { index: 2, value } if value.to_bits() == bad.to_bits()),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains("index 2") && message.contains(&format!("is {shown},")),
                "{message}"
            );
            assert!(logits(&loss, &[0.2, 0.9, 0.4], &[1.0, 0.0, bad]).is_err());
        }
    }

    #[test]
    fn empty_batch() {
        let loss = AnylossAccuracy::new();
        assert_refused(
            probs(&loss, &[], &[]),
            LossError::EmptyBatch { input: "probs" },
            &["`probs`"],
        );
        assert_refused(
            logits(&loss, &[], &[]),
            LossError::EmptyBatch { input: "logits" },
            &["`logits`"],
        );
        // an empty prediction with non-empty targets is still an empty batch
        assert_refused(
            probs(&loss, &[], &[1.0]),
            LossError::EmptyBatch { input: "probs" },
            &["`probs`"],
        );
        // empty targets with non-empty predictions disagree on the batch size
        assert_refused(
            probs(&loss, &[0.5, 0.5], &[]),
            LossError::BatchSizeMismatch {
                expected_by: "probs",
                expected: 2,
                found_in: "targets",
                found: 0,
            },
            &["`targets` has 0"],
        );
    }

    #[test]
    fn non_finite_prediction() {
        let loss = AnylossAccuracy::new();
        for (bad, shown) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            for (input, got) in [
                ("probs", probs(&loss, &[0.5, bad, 0.1], &[1.0, 0.0, 1.0])),
                ("logits", logits(&loss, &[0.5, bad, 0.1], &[1.0, 0.0, 1.0])),
            ] {
                let err = got.expect_err("refused");
                assert!(
                    matches!(&err, LossError::NonFinite { input: i, index: 1, position, value } if *i == input && position == &[1] && value.to_bits() == bad.to_bits()),
                    "{err:?}"
                );
                let message = err.to_string();
                assert!(
                    message == format!("non-finite value at `{input}[1]`: {shown}"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn probability_out_of_range() {
        let loss = AnylossAccuracy::new();
        for (index, bad, shown) in [
            (0, 1.5, "1.5"),
            (2, -0.25, "-0.25"),
            (1, 1.0 + 1e-12, "1.000000000001"),
        ] {
            let mut p = vec![0.5, 0.5, 0.5];
            p[index] = bad;
            assert_refused(
                probs(&loss, &p, &[1.0, 0.0, 1.0]),
                LossError::ProbabilityOutOfRange { index, value: bad },
                &[&format!("index {index} is {shown},"), "FromLogits"],
            );
            // the same numbers are fine as logits
            assert!(logits(&loss, &p, &[1.0, 0.0, 1.0]).is_ok());
        }
        // the ends of [0, 1] (and −0) are probabilities
        assert!(probs(&loss, &[0.0, 1.0, -0.0], &[1.0, 0.0, 1.0]).is_ok());
    }

    #[test]
    fn bad_shape() {
        let loss = AnylossAccuracy::new();
        let p: Tensor<Rank2<3, 2>, f64, _> = dev().zeros();
        let y: Tensor<Rank2<3, 2>, f64, _> = dev().zeros();
        let err = loss.try_forward(p.clone(), &y).expect_err("[N, 2] refused");
        assert_eq!(
            err,
            LossError::BadShape {
                input: "probs",
                shape: vec![3, 2],
                expected: "[N] or [N, 1]",
            }
        );
        assert!(err.to_string().contains("`probs`: got [3, 2]"), "{err}");
        let err = loss
            .try_forward(FromLogits(p), &y)
            .expect_err("[N, 2] refused");
        assert!(
            matches!(
                err,
                LossError::BadShape {
                    input: "logits",
                    ..
                }
            ),
            "{err:?}"
        );

        let p: Tensor<Rank0, f64, _> = dev().zeros();
        let err = loss
            .try_forward(p.clone(), &p)
            .expect_err("a scalar is refused");
        assert!(err.to_string().contains("got []"), "{err}");
        let p: Tensor<Rank3<2, 1, 1>, f64, _> = dev().zeros();
        let err = loss
            .try_forward(p.clone(), &p)
            .expect_err("rank 3 is refused");
        assert!(err.to_string().contains("got [2, 1, 1]"), "{err}");

        // targets of another shape than the predictions (dynamic shapes)
        let p: Tensor<(usize, usize), f64, _> = dev().zeros_like(&(3, 1));
        let y: Tensor<(usize, usize), f64, _> = dev().zeros_like(&(3, 2));
        assert_eq!(
            loss.try_forward(p, &y).expect_err("targets [3, 2] refused"),
            LossError::BadShape {
                input: "targets",
                shape: vec![3, 2],
                expected: "[N] or [N, 1]",
            }
        );
    }

    #[test]
    fn column_shape_equals_flat_shape() {
        let loss = AnylossF1::new().with_amplification(5.0);
        let p = [0.8, 0.3, 0.6, 0.1];
        let y = [1.0, 0.0, 0.0, 1.0];
        let flat: Tensor<Rank1<4>, f64, _> = dev().tensor(p);
        let column: Tensor<Rank2<4, 1>, f64, _> = dev().tensor([[p[0]], [p[1]], [p[2]], [p[3]]]);
        let yf: Tensor<Rank1<4>, f64, _> = dev().tensor(y);
        let yc: Tensor<Rank2<4, 1>, f64, _> = dev().tensor([[y[0]], [y[1]], [y[2]], [y[3]]]);
        let a = loss.forward(flat.leaky_trace(), &yf);
        let b = loss.forward(column.leaky_trace(), &yc);
        assert_eq!(a.array(), b.array());
        assert_eq!(
            a.backward().get(&flat).as_vec(),
            b.backward().get(&column).as_vec()
        );
        // dynamic shapes too
        let d = probs(&loss, &p, &y).unwrap();
        assert_eq!(d, loss.forward(flat, &yf).array());
    }

    #[test]
    fn invalid_hyper_parameters() {
        let (p, y) = ([0.3, 0.8], [0.0, 1.0]);
        let cases: Vec<(Result<f64, LossError>, &str, &str, f64)> = vec![
            (
                probs(&AnylossAccuracy::new().with_amplification(0.0), &p, &y),
                "anyloss_accuracy",
                "amplification",
                0.0,
            ),
            (
                probs(&AnylossAccuracy::new().with_amplification(-3.0), &p, &y),
                "anyloss_accuracy",
                "amplification",
                -3.0,
            ),
            (
                probs(&AnylossF1::new().with_amplification(f64::NAN), &p, &y),
                "anyloss_f1",
                "amplification",
                f64::NAN,
            ),
            (
                logits(&AnylossF1::new().with_amplification(f64::INFINITY), &p, &y),
                "anyloss_f1",
                "amplification",
                f64::INFINITY,
            ),
            (
                probs(&AnylossFbeta::new().with_beta(0.0), &p, &y),
                "anyloss_fbeta",
                "beta",
                0.0,
            ),
            (
                probs(&AnylossFbeta::new().with_beta(-1.5), &p, &y),
                "anyloss_fbeta",
                "beta",
                -1.5,
            ),
            (
                probs(&AnylossFbeta::new().with_beta(f64::NAN), &p, &y),
                "anyloss_fbeta",
                "beta",
                f64::NAN,
            ),
            (
                probs(&AnylossFbeta::new().with_epsilon(0.0), &p, &y),
                "anyloss_fbeta",
                "epsilon",
                0.0,
            ),
            (
                probs(&AnylossF1::new().with_epsilon(f64::NAN), &p, &y),
                "anyloss_f1",
                "epsilon",
                f64::NAN,
            ),
            (
                probs(&crate::AnylossGmean::new().with_epsilon(-1e-5), &p, &y),
                "anyloss_gmean",
                "epsilon",
                -1e-5,
            ),
        ];
        for (got, loss, name, value) in cases {
            let err = got.expect_err("invalid hyper-parameter refused");
            match &err {
                LossError::InvalidHyper {
                    loss: l,
                    name: n,
                    value: v,
                    constraint,
                } => {
                    assert_eq!((*l, *n), (loss, name));
                    assert_eq!(v.to_bits(), value.to_bits());
                    assert_eq!(*constraint, "finite and > 0");
                }
                other => panic!("expected InvalidHyper, got {other:?}"),
            }
            let message = err.to_string();
            assert!(
                message.contains(&format!("`{loss}`"))
                    && message.contains(&format!("`{name}` = {value}")),
                "{message}"
            );
        }
    }

    #[test]
    fn set_hyper_refuses_unknown_names_and_non_switch_flags() {
        let mut loss = AnylossF1::new();
        let err = loss.set_hyper("beta", 2.0).expect_err("F1 has no beta");
        assert_eq!(
            err,
            LossError::UnknownHyper {
                loss: "anyloss_f1",
                name: "beta".into()
            }
        );
        assert!(err.to_string().contains("`beta`"), "{err}");
        let err = loss
            .set_hyper("amplify", 0.5)
            .expect_err("a switch is 0 or 1");
        assert!(
            matches!(&err, LossError::InvalidHyper { name: "amplify", value, .. } if *value == 0.5),
            "{err:?}"
        );
        assert!(err.to_string().contains("`amplify` = 0.5"), "{err}");
        // values set without validation are refused at forward time
        loss.set_hyper("epsilon", -1.0).unwrap();
        assert!(matches!(
            probs(&loss, &[0.5], &[1.0]),
            Err(LossError::InvalidHyper {
                name: "epsilon",
                ..
            })
        ));
    }

    /// `forward` panics with exactly the message `try_forward` returns, for every path.
    #[test]
    fn forward_panics_with_the_try_forward_message() {
        type V = Tensor<(usize,), f64, Cpu>;
        let cases: Vec<(AnylossFbeta, Vec<f64>, Vec<f64>, bool)> = vec![
            (AnylossFbeta::new(), vec![0.5, 0.5], vec![1.0], false),
            (AnylossFbeta::new(), vec![0.5, 0.5], vec![1.0, 3.0], false),
            (AnylossFbeta::new(), vec![f64::NAN], vec![1.0], true),
            (AnylossFbeta::new(), vec![7.0], vec![1.0], false),
            (
                AnylossFbeta::new().with_beta(-1.0),
                vec![0.5],
                vec![1.0],
                false,
            ),
        ];
        for (loss, p, y, from_logits) in cases {
            let want = if from_logits {
                <AnylossFbeta as Loss<FromLogits<V>, V>>::try_forward(
                    &loss,
                    FromLogits(vector(&p)),
                    &vector(&y),
                )
            } else {
                <AnylossFbeta as Loss<V, V>>::try_forward(&loss, vector(&p), &vector(&y))
            }
            .expect_err("refused")
            .to_string();
            let got = panic_message(move || {
                if from_logits {
                    let _ = loss.forward(FromLogits(vector(&p)), &vector(&y));
                } else {
                    let _ = loss.forward(vector(&p), &vector(&y));
                }
            });
            assert_eq!(got, want);
        }
    }

    #[test]
    #[should_panic(expected = "batch size mismatch: `probs` has 2 samples but `targets` has 3")]
    fn forward_panics_on_batch_size_mismatch() {
        let _ = AnylossAccuracy::new().forward(vector(&[0.1, 0.2]), &vector(&[0.0, 1.0, 1.0]));
    }

    #[test]
    #[should_panic(expected = "target at index 1 is 0.5, but targets must be 0 or 1")]
    fn forward_panics_on_non_binary_target() {
        let _ = AnylossAccuracy::new().forward(vector(&[0.1, 0.2]), &vector(&[0.0, 0.5]));
    }

    #[test]
    #[should_panic(expected = "empty batch: `logits` has no elements")]
    fn forward_panics_on_empty_batch() {
        let _ = AnylossAccuracy::new().forward(FromLogits(vector(&[])), &vector(&[]));
    }

    #[test]
    #[should_panic(expected = "non-finite value at `probs[0]`: NaN")]
    fn forward_panics_on_nan_prediction() {
        let _ = AnylossAccuracy::new().forward(vector(&[f64::NAN, 0.2]), &vector(&[0.0, 1.0]));
    }

    #[test]
    #[should_panic(expected = "non-finite value at `logits[1]`: inf")]
    fn forward_panics_on_infinite_logit() {
        let _ = AnylossAccuracy::new().forward(
            FromLogits(vector(&[0.0, f64::INFINITY])),
            &vector(&[0.0, 1.0]),
        );
    }

    #[test]
    #[should_panic(expected = "probability at index 1 is 1.25, outside [0, 1]")]
    fn forward_panics_on_probability_out_of_range() {
        let _ = AnylossAccuracy::new().forward(vector(&[0.0, 1.25]), &vector(&[0.0, 1.0]));
    }

    #[test]
    #[should_panic(expected = "bad shape for `probs`: got [2, 2], expected [N] or [N, 1]")]
    fn forward_panics_on_bad_shape() {
        let p: Tensor<Rank2<2, 2>, f64, _> = dev().zeros();
        let _ = AnylossAccuracy::new().forward(p.clone(), &p);
    }

    #[test]
    #[should_panic(
        expected = "invalid hyper-parameter for `anyloss_accuracy`: `amplification` = 0, but it must be finite and > 0"
    )]
    fn forward_panics_on_zero_amplification() {
        let loss = AnylossAccuracy::new().with_amplification(0.0);
        let _ = loss.forward(vector(&[0.5]), &vector(&[1.0]));
    }

    #[test]
    #[should_panic(
        expected = "invalid hyper-parameter for `anyloss_fbeta`: `beta` = -2, but it must be finite and > 0"
    )]
    fn forward_panics_on_negative_beta() {
        let loss = AnylossFbeta::new().with_beta(-2.0);
        let _ = loss.forward(vector(&[0.5]), &vector(&[1.0]));
    }

    #[test]
    #[should_panic(expected = "invalid hyper-parameter for `anyloss_f1`: `epsilon` = NaN")]
    fn forward_panics_on_nan_epsilon() {
        let loss = AnylossF1::new().with_epsilon(f64::NAN);
        let _ = loss.forward(vector(&[0.5]), &vector(&[1.0]));
    }

    #[test]
    #[should_panic(expected = "invalid hyper-parameter for `anyloss_f1`: `epsilon` = 0,")]
    fn forward_panics_on_zero_epsilon() {
        let loss = AnylossF1::new().with_epsilon(0.0);
        let _ = loss.forward(vector(&[0.5]), &vector(&[1.0]));
    }
}
