//! The dfdx glue, written once: turn a computed loss value into a rank-0 tensor and
//! register the kernel's derived backward as exactly one operation on the tape.
//!
//! With a [`NoneTape`] input nothing is registered and the
//! backward closure (with the buffers it owns) is dropped unrun.

use dfdx::prelude::*;

/// A tensor's elements in logical (row-major) order.
///
/// Empty tensors give an empty vector (dfdx 0.13's `as_vec` indexes out of bounds on
/// them), so the family adapters can report [`LossError::EmptyBatch`](crate::LossError)
/// instead of panicking.
pub fn read<S: Shape, E: Dtype, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    if t.shape().num_elements() == 0 {
        Vec::new()
    } else {
        t.as_vec()
    }
}

/// A tensor's elements in logical (row-major) order, as a slice: the tensor's own storage
/// when it is laid out row-major and contiguous (the usual case, read without a copy), a
/// copy otherwise (a permuted or broadcast view).
///
/// The shared form keeps a tape-free handle on the tensor, so the storage lives as long
/// as this value (the backward pass of a loss reads its inputs again). dfdx copies a
/// tensor's storage before writing to it while it is shared, so the elements seen here
/// never change.
pub struct Elements<E> {
    /// The copy, when the tensor could not be borrowed.
    owned: Vec<E>,
    /// The borrowed storage: first element and length, and what keeps it alive.
    shared: Option<(*const E, usize, Box<dyn std::any::Any>)>,
}

impl<E> From<Vec<E>> for Elements<E> {
    fn from(owned: Vec<E>) -> Self {
        Self {
            owned,
            shared: None,
        }
    }
}

impl<E> std::ops::Deref for Elements<E> {
    type Target = [E];
    #[inline]
    fn deref(&self) -> &[E] {
        match &self.shared {
            // SAFETY: `ptr` and `len` were checked by `contiguous_storage` to span elements
            // of one live allocation (the tensor's storage vector, which the boxed handle
            // keeps alive and which nothing writes while it is shared), and the slice
            // borrows `self`, which owns that handle.
            #[allow(unsafe_code)]
            Some((ptr, len, _)) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            None => &self.owned,
        }
    }
}

impl<E: std::fmt::Debug> std::fmt::Debug for Elements<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elements")
            .field("borrowed", &self.shared.is_some())
            .field("len", &self.len())
            .finish()
    }
}

/// The address of `t`'s first element and its element count, when `t`'s elements lie in
/// its storage in row-major order with nothing between them: element `(i₀, …, i_{r−1})` at
/// offset `Σ i_k · stride_k` with the row-major strides of its shape. Checked through the
/// addresses dfdx's indexing gives for the first element and for one step along each
/// axis, so it needs nothing of dfdx's private layout; the last element's index is in
/// bounds (dfdx checks it), so the whole span lies in the storage vector.
fn contiguous_storage<S: Shape, E: Dtype, T>(
    t: &Tensor<S, E, Cpu, T>,
) -> Option<(*const E, usize)> {
    let shape = t.shape();
    let numel = shape.num_elements();
    if S::NUM_DIMS == 0 || numel == 0 {
        return None;
    }
    let dims = shape.concrete();
    let row_major = shape.strides();
    let zero: S::Concrete = Default::default();
    let first: *const E = &t[zero];
    let size = std::mem::size_of::<E>();
    for axis in 0..S::NUM_DIMS {
        if dims[axis] < 2 {
            continue;
        }
        let mut step = zero;
        step[axis] = 1;
        let at: *const E = &t[step];
        if (at as usize).wrapping_sub(first as usize) != row_major[axis] * size {
            return None;
        }
    }
    let mut last = zero;
    for axis in 0..S::NUM_DIMS {
        last[axis] = dims[axis] - 1;
    }
    let end: *const E = &t[last];
    if (end as usize).wrapping_sub(first as usize) != (numel - 1) * size {
        return None;
    }
    Some((first, numel))
}

/// `t`'s elements in logical order (see [`Elements`]): borrowed without a copy when its
/// storage is row-major and contiguous; otherwise copied, after checking that the copy
/// fits in memory (a tensor too large to copy is
/// [`LossError::OutOfMemory`](crate::LossError) naming `what`).
pub fn try_elements<S: Shape, E: Dtype, T>(
    what: &'static str,
    t: &Tensor<S, E, Cpu, T>,
) -> Result<Elements<E>, crate::LossError> {
    match contiguous_storage(t) {
        Some((ptr, len)) => Ok(Elements {
            owned: Vec::new(),
            shared: Some((ptr, len, Box::new(t.retaped::<NoneTape>()))),
        }),
        None => try_read(what, t).map(Elements::from),
    }
}

/// [`read`], after checking that the copy fits in memory: a tensor too large to copy is
/// [`LossError::OutOfMemory`](crate::LossError) naming `what` (dfdx allocates the copy
/// itself, infallibly).
pub fn try_read<S: Shape, E: Dtype, T>(
    what: &'static str,
    t: &Tensor<S, E, Cpu, T>,
) -> Result<Vec<E>, crate::LossError> {
    crate::core::alloc::ensure_room::<E>(what, t.shape().num_elements())?;
    Ok(read(t))
}

/// Wraps `value` in a rank-0 tensor carrying `input`'s tape, and registers `backward`
/// as the one backward op of the loss head.
///
/// `backward(seed, grad)` must add `seed · ∂L/∂input` into `grad`, in logical row-major
/// order (the order [`read`] gives). It only runs when the tape owns gradients.
///
/// # Layouts
///
/// dfdx's `permute` and `broadcast` keep a tensor's id and storage and only change its
/// strides, and dfdx lays a gradient out like the storage: transposed for a permuted
/// tensor, and shorter than the shape for a broadcast one. So a traced input that is not
/// contiguous row-major is first made contiguous through dfdx (one copy, one op on the
/// tape); `backward` writes into that copy's row-major gradient, and dfdx's own backward
/// of the copy adds it into the original storage through its strides, summing over the
/// copies of a broadcast element. dfdx keeps strides private, so this is the one way to
/// reach them. A contiguous input (the usual case) is neither copied nor given an extra
/// op: `backward` writes into its gradient in place.
pub fn attach<S, E, T, B>(
    input: Tensor<S, E, Cpu, T>,
    value: E,
    backward: B,
) -> Tensor<(), E, Cpu, T>
where
    S: Shape,
    E: Dtype,
    T: Tape<E, Cpu>,
    B: 'static + FnOnce(E, &mut [E]),
{
    attach_with(input, value, move |seed, grad| {
        backward(seed, grad);
        Vec::new()
    })
}

/// Where the gradient of a further traced input goes: adds a row-major gradient into
/// that input's entry of dfdx's gradients (see [`crate::family::declared`]).
pub type Sink<E> = Box<dyn FnOnce(&mut Gradients<E, Cpu>, &[E]) -> Result<(), CpuError>>;

/// A sink for the traced tensor `input` (made contiguous by the caller): adds a gradient
/// of its `numel` elements into its own.
pub fn sink<S: Shape, E: Dtype>(input: &Tensor<S, E, Cpu>, numel: usize) -> Sink<E> {
    let ghost = input.ghost();
    Box::new(move |grads, g| {
        let dst = grads.get_or_alloc_mut(&ghost)?;
        if dst.len() != numel || g.len() != numel {
            return Err(CpuError::WrongNumElements);
        }
        for (d, s) in dst.iter_mut().zip(g) {
            *d += *s;
        }
        Ok(())
    })
}

/// [`attach`] for a loss with further traced inputs, in one tape node: `backward(seed,
/// grad)` writes the primary input's gradient in place and returns the others' (each a
/// row-major buffer with the [`Sink`] that adds it where it belongs). Their tapes must
/// already be merged into `input`'s.
pub fn attach_with<S, E, T, B>(
    input: Tensor<S, E, Cpu, T>,
    value: E,
    backward: B,
) -> Tensor<(), E, Cpu, T>
where
    S: Shape,
    E: Dtype,
    T: Tape<E, Cpu>,
    B: 'static + FnOnce(E, &mut [E]) -> Vec<(Vec<E>, Sink<E>)>,
{
    let numel = input.shape().num_elements();
    // a no-op (same id, no copy) when `input` is already contiguous
    let input = if T::OWNS_TAPE {
        input.contiguous()
    } else {
        input
    };
    let (input, mut tape) = input.split_tape();
    let out: Tensor<(), E, Cpu> = input.device().tensor(value);
    if T::OWNS_TAPE {
        let input_ghost = input.ghost();
        let out_ghost = out.ghost();
        drop(input);
        tape.add_backward_op(move |grads| {
            let seed = grads.get_or_alloc_mut(&out_ghost)?[0];
            let grad = grads.get_or_alloc_mut(&input_ghost)?;
            // cannot happen once `input` is contiguous; an error beats an index panic
            if grad.len() != numel {
                return Err(CpuError::WrongNumElements);
            }
            crate::core::alloc::touch_for_writing(grad.as_mut_slice());
            for (g, sink) in backward(seed, grad.as_mut_slice()) {
                sink(grads, &g)?;
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ_k w_k x_k` over `x`'s elements in logical order, as a loss head through
    /// [`attach`]: its gradient is `w`, in logical order.
    fn weighted<S: Shape, T: Tape<f64, Cpu>>(
        x: Tensor<S, f64, Cpu, T>,
        w: Vec<f64>,
    ) -> Tensor<(), f64, Cpu, T> {
        let value = read(&x).iter().zip(&w).map(|(a, b)| a * b).sum();
        attach(x, value, move |seed, grad| {
            for (g, w) in grad.iter_mut().zip(&w) {
                *g += seed * w;
            }
        })
    }

    /// `0.5, 1.5, 2.5, …`: distinct weights, so a misplaced one shows.
    fn weights(n: usize) -> Vec<f64> {
        (0..n).map(|k| k as f64 + 0.5).collect()
    }

    #[test]
    fn contiguous_input_gets_its_gradient_in_place() {
        let dev: Cpu = Default::default();
        let x: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1., 2., 3.], [4., 5., 6.]]);
        let out = weighted(x.leaky_trace(), weights(6));
        assert_eq!(out.array(), 0.5 + 3.0 + 7.5 + 14.0 + 22.5 + 33.0);
        assert_eq!(out.backward().get(&x).as_vec(), weights(6));
    }

    #[test]
    fn permuted_input_gets_the_gradient_of_each_element() {
        let dev: Cpu = Default::default();
        let x: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1., 2., 3.], [4., 5., 6.]]);
        let w = weights(6);
        // element (i, j) of the 3 × 2 view is x[j][i], weighted by w[2i + j]
        let out = weighted(x.leaky_trace().permute::<Rank2<3, 2>, _>(), w.clone());
        let want: Vec<f64> = (0..6).map(|k| w[2 * (k % 3) + k / 3]).collect();
        assert_eq!(out.backward().get(&x).as_vec(), want);
    }

    #[test]
    fn broadcast_input_sums_over_its_copies() {
        let dev: Cpu = Default::default();
        let w = weights(12);
        // one row copied to 4 rows: x[k] appears at (i, k) for every i
        let x: Tensor<Rank1<3>, f64, _> = dev.tensor([1., 2., 3.]);
        let out = weighted(x.leaky_trace().broadcast::<Rank2<4, 3>, _>(), w.clone());
        let want: Vec<f64> = (0..3).map(|k| (0..4).map(|i| w[3 * i + k]).sum()).collect();
        assert_eq!(out.backward().get(&x).as_vec(), want);
        // the same copies, reached through a broadcast along the last axis and a permute
        let out = weighted(
            x.leaky_trace()
                .broadcast::<Rank2<3, 4>, _>()
                .permute::<Rank2<4, 3>, _>(),
            w.clone(),
        );
        assert_eq!(out.backward().get(&x).as_vec(), want);
        // a scalar broadcast to a vector, and a vector of one to a column
        let c: Tensor<(), f64, _> = dev.tensor(2.0);
        let out = weighted(c.leaky_trace().broadcast::<Rank1<4>, _>(), weights(4));
        assert_eq!(out.backward().get(&c).as_vec(), vec![8.0]);
        let p: Tensor<Rank1<1>, f64, _> = dev.tensor([2.0]);
        let out = weighted(p.leaky_trace().broadcast::<Rank2<4, 1>, _>(), weights(4));
        assert_eq!(out.backward().get(&p).as_vec(), vec![8.0]);
    }

    #[test]
    fn sliced_input_gets_the_gradient_of_its_rows() {
        let dev: Cpu = Default::default();
        let x: Tensor<Rank2<4, 2>, f64, _> = dev.tensor([[1., 2.], [3., 4.], [5., 6.], [7., 8.]]);
        let out = weighted(x.leaky_trace().slice((1..3, ..)), weights(4));
        assert_eq!(
            out.backward().get(&x).as_vec(),
            vec![0.0, 0.0, 0.5, 1.5, 2.5, 3.5, 0.0, 0.0]
        );
    }

    #[test]
    fn one_tensor_in_two_layouts_gets_both_gradients() {
        let dev: Cpu = Default::default();
        let x: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1., 2.], [3., 4.]]);
        let xt = x.leaky_trace();
        let a = weighted(xt.with_empty_tape().permute::<Rank2<2, 2>, _>(), weights(4));
        let b = weighted(xt, vec![10.0; 4]);
        let grad = (a + b).backward().get(&x).as_vec();
        assert_eq!(grad, vec![10.5, 12.5, 11.5, 13.5]);
    }

    #[test]
    fn untraced_input_is_read_in_logical_order() {
        let dev: Cpu = Default::default();
        let x: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1., 2., 3.], [4., 5., 6.]]);
        let out = weighted(x.permute::<Rank2<3, 2>, _>(), weights(6));
        // [1, 4, 2, 5, 3, 6] · w
        assert_eq!(out.array(), 0.5 + 6.0 + 5.0 + 17.5 + 13.5 + 33.0);
    }
}
