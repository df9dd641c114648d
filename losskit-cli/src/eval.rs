//! `losskit eval CASE.json`: evaluates a loss and its gradients on a JSON case and prints
//! `{"loss": number, "grads": {"<input>": nested arrays}}`.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use losskit::catalogue::Entry;
use losskit::family::dynamic::{Evaluation, Input, Precision};
use losskit::HyperKind;
use serde_json::{Map, Value};

use crate::failure::{shown, Failure, Result};
use crate::json::{describe, flatten, nest, number, parse_unique, shortest_f32};
use crate::lookup::{eval_failure, find_loss};
use crate::suggest::did_you_mean;

/// What `losskit eval --help` shows after the options: the case's format.
pub const CASE_HELP: &str = "\
CASE.json:
  {\"loss\": \"anyloss_f1\",                 a name from `losskit list`
   \"dtype\": \"f64\",                       optional: \"f32\" (default) or \"f64\"
   \"params\": {\"epsilon\": 1e-6},          optional: hyper-parameters by name;
                                         switches take true/false or 1/0
   \"inputs\": {\"probs\": [0.9, 0.2, 0.7],  by the names `losskit list` shows, as
              \"targets\": [1, 0, 1]}}     nested arrays (labels as integers)

Inputs by family (`losskit list` shows each loss's):
  binary   \"probs\" or \"logits\" [N] or [N, 1], \"targets\" (0/1) of the same shape
  logits   \"logits\" [N, C], \"labels\" [N]
  pairs    \"embeddings\" [N, d] or \"similarities\" [N, M], \"labels\" [N]; optional
           \"ref_embeddings\" [M, d] with \"ref_labels\" [M] for a reference set (with
           \"similarities\", \"ref_labels\" alone); embeddings are compared with the
           loss's default metric
  scores   \"scores\" [Q, D], \"relevance\" (0/1) [Q, D]
A loss that declares inputs takes each by its declared name too, in the shape and
role `losskit list` shows (labels as integers, masks as 0/1).

Output: {\"loss\": number, \"grads\": {\"<input>\": nested arrays}} on one line, one
gradient per differentiable input given (declared ones too), shaped like it.";

/// The arguments of `losskit eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = CASE_HELP)]
pub struct EvalArgs {
    /// The case: a JSON file, or `-` to read it from stdin
    #[arg(value_name = "CASE.json")]
    pub case: PathBuf,
}

/// The keys a case may have.
const CASE_KEYS: [&str; 4] = ["loss", "dtype", "params", "inputs"];

/// Runs `losskit eval`; returns what to print.
pub fn run(args: &EvalArgs) -> Result<String> {
    let (source, text) = read_case(&args.case)?;
    let case =
        parse_unique(&text).map_err(|e| Failure(format!("invalid JSON in {source}: {e}")))?;
    let Value::Object(case) = case else {
        return Err(Failure(format!(
            "{source} must hold a JSON object with `loss` and `inputs`, not {}",
            describe(&case)
        )));
    };
    for key in case.keys() {
        if !CASE_KEYS.contains(&key.as_str()) {
            return Err(Failure(format!(
                "unknown key `{}` in {source}{}; a case has `loss`, `dtype`, `params` and `inputs`",
                shown(key),
                did_you_mean(key, CASE_KEYS)
            )));
        }
    }
    let entry = case_loss(&case)?;
    let precision = case_precision(&case)?;
    let params = case_params(entry, &case)?;
    let inputs = case_inputs(&case)?;
    let params: Vec<(&str, f64)> = params.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let evaluation = entry
        .evaluate(&inputs, &params, precision)
        .map_err(|e| eval_failure(&e))?;
    output(&evaluation, precision)
}

/// Reads the case file (`-`: stdin); returns how to name it in messages and its text.
fn read_case(path: &Path) -> Result<(String, String)> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure(format!("cannot read the case from stdin: {e}")))?;
        return Ok(("stdin".to_string(), text));
    }
    let name = format!("`{}`", path.display());
    text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read case file {name}: {e}")))?;
    Ok((name, text))
}

fn case_loss(case: &Map<String, Value>) -> Result<&'static Entry> {
    match case.get("loss") {
        Some(Value::String(name)) => find_loss(name),
        Some(other) => Err(Failure(format!(
            "`loss` must be a string naming a loss, not {}",
            describe(other)
        ))),
        None => Err(Failure::new(
            "missing `loss`: the case must name a loss (see `losskit list`)",
        )),
    }
}

fn case_precision(case: &Map<String, Value>) -> Result<Precision> {
    let names = Precision::ALL.map(Precision::name);
    match case.get("dtype") {
        None => Ok(Precision::default()),
        Some(Value::String(name)) => Precision::from_name(name).ok_or_else(|| {
            Failure(format!(
                "unknown dtype `{}`{}; expected `f32` or `f64`",
                shown(name),
                did_you_mean(name, names)
            ))
        }),
        Some(other) => Err(Failure(format!(
            "`dtype` must be the string \"f32\" or \"f64\", not {}",
            describe(other)
        ))),
    }
}

/// The hyper-parameters of the case, checked against the loss's: known names, numbers for
/// real ones, booleans (or numbers) for switches.
fn case_params(entry: &Entry, case: &Map<String, Value>) -> Result<Vec<(String, f64)>> {
    let params = match case.get("params") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(params)) => params,
        Some(other) => {
            return Err(Failure(format!(
                "`params` must be an object of hyper-parameters, not {}",
                describe(other)
            )))
        }
    };
    let loss = entry.name();
    let hypers = entry.info.hypers;
    let mut out = Vec::with_capacity(params.len());
    for (name, value) in params {
        let Some(hyper) = hypers.iter().find(|h| h.name == name) else {
            let known = if hypers.is_empty() {
                "it has none".to_string()
            } else {
                let names: Vec<String> = hypers.iter().map(|h| format!("`{}`", h.name)).collect();
                format!("it has {}", names.join(", "))
            };
            return Err(Failure(format!(
                "`{loss}` has no hyper-parameter `{}`{}; {known}",
                shown(name),
                did_you_mean(name, hypers.iter().map(|h| h.name))
            )));
        };
        let value = match (hyper.kind, value) {
            (_, Value::Number(n)) => n.as_f64().ok_or_else(|| {
                Failure(format!(
                    "hyper-parameter `{name}` = {n} is not a number losskit can read"
                ))
            })?,
            (HyperKind::Flag, Value::Bool(b)) => f64::from(u8::from(*b)),
            (HyperKind::Flag, other) => {
                return Err(Failure(format!(
                "hyper-parameter `{name}` of `{loss}` is a switch: give true/false or 1/0, not {}",
                describe(other)
            )))
            }
            (HyperKind::Real, other) => {
                return Err(Failure(format!(
                    "hyper-parameter `{name}` of `{loss}` must be a number, not {}",
                    describe(other)
                )))
            }
        };
        out.push((name.clone(), value));
    }
    Ok(out)
}

fn case_inputs(case: &Map<String, Value>) -> Result<Vec<Input>> {
    let inputs = match case.get("inputs") {
        Some(Value::Object(inputs)) => inputs,
        Some(other) => {
            return Err(Failure(format!(
                "`inputs` must be an object of named arrays, not {}",
                describe(other)
            )))
        }
        None => {
            return Err(Failure::new(
                "missing `inputs`: the case must give the loss's inputs as named arrays",
            ))
        }
    };
    inputs
        .iter()
        .map(|(name, value)| {
            let (shape, values) = flatten(name, value)?;
            Ok(Input::new(name.clone(), shape, values))
        })
        .collect()
}

/// `{"loss": .., "grads": {..}}`, one line. `f32` results are printed with the fewest
/// digits that read back as the same `f32`. A NaN or infinite number, which JSON cannot
/// hold, is a failure rather than a `null` (the evaluator reports these itself; this is
/// the last guard).
fn output(evaluation: &Evaluation, precision: Precision) -> Result<String> {
    let values = evaluation.grads.iter().flat_map(|g| &g.values);
    if let Some(x) = [evaluation.loss]
        .iter()
        .chain(values)
        .find(|x| !x.is_finite())
    {
        return Err(Failure(format!(
            "the result is not finite ({x}); the loss is undefined on these inputs"
        )));
    }
    let real = |x: f64| match precision {
        Precision::F32 => number(shortest_f32(x)),
        Precision::F64 => number(x),
    };
    let mut out = format!("{{\"loss\":{},\"grads\":{{", real(evaluation.loss));
    for (k, grad) in evaluation.grads.iter().enumerate() {
        let values: Vec<Value> = grad.values.iter().map(|&x| real(x)).collect();
        let sep = if k == 0 { "" } else { "," };
        // `write!` into a `String` cannot fail
        let _ = write!(
            out,
            "{sep}{}:{}",
            Value::from(grad.input),
            nest(&grad.shape, &values)
        );
    }
    out.push_str("}}\n");
    Ok(out)
}
