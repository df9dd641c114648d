//! The [`Loss`] trait every generated loss implements.

use crate::error::LossError;

/// A loss: takes a differentiable input (a dfdx tensor with any tape) and a target, and
/// returns a rank-0 tensor carrying the input's tape.
///
/// `Input` and `Target` depend on the family:
///
/// | family | `Input` | `Target` |
/// |---|---|---|
/// | `binary` | probabilities `Tensor<S, E, Cpu, T>` with `S` = `[N]` or `[N, 1]`, or [`FromLogits`](crate::FromLogits)`(logits)` | 0/1 targets `Tensor<S, E, Cpu>` |
/// | `logits` | logits `Tensor<(N, C), E, Cpu, T>` | labels `[usize]` |
///
/// `E` is `f32` or `f64`; shapes may be static or dynamic.
pub trait Loss<Input, Target: ?Sized> {
    /// The rank-0 loss tensor.
    type Output;

    /// Computes the loss, or says what is wrong with the input or the hyper-parameters.
    fn try_forward(&self, input: Input, target: &Target) -> Result<Self::Output, LossError>;

    /// Computes the loss.
    ///
    /// # Panics
    /// With the [`LossError`] message where [`Loss::try_forward`] would return one.
    fn forward(&self, input: Input, target: &Target) -> Self::Output {
        match self.try_forward(input, target) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }
}
