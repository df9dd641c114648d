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
/// `backward(seed, grad)` must add `seed · ∂L/∂input` into `grad` (laid out like `input`).
/// It only runs when the tape owns gradients. The input must not be a broadcast view
/// (its gradient buffer would be smaller than its shape); dfdx then reports
/// `CpuError::WrongNumElements` from `backward`.
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
    let numel = input.shape().num_elements();
    let (input, mut tape) = input.split_tape();
    let out: Tensor<(), E, Cpu> = input.device().tensor(value);
    if T::OWNS_TAPE {
        let input_ghost = input.ghost();
        let out_ghost = out.ghost();
        drop(input);
        tape.add_backward_op(move |grads| {
            let seed = grads.get_or_alloc_mut(&out_ghost)?[0];
            let grad = grads.get_or_alloc_mut(&input_ghost)?;
            // a broadcast view stores fewer elements than its shape has
            if grad.len() != numel {
                return Err(CpuError::WrongNumElements);
            }
            backward(seed, grad.as_mut_slice());
            Ok(())
        });
    }
    out.put_tape(tape)
}
