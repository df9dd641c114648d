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
            Family::Binary | Family::Logits | Family::Scores | Family::Dense => None,
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
    Entry::of::<AldrKl>(),
    Entry::of::<DepictClusteringCe>(),
    Entry::of::<KdKl>(),
    Entry::of::<BinaryKl>(),
    Entry::of::<BinaryKlNorm>(),
    Entry::of::<Dhkd>(),
    // logits over cosines (margin heads)
    Entry::of::<ArcFace>(),
    Entry::of::<CosFace>(),
    Entry::of::<NormalizedSoftmaxCe>(),
    Entry::of::<SFace>(),
    // pairs
    Entry::of::<MultiSimilarity>(),
    Entry::of::<GpwContrastive>(),
    Entry::of::<GpwTriplet>(),
    Entry::of::<GpwTripletBatchHard>(),
    Entry::of::<GpwBinomialDeviance>(),
    Entry::of::<GpwLiftedStructure>(),
    Entry::of::<ProtoTriplet>(),
    Entry::of::<Icnn>(),
    Entry::of::<MvInfonce>(),
    Entry::of::<MvDhel>(),
    Entry::of::<IsogclrUnimodal>(),
    Entry::of::<IsogclrBimodal>(),
    Entry::of::<IsogclrLibaucV1>(),
    Entry::of::<Amcl>(),
    Entry::of::<AmclPaper>(),
    Entry::of::<Simlap>(),
    Entry::of::<NtXent>(),
    Entry::of::<InfoNce>(),
    Entry::of::<SimpleContrastive>(),
    Entry::of::<HardContrastive>(),
    Entry::of::<HardSimpleContrastive>(),
    Entry::of::<Uniformity>(),
    Entry::of::<Tolerance>(),
    // scores
    Entry::of::<MwAuc>(),
    Entry::of::<Nce>(),
    Entry::of::<DexmlDecoupledSoftmax>(),
    Entry::of::<DexmlSoftmax>(),
    Entry::of::<DexmlBce>(),
    Entry::of::<DexmlSoftTopk>(),
    // dense
    Entry::of::<DenoisingMse>(),
    Entry::of::<DepictReconstruction>(),
    Entry::of::<WeightedMse>(),
    Entry::of::<NopropDt>(),
    Entry::of::<NopropCt>(),
    Entry::of::<NopropFm>(),
    Entry::of::<MeeDlle>(),
    Entry::of::<MeeDisomap>(),
    Entry::of::<ZpnnSpectral>(),
    Entry::of::<PnnStructural>(),
    // logits, with declared inputs
    Entry::of::<DatasetEquity>(),
    Entry::of::<EnsLoss>(),
    Entry::of::<ElasticFaceArc>(),
    Entry::of::<ElasticFaceCos>(),
    Entry::of::<SmoothAdvCompSum>(),
    Entry::of::<Unpg>(),
    Entry::of::<SymFace>(),
    Entry::of::<RssSelfTraining>(),
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
    use crate::{Axis, DeclaredRole, LossInfo};

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
        // EnsLoss is binary: two logit columns
        let two_columns = [
            Input::new("logits", vec![2, 2], vec![1.0, -2.0, 0.5, 0.0]),
            Input::new("labels", vec![2], vec![0.0, 1.0]),
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
        let dense = [
            Input::new(
                "prediction",
                vec![2, 3],
                vec![0.5, -1.0, 2.0, 0.0, 0.3, -0.7],
            ),
            Input::new("target", vec![2, 3], vec![0.0, -0.5, 1.0, 0.2, 0.3, 0.1]),
        ];
        for entry in all() {
            // (samples, classes, refs) of each family's case
            let (inputs, sizes): (&[Input], _) = match entry.info.family {
                Family::Binary => (&binary, (3, 1, 1)),
                Family::Logits if entry.name() == "ens_loss" => (&two_columns, (2, 2, 1)),
                Family::Logits => (&logits, (2, 3, 1)),
                Family::Pairs => (&pairs, (6, 1, 6)),
                Family::Scores => (&scores, (2, 1, 6)),
                Family::Dense => (&dense, (2, 1, 3)),
            };
            let mut inputs = inputs.to_vec();
            inputs.extend(declared_inputs(entry.info, sizes));
            let traced = entry
                .info
                .declared
                .iter()
                .filter(|d| d.role == DeclaredRole::Differentiable);
            for precision in Precision::ALL {
                let out = entry.evaluate(&inputs, &[], precision).unwrap();
                assert!(out.loss.is_finite(), "{}", entry.name());
                assert_eq!(out.grads.len(), 1 + traced.clone().count());
                assert_eq!(out.grads[0].shape, inputs[0].shape);
                for (g, d) in out.grads[1..].iter().zip(traced.clone()) {
                    assert_eq!(g.input, d.name);
                }
                assert!(out
                    .grads
                    .iter()
                    .all(|g| g.values.iter().all(|x| x.is_finite())));
            }
        }
    }

    /// An input for each of `info`'s declared inputs, shaped from the batch's `(samples,
    /// classes, refs)`: labels 0, masks 1, reals in `(0, 1)`.
    fn declared_inputs(info: &LossInfo, (n, c, m): (usize, usize, usize)) -> Vec<Input> {
        info.declared
            .iter()
            .map(|d| {
                let shape: Vec<usize> = d
                    .axes
                    .iter()
                    .map(|a| match a.axis {
                        Axis::Samples => n,
                        Axis::Classes => c,
                        Axis::Refs => m,
                    })
                    .collect();
                let len = shape.iter().product();
                let values = match d.role {
                    DeclaredRole::Labels => vec![0.0; len],
                    DeclaredRole::Mask => vec![1.0; len],
                    DeclaredRole::Differentiable | DeclaredRole::Constant | DeclaredRole::State => {
                        (0..len).map(|k| (k as f64 + 0.5) / len as f64).collect()
                    }
                };
                Input::new(d.name, shape, values)
            })
            .collect()
    }

    /// A user's logits loss with a constant, a traced and a labels input: its entry
    /// evaluates it by the declared names, with a gradient for the traced one.
    #[crate::loss(logits)]
    fn second_head(
        z: Logits,
        y: Labels,
        w: Given<samples>,
        a: Traced<samples, classes>,
        g: Index<samples, classes>,
    ) -> PerSample {
        w[i] * (logsumexp(classes, |k| z[i][k]) - z[i][y[i]]) + logsumexp(classes, |k| a[i][k])
            - a[i][g[i]]
    }

    #[test]
    fn an_entry_evaluates_declared_inputs_by_name() {
        let entry = Entry::of::<SecondHead>();
        let (z, a) = (
            [1.0, -2.0, 0.5, 0.0, 1.0, 2.0],
            [0.3, 0.1, -0.4, 2.0, 0.0, 1.0],
        );
        let inputs = [
            Input::new("logits", vec![2, 3], z.to_vec()),
            Input::new("labels", vec![2], vec![0.0, 2.0]),
            Input::new("w", vec![2], vec![0.5, 2.0]),
            Input::new("a", vec![2, 3], a.to_vec()),
            Input::new("g", vec![2], vec![1.0, 0.0]),
        ];
        let out = entry.evaluate(&inputs, &[], Precision::F64).unwrap();
        // by hand: the softmax of each row minus the one-hot of its label
        let softmax = |row: &[f64]| {
            let total: f64 = row.iter().map(|x| x.exp()).sum();
            row.iter().map(|x| x.exp() / total).collect::<Vec<_>>()
        };
        let lse = |row: &[f64]| row.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = (0.5 * (lse(&z[..3]) - z[0]) + lse(&a[..3]) - a[1]
            + 2.0 * (lse(&z[3..]) - z[5])
            + lse(&a[3..])
            - a[3])
            / 2.0;
        assert!((out.loss - want).abs() < 1e-12);
        assert_eq!(out.grads[1].input, "a");
        let mut grad_a: Vec<f64> = [softmax(&a[..3]), softmax(&a[3..])].concat();
        grad_a[1] -= 1.0;
        grad_a[3] -= 1.0;
        for (got, want) in out.grads[1].values.iter().zip(grad_a) {
            assert!((got - want / 2.0).abs() < 1e-12);
        }
        let mut missing = inputs.to_vec();
        missing.remove(2);
        assert!(matches!(
            entry.evaluate(&missing, &[], Precision::F64),
            Err(EvalError::MissingInput { name: "w", .. })
        ));
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
            if is_pairs && !entry.info.declared.is_empty() {
                // pair weights are for a loss of the similarities alone (a loss with state
                // reads more)
                assert!(got.is_err(), "{}", entry.name());
            } else if is_pairs {
                let w = got.unwrap();
                assert_eq!(w.weights.len(), 4 * 3, "{}", entry.name());
                assert!(w.weights.iter().all(|x| x.is_finite()));
            } else {
                assert!(matches!(got, Err(EvalError::NotPairs { .. })));
            }
        }
    }
}
