//! `losskit`: lists the shipped losses, or evaluates one and its gradients on a JSON case.
//!
//! Every problem (a bad argument, an unreadable or malformed case, an input the loss
//! refuses) ends the program with exit status 2 and exactly one line on stderr.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use losskit::catalogue::{self, Entry};
use losskit::family::dynamic::{EvalError, Evaluation, Input, Precision};
use losskit::{HyperInfo, HyperKind, InputInfo, InputKind};
use serde_json::{Map, Number, Value};

/// What `losskit --help` prints.
const USAGE: &str = "\
losskit: loss functions written as math, with derived gradients

Usage:
  losskit list [--json]     list every shipped loss: family, paper, inputs, hyper-parameters
  losskit eval CASE.json    evaluate a loss and its gradients on a JSON case (`-` reads stdin)
  losskit --help            print this help
  losskit --version         print the version

CASE.json:
  {\"loss\": \"anyloss_f1\",                 a name from `losskit list`
   \"dtype\": \"f64\",                       optional: \"f32\" (default) or \"f64\"
   \"params\": {\"epsilon\": 1e-6},          optional: hyper-parameters by name;
                                         switches take true/false or 1/0
   \"inputs\": {\"probs\": [0.9, 0.2, 0.7],  by the names `losskit list` shows, as
              \"targets\": [1, 0, 1]}}     nested arrays (labels as integers)

`losskit eval` prints {\"loss\": number, \"grads\": {\"<input>\": nested arrays}}, one
gradient per differentiable input, shaped like it.

Exit status: 0 on success, 2 on any problem (described in one line on stderr).
";

/// A problem to report: one line on stderr, exit status 2.
struct Failure(String);

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

type Result<T, E = Failure> = std::result::Result<T, E>;

fn main() -> ExitCode {
    // any panic is reported as one line below, never with the default hook's backtrace
    panic::set_hook(Box::new(|_| {}));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(&args)))
        .unwrap_or_else(|payload| Err(Failure(internal_error(payload.as_ref()))));
    let Failure(message) = match outcome.and_then(|out| print(&out)) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(failure) => failure,
    };
    // one line, whatever the message holds
    let line = message.replace(['\n', '\r'], " ");
    let _ = writeln!(io::stderr().lock(), "losskit: {line}");
    ExitCode::from(2)
}

fn internal_error(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown cause");
    format!("internal error: {what} (please report this)")
}

/// Writes the output; a closed pipe (`losskit list | head`) is not an error.
fn print(out: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Runs the command line; returns what to print on stdout.
fn run(args: &[OsString]) -> Result<String> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::new(
            "missing command; usage: `losskit list [--json]` or `losskit eval CASE.json` (see `losskit --help`)",
        ));
    };
    let command = utf8(command)?;
    match command {
        "-h" | "--help" | "help" => Ok(USAGE.to_string()),
        "-V" | "--version" => Ok(format!("losskit {}\n", env!("CARGO_PKG_VERSION"))),
        "list" => list(rest),
        "eval" => eval(rest),
        _ => Err(Failure(format!(
            "unknown command `{command}`{}; run `losskit --help` for usage",
            did_you_mean(command, ["list", "eval", "--help", "--version"])
        ))),
    }
}

fn utf8(arg: &OsStr) -> Result<&str> {
    arg.to_str().ok_or_else(|| {
        Failure(format!(
            "argument `{}` is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
}

// ---------------------------------------------------------------------------------------
// losskit list

fn list(args: &[OsString]) -> Result<String> {
    let mut json = false;
    for arg in args {
        match utf8(arg)? {
            "--json" => json = true,
            "-h" | "--help" => return Ok(USAGE.to_string()),
            other => {
                return Err(Failure(format!(
                    "unknown argument `{other}` to `losskit list`{}; it takes only `--json`",
                    did_you_mean(other, ["--json"])
                )))
            }
        }
    }
    if json {
        let all = catalogue::all().iter().map(entry_json).collect();
        let mut out = serde_json::to_string_pretty(&Value::Array(all))
            .map_err(|e| Failure(format!("cannot write JSON: {e}")))?;
        out.push('\n');
        Ok(out)
    } else {
        let mut out = String::new();
        for (k, entry) in catalogue::all().iter().enumerate() {
            if k > 0 {
                out.push('\n');
            }
            entry_text(&mut out, entry);
        }
        Ok(out)
    }
}

fn entry_text(out: &mut String, entry: &Entry) {
    let info = entry.info;
    // `write!` into a `String` cannot fail
    let _ = writeln!(out, "{} ({})", info.name, info.family.name());
    if !info.summary.is_empty() {
        let _ = writeln!(out, "  {}", info.summary);
    }
    if !info.paper.is_empty() {
        let _ = writeln!(out, "  paper: {}", info.paper);
    }
    out.push_str("  inputs:\n");
    let inputs = info.family.inputs();
    let name_w = column_width(inputs.iter().map(|i| i.name));
    let shape_w = column_width(inputs.iter().map(|i| i.shape));
    for input in inputs {
        let grad = if input.differentiable {
            "differentiable"
        } else {
            "not differentiable"
        };
        let _ = write!(
            out,
            "    {:name_w$}  {:shape_w$}  {grad:18}  {}",
            input.name,
            input.shape,
            kind_text(input.kind)
        );
        if let Some(alt) = input.alternative_to {
            let _ = write!(out, " (instead of `{alt}`)");
        }
        out.push('\n');
    }
    if info.hypers.is_empty() {
        out.push_str("  hyper-parameters: none\n");
        return;
    }
    out.push_str("  hyper-parameters:\n");
    let name_w = column_width(info.hypers.iter().map(|h| h.name));
    let defaults: Vec<String> = info.hypers.iter().map(default_text).collect();
    let default_w = column_width(defaults.iter().map(String::as_str));
    let constraints: Vec<&str> = info.hypers.iter().map(constraint_text).collect();
    let constraint_w = column_width(constraints.iter().copied());
    for ((h, default), constraint) in info.hypers.iter().zip(&defaults).zip(&constraints) {
        let line = format!(
            "    {:name_w$} = {default:default_w$}  {constraint:constraint_w$}  {}",
            h.name, h.doc
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn column_width<'a>(items: impl Iterator<Item = &'a str>) -> usize {
    items.map(|s| s.chars().count()).max().unwrap_or(0)
}

fn kind_text(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Real => "real numbers",
        InputKind::Probability => "probabilities in [0, 1]",
        InputKind::Binary => "0 or 1",
        InputKind::Label => "class indices in 0..C",
    }
}

fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Real => "real",
        InputKind::Probability => "probability",
        InputKind::Binary => "binary",
        InputKind::Label => "label",
    }
}

fn default_text(h: &HyperInfo) -> String {
    match h.kind {
        HyperKind::Flag => (h.default != 0.0).to_string(),
        HyperKind::Real if h.default.fract() == 0.0 && h.default.abs() < 1e15 => {
            format!("{}", h.default)
        }
        HyperKind::Real => format!("{:?}", h.default),
    }
}

fn constraint_text(h: &HyperInfo) -> &'static str {
    match h.kind {
        HyperKind::Flag => "true/false",
        HyperKind::Real if h.constraint.is_empty() => "any",
        HyperKind::Real => h.constraint,
    }
}

fn entry_json(entry: &Entry) -> Value {
    let info = entry.info;
    let mut obj = Map::new();
    obj.insert("name".into(), info.name.into());
    obj.insert("family".into(), info.family.name().into());
    obj.insert("paper".into(), info.paper.into());
    obj.insert("summary".into(), info.summary.into());
    let inputs = info.family.inputs().iter().map(input_json).collect();
    obj.insert("inputs".into(), Value::Array(inputs));
    let hypers = info.hypers.iter().map(hyper_json).collect();
    obj.insert("hypers".into(), Value::Array(hypers));
    obj.insert("definition".into(), info.definition.into());
    obj.insert("gradient".into(), info.gradient.into());
    Value::Object(obj)
}

fn input_json(input: &InputInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), input.name.into());
    obj.insert("shape".into(), input.shape.into());
    obj.insert("differentiable".into(), input.differentiable.into());
    obj.insert("kind".into(), kind_name(input.kind).into());
    obj.insert("alternative_to".into(), input.alternative_to.into());
    Value::Object(obj)
}

fn hyper_json(h: &HyperInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), h.name.into());
    let (kind, default) = match h.kind {
        HyperKind::Real => ("real", number(h.default)),
        HyperKind::Flag => ("flag", Value::Bool(h.default != 0.0)),
    };
    obj.insert("kind".into(), kind.into());
    obj.insert("default".into(), default);
    obj.insert("constraint".into(), h.constraint.into());
    obj.insert("doc".into(), h.doc.into());
    Value::Object(obj)
}

/// A JSON number (`null` where JSON has none: NaN, ±∞).
fn number(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

// ---------------------------------------------------------------------------------------
// losskit eval

/// The keys a case may have.
const CASE_KEYS: [&str; 4] = ["loss", "dtype", "params", "inputs"];

fn eval(args: &[OsString]) -> Result<String> {
    let path =
        match args {
            [] => return Err(Failure::new(
                "`losskit eval` needs a case file: `losskit eval CASE.json` (see `losskit --help`)",
            )),
            [arg] if arg == "-h" || arg == "--help" => return Ok(USAGE.to_string()),
            [path] => path,
            _ => {
                return Err(Failure(format!(
                    "`losskit eval` takes one case file, got {} arguments",
                    args.len()
                )))
            }
        };
    let (source, text) = read_case(path)?;
    let case: Value = serde_json::from_str(&text)
        .map_err(|e| Failure(format!("invalid JSON in {source}: {e}")))?;
    let Value::Object(case) = case else {
        return Err(Failure(format!(
            "{source} must hold a JSON object with `loss` and `inputs`, not {}",
            describe(&case)
        )));
    };
    for key in case.keys() {
        if !CASE_KEYS.contains(&key.as_str()) {
            return Err(Failure(format!(
                "unknown key `{key}` in {source}{}; a case has `loss`, `dtype`, `params` and `inputs`",
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
    Ok(output(&evaluation, precision))
}

/// Reads the case file (`-`: stdin); returns how to name it in messages and its text.
fn read_case(path: &OsStr) -> Result<(String, String)> {
    let mut text = String::new();
    if path == "-" {
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure(format!("cannot read the case from stdin: {e}")))?;
        return Ok(("stdin".to_string(), text));
    }
    let name = format!("`{}`", path.to_string_lossy());
    text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read case file {name}: {e}")))?;
    Ok((name, text))
}

fn case_loss(case: &Map<String, Value>) -> Result<&'static Entry> {
    let name = match case.get("loss") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(Failure(format!(
                "`loss` must be a string naming a loss, not {}",
                describe(other)
            )))
        }
        None => {
            return Err(Failure::new(
                "missing `loss`: the case must name a loss (see `losskit list`)",
            ))
        }
    };
    catalogue::find(name).ok_or_else(|| {
        Failure(format!(
            "unknown loss `{name}`{}; run `losskit list` to see every loss",
            did_you_mean(name, catalogue::all().iter().map(Entry::name))
        ))
    })
}

fn case_precision(case: &Map<String, Value>) -> Result<Precision> {
    let names = Precision::ALL.map(Precision::name);
    match case.get("dtype") {
        None => Ok(Precision::default()),
        Some(Value::String(name)) => Precision::from_name(name).ok_or_else(|| {
            Failure(format!(
                "unknown dtype `{name}`{}; expected `f32` or `f64`",
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
                "`{loss}` has no hyper-parameter `{name}`{}; {known}",
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

/// A nested JSON array as its shape and row-major values; ragged arrays and non-numbers
/// are refused, naming the element (`logits[1][2]`).
fn flatten(name: &str, value: &Value) -> Result<(Vec<usize>, Vec<f64>)> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut values = Vec::with_capacity(shape.iter().product());
    let mut path = name.to_string();
    collect(value, &shape, &mut path, &mut values)?;
    Ok((shape, values))
}

fn collect(value: &Value, shape: &[usize], path: &mut String, out: &mut Vec<f64>) -> Result<()> {
    match (shape.split_first(), value) {
        (None, Value::Number(n)) => {
            let x = n.as_f64().ok_or_else(|| {
                Failure(format!("`{path}` = {n} is not a number losskit can read"))
            })?;
            out.push(x);
            Ok(())
        }
        (None, Value::Array(_)) => Err(Failure(format!(
            "ragged array: `{path}` is an array where a number was expected"
        ))),
        (None, other) => Err(Failure(format!(
            "`{path}` is {}, expected a number",
            describe(other)
        ))),
        (Some((&len, rest)), Value::Array(items)) => {
            if items.len() != len {
                return Err(Failure(format!(
                    "ragged array: `{path}` has {} element{}, expected {len} like its first sibling",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                )));
            }
            for (k, item) in items.iter().enumerate() {
                let end = path.len();
                let _ = write!(path, "[{k}]");
                collect(item, rest, path, out)?;
                path.truncate(end);
            }
            Ok(())
        }
        (Some((&len, _)), other) => Err(Failure(format!(
            "ragged array: `{path}` is {}, expected an array of {len}",
            describe(other)
        ))),
    }
}

/// A JSON value's kind in words, for messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn eval_failure(e: &EvalError) -> Failure {
    let hint = match e {
        EvalError::UnknownInput { family, name, .. } => {
            did_you_mean(name, family.inputs().iter().map(|i| i.name))
        }
        _ => String::new(),
    };
    Failure(format!("{e}{hint}"))
}

/// `{"loss": .., "grads": {..}}`, one line. `f32` results are printed with the fewest
/// digits that read back as the same `f32`.
fn output(evaluation: &Evaluation, precision: Precision) -> String {
    let real = |x: f64| match precision {
        Precision::F32 => number(shortest_f32(x)),
        Precision::F64 => number(x),
    };
    let mut out = format!("{{\"loss\":{},\"grads\":{{", real(evaluation.loss));
    for (k, grad) in evaluation.grads.iter().enumerate() {
        let values: Vec<Value> = grad.values.iter().map(|&x| real(x)).collect();
        let sep = if k == 0 { "" } else { "," };
        let _ = write!(
            out,
            "{sep}{}:{}",
            Value::from(grad.input),
            nest(&grad.shape, &values)
        );
    }
    out.push_str("}}\n");
    out
}

/// An `f32` widened to `f64` as the decimal it prints as (`0.1f32` → `0.1`, not
/// `0.10000000149011612`).
fn shortest_f32(x: f64) -> f64 {
    let x32 = x as f32;
    x32.to_string().parse().unwrap_or(x)
}

/// Row-major `values` as nested arrays of `shape`.
fn nest(shape: &[usize], values: &[Value]) -> Value {
    match shape.split_first() {
        None => values.first().cloned().unwrap_or(Value::Null),
        Some((&rows, rest)) => {
            let stride: usize = rest.iter().product();
            let rows = (0..rows)
                .map(|r| {
                    let row = values.get(r * stride..(r + 1) * stride).unwrap_or(&[]);
                    nest(rest, row)
                })
                .collect();
            Value::Array(rows)
        }
    }
}

// ---------------------------------------------------------------------------------------
// did you mean

/// `" (did you mean `x`?)"` for the closest candidate within a few edits, else `""`.
fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let limit = (given.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(given, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map_or_else(String::new, |(_, c)| format!(" (did you mean `{c}`?)"))
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row.push(substitute.min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}
