//! Cosine logits as the input of a `logits`-family loss: embeddings and class weights,
//! compared by the [class-cosine op](crate::core::class_cosines).
//!
//! A margin head (ArcFace, CosFace, ElasticFace, …) is a `logits`-family loss whose
//! logits are cosines. It takes them in one of three forms:
//!
//! | pass | the cosines | gradient reaches |
//! |---|---|---|
//! | [`ClassCosines`]`(embeddings, weights)` | `ê_i · ŵ_c` | embeddings and weights |
//! | [`ProjectedCosines`]`(embeddings, weights)` | `ê_i · w_c` (weights kept unit-norm by projection) | embeddings and weights |
//! | a ready `[N, C]` tensor, as any logits | as given | that tensor |
//!
//! Declared inputs follow as usual, in a tuple: `(ClassCosines(e, w), &draws[..])`.
//!
//! ```
//! use dfdx::prelude::*;
//! use loss_runtime::{ArcFace, ClassCosines, Loss};
//!
//! let dev: Cpu = Default::default();
//! let e: Tensor<Rank2<4, 8>, f32, _> = dev.sample_normal(); // a batch of embeddings
//! let w: Tensor<Rank2<3, 8>, f32, _> = dev.sample_normal(); // one row per class
//! let loss = ArcFace::default().forward(ClassCosines(e.leaky_trace(), w.leaky_trace()), &[0, 2, 1, 2]);
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).shape(), &(Const::<3>, Const::<8>));
//! ```
//!
//! The embeddings and the weights are checked (non-empty, finite, the same row length
//! `d`) before the op runs, so a bad input is a [`LossError`] naming `embeddings` or
//! `weights`; the labels are then checked against the `C` columns as for any logits.
//! These forms compile for every loss taking a rank-2 tensor and labels; a loss of another
//! family (a pairs loss takes embeddings, not cosines) refuses them with
//! [`LossError::WrongFamily`].

use dfdx::prelude::*;

use crate::core::alloc;
use crate::core::class_cosines::{class_cosines, projected_cosines};
use crate::core::info::Family;
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape;
use crate::error::LossError;
use crate::loss::Loss;

/// Embeddings `[N, d]` and class weights `[C, d]`, whose cosines `ê_i · ŵ_c` are the
/// logits `[N, C]` of a margin loss. Trace the weights to train them; a tape-free weight
/// tensor is a constant. See the [module docs](crate::family::class_cosines).
#[derive(Clone, Debug)]
pub struct ClassCosines<E, W>(pub E, pub W);

/// Embeddings `[N, d]` and class weights `[C, d]` kept unit-norm by projection after each
/// optimiser step ([`project_unit_rows`](crate::project_unit_rows)): the logits are
/// `ê_i · w_c`, the weights used as given, and their gradient is not projected onto the
/// sphere. The official hyperspherical classifier trains this way.
#[derive(Clone, Debug)]
pub struct ProjectedCosines<E, W>(pub E, pub W);

/// Checks a `rows × dim` matrix of `input`: non-empty and finite.
fn check_matrix<R: Real>(
    input: &'static str,
    rows: usize,
    dim: usize,
    data: &[R],
) -> Result<(), LossError> {
    if rows == 0 || dim == 0 {
        return Err(LossError::EmptyBatch { input });
    }
    super::check_finite(input, &[rows, dim], data)
}

/// Checks the family of `K`, the embeddings and the weights, and that the cosine matrix
/// (with its copy, and with a tape its gradient) fits in memory.
fn check<K, N, C, D, E, T, T2>(
    embeddings: &Tensor<(N, D), E, Cpu, T>,
    weights: &Tensor<(C, D), E, Cpu, T2>,
    form: &'static str,
) -> Result<(), LossError>
where
    K: Kernel,
    N: Dim,
    C: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    T2: Tape<E, Cpu>,
{
    if K::INFO.family != Family::Logits {
        return Err(LossError::WrongFamily {
            loss: K::INFO.name,
            family: K::INFO.family.name(),
            input: form,
            expected: Family::Logits.name(),
        });
    }
    let (n, d) = (embeddings.shape().0.size(), embeddings.shape().1.size());
    let (c, d_w) = (weights.shape().0.size(), weights.shape().1.size());
    let e = tape::try_read("a copy of `embeddings`", embeddings)?;
    check_matrix("embeddings", n, d, &e)?;
    drop(e);
    let w = tape::try_read("a copy of `weights`", weights)?;
    check_matrix("weights", c, d_w, &w)?;
    if d_w != d {
        return Err(LossError::AxisMismatch {
            axis: "d (the embedding length)",
            expected_by: "embeddings",
            expected: d,
            found_in: "weights",
            found: d_w,
        });
    }
    let matrices = if T::OWNS_TAPE { 3 } else { 2 };
    alloc::ensure_room::<E>(
        "the cosine matrix (with its copy and gradient)",
        n.saturating_mul(c).saturating_mul(matrices),
    )
}

/// `Loss` for the two forms, with and without declared inputs after them.
macro_rules! cosine_forms {
    ($($decl:ident $arg:ident),*) => {
        cosine_forms!(@one ClassCosines, class_cosines; $($decl $arg),*);
        cosine_forms!(@one ProjectedCosines, projected_cosines; $($decl $arg),*);
    };
    (@one $form:ident, $op:ident; ) => {
        impl<L, N, C, D, E, T, T2>
            Loss<$form<Tensor<(N, D), E, Cpu, T>, Tensor<(C, D), E, Cpu, T2>>, [usize]> for L
        where
            L: Kernel + Loss<Tensor<(N, C), E, Cpu, T>, [usize], Output = Tensor<(), E, Cpu, T>>,
            N: Dim,
            C: Dim,
            D: Dim,
            E: Dtype + Real,
            T: Tape<E, Cpu> + Merge<T2>,
            T2: Tape<E, Cpu>,
        {
            type Output = Tensor<(), E, Cpu, T>;

            fn try_forward(
                &self,
                input: $form<Tensor<(N, D), E, Cpu, T>, Tensor<(C, D), E, Cpu, T2>>,
                labels: &[usize],
            ) -> Result<Self::Output, LossError> {
                let $form(embeddings, weights) = input;
                check::<L, _, _, _, _, _, _>(&embeddings, &weights, stringify!($form))?;
                let cosines = $op(embeddings, weights);
                <L as Loss<Tensor<(N, C), E, Cpu, T>, [usize]>>::try_forward(self, cosines, labels)
            }
        }
    };
    (@one $form:ident, $op:ident; $($decl:ident $arg:ident),+) => {
        impl<L, N, C, D, E, T, T2, $($decl),+>
            Loss<($form<Tensor<(N, D), E, Cpu, T>, Tensor<(C, D), E, Cpu, T2>>, $($decl),+), [usize]>
            for L
        where
            L: Kernel
                + Loss<(Tensor<(N, C), E, Cpu, T>, $($decl),+), [usize], Output = Tensor<(), E, Cpu, T>>,
            N: Dim,
            C: Dim,
            D: Dim,
            E: Dtype + Real,
            T: Tape<E, Cpu> + Merge<T2>,
            T2: Tape<E, Cpu>,
        {
            type Output = Tensor<(), E, Cpu, T>;

            fn try_forward(
                &self,
                input: ($form<Tensor<(N, D), E, Cpu, T>, Tensor<(C, D), E, Cpu, T2>>, $($decl),+),
                labels: &[usize],
            ) -> Result<Self::Output, LossError> {
                let ($form(embeddings, weights), $($arg),+) = input;
                check::<L, _, _, _, _, _, _>(&embeddings, &weights, stringify!($form))?;
                let cosines = $op(embeddings, weights);
                <L as Loss<(Tensor<(N, C), E, Cpu, T>, $($decl),+), [usize]>>::try_forward(
                    self,
                    (cosines, $($arg),+),
                    labels,
                )
            }
        }
    };
}

cosine_forms!();
cosine_forms!(A0 a0);
cosine_forms!(A0 a0, A1 a1);
cosine_forms!(A0 a0, A1 a1, A2 a2);
cosine_forms!(A0 a0, A1 a1, A2 a2, A3 a3);

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::{loss, MultiSimilarity};

    fn dev() -> Cpu {
        Default::default()
    }

    fn mat(v: &[f64], rows: usize, cols: usize) -> Tensor<(usize, usize), f64, Cpu> {
        dev().tensor_from_vec(v.to_vec(), (rows, cols))
    }

    /// The cosines themselves, scaled, with a declared per-sample weight: the loss sees
    /// exactly what the op computed.
    #[loss(logits)]
    fn weighted_cosine_sum(z: Logits, y: Labels, w: Given<samples>) -> PerSample {
        w[i] * z[i][y[i]]
    }

    #[loss(logits)]
    fn cosine_sum(z: Logits, y: Labels) -> PerSample {
        z[i][y[i]]
    }

    const E: [f64; 6] = [3.0, 4.0, 1.0, 0.0, 0.0, -2.0];
    const W: [f64; 4] = [1.0, 0.0, 0.0, 5.0];

    #[test]
    fn the_forms_give_the_op_to_the_loss() {
        let (e, w) = (mat(&E, 3, 2), mat(&W, 2, 2));
        let labels = [1, 0, 1];
        // cosines [[0.6, 0.8], [1, 0], [0, −1]]: the label's column is 0.8, 1, −1
        let out = CosineSum::new().forward(ClassCosines(e.leaky_trace(), w.leaky_trace()), &labels);
        assert!((out.array() - 0.8 / 3.0).abs() < 1e-12);
        let grads = out.backward();
        assert_eq!(grads.get(&w).shape(), &(2, 2));
        // with a declared input after the form
        let weights = [1.0, 2.0, 3.0];
        let out = WeightedCosineSum::new().forward(
            (ClassCosines(e.leaky_trace(), w.clone()), &weights[..]),
            &labels,
        );
        assert!((out.array() - (0.8 + 2.0 - 3.0) / 3.0).abs() < 1e-12);
        // projected: ê·w with w as given (norm 5 for class 1): 4, 1, −5
        let out = CosineSum::new().forward(ProjectedCosines(e.clone(), w.clone()), &labels);
        assert!(out.array().abs() < 1e-12, "{}", out.array());
    }

    #[test]
    fn bad_inputs_are_errors_naming_them() {
        let (e, w) = (mat(&E, 3, 2), mat(&W, 2, 2));
        let err = CosineSum::new()
            .try_forward(ClassCosines(e.clone(), mat(&[1.0; 6], 2, 3)), &[0, 1, 0])
            .unwrap_err();
        assert!(
            matches!(
                err,
                LossError::AxisMismatch {
                    found_in: "weights",
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut bad = W;
        bad[3] = f64::NAN;
        let err = CosineSum::new()
            .try_forward(ClassCosines(e.clone(), mat(&bad, 2, 2)), &[0, 1, 0])
            .unwrap_err();
        assert!(
            matches!(
                err,
                LossError::NonFinite {
                    input: "weights",
                    index: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = CosineSum::new()
            .try_forward(ClassCosines(mat(&[], 0, 2), w.clone()), &[])
            .unwrap_err();
        assert_eq!(
            err,
            LossError::EmptyBatch {
                input: "embeddings"
            }
        );
        let err = CosineSum::new()
            .try_forward(ClassCosines(e.clone(), mat(&[], 0, 2)), &[0, 1, 0])
            .unwrap_err();
        assert_eq!(err, LossError::EmptyBatch { input: "weights" });
        // a label past the classes is the logits family's error, with C = 2
        let err = CosineSum::new()
            .try_forward(ClassCosines(e.clone(), w.clone()), &[0, 2, 0])
            .unwrap_err();
        assert_eq!(
            err,
            LossError::LabelOutOfRange {
                index: 1,
                label: 2,
                classes: 2
            }
        );
        // a pairs loss takes embeddings, not cosines
        let err = MultiSimilarity::new()
            .try_forward(ClassCosines(e, w), &[0, 1, 0])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`multi_similarity` is a pairs loss, but `ClassCosines` feeds only logits losses"
        );
    }
}
