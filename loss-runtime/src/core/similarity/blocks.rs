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

use dfdx::shapes::{Dim, Dtype, HasShape};
use dfdx::tensor::{Cpu, Merge, PutTape, SplitTape, Tape, Tensor, TensorFrom};
use dfdx::tensor_ops::ReshapeTo;

use super::{add_into, squared_distance_weight, values, Metric, Side};
use crate::core::real::Real;
use crate::error::LossError;

/// Entries of `S` per block, when the number of rows is left to the pass.
pub const BLOCK_ENTRIES: usize = 1 << 23;
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
        let (metric, dev) = (self.metric, &self.dev);
        let b = self.b.unwrap_or(self.a);
        let (n, m) = (self.a.len, b.len);
        let left = values(&self.a.operand(metric, true, dev));
        let right = values(&b.operand(metric, false, dev));
        let k = left.len() / n.max(1);
        let kb = self.a.d + usize::from(metric.is_distance());
        let a_op = want_b.then(|| self.a.backward_operand(metric, 0, n));
        let b_op = want_a.then(|| b.backward_operand(metric, 0, m));
        let mut pa = want_a.then(|| vec![E::zero(); n * kb]);
        let mut pb = want_b.then(|| vec![E::zero(); m * kb]);
        let rows = self.rows.clamp(1, n.max(1));
        let mut s = vec![E::zero(); rows * m];
        let mut w = (want_a || want_b).then(|| vec![E::zero(); rows * m]);
        let mut value = E::zero();
        for i0 in (0..n).step_by(rows) {
            let i1 = (i0 + rows).min(n);
            let r = i1 - i0;
            let s = &mut s[..r * m];
            // S_b = left[i0..i1] · rightᵀ
            product_into(
                s,
                (r, m, k),
                (&left[i0 * k..i1 * k], 1, k),
                (&right, k, 1),
                false,
            );
            if metric.is_distance() {
                for x in s.iter_mut() {
                    *x = x.max2(E::zero());
                }
                if self.b.is_none() {
                    // a row against itself: an exact zero, as the whole-matrix op has it
                    for q in 0..r {
                        s[q * m + i0 + q] = E::zero();
                    }
                }
                if metric == Metric::Euclidean {
                    for x in s.iter_mut() {
                        *x = x.sqrt();
                    }
                }
            }
            let Some(w) = w.as_mut().map(|w| &mut w[..r * m]) else {
                value += head(i0..i1, s, None)?;
                continue;
            };
            w.fill(E::zero());
            value += head(i0..i1, s, Some(&mut *w))?;
            if metric == Metric::Euclidean {
                // ∂L/∂(squared distance) = ∂L/∂S / (2 S), 0 where S = 0
                for (w, &s) in w.iter_mut().zip(s.iter()) {
                    *w = squared_distance_weight(*w, s);
                }
            }
            if let (Some(pa), Some(b_op)) = (&mut pa, &b_op) {
                // P_E[i0..i1] = W_b · R̃
                let out = &mut pa[i0 * kb..i1 * kb];
                product_into(out, (r, kb, m), (w, 1, m), (b_op, 1, kb), false);
            }
            if let (Some(pb), Some(a_op)) = (&mut pb, &a_op) {
                // P_R += W_bᵀ · Ẽ[i0..i1]
                let a_rows = &a_op[i0 * kb..i1 * kb];
                product_into(pb, (m, kb, r), (w, m, 1), (a_rows, 1, kb), true);
            }
        }
        Ok(Sums { value, pa, pb })
    }
}

/// `dst (rows × cols, row-major) (+)= lhs · rhs` through the `gemm` crate, on rayon's
/// threads, with `lhs` (`rows × inner`) and `rhs` (`inner × cols`) given as `(values,
/// column stride, row stride)`; `accumulate` adds into `dst` instead of overwriting it.
fn product_into<E: Real>(
    dst: &mut [E],
    (rows, cols, inner): (usize, usize, usize),
    (lhs, lhs_cs, lhs_rs): (&[E], usize, usize),
    (rhs, rhs_cs, rhs_rs): (&[E], usize, usize),
    accumulate: bool,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = |cs: usize, rs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(
        dst.len() >= rows * cols,
        "product_into: destination too short"
    );
    if inner == 0 {
        if !accumulate {
            dst[..rows * cols].fill(E::zero());
        }
        return;
    }
    assert!(
        lhs.len() > last(lhs_cs, lhs_rs, rows, inner)
            && rhs.len() > last(rhs_cs, rhs_rs, inner, cols),
        "product_into: an operand is too short"
    );
    let (one, zero) = (E::one(), E::zero());
    let stride = |x: usize| x as isize;
    // SAFETY: the asserts above keep every element the strides reach inside its slice;
    // `dst` is borrowed mutably and the operands shared, so they do not overlap; `gemm`
    // reads `dst` only when `accumulate` says so. `E` is `f32` or `f64` (the dtypes
    // `Real` is implemented for), which `gemm` supports.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            inner,
            dst.as_mut_ptr(),
            1,
            stride(cols),
            accumulate,
            lhs.as_ptr(),
            stride(lhs_cs),
            stride(lhs_rs),
            rhs.as_ptr(),
            stride(rhs_cs),
            stride(rhs_rs),
            if accumulate { one } else { zero },
            one,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
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
        dev: dev.clone(),
        rows,
    };
    let want = T::OWNS_TAPE;
    let sums = pass.run(head, want, want)?;
    let out: Tensor<(), E, Cpu> = dev.tensor(sums.value);
    if let (Some(mut p), Some(pb)) = (sums.pa, sums.pb) {
        add_into(&mut p, &pb);
        let g = a.grad(p);
        LossError::check_gradient(loss, "embeddings", &g)?;
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
        dev: dev.clone(),
        rows,
    };
    let sums = pass.run(head, T1::OWNS_TAPE, T1::OWNS_TAPE && T2::OWNS_TAPE)?;
    let out: Tensor<(), E, Cpu> = dev.tensor(sums.value);
    if let Some(pa) = sums.pa {
        let ga = a.grad(pa);
        LossError::check_gradient(loss, "embeddings", &ga)?;
        let gb = sums.pb.map(|pb| b.grad(pb));
        if let Some(gb) = &gb {
            LossError::check_gradient(loss, "ref_embeddings", gb)?;
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
