//! `losskit list`: every shipped loss with its family, paper, inputs (the family's, then
//! the ones it declares) and hyper-parameters, as aligned text or (`--json`) as a JSON
//! array; with `--all`, also every paper of the catalogue, shipped or not, and why.

use std::fmt::Write as _;

use losskit::catalogue;
use losskit::papers::{self, Paper};
use losskit::{DeclaredInfo, DeclaredRole, HyperInfo, HyperKind, InputInfo, InputKind, LossInfo};
use serde_json::{Map, Value};

use crate::failure::{Failure, Result};
use crate::json::number;

/// The arguments of `losskit list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array, one object per loss, instead of text
    #[arg(long)]
    pub json: bool,
    /// Also list every paper of the catalogue: the losses shipped from it, what is not
    /// shipped yet, or why it defines no training loss (with `--json`, an object with
    /// `losses` and `papers`)
    #[arg(long)]
    pub all: bool,
}

/// Runs `losskit list`; returns what to print.
pub fn run(args: &ListArgs) -> Result<String> {
    if args.json {
        let losses = Value::Array(
            catalogue::all()
                .iter()
                .map(|e| entry_json(e.info))
                .collect(),
        );
        let value = if args.all {
            let papers = papers::all().iter().map(paper_json).collect();
            let mut obj = Map::new();
            obj.insert("losses".into(), losses);
            obj.insert("papers".into(), Value::Array(papers));
            Value::Object(obj)
        } else {
            losses
        };
        let mut out = serde_json::to_string_pretty(&value)
            .map_err(|e| Failure(format!("cannot write JSON: {e}")))?;
        out.push('\n');
        return Ok(out);
    }
    let mut out = String::new();
    for (k, entry) in catalogue::all().iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        entry_text(&mut out, entry.info);
    }
    if args.all {
        out.push('\n');
        papers_text(&mut out, papers::all());
    }
    Ok(out)
}

/// The papers, a heading with the count of each status, then two lines a paper.
fn papers_text(out: &mut String, all: &[Paper]) {
    let _ = write!(out, "papers ({}", all.len());
    for status in [
        papers::Status::Shipped,
        papers::Status::Partly,
        papers::Status::NotYet,
        papers::Status::NoLoss,
    ] {
        let count = all.iter().filter(|p| p.status() == status).count();
        let _ = write!(out, "; {} {count}", status.name());
    }
    out.push_str(")\n");
    for p in all {
        let _ = writeln!(out, "  {:02} {} ({})", p.number, p.title, p.year);
        let status = p.status().name();
        match (p.losses.is_empty(), p.remaining.is_empty()) {
            (false, true) => {
                let _ = writeln!(out, "     {status}: {}", p.losses.join(", "));
            }
            (false, false) => {
                let _ = writeln!(out, "     {status}: {}", p.losses.join(", "));
                let _ = writeln!(out, "     not yet: {}", p.remaining);
            }
            (true, _) => {
                let _ = writeln!(out, "     {status}: {}", p.remaining);
            }
        }
    }
}

fn paper_json(p: &Paper) -> Value {
    let mut obj = Map::new();
    obj.insert("number".into(), p.number.into());
    obj.insert("title".into(), p.title.into());
    obj.insert("year".into(), p.year.into());
    obj.insert("status".into(), p.status().name().into());
    let losses = p.losses.iter().map(|&l| Value::from(l)).collect();
    obj.insert("losses".into(), Value::Array(losses));
    obj.insert("remaining".into(), p.remaining.into());
    Value::Object(obj)
}

fn entry_text(out: &mut String, info: &LossInfo) {
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
    let names = inputs.iter().map(|i| i.name);
    let name_w = column_width(names.chain(info.declared.iter().map(|d| d.name)));
    let shapes = inputs.iter().map(|i| i.shape);
    let shape_w = column_width(shapes.chain(info.declared.iter().map(|d| d.shape)));
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
    for d in info.declared {
        let grad = if d.role == DeclaredRole::Differentiable {
            "differentiable"
        } else {
            "not differentiable"
        };
        let _ = writeln!(
            out,
            "    {:name_w$}  {:shape_w$}  {grad:18}  {} (declared: {})",
            d.name,
            d.shape,
            declared_kind_text(d),
            d.role.name()
        );
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
        InputKind::Embeddings => "rows of real features",
    }
}

/// What a declared input's values are, in words.
fn declared_kind_text(d: &DeclaredInfo) -> String {
    match (d.role, d.indexes) {
        (DeclaredRole::Labels, Some(set)) => format!("indices into `{}`", set.name),
        (DeclaredRole::Labels, None) => "indices".into(),
        (DeclaredRole::Mask, _) => kind_text(InputKind::Binary).into(),
        (DeclaredRole::Differentiable | DeclaredRole::Constant, _) => {
            kind_text(InputKind::Real).into()
        }
        (DeclaredRole::State, _) => "the loss's state for each sample (real)".into(),
    }
}

/// The role of a family input, in the words of [`DeclaredRole::name`]: a 0/1 constant is a
/// mask.
fn family_role(input: &InputInfo) -> &'static str {
    input.role().name()
}

fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Real => "real",
        InputKind::Probability => "probability",
        InputKind::Binary => "binary",
        InputKind::Label => "label",
        InputKind::Embeddings => "embeddings",
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

fn entry_json(info: &LossInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), info.name.into());
    obj.insert("family".into(), info.family.name().into());
    obj.insert("paper".into(), info.paper.into());
    obj.insert("summary".into(), info.summary.into());
    let family = info.family.inputs().iter().map(input_json);
    let inputs = family
        .chain(info.declared.iter().map(declared_json))
        .collect();
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
    obj.insert("role".into(), family_role(input).into());
    obj.insert("declared".into(), false.into());
    Value::Object(obj)
}

/// A declared input, with the keys of a family input's object; `kind` is `real`, `binary`
/// (a mask) or `label`, and a `label` one names the set it indexes in `indexes`.
fn declared_json(d: &DeclaredInfo) -> Value {
    let kind = match d.role {
        DeclaredRole::Differentiable | DeclaredRole::Constant | DeclaredRole::State => {
            InputKind::Real
        }
        DeclaredRole::Mask => InputKind::Binary,
        DeclaredRole::Labels => InputKind::Label,
    };
    let mut obj = Map::new();
    obj.insert("name".into(), d.name.into());
    obj.insert("shape".into(), d.shape.into());
    let differentiable = d.role == DeclaredRole::Differentiable;
    obj.insert("differentiable".into(), differentiable.into());
    obj.insert("kind".into(), kind_name(kind).into());
    obj.insert("alternative_to".into(), Value::Null);
    obj.insert("optional".into(), false.into());
    obj.insert("role".into(), d.role.name().into());
    obj.insert("declared".into(), true.into());
    if let Some(set) = d.indexes {
        obj.insert("indexes".into(), set.name.into());
    }
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

#[cfg(test)]
mod tests {
    use losskit::{loss, Kernel};
    use serde_json::json;

    use super::*;

    /// A loss with a declared input of every kind.
    #[loss(logits)]
    fn guided_heads(
        z: Logits,
        y: Labels,
        t: Given<samples, classes>,
        a: Traced<samples, classes>,
        m: Mask<samples>,
        g: Index<samples, classes>,
    ) -> PerSample {
        let lz = logsumexp(classes, |k| z[i][k]);
        let la = logsumexp(classes, |k| a[i][k]);
        m[i] * (lz - z[i][y[i]] + la - a[i][g[i]])
            + sum(classes, |k| t[i][k] * sq(z[i][k] - a[i][k]))
    }

    #[test]
    fn text_shows_declared_inputs_with_shape_and_role() {
        let mut out = String::new();
        entry_text(&mut out, GuidedHeads::INFO);
        let rows: Vec<&str> = out
            .lines()
            .skip_while(|l| *l != "  inputs:")
            .skip(1)
            .take(6)
            .collect();
        assert_eq!(
            rows,
            [
                "    logits  [N, C]  differentiable      real numbers",
                "    labels  [N]     not differentiable  class indices in 0..C",
                "    t       [N, C]  not differentiable  real numbers (declared: constant)",
                "    a       [N, C]  differentiable      real numbers (declared: differentiable)",
                "    m       [N]     not differentiable  0 or 1 (declared: mask)",
                "    g       [N]     not differentiable  indices into `classes` (declared: labels)",
            ]
        );
    }

    #[test]
    fn json_lists_declared_inputs_after_the_family_ones() {
        let entry = entry_json(GuidedHeads::INFO);
        let inputs = entry["inputs"].as_array().expect("inputs");
        let summary: Vec<Value> = inputs
            .iter()
            .map(|i| json!([i["name"], i["shape"], i["role"], i["declared"], i["kind"]]))
            .collect();
        assert_eq!(
            summary,
            [
                json!(["logits", "[N, C]", "differentiable", false, "real"]),
                json!(["labels", "[N]", "labels", false, "label"]),
                json!(["t", "[N, C]", "constant", true, "real"]),
                json!(["a", "[N, C]", "differentiable", true, "real"]),
                json!(["m", "[N]", "mask", true, "binary"]),
                json!(["g", "[N]", "labels", true, "label"]),
            ]
        );
        assert_eq!(inputs[3]["differentiable"], true);
        assert_eq!(inputs[5]["indexes"], "classes");
        assert!(inputs[2].get("indexes").is_none());
    }
}
