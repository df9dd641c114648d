//! Every shipped loss, for listing and for evaluation by name.
//!
//! Each [`Entry`] pairs a loss's static description ([`LossInfo`]) with a way to evaluate
//! it from plain arrays ([`family::dynamic`](crate::family::dynamic)); `losskit list` and
//! `losskit eval` are built on [`all`] and [`find`].
//!
//! ```
//! use loss_runtime::catalogue;
//! use loss_runtime::family::dynamic::{Input, Precision};
//!
//! let f1 = catalogue::find("anyloss_f1").unwrap();
//! assert_eq!(f1.info.family.name(), "binary");
//! let inputs = [
//!     Input::new("probs", vec![3], vec![0.9, 0.2, 0.7]),
//!     Input::new("targets", vec![3], vec![1.0, 0.0, 1.0]),
//! ];
//! let out = f1.evaluate(&inputs, &[("epsilon", 1e-6)], Precision::F32).unwrap();
//! assert!(out.loss < 0.1);
//! ```

use core::fmt;

use crate::core::info::LossInfo;
use crate::core::kernel::Kernel;
use crate::family::dynamic::{self, EvalError, Evaluation, Input, Precision};
use crate::losses::*;

/// The signature of [`dynamic::evaluate`] for one loss.
type EvalFn = fn(&[Input], &[(&str, f64)], Precision) -> Result<Evaluation, EvalError>;

/// One shipped loss: its description and a way to evaluate it from plain arrays.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Name, family, paper, hyper-parameters, definition and derived gradient.
    pub info: &'static LossInfo,
    eval: EvalFn,
}

impl Entry {
    /// The entry for the loss `K`, evaluated from its default hyper-parameters.
    pub const fn of<K: Kernel + Default>() -> Self {
        Self {
            info: K::INFO,
            eval: dynamic::evaluate::<K>,
        }
    }

    /// The name the loss is listed under.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// Evaluates the loss and its gradients from plain arrays; see
    /// [`dynamic::evaluate`] for what `inputs` and `params` hold.
    pub fn evaluate(
        &self,
        inputs: &[Input],
        params: &[(&str, f64)],
        precision: Precision,
    ) -> Result<Evaluation, EvalError> {
        (self.eval)(inputs, params, precision)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("info", self.info)
            .finish_non_exhaustive()
    }
}

/// Every shipped loss, one line each, grouped by family.
static ALL: [Entry; 8] = [
    // binary
    Entry::of::<AnylossAccuracy>(),
    Entry::of::<AnylossFbeta>(),
    Entry::of::<AnylossF1>(),
    Entry::of::<AnylossGmean>(),
    Entry::of::<AnylossBalancedAccuracy>(),
    Entry::of::<AnylossMcc>(),
    Entry::of::<AnylossJaccard>(),
    // logits
    Entry::of::<SoftmaxCrossEntropy>(),
];

/// Every shipped loss, grouped by family, in the order `losskit list` prints them.
pub fn all() -> &'static [Entry] {
    &ALL
}

/// The shipped loss called `name`, if any.
pub fn find(name: &str) -> Option<&'static Entry> {
    ALL.iter().find(|e| e.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (k, entry) in all().iter().enumerate() {
            assert!(all()[..k].iter().all(|e| e.name() != entry.name()));
            assert_eq!(find(entry.name()).map(Entry::name), Some(entry.name()));
        }
        assert!(find("no_such_loss").is_none());
    }

    #[test]
    fn every_entry_evaluates() {
        let binary = [
            Input::new("logits", vec![3], vec![1.0, -2.0, 0.5]),
            Input::new("targets", vec![3], vec![1.0, 0.0, 0.0]),
        ];
        let logits = [
            Input::new("logits", vec![2, 3], vec![1.0, -2.0, 0.5, 0.0, 1.0, 2.0]),
            Input::new("labels", vec![2], vec![0.0, 2.0]),
        ];
        for entry in all() {
            let inputs: &[Input] = match entry.info.family {
                crate::Family::Binary => &binary,
                crate::Family::Logits => &logits,
                // evaluated by name once `dynamic` covers these families
                crate::Family::Pairs | crate::Family::Scores => continue,
            };
            for precision in Precision::ALL {
                let out = entry.evaluate(inputs, &[], precision).unwrap();
                assert!(out.loss.is_finite(), "{}", entry.name());
                assert_eq!(out.grads.len(), 1);
                assert_eq!(out.grads[0].shape, inputs[0].shape);
            }
        }
    }
}
