//! The wording of every user-facing error, one constructor per kind.
//!
//! Style: lowercase, no trailing period, code in backticks, then `; help: …`.

use proc_macro2::Span;
use quote::ToTokens;
use syn::Error;

fn at(span: Span, msg: String) -> Error {
    Error::new(span, msg)
}

fn spanned(tokens: &dyn ToTokens, msg: String) -> Error {
    Error::new_spanned(tokens, msg)
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn suggestion(name: &str, candidates: &[&str]) -> String {
    match did_you_mean(name, candidates.iter().copied()) {
        Some(c) => format!("; help: did you mean `{c}`?"),
        None => String::new(),
    }
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn unknown_family(span: Span, name: &str, known: &[&str]) -> Error {
    at(
        span,
        format!(
            "unknown loss family `{name}`{}; help: the families are {}",
            suggestion(name, known),
            list(known)
        ),
    )
}

pub fn family_not_yet(span: Span, name: &str) -> Error {
    at(
        span,
        format!("the `{name}` family is not available yet; help: use `binary` or `logits`"),
    )
}

pub fn missing_family(span: Span) -> Error {
    at(
        span,
        "missing loss family; help: write `#[loss(binary)]` or `#[loss(logits)]`".into(),
    )
}

pub fn unknown_loss_argument(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(tokens, format!("unknown `#[loss(..)]` argument `{name}`; help: the arguments are the family and `paper = \"..\"`"))
}

pub fn expected_string(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(
        tokens,
        format!("`{what}` takes a string literal; help: write `{what} = \"..\"`"),
    )
}

pub fn unknown_input_type(
    tokens: &dyn ToTokens,
    ty: &str,
    family: &str,
    provided: &[&str],
) -> Error {
    spanned(
        tokens,
        format!(
            "the `{family}` family provides no input of type `{ty}`{}; help: it provides {}",
            suggestion(ty, provided),
            list(provided)
        ),
    )
}

pub fn duplicate_parameter(span: Span, name: &str) -> Error {
    at(
        span,
        format!("duplicate parameter `{name}`; help: rename one of them"),
    )
}

pub fn duplicate_input_role(span: Span, ty: &str) -> Error {
    at(
        span,
        format!("input of type `{ty}` declared twice; help: declare each input once"),
    )
}

pub fn hyper_without_default(span: Span, name: &str) -> Error {
    at(span, format!("hyper-parameter `{name}` has no default; help: write `#[hyper(default = ..)] {name}: f64`"))
}

pub fn hyper_type(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "hyper-parameters are `f64`, `f32` or `bool`; help: declare it as `name: f64`".into(),
    )
}

pub fn unknown_hyper_option(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(tokens, format!(
        "unknown `#[hyper(..)]` option `{name}`{}; help: options are `default = ..`, `positive`, `nonnegative`, `range(lo, hi)`, `doc = \"..\"`",
        suggestion(name, &["default", "positive", "nonnegative", "range", "doc"])
    ))
}

pub fn bad_default(tokens: &dyn ToTokens, ty: &str) -> Error {
    spanned(tokens, format!("the default must be a {ty} literal; help: write `default = 1.0` (or `true`/`false` for `bool`)"))
}

pub fn default_violates(tokens: &dyn ToTokens, name: &str, value: f64, constraint: &str) -> Error {
    spanned(tokens, format!("default {value} of `{name}` violates its constraint: it must be {constraint}; help: change the default or the constraint"))
}

pub fn untyped_parameter(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "parameters are `name: Type`; help: write `z: Logits` or `#[hyper(default = 1.0)] alpha: f64`".into())
}

pub fn unknown_output(
    tokens: &dyn ToTokens,
    found: &str,
    family: &str,
    accepted: &[&str],
) -> Error {
    spanned(
        tokens,
        format!(
            "the `{family}` family does not accept output kind `{found}`; help: use {}",
            list(accepted)
        ),
    )
}

pub fn missing_output(span: Span) -> Error {
    at(span, "missing output kind; help: write `-> Scalar` (one value per batch) or `-> PerSample` (averaged over the batch)".into())
}

pub fn unsupported_item(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(tokens, format!("{what} is not supported on a `#[loss]` fn; help: write a plain `fn name(inputs, hyper-parameters) -> Kind {{ .. }}`"))
}

pub fn unknown_function(span: Span, name: &str, known: &[&str]) -> Error {
    let hint = match did_you_mean(name, known.iter().copied()) {
        Some(c) => format!("; help: did you mean `{c}`?"),
        None => "; help: see the DSL reference for the functions available".into(),
    };
    at(span, format!("unknown function `{name}`{hint}"))
}

pub fn unknown_name(span: Span, name: &str, in_scope: &[&str]) -> Error {
    let hint = match did_you_mean(name, in_scope.iter().copied()) {
        Some(c) => format!("; help: did you mean `{c}`?"),
        None if in_scope.is_empty() => {
            "; help: declare it as an input, a hyper-parameter or a `let`".into()
        }
        None => format!("; help: names in scope are {}", list(in_scope)),
    };
    at(span, format!("cannot find `{name}` in this loss{hint}"))
}

pub fn index_outside_reduction(span: Span, name: &str) -> Error {
    at(span, format!("index `{name}` is used outside the reduction that binds it; help: move this use inside `sum(.., |{name}| ..)` or bind the value with `let` inside it"))
}

pub fn sample_index_in_scalar(span: Span, name: &str) -> Error {
    at(span, format!("index `{name}` is not bound in a `Scalar` loss; help: reduce over the batch with `sum(samples, |{name}| ..)`, or return `PerSample`"))
}

pub fn unknown_set(span: Span, name: &str, known: &[&str]) -> Error {
    at(
        span,
        format!(
            "unknown index set `{name}`{}; help: this family's sets are {}",
            suggestion(name, known),
            list(known)
        ),
    )
}

pub fn bad_set(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "expected an index set; help: write `classes`, `samples` or `classes.filter(|k| ..)`"
            .into(),
    )
}

pub fn reduction_needs_closure(tokens: &dyn ToTokens, op: &str) -> Error {
    spanned(
        tokens,
        format!("`{op}` over a set takes a closure; help: write `{op}(classes, |k| ..)`"),
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

pub fn arity(tokens: &dyn ToTokens, name: &str, expected: &str) -> Error {
    spanned(tokens, format!("`{name}` takes {expected}"))
}

pub fn non_differentiable(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(tokens, format!("{what} is not differentiable; help: wrap it in `detach(..)` to use it as a constant, or use it inside a `.filter(..)`"))
}

pub fn comparison_as_value(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "a comparison is used as a value, which is not differentiable; help: use it in `.filter(..)` or `select(cond, a, b)`, or wrap it in `detach(..)` to get 0 or 1".into())
}

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

pub fn index_domain(
    tokens: &dyn ToTokens,
    name: &str,
    axis: usize,
    expected: &str,
    found: &str,
) -> Error {
    spanned(tokens, format!("axis {axis} of `{name}` ranges over {expected}, but this index ranges over {found}; help: index it with a variable bound over `{expected}`"))
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
    spanned(
        tokens,
        format!(
            "`{base}` has no field `{field}`{}; help: its fields are {}",
            suggestion(field, fields),
            list(fields)
        ),
    )
}

pub fn no_fields(tokens: &dyn ToTokens, base: &str) -> Error {
    spanned(
        tokens,
        format!("`{base}` has no fields; help: only a `SoftConfusion` input has fields (`cm.tp`)"),
    )
}

pub fn unsupported_syntax(tokens: &dyn ToTokens, what: &str) -> Error {
    spanned(tokens, format!("{what} is not supported in a loss; help: a loss body is `let` bindings and one expression, using reductions such as `sum(set, |k| ..)` instead of loops"))
}

pub fn mutation(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "mutation is not supported in a loss; help: bind a new name with `let` instead".into(),
    )
}

pub fn unknown_method(tokens: &dyn ToTokens, name: &str, is_function: bool) -> Error {
    let hint = if is_function {
        format!("; help: call it as a function: `{name}(x)`")
    } else {
        "; help: the only method is `.filter(|k| ..)` on an index set".into()
    };
    spanned(tokens, format!("unknown method `{name}`{hint}"))
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

pub fn shadowed(span: Span, name: &str) -> Error {
    at(
        span,
        format!("`{name}` is already defined; help: choose a new name"),
    )
}

pub fn scalar_mismatch(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "expected a number here, found an index set; help: reduce the set with `sum(set, |k| ..)`"
            .into(),
    )
}
