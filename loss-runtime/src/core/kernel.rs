//! The interface between the `#[loss]` compiler and the runtime.
//!
//! The macro turns a definition into a type implementing [`Kernel`]: a fused forward loop
//! nest and the fused backward loop nest it derived. The family adapters (in
//! [`crate::family`]) validate user input, lay it out as a [`Batch`] and call the kernel;
//! the dfdx glue ([`crate::core::tape`]) registers the backward once on the tape.

use crate::core::info::LossInfo;
use crate::core::real::Real;
use crate::error::LossError;

/// A batch laid out flat, as the generated kernels read it.
///
/// The order of `values` and `labels` is fixed by the family (see [`crate::family`]).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, R> {
    /// Real-valued inputs, row-major.
    pub values: &'a [&'a [R]],
    /// Integer inputs (class labels).
    pub labels: &'a [&'a [usize]],
    /// Size of the `samples` index set (the batch size N).
    pub samples: usize,
    /// Size of the `classes` index set (C; 1 for families without classes).
    pub classes: usize,
    /// Size of the `refs` index set (M: the columns of a similarity or score matrix; 1
    /// for families without one).
    pub refs: usize,
    /// Whether the binary family's predictions are logits (mapped through a sigmoid).
    pub from_logits: bool,
    /// Whether the pairs family's references are the batch itself, so that `j = i` is a
    /// self-pair that `pos(i)` leaves out.
    pub exclude_self: bool,
    /// The position of the first anchor among the references, when the kernel runs on a
    /// block of anchors (rows `first_sample..first_sample + samples` of the similarity
    /// matrix, see [`RowBlocks`]); 0 otherwise. The self-pair of anchor `i` is reference
    /// `first_sample + i`.
    pub first_sample: usize,
}

/// Whether a loss splits over blocks of anchors, so that the pairs family may compute the
/// similarity matrix a block of rows at a time, never whole (see
/// [`crate::core::similarity::blocks`]). The compiler decides it from the definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowBlocks {
    /// The loss reads across anchors (a statistic over the batch, the batch size): it
    /// runs on the whole matrix.
    No,
    /// `L = Σ_i l_i`, each anchor's `l_i` reading only its own row.
    Sum,
    /// `L = (1/N) Σ_i l_i`, each anchor's `l_i` reading only its own row.
    Mean,
}

/// Buffers the forward pass leaves for the backward pass: one per materialised value
/// (a `let` or a reduction) and the element count of each `mean`.
#[derive(Clone, Debug, Default)]
pub struct Workspace<R> {
    /// Values of materialised nodes, indexed by the node's free indices.
    pub slots: Vec<Vec<R>>,
    /// Number of elements each `mean` reduction averaged (empty for other nodes).
    pub counts: Vec<Vec<R>>,
    /// The `require(..)` that failed in the forward pass, if any: its position in
    /// [`Kernel::REQUIREMENTS`] and the sample it failed for (when it depends on one).
    pub failed: Option<(usize, Option<usize>)>,
    /// For a loss that is a sum or mean over its samples: the first sample whose term
    /// came out NaN or infinite (set by the forward pass).
    pub first_nonfinite_sample: Option<usize>,
    /// Values computed once per sample inside the loss's outer sum or mean (a row's
    /// logsumexp, say), kept for the backward pass so that it does not compute them
    /// again: the same number for every sample, sample after sample.
    pub stored: Vec<R>,
}

/// Collects failed `require(..)`s while a forward pass runs, possibly on several threads.
///
/// Of several failures it keeps the smallest `(sample, requirement)`, so the error a
/// batch gives does not depend on the number of threads.
#[derive(Debug, Default)]
pub struct Requirements(std::sync::Mutex<Option<(Option<usize>, usize)>>);

impl Requirements {
    /// Records that requirement `id` failed (for `sample`, when it depends on one).
    pub fn fail(&self, id: usize, sample: Option<usize>) {
        // a poisoned lock still holds a usable value: keep recording
        let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let this = (sample, id);
        if first.is_none_or(|f| this < f) {
            *first = Some(this);
        }
    }

    /// The failure to report: `(requirement, sample)`.
    pub fn into_failed(self) -> Option<(usize, Option<usize>)> {
        let first = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        first.map(|(sample, id)| (id, sample))
    }
}

impl<R: Real> Workspace<R> {
    /// Makes room for `n` slots.
    pub fn with_slots(n: usize) -> Self {
        Self {
            slots: vec![Vec::new(); n],
            counts: vec![Vec::new(); n],
            failed: None,
            first_nonfinite_sample: None,
            stored: Vec::new(),
        }
    }
}

/// A compiled loss: what `#[loss]` generates for each definition.
///
/// Implemented by the macro only; users call the [`Loss`](crate::Loss) trait instead.
pub trait Kernel: Clone + Send + Sync + 'static {
    /// Name, family, paper, hyper-parameters and the derived gradient in words.
    const INFO: &'static LossInfo;

    /// The messages of the definition's `require(cond, "message")` statements, in order.
    const REQUIREMENTS: &'static [&'static str] = &[];

    /// Whether the loss splits over blocks of anchors (pairs family only).
    const ROW_BLOCKS: RowBlocks = RowBlocks::No;

    /// The loss's per-sample state variables (`u: State<samples>`), in declaration order.
    const STATE: &'static [crate::core::state::StateInfo] = &[];

    /// Where the forward pass leaves each `update(u[i], ..)`'s new values.
    const STATE_UPDATES: &'static [crate::core::state::StateUpdate] = &[];

    /// Checks every hyper-parameter against its declared constraint.
    fn validate(&self) -> Result<(), LossError>;

    /// [`validate`](Self::validate), then checks that every real hyper-parameter keeps
    /// its value in the dtype `R` the loss runs in: it must not overflow to ±∞, and a
    /// non-zero value must not round to 0 or to a subnormal (`1e-40` is fine in `f64`
    /// but not in `f32`).
    fn validate_for<R: Real>(&self) -> Result<(), LossError> {
        self.validate()?;
        for h in Self::INFO.hypers {
            if h.kind != crate::core::info::HyperKind::Real {
                continue;
            }
            let Some(value) = self.hyper(h.name) else {
                continue;
            };
            let r = R::from_f64(value);
            let normal = r.abs() >= R::MIN_POSITIVE && r.abs() <= R::MAX;
            if value != 0.0 && !normal {
                return Err(LossError::InvalidHyper {
                    loss: Self::INFO.name,
                    name: h.name,
                    value,
                    constraint: representable_in::<R>(),
                });
            }
        }
        Ok(())
    }

    /// Runs the forward loop nest and returns the loss value; a failed `require(..)` is
    /// left in `ws.failed` (see [`crate::family::check_requirements`]).
    fn kernel_forward<R: Real>(&self, batch: &Batch<'_, R>, ws: &mut Workspace<R>) -> R;

    /// Runs the derived backward loop nest: adds `seed · ∂L/∂x` into `grads[k]` for the
    /// family's k-th differentiable input.
    fn kernel_backward<R: Real>(
        &self,
        batch: &Batch<'_, R>,
        ws: &Workspace<R>,
        seed: R,
        grads: &mut [&mut [R]],
    );

    /// Reads a hyper-parameter by name (flags read as 0 or 1).
    fn hyper(&self, name: &str) -> Option<f64>;

    /// Sets a hyper-parameter by name (flags from 0 or 1) without validating it.
    fn set_hyper(&mut self, name: &str, value: f64) -> Result<(), LossError>;

    /// How the pairs family compares embeddings (other families ignore it).
    fn metric(&self) -> crate::core::similarity::Metric {
        crate::core::similarity::Metric::Cosine
    }
}

/// The representability constraint of [`Kernel::validate_for`], in words, for `R`.
fn representable_in<R: Real>() -> &'static str {
    match R::NAME {
        "f32" => "representable in f32: 0 or a magnitude in [1.2e-38, 3.4e38]",
        _ => "representable in f64: 0 or a magnitude in [2.2e-308, 1.8e308]",
    }
}

#[cfg(test)]
mod tests {
    use super::Requirements;

    #[test]
    fn requirements_keep_the_first_sample_then_the_first_requirement() {
        let r = Requirements::default();
        r.fail(1, Some(4));
        r.fail(0, Some(2));
        r.fail(1, Some(2));
        r.fail(0, Some(7));
        assert_eq!(r.into_failed(), Some((0, Some(2))));
        // a failure without a sample sorts first (`None < Some`)
        let r = Requirements::default();
        r.fail(2, Some(0));
        r.fail(3, None);
        assert_eq!(r.into_failed(), Some((3, None)));
        assert_eq!(Requirements::default().into_failed(), None);
    }
}
