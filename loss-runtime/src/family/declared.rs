//! Declared inputs (`t: Given<samples, classes>`, `a: Traced<samples, classes>`,
//! `m: Mask<..>`, `g: Index<samples, classes>`): the inputs a loss takes on top of its
//! family's, written once for every family.
//!
//! The generated `Loss` impl of a loss that declares inputs takes a tuple `(primary,
//! decl1, decl2, …)`; it hands each declared argument to a [`Declared`] in declaration
//! order, then calls the family adapter with it. `family::run` validates them against
//! the batch's sizes, appends them to the batch after the family's own inputs (reals to
//! `values`, labels to `labels`, the order the compiler assigns), and writes the
//! gradient of every traced one from the same backward op as the primary's.

use dfdx::prelude::*;

use crate::core::info::{Axis, DeclaredInfo, DeclaredRole};
use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::core::tape::{self, Sink};
use crate::error::LossError;

/// A constant real input: a tape-free tensor, a slice or a vector.
pub trait ConstantInput<E> {
    /// The dimensions (one for a slice) and the elements in row-major order.
    fn into_values(self, name: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError>;
}

impl<S: Shape, E: Dtype> ConstantInput<E> for Tensor<S, E, Cpu> {
    fn into_values(self, name: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError> {
        let dims = self.shape().concrete().into_iter().collect();
        Ok((dims, tape::try_read(name, &self)?))
    }
}

impl<S: Shape, E: Dtype> ConstantInput<E> for &Tensor<S, E, Cpu> {
    fn into_values(self, name: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError> {
        let dims = self.shape().concrete().into_iter().collect();
        Ok((dims, tape::try_read(name, self)?))
    }
}

impl<E: Copy> ConstantInput<E> for &[E] {
    fn into_values(self, _: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError> {
        Ok((vec![self.len()], self.to_vec()))
    }
}

impl<E: Copy> ConstantInput<E> for &Vec<E> {
    fn into_values(self, _: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError> {
        Ok((vec![self.len()], self.clone()))
    }
}

impl<E> ConstantInput<E> for Vec<E> {
    fn into_values(self, _: &'static str) -> Result<(Vec<usize>, Vec<E>), LossError> {
        Ok((vec![self.len()], self))
    }
}

/// Labels: a slice or a vector of indices.
pub trait LabelInput {
    /// The labels.
    fn into_labels(self) -> Vec<usize>;
}

impl LabelInput for &[usize] {
    fn into_labels(self) -> Vec<usize> {
        self.to_vec()
    }
}

impl LabelInput for &Vec<usize> {
    fn into_labels(self) -> Vec<usize> {
        self.clone()
    }
}

impl LabelInput for Vec<usize> {
    fn into_labels(self) -> Vec<usize> {
        self
    }
}

/// A traced input's element count and where its gradient goes (`None`: untraced).
pub(crate) type TracedSlot<E> = (usize, Option<Sink<E>>);

/// One declared argument as read.
#[derive(Clone, Debug)]
enum Data<E> {
    Values { dims: Vec<usize>, data: Vec<E> },
    Labels { dims: Vec<usize>, data: Vec<usize> },
}

/// The declared arguments of one call, in declaration order, with where the gradient of
/// each traced one goes.
pub struct Declared<E: Dtype> {
    infos: Vec<DeclaredInfo>,
    args: Vec<Data<E>>,
    /// One per `Traced` input, in order; `None` for one passed without a tape.
    sinks: Vec<Option<Sink<E>>>,
    /// For a loss with state: the number of dataset ids the call gave, and where the
    /// forward pass leaves the new state values.
    updates: Option<(usize, Updates)>,
}

/// The new values of a loss's state variables that a forward pass leaves: `(variable,
/// one value per sample, or one for the batch)` per `update(..)`.
pub type Updates = std::rc::Rc<std::cell::RefCell<Vec<(usize, Vec<f64>)>>>;

impl<E: Dtype> Declared<E> {
    /// No declared inputs (the families' own impls).
    pub fn none() -> Self {
        Self {
            infos: Vec::new(),
            args: Vec::new(),
            sinks: Vec::new(),
            updates: None,
        }
    }

    /// Asks the forward pass for the new state values of a call that gave `ids` dataset
    /// ids (one per sample, checked against the batch).
    pub fn with_updates(&mut self, ids: usize) -> Updates {
        let updates = Updates::default();
        self.updates = Some((ids, updates.clone()));
        updates
    }

    /// The request of [`Declared::with_updates`], taken out.
    pub(crate) fn take_updates(&mut self) -> Option<(usize, Updates)> {
        self.updates.take()
    }

    /// Collects the declared inputs of `K`.
    pub fn of<K: Kernel>() -> Self {
        Self::described_by(K::INFO.declared.to_vec())
    }

    /// Collects the inputs that `infos` describe, in order (the dynamic evaluator lays
    /// out a family's own constant inputs this way too, before the declared ones).
    pub(crate) fn described_by(infos: Vec<DeclaredInfo>) -> Self {
        Self {
            infos,
            ..Self::none()
        }
    }

    /// The info of the next argument.
    fn next_info(&self) -> &DeclaredInfo {
        &self.infos[self.args.len()]
    }

    /// The next argument, a `Given` or a `Mask`.
    pub fn constant<A: ConstantInput<E>>(&mut self, arg: A) -> Result<(), LossError> {
        let (dims, data) = arg.into_values(self.next_info().name)?;
        self.args.push(Data::Values { dims, data });
        Ok(())
    }

    /// The next argument, a `Given` or a `Mask`, as its dimensions and row-major elements.
    pub(crate) fn values(&mut self, dims: Vec<usize>, data: Vec<E>) {
        self.args.push(Data::Values { dims, data });
    }

    /// The next argument, an `Index`.
    pub fn labels<A: LabelInput>(&mut self, arg: A) -> Result<(), LossError> {
        let data = arg.into_labels();
        self.labels_as(vec![data.len()], data);
        Ok(())
    }

    /// The next argument, an `Index`, as its dimensions and row-major labels.
    pub(crate) fn labels_as(&mut self, dims: Vec<usize>, data: Vec<usize>) {
        self.args.push(Data::Labels { dims, data });
    }

    /// The next argument, a `Traced` tensor: reads it and merges its tape into
    /// `primary`'s, which is returned. A permuted or broadcast tensor is made contiguous
    /// first (as [`tape::attach`] does for the primary), so its gradient reaches its own
    /// storage through its strides.
    pub fn traced<S, S2, T, T2>(
        &mut self,
        primary: Tensor<S, E, Cpu, T>,
        arg: Tensor<S2, E, Cpu, T2>,
    ) -> Result<Tensor<S, E, Cpu, T>, LossError>
    where
        S: Shape,
        S2: Shape,
        T: Tape<E, Cpu> + Merge<T2>,
        T2: Tape<E, Cpu>,
    {
        let arg = if T2::OWNS_TAPE { arg.contiguous() } else { arg };
        let dims: Vec<usize> = arg.shape().concrete().into_iter().collect();
        self.traced_as(primary, arg, dims)
    }

    /// [`Self::traced`] for a contiguous `arg` that stands for a tensor of shape `dims`
    /// (the dynamic evaluator passes every declared input flat, whatever its rank).
    pub(crate) fn traced_as<S, S2, T, T2>(
        &mut self,
        primary: Tensor<S, E, Cpu, T>,
        arg: Tensor<S2, E, Cpu, T2>,
        dims: Vec<usize>,
    ) -> Result<Tensor<S, E, Cpu, T>, LossError>
    where
        S: Shape,
        S2: Shape,
        T: Tape<E, Cpu> + Merge<T2>,
        T2: Tape<E, Cpu>,
    {
        let data = tape::try_read(self.next_info().name, &arg)?;
        let (arg, arg_tape) = arg.split_tape();
        self.sinks
            .push(T2::OWNS_TAPE.then(|| tape::sink(&arg, data.len())));
        self.args.push(Data::Values { dims, data });
        let (primary, tape) = primary.split_tape();
        Ok(primary.put_tape(tape.merge(arg_tape)))
    }

    /// Checks every argument against the batch's sizes (`primary` fixed them) and
    /// appends it to `values` or `labels`. Returns the gradient sinks, in order.
    pub(crate) fn lay_out(
        self,
        sizes: &super::Layout,
        primary: &'static str,
        values: &mut Vec<tape::Elements<E>>,
        labels: &mut Vec<Vec<usize>>,
    ) -> Result<Vec<TracedSlot<E>>, LossError>
    where
        E: Real,
    {
        if self.args.len() != self.infos.len() {
            return Err(LossError::BadShape {
                input: "declared inputs",
                shape: vec![self.args.len()],
                expected: "one argument per declared input",
            });
        }
        let size = |axis: Axis| match axis {
            Axis::Samples => sizes.samples,
            Axis::Classes => sizes.classes,
            Axis::Refs => sizes.refs,
        };
        let mut traced = Vec::new();
        let Self {
            infos, args, sinks, ..
        } = self;
        for (info, arg) in infos.iter().zip(args) {
            let expected: Vec<usize> = info.axes.iter().map(|a| size(a.axis)).collect();
            match arg {
                Data::Values { dims, data } => {
                    check_dims(info, primary, &expected, &dims)?;
                    super::check_finite(info.name, &expected, &data)?;
                    if info.role == DeclaredRole::Mask {
                        if let Some(index) =
                            data.iter().position(|&x| x != E::zero() && x != E::one())
                        {
                            return Err(LossError::NotAMask {
                                input: info.name,
                                index,
                                value: data[index].to_f64(),
                            });
                        }
                    }
                    if info.role == DeclaredRole::Differentiable {
                        traced.push(data.len());
                    }
                    values.push(data.into());
                }
                Data::Labels { dims, data } => {
                    check_dims(info, primary, &expected, &dims)?;
                    if let Some(set) = info.indexes {
                        let n = size(set.axis);
                        if let Some(index) = data.iter().position(|&l| l >= n) {
                            return Err(LossError::IndexOutOfRange {
                                input: info.name,
                                index,
                                label: data[index],
                                set: set.name,
                                size: n,
                            });
                        }
                    }
                    labels.push(data);
                }
            }
        }
        Ok(traced.into_iter().zip(sinks).collect())
    }
}

/// `dims` against the sizes of `info`'s axes: each shared axis must agree with the
/// batch (an [`LossError::AxisMismatch`] naming both inputs and the set); trailing axes
/// of length 1 are ignored (`[N, 1]` for `[N]`), a flat slice of the right length is
/// accepted for any rank, and a last axis over the dense family's `elements` may come as
/// several axes, flattened row-major like the prediction's (`[N, C, H, W]` for
/// `[N, E]`).
fn check_dims(
    info: &DeclaredInfo,
    primary: &'static str,
    expected: &[usize],
    dims: &[usize],
) -> Result<(), LossError> {
    let unit_tail = dims.len() > expected.len() && dims[expected.len()..].iter().all(|&d| d == 1);
    let dims = if unit_tail {
        &dims[..expected.len()]
    } else {
        dims
    };
    if dims.len() == expected.len() {
        for ((&want, &got), set) in expected.iter().zip(dims).zip(info.axes) {
            if want != got {
                return Err(LossError::AxisMismatch {
                    axis: set.name,
                    expected_by: primary,
                    expected: want,
                    found_in: info.name,
                    found: got,
                });
            }
        }
        return Ok(());
    }
    let count: usize = expected.iter().product();
    if dims.len() == 1 && dims[0] == count {
        return Ok(());
    }
    let flattens_elements = info.axes.last().is_some_and(|a| a.name == "elements");
    if flattens_elements && dims.len() > expected.len() {
        let (lead, tail) = dims.split_at(expected.len() - 1);
        let elements: usize = tail.iter().product();
        let mut folded = lead.to_vec();
        folded.push(elements);
        return check_dims(info, primary, expected, &folded);
    }
    Err(LossError::BadShape {
        input: info.name,
        shape: dims.to_vec(),
        expected: info.shape,
    })
}
