//! The `logits` family: logits `[N, C]` (any rank-2 shape, static or dynamic) and one
//! class label per sample, `0 ≤ label < C`.

use dfdx::prelude::*;

use crate::core::info::{Family, InputInfo};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;

/// The inputs of the logits family, in call order.
pub const INPUTS: &[InputInfo] = Family::Logits.inputs();

/// Checks logits and labels; returns `(N, C)`.
fn check_inputs<R: Real>(
    dims: &[usize],
    logits: &[R],
    labels: &[usize],
) -> Result<(usize, usize), LossError> {
    let (n, c) = super::matrix_dims("logits", dims, "[N, C]")?;
    if labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "logits",
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    if let Some(index) = labels.iter().position(|&l| l >= c) {
        return Err(LossError::LabelOutOfRange {
            index,
            label: labels[index],
            classes: c,
        });
    }
    super::check_finite("logits", dims, logits)?;
    Ok((n, c))
}

/// Validates the input, runs `kernel` and attaches its derived backward.
pub fn try_forward<K, S, E, T>(
    kernel: &K,
    logits: Tensor<S, E, Cpu, T>,
    labels: &[usize],
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    try_forward_declared(kernel, logits, labels, Declared::none())
}

/// [`try_forward`] with the loss's declared inputs (see [`super::declared`]).
pub fn try_forward_declared<K, S, E, T>(
    kernel: &K,
    logits: Tensor<S, E, Cpu, T>,
    labels: &[usize],
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let z = tape::try_elements("a copy of `logits`", &logits)?;
    let (n, c) = check_inputs(logits.shape().concrete().as_ref(), &z, labels)?;
    let layout = super::Layout {
        classes: c,
        from_logits: true,
        ..super::Layout::samples(n)
    };
    super::run(
        kernel,
        (logits, "logits"),
        vec![z],
        vec![labels.to_vec()],
        layout,
        declared,
    )
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use crate::testing::panic_message;
    use crate::{loss, Loss, LossError, SoftmaxCrossEntropy};

    /// A logits-family loss with constrained hyper-parameters, to reach the family's
    /// validation path (cross-entropy has none).
    #[loss(logits)]
    fn tempered_cross_entropy(
        z: Logits,
        y: Labels,
        #[hyper(default = 1.0, positive, doc = "temperature")] temperature: f64,
        #[hyper(default = 0.0, range(0.0, 1.0), doc = "label smoothing")] smoothing: f64,
    ) -> PerSample {
        let lse = logsumexp(classes, |k| z[i][k] / temperature);
        (1.0 - smoothing) * (lse - z[i][y[i]] / temperature)
            + smoothing * (lse - mean(classes, |k| z[i][k] / temperature))
    }

    fn dev() -> Cpu {
        Default::default()
    }

    fn matrix(z: &[f64], n: usize, c: usize) -> Tensor<(usize, usize), f64, Cpu> {
        dev().tensor_from_vec(z.to_vec(), (n, c))
    }

    fn ce(z: &[f64], n: usize, c: usize, y: &[usize]) -> Result<f64, LossError> {
        SoftmaxCrossEntropy::new()
            .try_forward(matrix(z, n, c), y)
            .map(|t| t.array())
    }

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
        assert_refused(
            ce(&[0.0; 6], 3, 2, &[0, 1]),
            LossError::BatchSizeMismatch {
                expected_by: "logits",
                expected: 3,
                found_in: "labels",
                found: 2,
            },
            &["`logits` has 3", "`labels` has 2"],
        );
        assert!(ce(&[0.0; 6], 2, 3, &[0, 1, 2]).is_err());
        // static shapes check the labels too
        let z: Tensor<Rank2<2, 3>, f64, _> = dev().zeros();
        let err = SoftmaxCrossEntropy::new()
            .try_forward(z, &[0])
            .expect_err("refused");
        assert!(
            matches!(
                err,
                LossError::BatchSizeMismatch {
                    expected: 2,
                    found: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn label_out_of_range() {
        assert_refused(
            ce(&[0.0; 12], 3, 4, &[0, 4, 1]),
            LossError::LabelOutOfRange {
                index: 1,
                label: 4,
                classes: 4,
            },
            &["index 1 is 4", "only 4 classes"],
        );
        assert_refused(
            ce(&[0.0; 6], 3, 2, &[0, 1, 99]),
            LossError::LabelOutOfRange {
                index: 2,
                label: 99,
                classes: 2,
            },
            &["index 2 is 99"],
        );
        // the last class is fine
        assert!(ce(&[0.0; 6], 3, 2, &[1, 1, 1]).is_ok());
    }

    #[test]
    fn empty_batch() {
        assert_refused(
            ce(&[], 0, 3, &[]),
            LossError::EmptyBatch { input: "logits" },
            &["`logits`"],
        );
        assert_refused(
            ce(&[], 2, 0, &[0, 0]),
            LossError::EmptyBatch { input: "logits" },
            &["`logits`"],
        );
    }

    #[test]
    fn non_finite_logit() {
        for (bad, shown) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            let mut z = vec![0.5; 6];
            z[4] = bad;
            let err = ce(&z, 2, 3, &[0, 2]).expect_err("refused");
            assert!(
                matches!(err, LossError::NonFinite { input: "logits", index: 4, ref position, value } if position == &[1, 1] && value.to_bits() == bad.to_bits()),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message == format!("non-finite value at `logits[1][1]`: {shown}"),
                "{message}"
            );
        }
    }

    #[test]
    fn bad_shape() {
        let z: Tensor<Rank1<3>, f64, _> = dev().zeros();
        assert_refused(
            SoftmaxCrossEntropy::new()
                .try_forward(z, &[0, 1, 2])
                .map(|t| t.array()),
            LossError::BadShape {
                input: "logits",
                shape: vec![3],
                expected: "[N, C]",
            },
            &["`logits`", "got [3]"],
        );
        let z: Tensor<Rank3<2, 2, 2>, f64, _> = dev().zeros();
        let err = SoftmaxCrossEntropy::new()
            .try_forward(z, &[0, 1])
            .expect_err("refused");
        assert!(err.to_string().contains("got [2, 2, 2]"), "{err}");
    }

    #[test]
    fn invalid_hyper_parameters() {
        let z = [0.3, -0.2, 1.0, 0.0];
        let cases = [
            (
                TemperedCrossEntropy::new().with_temperature(0.0),
                "temperature",
                0.0,
                "finite and > 0",
            ),
            (
                TemperedCrossEntropy::new().with_temperature(-1.0),
                "temperature",
                -1.0,
                "finite and > 0",
            ),
            (
                TemperedCrossEntropy::new().with_temperature(f64::NAN),
                "temperature",
                f64::NAN,
                "finite and > 0",
            ),
            (
                TemperedCrossEntropy::new().with_smoothing(1.5),
                "smoothing",
                1.5,
                "finite and in [0.0, 1.0]",
            ),
            (
                TemperedCrossEntropy::new().with_smoothing(f64::INFINITY),
                "smoothing",
                f64::INFINITY,
                "finite and in [0.0, 1.0]",
            ),
        ];
        for (loss, name, value, constraint) in cases {
            let err = loss
                .try_forward(matrix(&z, 2, 2), &[0, 1])
                .expect_err("refused");
            assert!(
                matches!(&err, LossError::InvalidHyper { loss: "tempered_cross_entropy", name: n, value: v, constraint: c }
                    if *n == name && v.to_bits() == value.to_bits() && *c == constraint),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains(&format!("`{name}` = {value}")),
                "{message}"
            );
        }
        // valid values (the ends of a range included) are accepted
        let ok = TemperedCrossEntropy::new()
            .with_temperature(0.5)
            .with_smoothing(1.0);
        assert!(ok.try_forward(matrix(&z, 2, 2), &[0, 1]).is_ok());
    }

    /// `forward` panics with exactly the message `try_forward` returns.
    #[test]
    fn forward_panics_with_the_try_forward_message() {
        let cases: Vec<(Vec<f64>, usize, usize, Vec<usize>)> = vec![
            (vec![0.0; 6], 3, 2, vec![0, 1]),
            (vec![0.0; 6], 3, 2, vec![0, 1, 2]),
            (vec![0.0, f64::NAN], 1, 2, vec![0]),
        ];
        for (z, n, c, y) in cases {
            let want = ce(&z, n, c, &y).expect_err("refused").to_string();
            let got = panic_message(move || {
                let _ = SoftmaxCrossEntropy::new().forward(matrix(&z, n, c), &y);
            });
            assert_eq!(got, want);
        }
    }

    #[test]
    #[should_panic(expected = "batch size mismatch: `logits` has 2 samples but `labels` has 3")]
    fn forward_panics_on_batch_size_mismatch() {
        let _ = SoftmaxCrossEntropy::new().forward(matrix(&[0.0; 4], 2, 2), &[0, 1, 0]);
    }

    #[test]
    #[should_panic(
        expected = "label at index 0 is 3, but there are only 3 classes (labels must be < 3)"
    )]
    fn forward_panics_on_label_out_of_range() {
        let _ = SoftmaxCrossEntropy::new().forward(matrix(&[0.0; 6], 2, 3), &[3, 0]);
    }

    #[test]
    #[should_panic(expected = "empty batch: `logits` has no elements")]
    fn forward_panics_on_empty_batch() {
        let _ = SoftmaxCrossEntropy::new().forward(matrix(&[], 0, 4), &[]);
    }

    #[test]
    #[should_panic(expected = "non-finite value at `logits[0][1]`: NaN")]
    fn forward_panics_on_nan_logit() {
        let _ = SoftmaxCrossEntropy::new().forward(matrix(&[0.0, f64::NAN], 1, 2), &[0]);
    }

    #[test]
    #[should_panic(expected = "non-finite value at `logits[0][0]`: -inf")]
    fn forward_panics_on_infinite_logit() {
        let _ = SoftmaxCrossEntropy::new().forward(matrix(&[f64::NEG_INFINITY, 0.0], 1, 2), &[0]);
    }

    #[test]
    #[should_panic(expected = "bad shape for `logits`: got [4], expected [N, C]")]
    fn forward_panics_on_bad_shape() {
        let z: Tensor<Rank1<4>, f64, _> = dev().zeros();
        let _ = SoftmaxCrossEntropy::new().forward(z, &[0]);
    }

    #[test]
    #[should_panic(
        expected = "invalid hyper-parameter for `tempered_cross_entropy`: `temperature` = 0, but it must be finite and > 0"
    )]
    fn forward_panics_on_invalid_hyper_parameter() {
        let loss = TemperedCrossEntropy::new().with_temperature(0.0);
        let _ = loss.forward(matrix(&[0.0; 4], 2, 2), &[0, 1]);
    }
}
