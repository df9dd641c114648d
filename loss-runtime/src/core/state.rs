//! Per-sample state that a loss carries across batches (iSogCLR's moving averages and
//! temperatures, ALDR-KL's λ): declared in a definition as `u: State<samples>`, read as a
//! constant `u[i]`, and written by `update(u[i], value)` after each forward pass.
//!
//! The generated loss owns a [`StateCell`]: one [`SampleState`] per loss value, never
//! shared between two losses. Every call names the dataset samples of its batch with
//! [`WithIds`]; the forward reads their state, and once it has succeeded the updated
//! values are written back. [`SampleState`] is plain data with `serde`, so training can
//! stop and resume exactly where it was.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::LossError;

/// The input of a loss with state: the loss's usual input and the dataset ids of the
/// batch's samples, one per sample (per anchor row in the pairs family: a [`Views`]
/// batch of `V·N` rows takes `V·N` ids), each below the loss's dataset size and none
/// twice.
///
/// [`Views`]: crate::Views
#[derive(Clone, Debug)]
pub struct WithIds<'a, T>(pub T, pub &'a [usize]);

/// One state variable of a loss, as its definition declares it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateInfo {
    /// The parameter's name (`u`).
    pub name: &'static str,
    /// The value of a sample not updated yet (`#[state(init = ..)]`, 0 by default).
    pub init: f64,
}

/// Where the forward pass leaves the new value of a state variable: the generated
/// kernel's materialised value `slot`, one element per sample (or one for the batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    /// The state variable, by its position among the loss's [`StateInfo`]s.
    pub field: usize,
    /// The slot of the kernel's workspace that holds the new values.
    pub slot: usize,
}

/// The values of one state variable, one per dataset sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateField {
    /// The variable's name in the definition.
    pub name: String,
    /// The value every sample starts from, and returns to on a reset.
    pub init: f64,
    /// The current value of each dataset sample, by id.
    pub values: Vec<f64>,
}

/// The state of a loss: every state variable's value for every dataset sample. Save it
/// (`serde`) and give it back with the generated loss's `set_state` to resume training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleState {
    /// The loss it belongs to (its catalogue name).
    pub loss: String,
    /// One entry per state variable, in declaration order.
    pub fields: Vec<StateField>,
}

impl SampleState {
    /// The state of `loss` with `infos` for `samples` dataset samples, every value at its
    /// initial value.
    pub fn new(loss: &str, infos: &[StateInfo], samples: usize) -> Self {
        Self {
            loss: loss.to_string(),
            fields: infos
                .iter()
                .map(|s| StateField {
                    name: s.name.to_string(),
                    init: s.init,
                    values: vec![s.init; samples],
                })
                .collect(),
        }
    }

    /// The number of dataset samples the state covers.
    pub fn samples(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }

    /// The values of the state variable `name`, by dataset id.
    pub fn field(&self, name: &str) -> Option<&[f64]> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.values.as_slice())
    }

    /// Every value back to its initial value.
    pub fn reset(&mut self) {
        for f in &mut self.fields {
            f.values.iter_mut().for_each(|v| *v = f.init);
        }
    }

    /// Checks that `other` is a state of the same loss with the same variables.
    fn check_compatible(&self, other: &SampleState) -> Result<(), LossError> {
        let names = |s: &SampleState| s.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        let lengths_agree = other
            .fields
            .iter()
            .all(|f| f.values.len() == other.samples());
        if other.loss != self.loss || names(other) != names(self) || !lengths_agree {
            return Err(LossError::StateMismatch {
                expected: format!("{} with state {:?}", self.loss, names(self)),
                found: format!("{} with state {:?}", other.loss, names(other)),
            });
        }
        Ok(())
    }
}

/// The state a loss value owns: a [`SampleState`] behind a lock, because a loss is
/// called through `&self`. Cloning a loss clones its state; two losses never share one.
#[derive(Debug)]
pub struct StateCell(Mutex<SampleState>);

impl StateCell {
    /// A fresh state of `loss` for `samples` dataset samples.
    pub fn new(loss: &str, infos: &[StateInfo], samples: usize) -> Self {
        Self(Mutex::new(SampleState::new(loss, infos, samples)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SampleState> {
        // a panic while the lock was held left plain numbers behind: still usable
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the state.
    pub fn get(&self) -> SampleState {
        self.lock().clone()
    }

    /// Replaces the state with `state`, which must be one of the same loss with the same
    /// variables ([`LossError::StateMismatch`] otherwise); its size becomes the dataset
    /// size.
    pub fn set(&self, state: SampleState) -> Result<(), LossError> {
        let mut s = self.lock();
        s.check_compatible(&state)?;
        *s = state;
        Ok(())
    }

    /// Every value back to its initial value.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// A fresh state for `samples` dataset samples.
    pub fn resize(&self, samples: usize) {
        let mut s = self.lock();
        for f in &mut s.fields {
            f.values = vec![f.init; samples];
        }
    }

    /// Checks the batch's `ids`: each below the dataset size, none twice.
    pub fn check_ids(&self, ids: &[usize]) -> Result<(), LossError> {
        let samples = self.lock().samples();
        let mut seen = vec![false; samples];
        for (position, &id) in ids.iter().enumerate() {
            if id >= samples {
                return Err(LossError::IdOutOfRange {
                    position,
                    id,
                    samples,
                });
            }
            if std::mem::replace(&mut seen[id], true) {
                return Err(LossError::DuplicateId { position, id });
            }
        }
        Ok(())
    }

    /// The values of state variable `field` for `ids`, in the loss's precision.
    pub fn gather<E: crate::core::real::Real>(&self, field: usize, ids: &[usize]) -> Vec<E> {
        let s = self.lock();
        let values = &s.fields[field].values;
        ids.iter().map(|&id| E::from_f64(values[id])).collect()
    }

    /// Writes the new values of the state variables for `ids` (one per sample):
    /// `updates` holds `(variable, one value per sample, or one for all)` per update. A
    /// dataset sample with several rows (the views of an item) takes the mean of their
    /// new values.
    pub fn scatter(&self, ids: &[usize], updates: &[(usize, Vec<f64>)]) {
        // the rows of each dataset sample, found once for every variable
        let mut group_of: std::collections::HashMap<usize, usize> =
            std::collections::HashMap::with_capacity(ids.len());
        let mut samples: Vec<usize> = Vec::with_capacity(ids.len());
        let groups: Vec<usize> = ids
            .iter()
            .map(|&id| {
                *group_of.entry(id).or_insert_with(|| {
                    samples.push(id);
                    samples.len() - 1
                })
            })
            .collect();
        let mut counts = vec![0.0; samples.len()];
        for &g in &groups {
            counts[g] += 1.0;
        }
        let mut sums = vec![0.0; samples.len()];
        let mut s = self.lock();
        for (field, values) in updates {
            let value = |k: usize| {
                if values.len() == 1 {
                    values[0]
                } else {
                    values[k]
                }
            };
            let target = &mut s.fields[*field].values;
            if samples.len() == ids.len() {
                // one row per sample: a plain write
                for (k, &id) in ids.iter().enumerate() {
                    target[id] = value(k);
                }
                continue;
            }
            sums.fill(0.0);
            for (k, &g) in groups.iter().enumerate() {
                sums[g] += value(k);
            }
            for (g, &id) in samples.iter().enumerate() {
                target[id] = if counts[g] == 1.0 {
                    sums[g]
                } else {
                    sums[g] / counts[g]
                };
            }
        }
    }
}

impl Clone for StateCell {
    fn clone(&self) -> Self {
        Self(Mutex::new(self.get()))
    }
}

impl PartialEq for StateCell {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || self.get() == other.get()
    }
}

#[cfg(test)]
mod tests;
