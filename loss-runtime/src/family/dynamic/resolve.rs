//! Matching named inputs to a loss's description of them — its family's inputs, then
//! the ones it declares — and the sizes of the index sets their shapes imply.
//!
//! Nothing here knows a family: every rule is read off [`InputInfo`] (alternatives,
//! optional inputs, the input that stands in for a missing one, inputs that go together
//! or exclude each other, the index sets of each axis).

use crate::core::info::{Axis, DeclaredInfo, InputInfo, LossInfo, SetRef};
use crate::error::LossError;
use crate::family::Layout;

use super::error::EvalError;
use super::Input;

/// A family input matched to its description.
pub(super) struct Given<'a> {
    pub info: &'static InputInfo,
    pub shape: &'a [usize],
    pub values: &'a [f64],
}

/// A declared input matched to its description.
pub(super) struct DeclaredGiven<'a> {
    pub info: &'static DeclaredInfo,
    pub shape: &'a [usize],
    pub values: &'a [f64],
}

/// A constant family input of a call: its description, and its shape and values (`None`
/// for one left out that is zeros by default).
pub(super) type Constant<'a> = (&'static InputInfo, Option<(&'a [usize], &'a [f64])>);

/// A family input left out, and the given input that stands in for it.
pub(super) struct StoodIn {
    pub info: &'static InputInfo,
    /// Its position in [`Call::given`].
    pub by: usize,
}

/// One call, checked: every input matched, every rule of the descriptions kept, and the
/// sizes of the index sets fixed by the shapes.
pub(super) struct Call<'a> {
    /// The family's inputs, as described.
    pub spec: &'static [InputInfo],
    /// The family inputs given, in the family's order.
    pub given: Vec<Given<'a>>,
    /// The family inputs left out that another one stands in for.
    pub stood_in: Vec<StoodIn>,
    /// The declared inputs, in declaration order (every one is required).
    pub declared: Vec<DeclaredGiven<'a>>,
    /// Sizes and switches of the batch.
    pub layout: Layout,
    /// The length of the free last axis of the inputs that have one (embeddings).
    pub features: Option<usize>,
}

impl<'a> Call<'a> {
    /// The given family input called `name`.
    pub fn find(&self, name: &str) -> Option<&Given<'a>> {
        self.given.iter().find(|g| g.info.name == name)
    }

    /// The differentiable family inputs given, in the family's order: the first is the
    /// one the kernel's backward is attached to (or, for embeddings, the similarity op).
    pub fn traced(&self) -> impl Iterator<Item = &Given<'a>> {
        self.given.iter().filter(|g| g.info.differentiable)
    }

    /// The constant family inputs in the family's order, each with the shape and values
    /// it takes (a stood-in input takes those of the input standing in for it; one left
    /// out that is zeros by default takes `None`).
    pub fn constants(&self) -> Vec<Constant<'a>> {
        let given = |info: &InputInfo| {
            let g = self.given.iter().find(|g| std::ptr::eq(g.info, info));
            let by = self.stood_in.iter().find(|s| std::ptr::eq(s.info, info));
            g.or_else(|| by.map(|s| &self.given[s.by]))
        };
        self.spec
            .iter()
            .filter(|info| !info.differentiable)
            .filter_map(|info| match given(info) {
                Some(g) => Some((info, Some((g.shape, g.values)))),
                None => info.zeros_by_default.then_some((info, None)),
            })
            .collect()
    }

    /// The size of the index set of `axis` in this call.
    pub fn size(&self, axis: Axis) -> usize {
        match axis {
            Axis::Samples => self.layout.samples,
            Axis::Classes => self.layout.classes,
            Axis::Refs => self.layout.refs,
        }
    }
}

/// Matches `inputs` to the family's inputs (in the family's order) and to the loss's
/// declared ones, keeps every rule of their descriptions, and fixes the index sets'
/// sizes from the shapes.
pub(super) fn resolve<'a>(info: &LossInfo, inputs: &'a [Input]) -> Result<Call<'a>, EvalError> {
    let (loss, family) = (info.name, info.family);
    let spec = family.inputs();
    let mut slots: Vec<Option<&Input>> = vec![None; spec.len()];
    let mut declared_slots: Vec<Option<&Input>> = vec![None; info.declared.len()];
    for input in inputs {
        let (slot, name) = if let Some(k) = spec.iter().position(|s| s.name == input.name) {
            (&mut slots[k], spec[k].name)
        } else if let Some(k) = info.declared.iter().position(|d| d.name == input.name) {
            (&mut declared_slots[k], info.declared[k].name)
        } else {
            return Err(EvalError::UnknownInput {
                loss,
                family,
                declared: info.declared,
                name: input.name.clone(),
            });
        };
        if slot.is_some() {
            return Err(EvalError::DuplicateInput { name });
        }
        *slot = Some(input);
    }
    let is_given = |name: &str| {
        spec.iter()
            .position(|s| s.name == name)
            .is_some_and(|k| slots[k].is_some())
    };
    check_combinations(loss, spec, &slots, is_given)?;
    let mut given = Vec::with_capacity(spec.len());
    for (k, input) in spec.iter().enumerate() {
        if let Some(x) = slots[k] {
            check_length(input.name, x)?;
            given.push(Given {
                info: input,
                shape: &x.shape,
                values: &x.values,
            });
        }
    }
    let mut stood_in = Vec::new();
    for (k, input) in spec.iter().enumerate() {
        if let (None, Some(default)) = (slots[k], input.defaults_to) {
            if let Some(by) = given.iter().position(|g| g.info.name == default.input) {
                stood_in.push(StoodIn { info: input, by });
            }
        }
    }
    let mut declared = Vec::with_capacity(info.declared.len());
    for (d, slot) in info.declared.iter().zip(declared_slots) {
        let Some(x) = slot else {
            return Err(EvalError::MissingInput {
                loss,
                name: d.name,
                alternative: None,
            });
        };
        check_length(d.name, x)?;
        declared.push(DeclaredGiven {
            info: d,
            shape: &x.shape,
            values: &x.values,
        });
    }
    let (layout, features) = sizes(&given, &stood_in)?;
    Ok(Call {
        spec,
        given,
        stood_in,
        declared,
        layout,
        features,
    })
}

/// The rules between inputs: an input and its alternative not both given, every
/// required input (or its alternative) given, no input with one it excludes, and every
/// input with the one it needs (unless that one is excluded by what was given).
fn check_combinations(
    loss: &'static str,
    spec: &'static [InputInfo],
    slots: &[Option<&Input>],
    is_given: impl Fn(&str) -> bool,
) -> Result<(), EvalError> {
    for (k, input) in spec.iter().enumerate() {
        if let (Some(_), Some(alt)) = (slots[k], input.alternative_to) {
            if is_given(alt) {
                return Err(EvalError::ConflictingInputs {
                    name: alt,
                    alternative: input.name,
                });
            }
        }
    }
    for (k, input) in spec.iter().enumerate() {
        let stands_in = spec
            .iter()
            .filter(|s| s.alternative_to == Some(input.name))
            .map(|s| s.name);
        let missing = slots[k].is_none()
            && input.alternative_to.is_none()
            && !input.optional
            && !stands_in.clone().any(&is_given);
        if missing {
            return Err(EvalError::MissingInput {
                loss,
                name: input.name,
                alternative: stands_in.clone().next(),
            });
        }
    }
    let excluded = |name: &str| {
        spec.iter()
            .find(|s| s.name == name)
            .and_then(|s| s.not_with)
            .is_some_and(|n| is_given(n.input))
    };
    for (k, input) in spec.iter().enumerate() {
        if slots[k].is_none() {
            continue;
        }
        if let Some(rule) = input.not_with.filter(|n| is_given(n.input)) {
            return Err(EvalError::NotWith {
                input: input.name,
                with: rule.input,
                hint: rule.hint,
            });
        }
    }
    for (k, input) in spec.iter().enumerate() {
        if slots[k].is_none() {
            continue;
        }
        if let Some(rule) = input.needs {
            if !is_given(rule.input) && !excluded(rule.input) {
                return Err(EvalError::Unpaired {
                    input: input.name,
                    needs: rule.input,
                    hint: rule.hint,
                });
            }
        }
    }
    Ok(())
}

/// As many values as `input`'s shape has elements.
fn check_length(name: &'static str, input: &Input) -> Result<(), EvalError> {
    if input.values.len() == input.shape.iter().product::<usize>() {
        return Ok(());
    }
    Err(EvalError::LengthMismatch {
        input: name,
        shape: input.shape.clone(),
        len: input.values.len(),
    })
}

/// The sizes of the index sets, fixed by the differentiable family inputs (each axis
/// by the first that has it; the later ones must agree), then by the inputs standing in
/// for left-out ones (the references are then the batch: `exclude_self`); the constant
/// inputs must agree with them. A disagreement names the input that fixed the size.
fn sizes(given: &[Given<'_>], stood_in: &[StoodIn]) -> Result<(Layout, Option<usize>), EvalError> {
    let mut fixed: [Option<(usize, &'static str)>; 3] = [None; 3];
    let slot = |axis: Axis| match axis {
        Axis::Samples => 0,
        Axis::Classes => 1,
        Axis::Refs => 2,
    };
    let mut features: Option<(usize, &Given<'_>)> = None;
    for g in given.iter().filter(|g| g.info.differentiable) {
        let dims = leading_dims(g)?;
        for (set, &size) in g.info.axes.iter().zip(dims) {
            fix(&mut fixed[slot(set.axis)], *set, size, g.info.name)?;
        }
        if g.info.features {
            let d = g.shape[g.info.axes.len()];
            match features {
                None => features = Some((d, g)),
                Some((want, first)) if want != d => {
                    return Err(EvalError::ShapeMismatch {
                        input: g.info.name,
                        shape: g.shape.to_vec(),
                        other: first.info.name,
                        other_shape: first.shape.to_vec(),
                        expected: "give both the same number of columns",
                    })
                }
                Some(_) => {}
            }
        }
    }
    for s in stood_in {
        let by = &given[s.by];
        let hint = s.info.defaults_to.map_or("", |d| d.hint);
        for (set, &size) in s.info.axes.iter().zip(leading_dims(by)?) {
            let entry = &mut fixed[slot(set.axis)];
            if let Some((want, owner)) = *entry {
                if want != size {
                    let owner = given.iter().find(|g| g.info.name == owner);
                    return Err(EvalError::BadRank {
                        input: owner.map_or(by.info.name, |g| g.info.name),
                        shape: owner.map_or(by.shape, |g| g.shape).to_vec(),
                        expected: hint,
                    });
                }
            }
            *entry = Some((size, by.info.name));
        }
    }
    for g in given.iter().filter(|g| !g.info.differentiable) {
        for (set, &size) in g.info.axes.iter().zip(leading_dims(g)?) {
            fix(&mut fixed[slot(set.axis)], *set, size, g.info.name)?;
        }
    }
    let size = |k: usize| fixed[k].map_or(1, |(n, _)| n);
    let layout = Layout {
        samples: size(0),
        classes: size(1),
        refs: size(2),
        from_logits: given.iter().any(|g| g.info.from_logits),
        exclude_self: !stood_in.is_empty(),
    };
    Ok((layout, features.map(|(d, _)| d)))
}

/// Fixes a set's size, or checks it against the size already fixed.
fn fix(
    entry: &mut Option<(usize, &'static str)>,
    set: SetRef,
    size: usize,
    input: &'static str,
) -> Result<(), EvalError> {
    match *entry {
        None => *entry = Some((size, input)),
        Some((want, owner)) if want != size => {
            return Err(LossError::AxisMismatch {
                axis: set.name,
                expected_by: owner,
                expected: want,
                found_in: input,
                found: size,
            }
            .into())
        }
        Some(_) => {}
    }
    Ok(())
}

/// The lengths of `g`'s axes: its shape must have one dimension per axis (and one for
/// the features, if it has them), possibly followed by dimensions of length 1 (`[N, 1]`
/// for `[N]`).
fn leading_dims<'s>(g: &Given<'s>) -> Result<&'s [usize], EvalError> {
    let rank = g.info.axes.len() + usize::from(g.info.features);
    let fits = g.shape.len() >= rank && g.shape[rank..].iter().all(|&d| d == 1);
    if !fits {
        return Err(EvalError::BadRank {
            input: g.info.name,
            shape: g.shape.to_vec(),
            expected: g.info.shape,
        });
    }
    Ok(&g.shape[..g.info.axes.len()])
}
