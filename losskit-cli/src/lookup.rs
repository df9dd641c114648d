//! Finding a loss by the name `losskit list` shows, and the evaluator's errors as
//! failures (shared by `eval` and `gpw`).

use losskit::catalogue::{self, Entry};
use losskit::family::dynamic::EvalError;

use crate::failure::{shown, Failure, Result};
use crate::suggest::did_you_mean;

/// The loss a name from `losskit list` stands for, with a suggestion when it is unknown.
pub fn find_loss(name: &str) -> Result<&'static Entry> {
    catalogue::find(name).ok_or_else(|| {
        Failure(format!(
            "unknown loss `{}`{}; run `losskit list` to see every loss",
            shown(name),
            did_you_mean(name, catalogue::all().iter().map(Entry::name))
        ))
    })
}

/// An evaluation error as a failure, with a suggestion for a mistyped input name.
pub fn eval_failure(e: &EvalError) -> Failure {
    let hint = match e {
        EvalError::UnknownInput {
            family,
            declared,
            name,
            ..
        } => {
            let names = family.inputs().iter().map(|i| i.name);
            did_you_mean(name, names.chain(declared.iter().map(|d| d.name)))
        }
        _ => String::new(),
    };
    Failure(format!("{e}{hint}"))
}
