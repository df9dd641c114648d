//! Every shipped loss, for listing and for evaluation by name.
//!
//! Each [`Entry`] pairs a loss's static description ([`LossInfo`]) with a way to evaluate
//! it from plain arrays ([`family::dynamic`](crate::family::dynamic)) and, for a pairs
//! loss, its pair weights `W = ∂L/∂S`; `losskit list`, `losskit eval` and `losskit gpw`
//! are built on [`all`] and [`find`].
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

use crate::core::info::{Family, LossInfo};
use crate::core::kernel::Kernel;
use crate::family::dynamic::{self, EvalError, Evaluation, Input, PairWeights, Precision};
use crate::losses::*;

/// The signature of [`dynamic::evaluate`] for one loss.
type EvalFn = fn(&[Input], &[(&str, f64)], Precision) -> Result<Evaluation, EvalError>;

/// The signature of [`dynamic::pair_weights`] for one pairs loss.
type PairWeightsFn = fn(&[Input], &[(&str, f64)]) -> Result<PairWeights, EvalError>;

/// One shipped loss: its description, a way to evaluate it from plain arrays and, for a
/// pairs loss, a way to compute its pair weights.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Name, family, paper, hyper-parameters, definition and derived gradient.
    pub info: &'static LossInfo,
    eval: EvalFn,
    pair_weights: Option<PairWeightsFn>,
}

impl Entry {
    /// The entry for the loss `K`, evaluated from its default hyper-parameters. A loss of
    /// the pairs family (read off `K::INFO`) also gets its pair weights.
    pub const fn of<K: Kernel + Default>() -> Self {
        let pair_weights: Option<PairWeightsFn> = match K::INFO.family {
            Family::Pairs => Some(dynamic::pair_weights::<K>),
            Family::Binary | Family::Logits | Family::Scores => None,
        };
        Self {
            info: K::INFO,
            eval: dynamic::evaluate::<K>,
            pair_weights,
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

    /// Whether the loss has pair weights (it is of the pairs family).
    pub fn has_pair_weights(&self) -> bool {
        self.pair_weights.is_some()
    }

    /// The pair weights `W = ∂L/∂S` of a pairs loss, with `S` and which pairs are
    /// positive, from plain arrays; see [`dynamic::pair_weights`]. Any other loss gives
    /// [`EvalError::NotPairs`].
    pub fn pair_weights(
        &self,
        inputs: &[Input],
        params: &[(&str, f64)],
    ) -> Result<PairWeights, EvalError> {
        match self.pair_weights {
            Some(pair_weights) => pair_weights(inputs, params),
            None => Err(EvalError::NotPairs {
                loss: self.info.name,
                family: self.info.family,
            }),
        }
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
static ALL: &[Entry] = &[
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
    Entry::of::<CompSum>(),
    Entry::of::<ZLoss>(),
    Entry::of::<LdrKl>(),
    Entry::of::<DepictClusteringCe>(),
    // pairs
    Entry::of::<MultiSimilarity>(),
    Entry::of::<GpwContrastive>(),
    Entry::of::<GpwTriplet>(),
    Entry::of::<GpwTripletBatchHard>(),
    Entry::of::<GpwBinomialDeviance>(),
    Entry::of::<GpwLiftedStructure>(),
    Entry::of::<ProtoTriplet>(),
    Entry::of::<Icnn>(),
    // scores
    Entry::of::<MwAuc>(),
    Entry::of::<DexmlDecoupledSoftmax>(),
    Entry::of::<DexmlSoftmax>(),
    Entry::of::<DexmlBce>(),
    Entry::of::<DexmlSoftTopk>(),
    // logits, with declared inputs
    Entry::of::<DatasetEquity>(),
    Entry::of::<EnsLoss>(),
];

/// Every shipped loss, grouped by family, in the order `losskit list` prints them.
pub fn all() -> &'static [Entry] {
    ALL
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
        let pairs = [
            Input::new(
                "embeddings",
                vec![6, 3],
                vec![
                    1.0, 0.2, -0.1, 0.8, 0.5, 0.0, 0.1, 1.0, 0.3, -0.2, 0.9, 0.6, 0.6, 0.6, 0.2,
                    0.3, -0.4, 1.0,
                ],
            ),
            Input::new("labels", vec![6], vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]),
        ];
        // six documents: the soft top-k's default K = 5 needs more than five
        let scores = [
            Input::new(
                "scores",
                vec![2, 6],
                vec![2.0, 0.5, 1.5, -1.0, 0.3, 0.7, 0.0, 1.0, 0.8, 0.9, -0.4, 0.2],
            ),
            Input::new(
                "relevance",
                vec![2, 6],
                vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            ),
        ];
        for entry in all() {
            // by-name evaluation of declared inputs: see family/dynamic.rs
            if !entry.info.declared.is_empty() {
                continue;
            }
            let inputs: &[Input] = match entry.info.family {
                Family::Binary => &binary,
                Family::Logits => &logits,
                Family::Pairs => &pairs,
                Family::Scores => &scores,
            };
            for precision in Precision::ALL {
                let out = entry.evaluate(inputs, &[], precision).unwrap();
                assert!(out.loss.is_finite(), "{}", entry.name());
                assert_eq!(out.grads.len(), 1);
                assert_eq!(out.grads[0].shape, inputs[0].shape);
                assert!(out.grads[0].values.iter().all(|g| g.is_finite()));
            }
        }
    }

    #[test]
    fn pairs_losses_and_only_they_have_pair_weights() {
        let pairs = [
            Input::new(
                "embeddings",
                vec![4, 2],
                vec![1.0, 0.1, 0.9, 0.4, 0.2, 1.0, 0.5, 0.8],
            ),
            Input::new("labels", vec![4], vec![0.0, 0.0, 1.0, 1.0]),
        ];
        for entry in all() {
            let is_pairs = entry.info.family == Family::Pairs;
            assert_eq!(entry.has_pair_weights(), is_pairs, "{}", entry.name());
            let got = entry.pair_weights(&pairs, &[]);
            if is_pairs {
                let w = got.unwrap();
                assert_eq!(w.weights.len(), 4 * 3, "{}", entry.name());
                assert!(w.weights.iter().all(|x| x.is_finite()));
            } else {
                assert!(matches!(got, Err(EvalError::NotPairs { .. })));
            }
        }
    }
}
