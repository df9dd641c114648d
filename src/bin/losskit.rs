//! `losskit`: lists the shipped losses, evaluates one and its gradients on a JSON case, or
//! shows the pair weights of a pairs loss on a synthetic batch (as a table or a PNG plot).
//!
//! Every problem (a bad argument, an unreadable or malformed case, an input the loss
//! refuses) ends the program with exit status 2 and exactly one line on stderr.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;

use losskit::catalogue::{self, Entry};
use losskit::family::dynamic::{EvalError, Evaluation, Input, PairWeights, Precision};
use losskit::{HyperInfo, HyperKind, InputInfo, InputKind, Metric};
use plotters::prelude::{
    BitMapBackend, ChartBuilder, Circle, Color, FontStyle, IntoDrawingArea, PathElement, RGBColor,
    SeriesLabelPosition, BLACK, WHITE,
};
use serde_json::{Map, Number, Value};

/// What `losskit --help` prints.
const USAGE: &str = "\
losskit: loss functions written as math, with derived gradients

Usage:
  losskit list [--json]     list every shipped loss: family, paper, inputs, hyper-parameters
  losskit eval CASE.json    evaluate a loss and its gradients on a JSON case (`-` reads stdin)
  losskit gpw LOSS [--out weights.png] [--n N] [--classes C] [--dim D] [--seed S]
                            the pair weights W = dL/dS of a pairs loss on a synthetic batch:
                            N embeddings (64) from C Gaussian clusters (8) in D dims (16),
                            labelled by cluster, seed S (0); a table of the weights by
                            similarity, or with --out a PNG scatter plot of weight against
                            similarity, positive and negative pairs in two colours
  losskit --help            print this help
  losskit --version         print the version

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

`losskit eval` prints {\"loss\": number, \"grads\": {\"<input>\": nested arrays}}, one
gradient per differentiable input given, shaped like it.

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
    // one line, whatever the message holds, and of a readable length
    let line = clipped(&message.replace(['\n', '\r'], " "), MAX_LINE).into_owned();
    let _ = writeln!(io::stderr().lock(), "losskit: {line}");
    ExitCode::from(2)
}

/// The longest message line `losskit` prints, in characters.
const MAX_LINE: usize = 2000;

/// The longest user-given name (a loss, a key, a command) a message repeats.
const MAX_NAME: usize = 64;

/// `text` cut to `max` characters, with an ellipsis where it was cut.
fn clipped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// A user-given name as messages repeat it: at most [`MAX_NAME`] characters.
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    clipped(name, MAX_NAME)
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
            "missing command; usage: `losskit list [--json]`, `losskit eval CASE.json` or `losskit gpw LOSS` (see `losskit --help`)",
        ));
    };
    let command = utf8(command)?;
    match command {
        "-h" | "--help" | "help" => Ok(USAGE.to_string()),
        "-V" | "--version" => Ok(format!("losskit {}\n", env!("CARGO_PKG_VERSION"))),
        "list" => list(rest),
        "eval" => eval(rest),
        "gpw" => gpw(rest),
        _ => Err(Failure(format!(
            "unknown command `{}`{}; run `losskit --help` for usage",
            shown(command),
            did_you_mean(command, ["list", "eval", "gpw", "--help", "--version"])
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
        if input.optional {
            out.push_str(" (optional)");
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
    obj.insert("optional".into(), input.optional.into());
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

/// A JSON number (`null` where JSON has none: NaN, ±∞); `-0` is written `0`.
fn number(x: f64) -> Value {
    let x = if x == 0.0 { 0.0 } else { x };
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A case's JSON, refusing an object that repeats a key (serde_json would keep the last
/// one silently): the error names the key and where it is repeated.
fn parse_case(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let Unique(value) = serde::Deserialize::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A JSON value whose objects have no repeated key.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
        Ok(x.into())
    }

    fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
        Ok(x.into())
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Number::from_f64(x).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{}`",
                    shown(&key)
                )));
            }
            let Unique(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
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
    let case = parse_case(&text).map_err(|e| Failure(format!("invalid JSON in {source}: {e}")))?;
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
            "unknown loss `{}`{}; run `losskit list` to see every loss",
            shown(name),
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
// losskit gpw

/// The largest batch `losskit gpw` builds (about `N²` pairs, each a point of the plot).
const GPW_MAX_N: usize = 1024;

/// The largest embedding width `losskit gpw` builds.
const GPW_MAX_DIM: usize = 4096;

/// The spread of each synthetic cluster around its centre (the centres are standard
/// normal): close enough that some negatives are harder than some positives.
const CLUSTER_SPREAD: f64 = 0.9;

/// The number of similarity bins in the table.
const BINS: usize = 10;

/// What `losskit gpw` was asked for.
struct GpwOptions {
    entry: &'static Entry,
    out: Option<OsString>,
    n: usize,
    classes: usize,
    dim: usize,
    seed: u64,
}

const GPW_FLAGS: [&str; 5] = ["--out", "--n", "--classes", "--dim", "--seed"];

fn gpw(args: &[OsString]) -> Result<String> {
    let Some(options) = gpw_options(args)? else {
        return Ok(USAGE.to_string());
    };
    let entry = options.entry;
    let (embeddings, labels) =
        synthetic_batch(options.n, options.classes, options.dim, options.seed);
    let inputs = [
        Input::new("embeddings", vec![options.n, options.dim], embeddings),
        Input::new("labels", vec![options.n], labels),
    ];
    let weights = entry
        .pair_weights(&inputs, &[])
        .map_err(|e| eval_failure(&e))?;
    let loss = entry
        .evaluate(&inputs, &[], Precision::F64)
        .map_err(|e| eval_failure(&e))?
        .loss;
    let batch = format!(
        "{} embeddings from {} Gaussian clusters in {} dims (seed {}), labelled by cluster",
        options.n, options.classes, options.dim, options.seed
    );
    let stats = PairStats::new(&weights);
    match &options.out {
        None => Ok(gpw_table(entry, &weights, &stats, &batch, loss)),
        Some(path) => {
            gpw_plot(Path::new(path), entry, &weights, &stats, &batch)?;
            Ok(format!(
                "wrote {}: {} pairs ({} positive, {} negative) of `{}`\n",
                Path::new(path).display(),
                weights.weights.len(),
                stats.positive.count,
                stats.negative.count,
                entry.name()
            ))
        }
    }
}

/// The options of `losskit gpw`; `None` for `--help`.
fn gpw_options(args: &[OsString]) -> Result<Option<GpwOptions>> {
    let mut loss: Option<&str> = None;
    let mut out = None;
    let (mut n, mut classes, mut dim, mut seed) = (64, 8, 16, 0);
    let mut k = 0;
    while k < args.len() {
        let arg = utf8(&args[k])?;
        k += 1;
        if !arg.starts_with('-') {
            if let Some(first) = loss {
                return Err(Failure(format!(
                    "`losskit gpw` takes one loss, got `{first}` and `{arg}`"
                )));
            }
            loss = Some(arg);
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(OsString::from(value))),
            None => (arg, None),
        };
        if !GPW_FLAGS.contains(&flag) {
            return Err(Failure(format!(
                "unknown option `{flag}` to `losskit gpw`{}; it takes `--out`, `--n`, `--classes`, `--dim` and `--seed`",
                did_you_mean(flag, GPW_FLAGS)
            )));
        }
        let value = match inline {
            Some(value) => value,
            None if k < args.len() => {
                k += 1;
                args[k - 1].clone()
            }
            None => return Err(Failure(format!("`{flag}` needs a value"))),
        };
        match flag {
            "--out" => out = Some(value),
            "--n" => n = count(flag, &value, 2, GPW_MAX_N)?,
            "--classes" => classes = count(flag, &value, 1, GPW_MAX_N)?,
            "--dim" => dim = count(flag, &value, 1, GPW_MAX_DIM)?,
            _ => {
                let text = utf8(&value)?;
                seed = text.parse().map_err(|_| {
                    Failure(format!(
                        "`--seed` must be a non-negative integer, not `{text}`"
                    ))
                })?;
            }
        }
    }
    let Some(loss) = loss else {
        return Err(Failure::new(
            "`losskit gpw` needs a pairs loss: `losskit gpw LOSS [--out weights.png]` (see `losskit --help`)",
        ));
    };
    let entry = catalogue::find(loss).ok_or_else(|| {
        Failure(format!(
            "unknown loss `{loss}`{}; run `losskit list` to see every loss",
            did_you_mean(loss, catalogue::all().iter().map(Entry::name))
        ))
    })?;
    if !entry.has_pair_weights() {
        let pairs: Vec<String> = catalogue::all()
            .iter()
            .filter(|e| e.has_pair_weights())
            .map(|e| format!("`{}`", e.name()))
            .collect();
        return Err(Failure(format!(
            "`{loss}` is a `{}` loss; `losskit gpw` shows the pair weights of a `pairs` loss: {}",
            entry.info.family.name(),
            pairs.join(", ")
        )));
    }
    if classes > n {
        return Err(Failure(format!(
            "`--classes` ({classes}) must not exceed `--n` ({n}): every cluster needs an embedding"
        )));
    }
    if let Some(path) = &out {
        let png = Path::new(path)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !png {
            return Err(Failure(format!(
                "`--out` must name a .png file, not `{}`",
                path.to_string_lossy()
            )));
        }
    }
    Ok(Some(GpwOptions {
        entry,
        out,
        n,
        classes,
        dim,
        seed,
    }))
}

/// An integer option's value in `min..=max`.
fn count(flag: &str, value: &OsStr, min: usize, max: usize) -> Result<usize> {
    let text = utf8(value)?;
    match text.parse::<usize>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(Failure(format!(
            "`{flag}` must be an integer from {min} to {max}, not `{text}`"
        ))),
    }
}

/// SplitMix64: a small, seeded, reproducible generator (std has none).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` embeddings `[n, dim]` (row-major) around `classes` standard-normal centres, each
/// `CLUSTER_SPREAD` away in every coordinate on average; embedding `i` is in cluster
/// `i mod classes`, which is its label.
fn synthetic_batch(n: usize, classes: usize, dim: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64(seed);
    let centres: Vec<f64> = (0..classes * dim).map(|_| rng.normal()).collect();
    let mut embeddings = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        labels.push(c as f64);
        for x in &centres[c * dim..(c + 1) * dim] {
            embeddings.push(x + CLUSTER_SPREAD * rng.normal());
        }
    }
    (embeddings, labels)
}

/// Counts and bin means of one side (positive or negative pairs).
#[derive(Default)]
struct Side {
    count: usize,
    nonzero: usize,
    sum_abs: f64,
    /// Per similarity bin: the number of pairs and the sum of their weights.
    bins: [(usize, f64); BINS],
    /// The `(similarity, weight)` of each pair, for the plot.
    points: Vec<(f64, f64)>,
}

impl Side {
    fn mean_abs(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_abs / self.count as f64)
    }
}

/// The pair weights summarised for the table and the plot.
struct PairStats {
    positive: Side,
    negative: Side,
    /// The similarity range the bins split evenly.
    lo: f64,
    hi: f64,
}

impl PairStats {
    fn new(w: &PairWeights) -> Self {
        let lo = w.similarities.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = w
            .similarities
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let mut stats = Self {
            positive: Side::default(),
            negative: Side::default(),
            lo,
            hi,
        };
        let width = (hi - lo) / BINS as f64;
        for ((&s, &weight), &positive) in w.similarities.iter().zip(&w.weights).zip(&w.positive) {
            let side = if positive {
                &mut stats.positive
            } else {
                &mut stats.negative
            };
            side.count += 1;
            side.nonzero += usize::from(weight != 0.0);
            side.sum_abs += weight.abs();
            let bin = if width > 0.0 {
                (((s - lo) / width) as usize).min(BINS - 1)
            } else {
                0
            };
            side.bins[bin].0 += 1;
            side.bins[bin].1 += weight;
            side.points.push((s, weight));
        }
        stats
    }
}

/// What `S` holds, in words, and its axis name.
fn metric_words(w: &PairWeights) -> (&'static str, &'static str) {
    match w.metric {
        Some(Metric::Cosine) => ("cosine similarity", "similarity"),
        Some(Metric::Dot) => ("dot-product similarity", "similarity"),
        Some(Metric::Euclidean) => ("Euclidean distance", "distance"),
        Some(Metric::SquaredEuclidean) => ("squared Euclidean distance", "distance"),
        _ => ("given similarities", "similarity"),
    }
}

/// `x` with four significant digits, or `-` for none.
fn sci(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.3e}"))
}

fn gpw_table(entry: &Entry, w: &PairWeights, stats: &PairStats, batch: &str, loss: f64) -> String {
    let (metric, axis) = metric_words(w);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: pair weights W = dL/dS (General Pair Weighting)",
        entry.name()
    );
    let _ = writeln!(out, "batch: {batch}");
    let _ = writeln!(
        out,
        "S: {metric}; {} pairs{}; loss L = {loss:.6}",
        w.weights.len(),
        if w.against_itself {
            " (self-pairs left out)"
        } else {
            ""
        }
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "{:10}{:>8}{:>10}{:>12}",
        "", "pairs", "w != 0", "mean |w|"
    );
    for (name, side) in [("positive", &stats.positive), ("negative", &stats.negative)] {
        let _ = writeln!(
            out,
            "{name:10}{:>8}{:>10}{:>12}",
            side.count,
            side.nonzero,
            sci(side.mean_abs())
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "mean w by {axis} ({BINS} bins over [{:.3}, {:.3}]):",
        stats.lo, stats.hi
    );
    let _ = writeln!(
        out,
        "  {:18}{:>10}{:>12}{:>10}{:>12}",
        axis, "positive", "mean w", "negative", "mean w"
    );
    let width = (stats.hi - stats.lo) / BINS as f64;
    for bin in 0..BINS {
        let a = stats.lo + width * bin as f64;
        let b = if bin + 1 == BINS { stats.hi } else { a + width };
        let close = if bin + 1 == BINS { ']' } else { ')' };
        let range = format!("[{a:.3}, {b:.3}{close}");
        let cell = |side: &Side| {
            let (count, sum) = side.bins[bin];
            (count, sci((count > 0).then(|| sum / count as f64)))
        };
        let (pc, pm) = cell(&stats.positive);
        let (nc, nm) = cell(&stats.negative);
        let _ = writeln!(out, "  {range:18}{pc:>10}{pm:>12}{nc:>10}{nm:>12}");
    }
    out
}

/// Draws the scatter plot of weight against similarity to the PNG file `path`.
fn gpw_plot(
    path: &Path,
    entry: &Entry,
    w: &PairWeights,
    stats: &PairStats,
    batch: &str,
) -> Result<()> {
    register_font();
    let failure =
        |e: &dyn std::fmt::Display| Failure(format!("cannot draw `{}`: {e}", path.display()));
    let (metric, _) = metric_words(w);
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failure(&e))?;
    let title = format!("{}: pair weights W = ∂L/∂S", entry.name());
    let area = root.titled(&title, (FONT, 28)).map_err(|e| failure(&e))?;
    let (x0, x1) = padded(stats.lo, stats.hi);
    let (w_lo, w_hi) = w
        .weights
        .iter()
        .fold((0.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (y0, y1) = padded(w_lo, w_hi);
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{batch}; S: {metric}"), (FONT, 16))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| failure(&e))?;
    let scale = w_lo.abs().max(w_hi.abs());
    let y_label = |y: &f64| {
        if scale >= 0.01 || scale == 0.0 {
            format!("{y:.3}")
        } else {
            format!("{y:.1e}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(format!("{metric} S_ij"))
        .y_desc("weight w_ij = ∂L/∂S_ij")
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 14))
        .y_label_formatter(&y_label)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| failure(&e))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x0, 0.0), (x1, 0.0)],
            BLACK.mix(0.5),
        )))
        .map_err(|e| failure(&e))?;
    // negatives first: there are many more of them, and the positives stay visible on top
    for (side, color, name) in [
        (&stats.negative, NEGATIVE, "negative"),
        (&stats.positive, POSITIVE, "positive"),
    ] {
        chart
            .draw_series(
                side.points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.mix(0.55).filled())),
            )
            .map_err(|e| failure(&e))?
            .label(format!(
                "{name} pairs ({}, {} with w ≠ 0)",
                side.count, side.nonzero
            ))
            .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| failure(&e))?;
    root.present().map_err(|e| failure(&e))?;
    Ok(())
}

/// The font every text of the plot uses, bundled in the binary (DejaVu Sans).
const FONT: &str = "sans-serif";

/// Colours of the positive and negative pairs (a blue and an orange-red).
const POSITIVE: RGBColor = RGBColor(31, 100, 200);
const NEGATIVE: RGBColor = RGBColor(225, 80, 30);

/// Registers the bundled font as [`FONT`]; plotters draws text only with registered fonts.
fn register_font() {
    // a font compiled into the binary always parses; if it did not, text would be missing
    // from the plot, not wrong
    let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
}

/// `[lo, hi]` widened by 5% on each side (by 1 when empty).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

// ---------------------------------------------------------------------------------------
// did you mean

/// `" (did you mean `x`?)"` for the closest candidate within a few edits, else `""`.
/// Names longer than [`MAX_NAME`] get no suggestion: the search is quadratic in the length.
fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    if given.chars().nth(MAX_NAME).is_some() {
        return String::new();
    }
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
