//! The similarity op fused with a loss head, a block of rows at a time, so that neither
//! `S` nor its gradient `W = ∂L/∂S` ever exists whole.
//!
//! A pairs loss whose value is a sum or mean of per-anchor terms, each reading only its
//! own row of `S` (the compiler says so with [`RowBlocks`](crate::core::kernel::RowBlocks)),
//! can be computed from blocks of rows: for rows `i0..i1`,
//!
//! ```text
//! S_b = prep(E[i0..i1]) · prep(R)ᵀ          one product, (i1 − i0) × M
//! l_b = head(S_b)                            the block's share of the loss
//! W_b = ∂l_b/∂S_b                            the head's derived backward, on the same block
//! P_E[i0..i1] = W_b · R̃        P_R += W_bᵀ · Ẽ[i0..i1]     two more products
//! ```
//!
//! then the chain rule through the rows' preparation (the normalisation for cosine, the
//! norms for the distances) once at the end, as the whole-matrix op does. The loss is a
//! scalar, so its gradient is `seed · ∂L/∂E` for the seed dfdx passes to the backward:
//! `∂L/∂E` is computed with the value, during the forward pass, and the backward op only
//! scales it. Nothing of size `N × M` is allocated: a block holds `S_b` and `W_b`
//! (about [`BLOCK_ENTRIES`] entries each), and the pass keeps `O((N + M)·d)` numbers.
//!
//! Against the materialised path (the op, then the head over the whole `S`), the loss and
//! the gradients agree up to rounding: the per-anchor terms are the same, but the mean is
//! taken block by block, and the gradient products are summed in another order.

use std::ops::Range;

use dfdx::shapes::{Axes2, Dim, Dtype, HasShape};
use dfdx::tensor::{Cpu, Merge, PutTape, SplitTape, Tape, Tensor, TensorFrom, TensorFromVec};
use dfdx::tensor_ops::{PermuteTo, ReshapeTo};

use super::{add_into, product, values, Dense, Metric, Side};
use crate::core::real::Real;
use crate::error::LossError;

/// Entries of `S` per block, when the number of rows is left to the pass.
pub const BLOCK_ENTRIES: usize = 1 << 21;
/// Fewest rows per block, so that each product stays large enough for the GEMM.
const MIN_ROWS: usize = 16;

/// Rows per block against `m` references: about [`BLOCK_ENTRIES`] entries, at least 16
/// rows.
pub fn block_rows(m: usize) -> usize {
    (BLOCK_ENTRIES / m.max(1)).max(MIN_ROWS)
}

/// What a loss head does with one block: `head(rows, s, w)` gets rows `rows` of `S`
/// (row-major, `rows.len() × M`) and, when gradients are wanted, a zeroed buffer of the
/// same size to add `∂L/∂S` of those rows into; it returns the block's share of the loss.
pub type Head<'a, E> = dyn FnMut(Range<usize>, &[E], Option<&mut [E]>) -> Result<E, LossError> + 'a;

/// The blocked pass over one pair of prepared sides.
struct Pass<'s, E: Dtype> {
    metric: Metric,
    /// The anchors.
    a: &'s Side<E>,
    /// The references; `None` against the anchors themselves.
    b: Option<&'s Side<E>>,
    dense: Dense<E>,
    dev: Cpu,
    rows: usize,
}

/// The loss and the two sides' `P` (see the module docs), before the chain rule through
/// the rows' preparation.
struct Sums<E> {
    value: E,
    pa: Option<Vec<E>>,
    pb: Option<Vec<E>>,
}

impl<E: Dtype + Real> Pass<'_, E> {
    fn run(
        &self,
        head: &mut Head<'_, E>,
        want_a: bool,
        want_b: bool,
    ) -> Result<Sums<E>, LossError> {
        let (metric, dev, dense) = (self.metric, &self.dev, self.dense);
        let b = self.b.unwrap_or(self.a);
        let (n, m) = (self.a.len, b.len);
        let left = values(&self.a.operand(metric, true, dev));
        let k = left.len() / n.max(1);
        let right = b.operand(metric, false, dev);
        let kb = self.a.d + usize::from(metric.is_distance());
        let b_op = want_a.then(|| dev.tensor_from_vec(b.backward_operand(metric, 0, m), (m, kb)));
        let mut pa = want_a.then(|| Vec::with_capacity(n * kb));
        let mut pb = want_b.then(|| vec![E::zero(); m * kb]);
        let mut value = E::zero();
        for i0 in (0..n).step_by(self.rows.max(1)) {
            let i1 = (i0 + self.rows).min(n);
            let block = dev.tensor_from_vec(left[i0 * k..i1 * k].to_vec(), (i1 - i0, k));
            let mut s = values(&product(metric, block, right.clone(), false, dense));
            if self.b.is_none() && metric.is_distance() {
                // a row against itself: an exact zero, as the whole-matrix op has it
                for r in 0..(i1 - i0) {
                    s[r * m + i0 + r] = E::zero();
                }
            }
            let mut w = (want_a || want_b).then(|| vec![E::zero(); s.len()]);
            value += head(i0..i1, &s, w.as_deref_mut())?;
            let Some(mut w) = w else { continue };
            if metric == Metric::Euclidean {
                // ∂L/∂(squared distance) = ∂L/∂S / (2 S), 0 where S = 0
                for (w, &s) in w.iter_mut().zip(&s) {
                    *w = if s > E::zero() {
                        *w / (s + s)
                    } else {
                        E::zero()
                    };
                }
            }
            drop(s);
            let w = dev.tensor_from_vec(w, (i1 - i0, m));
            if let Some(pb) = &mut pb {
                let a_op = self.a.backward_operand(metric, i0, i1);
                let a_op = dev.tensor_from_vec(a_op, (i1 - i0, kb));
                let wt = w.clone().permute::<_, Axes2<1, 0>>();
                add_into(pb, &values(&(dense.matmul)(wt, a_op)));
            }
            if let (Some(pa), Some(b_op)) = (&mut pa, &b_op) {
                pa.extend(values(&(dense.matmul)(w, b_op.clone())));
            }
        }
        Ok(Sums { value, pa, pb })
    }
}

/// The first non-finite element of a gradient, as [`LossError::NonFiniteGradient`].
fn check_gradient<E: Real>(
    loss: &'static str,
    input: &'static str,
    g: &[E],
) -> Result<(), LossError> {
    match g.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(LossError::NonFiniteGradient {
            loss,
            input,
            index,
            value: g[index].to_f64(),
        }),
        None => Ok(()),
    }
}

/// `Σ` of the loss `head` over blocks of rows of `S = metric(E, E)` (the batch against
/// itself), with its gradient to `embeddings` computed on the way; `loss` names the loss
/// in errors. See the module docs.
pub fn blocked<N, D, E, T>(
    embeddings: Tensor<(N, D), E, Cpu, T>,
    metric: Metric,
    rows: usize,
    (loss, head): (&'static str, &mut Head<'_, E>),
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let (e, mut tape) = embeddings.contiguous().split_tape();
    let (n, d) = (e.shape().0.size(), e.shape().1.size());
    let dev = e.device().clone();
    let a = Side::new(metric, values(&e), n, d);
    let pass = Pass {
        metric,
        a: &a,
        b: None,
        dense: Dense::get(),
        dev: dev.clone(),
        rows,
    };
    let want = T::OWNS_TAPE;
    let sums = pass.run(head, want, want)?;
    let out: Tensor<(), E, Cpu> = dev.tensor(sums.value);
    if let (Some(mut p), Some(pb)) = (sums.pa, sums.pb) {
        add_into(&mut p, &pb);
        let g = a.grad(p);
        check_gradient(loss, "embeddings", &g)?;
        let (e_ghost, out_ghost) = (e.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let seed = grads.get_or_alloc_mut(&out_ghost)?[0];
            scaled_add(grads.get_or_alloc_mut(&e_ghost)?, seed, &g);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

/// [`blocked`] against a separate reference set `refs` (`S = metric(E, R)`); a tape-free
/// `refs` gets no gradient.
pub fn blocked_with<N, M, D, E, T1, T2>(
    embeddings: Tensor<(N, D), E, Cpu, T1>,
    refs: Tensor<(M, D), E, Cpu, T2>,
    metric: Metric,
    rows: usize,
    (loss, head): (&'static str, &mut Head<'_, E>),
) -> Result<Tensor<(), E, Cpu, T1>, LossError>
where
    N: Dim,
    M: Dim,
    D: Dim,
    E: Dtype + Real,
    T1: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    let (e, t1) = embeddings.contiguous().split_tape();
    let (r, t2) = refs.contiguous().split_tape();
    let mut tape = t1.merge(t2);
    let ((n, d), (m, d_r)) = (*e.shape(), *r.shape());
    assert_eq!(
        d.size(),
        d_r.size(),
        "blocked_with: rows of different lengths"
    );
    let dev = e.device().clone();
    let a = Side::new(metric, values(&e), n.size(), d.size());
    let b = Side::new(metric, values(&r), m.size(), d.size());
    let pass = Pass {
        metric,
        a: &a,
        b: Some(&b),
        dense: Dense::get(),
        dev: dev.clone(),
        rows,
    };
    let sums = pass.run(head, T1::OWNS_TAPE, T1::OWNS_TAPE && T2::OWNS_TAPE)?;
    let out: Tensor<(), E, Cpu> = dev.tensor(sums.value);
    if let Some(pa) = sums.pa {
        let ga = a.grad(pa);
        check_gradient(loss, "embeddings", &ga)?;
        let gb = sums.pb.map(|pb| b.grad(pb));
        if let Some(gb) = &gb {
            check_gradient(loss, "ref_embeddings", gb)?;
        }
        let (e_ghost, r_ghost, out_ghost) = (e.ghost(), r.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let seed = grads.get_or_alloc_mut(&out_ghost)?[0];
            scaled_add(grads.get_or_alloc_mut(&e_ghost)?, seed, &ga);
            if let Some(gb) = &gb {
                scaled_add(grads.get_or_alloc_mut(&r_ghost)?, seed, gb);
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

/// `grad += seed · g`.
fn scaled_add<E: Real>(grad: &mut [E], seed: E, g: &[E]) {
    for (x, &g) in grad.iter_mut().zip(g) {
        *x += seed * g;
    }
}
