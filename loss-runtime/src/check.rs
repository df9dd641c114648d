//! Checks a loss's derived gradient against central finite differences of its value.
//!
//! [`gradient`] runs the loss once on a traced copy of the input and calls `backward()`,
//! which gives the gradient the `#[loss]` compiler derived; then, for every element of the
//! input, it evaluates the loss at `x ± h` and compares. The [`GradientReport`] says how
//! far apart the two are and where they differ most.
//!
//! ```
//! use dfdx::prelude::*;
//! use loss_runtime::check::{gradient, Tolerance};
//! use loss_runtime::SoftmaxCrossEntropy;
//!
//! let dev: Cpu = Default::default();
//! let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.3, -0.2, 1.1], [0.0, 0.4, -0.7]]);
//! let report = gradient(&SoftmaxCrossEntropy::new(), &z, &[2, 1][..], Tolerance::default())?;
//! assert!(report.passed(), "{report}");
//! # Ok::<(), loss_runtime::LossError>(())
//! ```
//!
//! The README's "write your own loss" section checks a user-defined loss the same way.
//!
//! # Points where the loss is not smooth
//!
//! A loss with a kink (`relu`, `max`, a filter that flips between `x − h` and `x + h`) has
//! no derivative there, and its central difference is meaningless. For every element the
//! check also compares the two one-sided differences; where they disagree by more than
//! [`Tolerance::kink`] the element is counted in [`GradientReport::kinks`] and not judged.
//! A smooth loss has no such elements, so a wrong gradient cannot hide there.
//!
//! # What is checked
//!
//! The f64 instantiation of the loss (the kernels are generic over the precision, so f32
//! runs the same code). Where one side of a difference is refused by the loss (a
//! probability pushed past 1), the other one-sided difference is used instead. Inputs are
//! read in their logical order, so any dfdx layout (permuted, broadcast) may be passed.

use core::fmt;

use dfdx::prelude::*;

use crate::error::LossError;
use crate::loss::Loss;

/// A traced f64 tensor, as [`gradient_of`]'s closure receives it.
pub type Traced<S> = Tensor<S, f64, Cpu, OwnedTape<f64, Cpu>>;

/// How close the derived and the numerical gradients must be, and the finite-difference
/// step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Allowed absolute error.
    pub abs: f64,
    /// Allowed error relative to the numerical derivative: an element passes when
    /// `|derived − numeric| ≤ abs + rel·|numeric|`.
    pub rel: f64,
    /// The step, relative to the element: `h = step · max(1, |x|)`.
    pub step: f64,
    /// Two one-sided differences further apart than `kink · (1 + |central|)` mark a point
    /// where the loss is not differentiable; the element is then not judged.
    pub kink: f64,
}

impl Default for Tolerance {
    /// `abs = 1e-6`, `rel = 1e-5`, `step = 1e-6`, `kink = 1e-3`: right for losses of
    /// moderate curvature in f64.
    fn default() -> Self {
        Self {
            abs: 1e-6,
            rel: 1e-5,
            step: 1e-6,
            kink: 1e-3,
        }
    }
}

/// One element where the derived gradient and the finite difference differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Discrepancy {
    /// Position in the input, one index per axis (`[row, col]` for a matrix).
    pub position: Vec<usize>,
    /// The gradient the compiler derived.
    pub derived: f64,
    /// The central finite difference (one-sided where one side was refused).
    pub numeric: f64,
}

/// What [`gradient`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientReport {
    /// The loss at the given input.
    pub value: f64,
    /// Elements compared.
    pub checked: usize,
    /// Elements not judged because the loss has a kink there (see the module docs).
    pub kinks: usize,
    /// Elements where the difference used one side only, the other being refused.
    pub one_sided: usize,
    /// The largest `|derived − numeric|` over the judged elements.
    pub max_abs_error: f64,
    /// The largest `|derived − numeric| / |numeric|` over the judged elements whose
    /// numerical derivative is not zero.
    pub max_rel_error: f64,
    /// The element furthest outside the tolerance (`None` when every element is within).
    pub worst: Option<Discrepancy>,
    /// The tolerance applied.
    pub tolerance: Tolerance,
}

impl GradientReport {
    /// Whether every judged element is within the tolerance.
    pub fn passed(&self) -> bool {
        self.worst.is_none()
    }
}

impl fmt::Display for GradientReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        write!(
            f,
            "gradient check {verdict}: {} elements, max abs error {:e}, max rel error {:e}",
            self.checked, self.max_abs_error, self.max_rel_error
        )?;
        if self.kinks > 0 {
            write!(f, ", {} at kinks not judged", self.kinks)?;
        }
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst at {}: derived {:e}, finite difference {:e} (tolerance {:e} + {:e}·|fd|)",
                w.position
                    .iter()
                    .map(|i| format!("[{i}]"))
                    .collect::<String>(),
                w.derived,
                w.numeric,
                self.tolerance.abs,
                self.tolerance.rel
            )?;
        }
        Ok(())
    }
}

/// Compares `loss`'s derived gradient with respect to `input` with central finite
/// differences, at `input` and `target`.
///
/// Returns the loss's own error if it refuses `input` itself.
pub fn gradient<L, S, Y>(
    loss: &L,
    input: &Tensor<S, f64, Cpu>,
    target: &Y,
    tolerance: Tolerance,
) -> Result<GradientReport, LossError>
where
    S: Shape,
    Y: ?Sized,
    L: Loss<Traced<S>, Y, Output = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>>,
{
    gradient_of(|x| loss.try_forward(x, target), input, tolerance)
}

/// [`gradient`] for any function of one traced tensor: a loss whose input is wrapped
/// (`FromLogits(x)`, `Similarities(x)`), or one of several differentiable inputs (close
/// over the others, untraced).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::check::{gradient_of, Tolerance};
/// use loss_runtime::{AnylossF1, FromLogits, Loss};
///
/// let dev: Cpu = Default::default();
/// let logits: Tensor<Rank1<4>, f64, _> = dev.tensor([2.0, -1.0, 0.5, 0.1]);
/// let targets = dev.tensor([1.0, 0.0, 1.0, 0.0]);
/// let f1 = AnylossF1::default();
/// let report = gradient_of(|x| f1.try_forward(FromLogits(x), &targets), &logits, Tolerance::default())?;
/// assert!(report.passed(), "{report}");
/// # Ok::<(), loss_runtime::LossError>(())
/// ```
pub fn gradient_of<S, F>(
    f: F,
    input: &Tensor<S, f64, Cpu>,
    tolerance: Tolerance,
) -> Result<GradientReport, LossError>
where
    S: Shape,
    F: Fn(Traced<S>) -> Result<Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>, LossError>,
{
    let dev = input.device().clone();
    let shape = *input.shape();
    let dims: Vec<usize> = shape.concrete().into_iter().collect();
    let x = crate::core::tape::read(input);
    let contiguous = |v: &[f64]| dev.tensor_from_vec(v.to_vec(), shape);

    let x0 = contiguous(&x);
    let out = f(x0.leaky_trace())?;
    let value = out.array();
    let derived = crate::core::tape::read(&out.backward().get(&x0));
    let value_at = |v: &[f64]| f(contiguous(v).leaky_trace()).ok().map(|t| t.array());
    Ok(compare_with_differences(
        &x, &dims, value, &derived, value_at, tolerance,
    ))
}

/// The comparison behind [`gradient`], on plain values: `derived` (laid out like `x`, of
/// shape `dims`) against central differences of `value_at`, the loss as a function of
/// all of `x`, which returns `None` where the loss refuses its input. `value` is the loss
/// at `x`.
///
/// Use it for a loss evaluated some other way, such as by name through
/// [`catalogue::Entry::evaluate`](crate::catalogue::Entry::evaluate).
///
/// # Panics
/// When `x`, `derived` and `dims` disagree on the number of elements.
pub fn compare_with_differences(
    x: &[f64],
    dims: &[usize],
    value: f64,
    derived: &[f64],
    value_at: impl Fn(&[f64]) -> Option<f64>,
    tolerance: Tolerance,
) -> GradientReport {
    assert!(
        x.len() == derived.len() && dims.iter().product::<usize>() == x.len(),
        "gradient check: {} values, {} derived gradients, shape {dims:?}",
        x.len(),
        derived.len()
    );
    let at = |k: usize, d: f64| {
        let mut v = x.to_vec();
        v[k] += d;
        value_at(&v)
    };
    let mut report = GradientReport {
        value,
        checked: 0,
        kinks: 0,
        one_sided: 0,
        max_abs_error: 0.0,
        max_rel_error: 0.0,
        worst: None,
        tolerance,
    };
    let mut worst_excess = 0.0;
    for (k, &g) in derived.iter().enumerate() {
        let h = tolerance.step * x[k].abs().max(1.0);
        let numeric = match (at(k, h), at(k, -h)) {
            (Some(up), Some(down)) => {
                let central = (up - down) / (2.0 * h);
                let (right, left) = ((up - value) / h, (value - down) / h);
                if (right - left).abs() > tolerance.kink * (1.0 + central.abs()) {
                    report.kinks += 1;
                    continue;
                }
                central
            }
            (Some(up), None) => {
                report.one_sided += 1;
                (up - value) / h
            }
            (None, Some(down)) => {
                report.one_sided += 1;
                (value - down) / h
            }
            (None, None) => {
                report.kinks += 1;
                continue;
            }
        };
        report.checked += 1;
        let error = (g - numeric).abs();
        let excess = if error.is_finite() {
            error - (tolerance.abs + tolerance.rel * numeric.abs())
        } else {
            f64::INFINITY
        };
        report.max_abs_error = report.max_abs_error.max(error);
        if numeric != 0.0 {
            report.max_rel_error = report.max_rel_error.max(error / numeric.abs());
        }
        if excess > 0.0 && (report.worst.is_none() || excess > worst_excess) {
            worst_excess = excess;
            report.worst = Some(Discrepancy {
                position: unravel(k, dims),
                derived: g,
                numeric,
            });
        }
    }
    report
}

/// The per-axis position of the `flat`-th element in row-major order.
fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut position = vec![0; dims.len()];
    for (p, &d) in position.iter_mut().zip(dims).rev() {
        *p = flat % d.max(1);
        flat /= d.max(1);
    }
    position
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{loss, SoftmaxCrossEntropy};

    fn dev() -> Cpu {
        Default::default()
    }

    /// A loss whose "derived" gradient is wrong on purpose: `detach` hides half of the
    /// dependence on `z`, so the check must fail and point at an element.
    #[loss(logits)]
    fn half_hidden(z: Logits, y: Labels) -> PerSample {
        sq(z[i][y[i]]) + detach(sq(z[i][y[i]]))
    }

    #[loss(logits)]
    fn hinge_at_label(z: Logits, y: Labels) -> PerSample {
        relu(z[i][y[i]])
    }

    #[test]
    fn cross_entropy_passes() {
        let z: Tensor<Rank2<3, 4>, f64, _> = dev().sample_normal();
        let report = gradient(
            &SoftmaxCrossEntropy::new(),
            &z,
            &[0, 3, 1][..],
            Tolerance::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.checked, 12);
        assert_eq!(report.kinks, 0);
        assert!(report.max_abs_error < 1e-8, "{report}");
    }

    #[test]
    fn a_wrong_gradient_fails_and_says_where() {
        let z: Tensor<Rank2<2, 3>, f64, _> = dev().tensor([[0.1, 0.2, 0.3], [1.0, -2.0, 0.5]]);
        let report = gradient(
            &HalfHidden::default(),
            &z,
            &[2, 1][..],
            Tolerance::default(),
        )
        .unwrap();
        assert!(!report.passed());
        // the true derivative of 2·z² at z = −2 (row 1, the label 1) is −4 per sample,
        // averaged over 2 samples: −2; the derived one is half of it
        let worst = report.worst.clone().unwrap();
        assert_eq!(worst.position, vec![1, 1]);
        assert!((worst.numeric + 4.0).abs() < 1e-6, "{worst:?}");
        assert!((worst.derived + 2.0).abs() < 1e-12, "{worst:?}");
        let text = report.to_string();
        assert!(text.contains("FAILED") && text.contains("[1][1]"), "{text}");
    }

    #[test]
    fn a_kink_is_counted_not_judged() {
        let z: Tensor<Rank2<2, 2>, f64, _> = dev().tensor([[0.0, 1.0], [0.5, 1.0]]);
        let report = gradient(
            &HingeAtLabel::default(),
            &z,
            &[0, 0][..],
            Tolerance::default(),
        )
        .unwrap();
        assert_eq!(report.kinks, 1, "{report}");
        assert_eq!(report.checked, 3);
        assert!(report.passed(), "{report}");
    }

    #[test]
    fn refused_input_is_the_loss_error() {
        let z: Tensor<Rank2<2, 2>, f64, _> = dev().zeros();
        let err = gradient(
            &SoftmaxCrossEntropy::new(),
            &z,
            &[0, 5][..],
            Tolerance::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, LossError::LabelOutOfRange { label: 5, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_refused_side_falls_back_to_one_sided() {
        // probabilities at 1: the loss refuses 1 + h, so the left difference is used
        let p: Tensor<Rank1<3>, f64, _> = dev().tensor([1.0, 0.3, 0.0]);
        let y = dev().tensor([1.0, 0.0, 0.0]);
        let tol = Tolerance {
            abs: 1e-4,
            rel: 1e-4,
            ..Tolerance::default()
        };
        let report = gradient(&crate::AnylossF1::default(), &p, &y, tol).unwrap();
        assert_eq!(report.one_sided, 2, "{report}");
        assert!(report.passed(), "{report}");
    }
}
