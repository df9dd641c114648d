//! Fixed image operators for the pansharpening losses, each written once with its
//! forward and backward pass and attached to dfdx's tape as one op: the sensors' MTF
//! kernels ([`mtf`]), depthwise filtering, padding and decimation ([`filter`]), and the
//! local correlation field ([`corr`]).
//!
//! Images are `[B, C, H, W]` tensors (any [`Shape`] of rank 4, checked at run time); the
//! ops return tensors with run-time dims, [`Image`]. They compute in f64 whatever the
//! dtype and round the result once.

pub mod corr;
pub mod filter;
pub mod mtf;

use dfdx::prelude::*;

use crate::core::real::Real;
use crate::error::LossError;

/// A `[B, C, H, W]` image batch with run-time dims, as the image ops return it.
pub type Image<E, T = NoneTape> = Tensor<(usize, usize, usize, usize), E, Cpu, T>;

/// The `[B, C, H, W]` dims of `shape`, or [`LossError::BadShape`] for another rank.
pub(crate) fn dims4(
    input: &'static str,
    shape: &[usize],
    expected: &'static str,
) -> Result<[usize; 4], LossError> {
    match *shape {
        [b, c, h, w] => Ok([b, c, h, w]),
        _ => Err(LossError::BadShape {
            input,
            shape: shape.to_vec(),
            expected,
        }),
    }
}

/// A constant image's values in f64 and its dims.
pub(crate) fn read_image<S: Shape, E: Dtype + Real, T>(
    input: &'static str,
    t: &Tensor<S, E, Cpu, T>,
) -> Result<(Vec<f64>, [usize; 4]), LossError> {
    let dims = dims4(input, t.shape().concrete().as_ref(), "[B, C, H, W]")?;
    let v = crate::core::tape::read(t)
        .iter()
        .map(|&v| Real::to_f64(v))
        .collect();
    Ok((v, dims))
}

/// The traced input of a unary image op: made contiguous, its tape split off, its values
/// read in f64.
pub(crate) struct Traced<S: Shape, E: Dtype, T> {
    pub(crate) x: Tensor<S, E, Cpu>,
    pub(crate) tape: T,
    pub(crate) dims: [usize; 4],
    pub(crate) values: Vec<f64>,
}

pub(crate) fn traced<S, E, T>(
    input: &'static str,
    x: Tensor<S, E, Cpu, T>,
    expected: &'static str,
) -> Result<Traced<S, E, T>, LossError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let dims = dims4(input, x.shape().concrete().as_ref(), expected)?;
    let (x, tape) = x.contiguous().split_tape();
    let values = crate::core::tape::read(&x)
        .iter()
        .map(|&v| Real::to_f64(v))
        .collect();
    Ok(Traced {
        x,
        tape,
        dims,
        values,
    })
}

/// The output `values` of dims `out_dims`, with `backward` (the output's gradient in,
/// the input's out, both row-major f64) attached as one op on the input's tape.
pub(crate) fn attach<S, E, T, B>(
    input: Traced<S, E, T>,
    out_dims: [usize; 4],
    values: &[f64],
    backward: B,
) -> Image<E, T>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    B: 'static + FnOnce(&[f64]) -> Vec<f64>,
{
    let Traced { x, mut tape, .. } = input;
    let [b, c, h, w] = out_dims;
    let out: Image<E> = x.device().tensor_from_vec(
        values.iter().map(|&v| <E as Real>::from_f64(v)).collect(),
        (b, c, h, w),
    );
    if T::OWNS_TAPE {
        let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            let g_out: Vec<f64> = grads
                .get_or_alloc_mut(&out_ghost)?
                .iter()
                .map(|&v| Real::to_f64(v))
                .collect();
            let g_in = backward(&g_out);
            let dst = grads.get_or_alloc_mut(&x_ghost)?;
            if dst.len() != g_in.len() {
                return Err(CpuError::WrongNumElements);
            }
            for (d, &g) in dst.iter_mut().zip(&g_in) {
                *d += <E as Real>::from_f64(g);
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}
