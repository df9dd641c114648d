//! `losskit list`: every shipped loss with its family, paper, inputs and
//! hyper-parameters, as aligned text or (`--json`) as a JSON array.

use std::fmt::Write as _;

use losskit::catalogue::{self, Entry};
use losskit::{HyperInfo, HyperKind, InputInfo, InputKind};
use serde_json::{Map, Value};

use crate::failure::{Failure, Result};
use crate::json::number;

/// The arguments of `losskit list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array, one object per loss, instead of text
    #[arg(long)]
    pub json: bool,
}

/// Runs `losskit list`; returns what to print.
pub fn run(args: &ListArgs) -> Result<String> {
    if args.json {
        let all = catalogue::all().iter().map(entry_json).collect();
        let mut out = serde_json::to_string_pretty(&Value::Array(all))
            .map_err(|e| Failure(format!("cannot write JSON: {e}")))?;
        out.push('\n');
        return Ok(out);
    }
    let mut out = String::new();
    for (k, entry) in catalogue::all().iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        entry_text(&mut out, entry);
    }
    Ok(out)
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
