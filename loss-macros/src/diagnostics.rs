//! The wording of every user-facing error, one constructor per kind.
//!
//! Style: lowercase, no trailing period, code in backticks, then `; help: …`.

use proc_macro2::Span;
use quote::ToTokens;
use syn::Error;

mod state;
pub use state::*;
#[cfg(test)]
mod tests;

fn at(span: Span, msg: String) -> Error {
    Error::new(span, msg)
}

fn spanned(tokens: &dyn ToTokens, msg: String) -> Error {
    Error::new_spanned(tokens, msg)
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a typo:
/// at most a third of the longer name's characters differ (one for short names), and
/// fewer than all of `name`'s (so `z` never suggests `i`). Ties go to the first candidate.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = name.chars().count();
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| {
            let longest = len.max(c.chars().count());
            d > 0 && d < len && d <= (longest / 3).max(1)
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edits between `a` and `b`: insertions, deletions, substitutions and swaps of two
/// neighbouring characters (`maen` → `mean` is one), each counting one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: edits between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `did you mean `c`? (listing)` when `name` looks like a typo of a candidate, else `listing`.
fn suggest_or(name: &str, candidates: &[&str], listing: String) -> String {
    match did_you_mean(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`? ({listing})"),
        None => listing,
    }
}

/// `did you mean `c`?` when `name` looks like a typo of a candidate, else `otherwise`
/// (for long or open-ended lists, which would bury the suggestion).
fn suggest_else(name: &str, candidates: &[&str], otherwise: String) -> String {
    match did_you_mean(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => otherwise,
    }
}

/// `` `a`, `b` and `c` `` (`word` = "and") or `` `a`, `b` or `c` `` (`word` = "or").
fn list_with(items: &[&str], word: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{s}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {word} {last}", rest.join(", ")),
    }
}

fn list(items: &[&str]) -> String {
    list_with(items, "and")
}

fn one_of(items: &[&str]) -> String {
    list_with(items, "or")
}

// ----- `#[loss(..)]` -----

/// `known` are the families that exist; `planned` ones are suggested but not listed.
pub fn unknown_family(span: Span, name: &str, known: &[&str], planned: &[&str]) -> Error {
    let all: Vec<&str> = known.iter().chain(planned).copied().collect();
    let listing = format!("the families are {}", list(known));
    at(
        span,
        format!(
            "unknown loss family `{name}`; help: {}",
            suggest_or(name, &all, listing)
        ),
    )
}

pub fn family_not_yet(span: Span, name: &str) -> Error {
    at(
        span,
        format!("the `{name}` family is not available yet; help: use `binary`, `logits`, `pairs` or `scores`"),
    )
}

pub fn missing_family(span: Span) -> Error {
    at(
        span,
        "missing loss family; help: write `#[loss(binary)]` or `#[loss(logits)]`".into(),
    )
}

pub fn second_family(tokens: &dyn ToTokens, first: &str, second: &str) -> Error {
    spanned(
        tokens,
        format!("a loss has one family, but `{second}` follows `{first}`; help: keep one of them"),
    )
}

pub fn unknown_loss_argument(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(
        tokens,
        format!(
            "unknown `#[loss(..)]` argument `{name}`; help: `#[loss(..)]` takes the family, then optionally `paper = \"..\"` (and `metric = ..` for pairs)"
        ),
    )
}

pub fn unknown_metric(tokens: &dyn ToTokens, metrics: &[&str]) -> Error {
    let list = metrics
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    spanned(
        tokens,
        format!("unknown metric; help: `metric = ..` takes one of {list}"),
    )
}

pub fn metric_outside_pairs(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`metric = ..` applies to the `pairs` family only; help: remove it".to_string(),
    )
}

pub fn expected_string(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(
        tokens,
        format!("`{what}` takes a string literal; help: write `{what} = \"..\"`"),
    )
}

// ----- the signature -----

pub fn unsupported_item(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(tokens, format!("{what} is not supported on a `#[loss]` fn; help: write a plain `fn name(inputs, hyper-parameters) -> Kind {{ .. }}`"))
}

pub fn bad_loss_name(span: Span, name: &str) -> Error {
    at(
        span,
        format!("`{name}` cannot name a loss: its struct is named after it in CamelCase; help: use a snake_case name such as `my_loss`"),
    )
}

pub fn raw_identifier(span: Span, name: &str) -> Error {
    at(
        span,
        format!("the raw identifier `{name}` cannot name a parameter; help: choose a name that is not a keyword"),
    )
}

pub fn too_many(tokens: &dyn ToTokens, what: &str, limit: usize) -> Error {
    spanned(
        tokens,
        format!("this loss has more {what} than the compiler supports ({limit}); help: split it into smaller losses"),
    )
}

pub fn unknown_input_type(
    tokens: &dyn ToTokens,
    ty: &str,
    family: &str,
    provided: &[&str],
) -> Error {
    let listing = format!("it provides {}", list(provided));
    spanned(
        tokens,
        format!(
            "the `{family}` family provides no input of type `{ty}`; help: {}",
            suggest_or(ty, provided, listing)
        ),
    )
}

pub fn duplicate_parameter(span: Span, name: &str) -> Error {
    at(
        span,
        format!("duplicate parameter `{name}`; help: rename one of them"),
    )
}

pub fn family_hyper_clash(span: Span, name: &str, family: &str) -> Error {
    at(
        span,
        format!("`{name}` is a hyper-parameter the `{family}` family adds for this input; help: rename yours"),
    )
}

/// `example`: how a further input of that shape is declared (`Given<samples, classes>`).
pub fn duplicate_input_role(tokens: &dyn ToTokens, ty: &str, example: &str) -> Error {
    spanned(
        tokens,
        format!(
            "input of type `{ty}` declared twice; help: the family provides it once; declare a further input as `Given<{example}>` (a constant) or `Traced<{example}>` (differentiable)"
        ),
    )
}

// ----- declared inputs (`t: Given<samples, classes>`) -----

pub fn unknown_declared_set(
    tokens: &dyn ToTokens,
    set: &str,
    family: &str,
    sets: &[&str],
) -> Error {
    let listing = format!("the `{family}` family's index sets are {}", list(sets));
    spanned(
        tokens,
        format!(
            "unknown index set `{set}` in a declared input; help: {}",
            suggest_or(set, sets, listing)
        ),
    )
}

/// `labels: Given<samples>` in the `logits` family: a declared input named like one of
/// the family's own inputs, which are taken by name too.
pub fn declared_name_clash(span: Span, name: &str, family: &str, inputs: &[&str]) -> Error {
    at(
        span,
        format!(
            "declared input `{name}` clashes with the `{family}` family's own input `{name}`; help: rename it (e.g. `other_{name}`): `losskit eval` and `Loss::INFO` take every input by name, and the `{family}` family's inputs are {}",
            list(inputs)
        ),
    )
}

pub fn declared_axis_not_a_set(tokens: &dyn ToTokens, kind: &str, sets: &[&str]) -> Error {
    spanned(
        tokens,
        format!(
            "the arguments of `{kind}<..>` are index sets; help: name its axes, e.g. `{kind}<{}>`",
            sets.join(", ")
        ),
    )
}

/// `Traced<Labels>`: a family input type (or a declared kind) where an index set belongs.
pub fn declared_of_input_kind(tokens: &dyn ToTokens, kind: &str, ty: &str) -> Error {
    let help = if kind == "Index" {
        "write its axes and the set it indexes, e.g. `Index<samples, classes>`".to_string()
    } else {
        "labels are integers with no gradient: declare them as `Index<samples, classes>`, a real tensor by its axes, e.g. `Traced<samples, classes>`".to_string()
    };
    spanned(
        tokens,
        format!("`{kind}<{ty}>` is not a declared input: `{kind}` takes index sets; help: {help}"),
    )
}

pub fn declared_without_axes(tokens: &dyn ToTokens, kind: &str, sets: &[&str]) -> Error {
    let help = if kind == "Index" {
        format!(
            "write the labels' axes, then the set they index: `Index<{}, {}>`",
            sets[0],
            sets.last().copied().unwrap_or("classes")
        )
    } else {
        format!("name its axes, e.g. `{kind}<{}>`", sets.join(", "))
    };
    spanned(tokens, format!("`{kind}` needs its axes; help: {help}"))
}

/// `g[y[i]]`, or an `Index` with several axes: labels are read at one index variable.
pub fn label_of_label(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(
        tokens,
        format!("the labels `{name}` are read at an index variable; help: write `{name}[i]`, and declare one axis for an `Index`"),
    )
}

pub fn index_into_samples(tokens: &dyn ToTokens, samples: &str) -> Error {
    spanned(
        tokens,
        format!("labels may not index `{samples}`; help: an `Index` indexes another set, e.g. `Index<{samples}, classes>`"),
    )
}

/// `has_attr`: whether a `#[hyper(..)]` is there to add the default to.
pub fn hyper_without_default(span: Span, name: &str, has_attr: bool) -> Error {
    let help = if has_attr {
        "add `default = ..` to its `#[hyper(..)]`".to_string()
    } else {
        format!("write `#[hyper(default = ..)] {name}: f64`")
    };
    at(
        span,
        format!("hyper-parameter `{name}` has no default; help: {help}"),
    )
}

pub fn hyper_type(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "hyper-parameters are `f64`, `f32` or `bool`; help: declare it as `name: f64`".into(),
    )
}

pub fn unknown_hyper_option(tokens: &dyn ToTokens, name: &str) -> Error {
    let options = ["default", "positive", "nonnegative", "range", "doc"];
    let listing = "the options are `default = ..`, `positive`, `nonnegative`, `range(lo, hi)` and `doc = \"..\"`".to_string();
    spanned(
        tokens,
        format!(
            "unknown `#[hyper(..)]` option `{name}`; help: {}",
            suggest_or(name, &options, listing)
        ),
    )
}

pub fn bad_default(tokens: &dyn ToTokens, ty: &str) -> Error {
    spanned(tokens, format!("the default must be a {ty} literal; help: write `default = 1.0` (or `true`/`false` for `bool`)"))
}

pub fn bad_range(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`range` takes two number literals, the lower bound first; help: write `range(0.0, 1.0)`"
            .into(),
    )
}

/// `written`: the default as the user wrote it; `keyword`: the constraint as written
/// (`positive`); `meaning`: what it requires (`> 0`).
pub fn default_violates(
    tokens: &dyn ToTokens,
    name: &str,
    written: &str,
    keyword: &str,
    meaning: &str,
) -> Error {
    spanned(tokens, format!("the default `{written}` of `{name}` violates `{keyword}`: it must be {meaning}; help: change the default or the constraint"))
}

pub fn untyped_parameter(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "parameters are `name: Type`; help: write `z: Logits` or `#[hyper(default = 1.0)] alpha: f64`".into())
}

/// `family`: `None` when the family itself was not understood.
pub fn unknown_output(
    tokens: &dyn ToTokens,
    found: &str,
    family: Option<&str>,
    accepted: &[&str],
) -> Error {
    let what = match family {
        Some(family) => format!("the `{family}` family does not accept output kind `{found}`"),
        None => format!("unknown output kind `{found}`"),
    };
    spanned(tokens, format!("{what}; help: use {}", one_of(accepted)))
}

pub fn missing_output(span: Span) -> Error {
    at(span, "missing output kind; help: write `-> Scalar` (one value per batch) or `-> PerSample` (averaged over the batch)".into())
}

// ----- names and scopes -----

/// Suggests the nearest known function when there is one, and lists them all.
pub fn unknown_function(span: Span, name: &str, known: &[&str]) -> Error {
    let listing = format!("the functions are {}", list(known));
    at(
        span,
        format!(
            "unknown function `{name}`; help: {}",
            suggest_or(name, known, listing)
        ),
    )
}

pub fn unknown_name(span: Span, name: &str, in_scope: &[&str]) -> Error {
    let listing = if in_scope.is_empty() {
        "declare it as an input, a hyper-parameter or a `let`".to_string()
    } else {
        format!("the names in scope are {}", list(in_scope))
    };
    at(
        span,
        format!(
            "cannot find `{name}` in this loss; help: {}",
            suggest_else(name, in_scope, listing)
        ),
    )
}

/// `binder`: the reduction that bound `name`, as written (`sum(classes, |k| ..)`).
pub fn index_outside_reduction(span: Span, name: &str, binder: &str) -> Error {
    at(span, format!("index `{name}` is used outside the reduction that binds it; help: `{name}` exists only inside `{binder}`, so use it there"))
}

/// `samples`: the family's name for the batch's set; `per_sample`: its per-sample
/// output kind (`PerSample`, `PerAnchor`, `PerQuery`).
pub fn sample_index_in_scalar(span: Span, name: &str, samples: &str, per_sample: &str) -> Error {
    at(span, format!("index `{name}` is not bound in a `Scalar` loss; help: reduce over the batch with `sum({samples}, |{name}| ..)`, or return `{per_sample}`"))
}

pub fn unknown_set(span: Span, name: &str, known: &[&str]) -> Error {
    let listing = format!("this family's sets are {}", list(known));
    // match on the set's name (`pos`), suggest it as written (`pos(i)`)
    let bare: Vec<&str> = known
        .iter()
        .map(|k| k.split('(').next().unwrap_or(k))
        .collect();
    let help = match did_you_mean(name, bare.iter().copied()) {
        Some(c) => {
            let full = known
                .iter()
                .find(|k| k.split('(').next() == Some(c))
                .unwrap_or(&c);
            format!("did you mean `{full}`? ({listing})")
        }
        None => listing,
    };
    at(span, format!("unknown index set `{name}`; help: {help}"))
}

/// `known`: the family's sets as written; `(set, index)`: one to show filtered.
pub fn bad_set(tokens: &dyn ToTokens, known: &[&str], (set, index): (&str, &str)) -> Error {
    spanned(
        tokens,
        format!(
            "expected an index set; help: write one of this family's sets, {}, or filter one: `{set}.filter(|{index}| ..)`",
            one_of(known)
        ),
    )
}

/// `(set, index)`: a set of the family and its usual index, for the example.
pub fn reduction_needs_closure(
    tokens: &dyn ToTokens,
    op: &str,
    (set, index): (&str, &str),
) -> Error {
    spanned(
        tokens,
        format!("`{op}` over a set takes a closure; help: write `{op}({set}, |{index}| ..)`"),
    )
}

/// A reduction whose closure is there, followed by more arguments.
pub fn reduction_extra_arguments(
    tokens: &dyn ToTokens,
    op: &str,
    found: usize,
    (set, index): (&str, &str),
) -> Error {
    spanned(
        tokens,
        format!("`{op}` takes a set and one closure, but {found} arguments were given; help: remove the arguments after the closure: `{op}({set}, |{index}| ..)`"),
    )
}

pub fn closure_params(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "a reduction closure binds exactly one index; help: write `|k| ..`".into(),
    )
}

pub fn filter_index_mismatch(tokens: &dyn ToTokens, filter: &str, body: &str) -> Error {
    spanned(tokens, format!("the filter binds `{filter}` but the reduction binds `{body}`; help: use the same index name in both closures"))
}

/// `usage`: a call written correctly, e.g. `clamp(x, lo, hi)`.
pub fn arity(tokens: &dyn ToTokens, name: &str, expected: &str, usage: &str) -> Error {
    spanned(
        tokens,
        format!("`{name}` takes {expected}; help: write `{usage}`"),
    )
}

pub fn shadowed(span: Span, name: &str) -> Error {
    at(
        span,
        format!("`{name}` is already defined; help: choose a new name"),
    )
}

// ----- differentiability -----

/// `name`: the function without a derivative, e.g. `round`.
pub fn non_differentiable(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(tokens, format!("`{name}` is not differentiable; help: wrap it in `detach(..)` to use its value as a constant: `detach({name}(..))`"))
}

pub fn comparison_as_value(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "a comparison is used as a value, which is not differentiable; help: use it in `.filter(..)` or `select(cond, a, b)`, or wrap it in `detach(..)` to get 0 or 1".into())
}

// ----- values, indices and inputs -----

pub fn expected_condition(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "expected a condition here; help: compare two values, e.g. `k != y[i]` or `z[i][k] > 0.0`"
            .into(),
    )
}

pub fn index_as_value(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(tokens, format!("index `{name}` is used as a number; help: indices select elements (`z[i][{name}]`) or appear in comparisons (`{name} != y[i]`)"))
}

pub fn expected_index(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "expected an index here; help: use an index variable (`i`, `k`) or a label (`y[i]`)".into(),
    )
}

pub fn wrong_rank(tokens: &dyn ToTokens, name: &str, rank: usize, found: usize) -> Error {
    spanned(
        tokens,
        format!(
            "`{name}` takes {rank} index(es) but {found} were given; help: write `{name}{}`",
            if rank == 1 { "[i]" } else { "[i][k]" }
        ),
    )
}

/// `axis`: 0-based position of the index.
pub fn index_domain(
    tokens: &dyn ToTokens,
    name: &str,
    axis: usize,
    expected: &str,
    found: &str,
) -> Error {
    let position = match axis {
        0 => "first index".to_string(),
        1 => "second index".to_string(),
        2 => "third index".to_string(),
        n => format!("index at position {n} (counting from 0)"),
    };
    spanned(tokens, format!("the {position} of `{name}` ranges over {expected}, but this index ranges over {found}; help: index it with a variable bound over `{expected}`"))
}

/// `index`: the index as written; `example`: a comparison the family allows, if any.
pub fn index_compared_with_number(
    tokens: &dyn ToTokens,
    index: &str,
    example: Option<&str>,
) -> Error {
    let instead = match example {
        Some(e) => format!(
            "compare it with an index or a label, as in `{e}`, or compare the values it selects"
        ),
        None => "compare it with another index, or compare the values it selects".to_string(),
    };
    spanned(tokens, format!("index `{index}` is compared with a number, but an index may only be compared with another index or with a label (indices are positions, not numbers); help: {instead}"))
}

pub fn input_not_indexed(tokens: &dyn ToTokens, name: &str, example: &str) -> Error {
    spanned(
        tokens,
        format!("input `{name}` is a tensor and must be indexed; help: write `{example}`"),
    )
}

pub fn labels_as_value(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(tokens, format!("labels `{name}[..]` are class indices, not numbers; help: use them to index (`z[i][{name}[i]]`) or compare (`k == {name}[i]`)"))
}

pub fn not_indexable(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "only inputs can be indexed; help: index an input such as `z[i][k]`".into(),
    )
}

pub fn unknown_field(tokens: &dyn ToTokens, base: &str, field: &str, fields: &[&str]) -> Error {
    let listing = format!("its fields are {}", list(fields));
    spanned(
        tokens,
        format!(
            "`{base}` has no field `{field}`; help: {}",
            suggest_or(field, fields, listing)
        ),
    )
}

pub fn no_fields(tokens: &dyn ToTokens, base: &str) -> Error {
    spanned(
        tokens,
        format!("`{base}` has no fields; help: only a `SoftConfusion` input has fields (`cm.tp`)"),
    )
}

pub fn powi_exponent(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "the exponent of `powi` must be an integer literal; help: use `powf(x, y)` for a real exponent".into())
}

pub fn bad_literal(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "only number literals are supported; help: write `1.0` or `2`".into(),
    )
}

pub fn literal_out_of_range(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "this number does not fit in an `f64`; help: write a finite number such as `1e300`".into(),
    )
}

pub fn scalar_mismatch(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "expected a number here, found an index set; help: reduce the set with `sum(set, |k| ..)`"
            .into(),
    )
}

// ----- statements and syntax -----

pub fn unsupported_syntax(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(tokens, format!("{what} is not supported in a loss; help: a loss body is `let` bindings and one expression, using reductions such as `sum(set, |k| ..)` instead of loops"))
}

pub fn mutable_binding(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`let mut` is not supported in a loss: values never change; help: remove `mut`".into(),
    )
}

/// `op`: the assignment operator as written (`=`, `+=`).
pub fn mutation(tokens: &dyn ToTokens, op: &str) -> Error {
    spanned(
        tokens,
        format!("assignment with `{op}` is not supported in a loss: values never change; help: bind the new value to a new name with `let`"),
    )
}

/// `span`: the trailing `;` (`has_semicolon`) or the closing brace; `top`: the fn body.
pub fn missing_tail(span: Span, top: bool, has_semicolon: bool) -> Error {
    let (what, value) = if top {
        ("the loss body", "the loss")
    } else {
        ("this block", "its value")
    };
    let help = if has_semicolon {
        format!("remove this `;` so that the last expression is {value}")
    } else {
        format!("end the block with the expression that is {value}")
    };
    at(
        span,
        format!("{what} must end with an expression; help: {help}"),
    )
}

pub fn unknown_method(tokens: &dyn ToTokens, name: &str, is_function: bool) -> Error {
    let hint = if is_function {
        format!("call it as a function: `{name}(x)`")
    } else {
        "values have no methods; the only method is `.filter(|k| ..)` on an index set".into()
    };
    spanned(tokens, format!("unknown method `{name}`; help: {hint}"))
}

/// `(set, index)`: a set of the family and its usual index, for the example.
pub fn filter_outside_reduction(tokens: &dyn ToTokens, (set, index): (&str, &str)) -> Error {
    spanned(
        tokens,
        format!("`.filter(..)` selects the set of a reduction; help: write it as the first argument: `sum({set}.filter(|{index}| ..), |{index}| ..)`"),
    )
}

pub fn confusion_not_indexable(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(
        tokens,
        format!("`{name}` is the batch's soft confusion matrix, which has fields, not elements; help: read a field such as `{name}.tp`"),
    )
}

// ----- requirements -----

pub fn require_message(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "the message of `require` must be a string literal; help: write `require(var > 0.0, \"row has zero variance\");`".into())
}

pub fn require_as_value(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "`require(..)` is a statement, not a value; help: end it with `;` and put the block's value after it".into())
}

pub fn require_in_branch(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "`require(..)` cannot stand in a branch of `if` or `select`, whose branches are both computed; help: put it before the `if`, with the branch's condition folded into the requirement".into())
}

pub fn require_without_number(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "a block with `require(..)` must end with a number; help: move the requirement into the block whose value the condition guards".into())
}

pub fn if_without_else(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`if` without `else` has no value; help: add an `else { .. }` branch, or use `select(cond, a, b)`".into(),
    )
}
