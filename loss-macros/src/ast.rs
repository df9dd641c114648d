//! The surface definition: the annotated `fn`, split into inputs (typed by role),
//! hyper-parameters (with defaults and constraints), the output kind and the body.
//! Every part keeps its syn tokens for error spans.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parse;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, Meta, Pat, ReturnType, Type, UnOp};

use crate::attr::{self, LossAttr};
use crate::ctxt::Ctxt;
use crate::diagnostics as diag;
use crate::family::{DeclKind, DeclaredParam, FamilyKind, Role};
use crate::ir::Domain;

/// The most hyper-parameters a loss may declare (ids are a byte, and the family adds two).
pub const MAX_HYPERS: usize = 200;

/// The most inputs a loss may declare (input ids are a byte, after the family's).
pub const MAX_DECLARED: usize = 64;

/// A parsed `#[loss]` definition.
pub struct LossDef {
    pub attr: LossAttr,
    pub item: ItemFn,
    pub docs: Vec<String>,
    pub inputs: Vec<InputParam>,
    /// Inputs declared on top of the family's: `t: Given<samples, classes>`.
    pub declared: Vec<DeclaredParam>,
    pub hypers: Vec<Hyper>,
    pub output: Option<(Output, Span)>,
    /// Parameters whose declaration was refused (and reported): their uses in the body
    /// are not reported again.
    pub poisoned: Vec<Ident>,
}

/// An input parameter: `z: Logits`.
pub struct InputParam {
    pub name: Ident,
    pub role: Role,
}

/// The type of a hyper-parameter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HyperTy {
    Real,
    Flag,
}

/// A declared constraint on a real hyper-parameter.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Constraint {
    None,
    Positive,
    NonNegative,
    Range(f64, f64),
}

impl Constraint {
    pub fn holds(self, v: f64) -> bool {
        match self {
            Constraint::None => true,
            Constraint::Positive => v > 0.0,
            Constraint::NonNegative => v >= 0.0,
            Constraint::Range(lo, hi) => lo <= v && v <= hi,
        }
    }

    /// As written in `#[hyper(..)]`.
    pub fn keyword(self) -> String {
        match self {
            Constraint::None => String::new(),
            Constraint::Positive => "positive".into(),
            Constraint::NonNegative => "nonnegative".into(),
            Constraint::Range(lo, hi) => format!("range({lo:?}, {hi:?})"),
        }
    }

    /// In words, as error messages print it.
    pub fn describe(self) -> String {
        match self {
            Constraint::None => String::new(),
            Constraint::Positive => "> 0".into(),
            Constraint::NonNegative => ">= 0".into(),
            Constraint::Range(lo, hi) => format!("in [{lo:?}, {hi:?}]"),
        }
    }
}

/// A hyper-parameter: `#[hyper(default = 1.0, positive)] alpha: f64`.
#[derive(Clone)]
pub struct Hyper {
    pub name: Ident,
    pub ty: HyperTy,
    pub default: f64,
    pub constraint: Constraint,
    pub doc: String,
}

/// What the body returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Output {
    /// One value for the whole batch.
    Scalar,
    /// One value per sample, averaged over the batch; `i` is the sample.
    PerSample,
}

impl LossDef {
    /// Parses the attribute arguments and the `fn`. Problems in the definition go to `cx`
    /// (so the body is still checked); only unparsable input returns `Err` early.
    pub fn from_syn(cx: &Ctxt, args: TokenStream, item: TokenStream) -> syn::Result<LossDef> {
        let attr = attr::parse(cx, args)?;
        let item: ItemFn = match syn::parse2(item) {
            Ok(item) => item,
            Err(err) => {
                // keep what the attribute already reported, in order
                cx.push(err);
                cx.check()?;
                return Err(syn::Error::new(Span::call_site(), "expected a `fn`"));
            }
        };
        let docs = doc_lines(&item.attrs);
        check_signature(cx, &item);
        let family = attr.family;
        let mut def = LossDef {
            attr,
            docs,
            inputs: Vec::new(),
            declared: Vec::new(),
            hypers: Vec::new(),
            output: None,
            poisoned: Vec::new(),
            item: item.clone(),
        };
        def.parse_params(cx, family);
        def.output = parse_output(cx, &item, family);
        Ok(def)
    }

    fn parse_params(&mut self, cx: &Ctxt, family: Option<FamilyKind>) {
        let mut seen: Vec<String> = Vec::new();
        for arg in &self.item.sig.inputs {
            let FnArg::Typed(pt) = arg else {
                cx.push(diag::unsupported_item(arg, "a `self` parameter"));
                continue;
            };
            let Pat::Ident(pi) = &*pt.pat else {
                cx.push(diag::untyped_parameter(&pt.pat));
                continue;
            };
            if let Some(m) = &pi.mutability {
                cx.push(diag::mutable_binding(m));
            }
            let name = pi.ident.clone();
            let key = name.to_string();
            if key.starts_with("r#") {
                cx.push(diag::raw_identifier(name.span(), &key));
                self.poisoned.push(name);
                continue;
            }
            if seen.contains(&key) {
                cx.push(diag::duplicate_parameter(name.span(), &key));
                continue;
            }
            seen.push(key.clone());
            let hyper_attr = pt.attrs.iter().find(|a| a.path().is_ident("hyper"));
            if let Some(attr) = hyper_attr {
                match parse_hyper(cx, name.clone(), attr, &pt.ty) {
                    Some(h) if self.hypers.len() == MAX_HYPERS => {
                        cx.push(diag::too_many(&h.name, "hyper-parameters", MAX_HYPERS));
                        self.poisoned.push(name);
                    }
                    Some(h) => self.hypers.push(h),
                    None => self.poisoned.push(name),
                }
                continue;
            }
            if let Some("f64" | "f32" | "bool") = scalar_type_name(&pt.ty).as_deref() {
                cx.push(diag::hyper_without_default(name.span(), &key, false));
                self.poisoned.push(name);
                continue;
            }
            let Some(family) = family else {
                self.poisoned.push(name);
                continue;
            };
            let state_attr = pt.attrs.iter().find(|a| a.path().is_ident("state"));
            let kind = declared_kind(&pt.ty);
            if let (Some(attr), false) = (state_attr, kind == Some(DeclKind::State)) {
                cx.push(diag::state_attr_without_state(attr));
                self.poisoned.push(name);
                continue;
            }
            if let Some(kind) = kind {
                let parsed = parse_declared(cx, family, name.clone(), kind, &pt.ty);
                let parsed = match (parsed, state_attr) {
                    (Some(mut d), Some(attr)) => parse_state_init(cx, attr).map(|init| {
                        d.init = init;
                        d
                    }),
                    (parsed, _) => parsed,
                };
                match parsed {
                    Some(_) if family.input_names().contains(&key.as_str()) => {
                        cx.push(diag::declared_name_clash(
                            name.span(),
                            &key,
                            family.name(),
                            family.input_names(),
                        ));
                        self.poisoned.push(name);
                    }
                    Some(d) if self.declared.len() == MAX_DECLARED => {
                        cx.push(diag::too_many(&d.name, "declared inputs", MAX_DECLARED));
                        self.poisoned.push(name);
                    }
                    Some(d) => self.declared.push(d),
                    None => self.poisoned.push(name),
                }
                continue;
            }
            let ty_name = scalar_type_name(&pt.ty)
                .unwrap_or_else(|| pt.ty.to_token_stream().to_string().replace(' ', ""));
            match Role::from_type(family, &ty_name) {
                Some(role) => {
                    if self.inputs.iter().any(|i| i.role == role) {
                        let example: Vec<&str> = family.sets().iter().map(|(s, _)| *s).collect();
                        cx.push(diag::duplicate_input_role(
                            &pt.ty,
                            &ty_name,
                            &example.join(", "),
                        ));
                        self.poisoned.push(name);
                    } else {
                        self.inputs.push(InputParam { name, role });
                    }
                }
                None => {
                    cx.push(diag::unknown_input_type(
                        &pt.ty,
                        &ty_name,
                        family.name(),
                        &family.role_names(),
                    ));
                    self.poisoned.push(name);
                }
            }
        }
    }
}

/// `#[state(init = v)]`: the initial value `v`, a finite number.
fn parse_state_init(cx: &Ctxt, attr: &syn::Attribute) -> Option<f64> {
    let mut init = None;
    let parsed = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("init") {
            let expr: Expr = meta.value()?.parse()?;
            match finite_number(cx, &expr) {
                Ok(Some(v)) => init = Some(v),
                Ok(None) => return Err(meta.error("`init` takes a number, e.g. `init = 1.0`")),
                Err(()) => return Ok(()),
            }
            Ok(())
        } else {
            Err(meta.error("unknown `#[state(..)]` option; help: write `#[state(init = 1.0)]`"))
        }
    });
    if let Err(e) = parsed {
        cx.push(e);
        return None;
    }
    Some(init.unwrap_or(0.0))
}

/// `Given`, `Traced`, `Mask` or `Index` when `ty` is one of them with generic arguments.
fn declared_kind(ty: &Type) -> Option<DeclKind> {
    let Type::Path(tp) = ty else { return None };
    let seg = tp.path.segments.last()?;
    if tp.qself.is_some() || tp.path.segments.len() != 1 {
        return None;
    }
    match seg.arguments {
        syn::PathArguments::AngleBracketed(_) => DeclKind::from_name(&seg.ident.to_string()),
        _ => None,
    }
}

/// `Given<samples, classes>`: the axes (index sets of `family`); for `Index`, the last
/// argument is the set the labels index. Reports and returns `None` on a mistake.
fn parse_declared(
    cx: &Ctxt,
    family: FamilyKind,
    name: Ident,
    kind: DeclKind,
    ty: &Type,
) -> Option<DeclaredParam> {
    let Type::Path(tp) = ty else { return None };
    let seg = tp.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let sets: Vec<&str> = family.sets().iter().map(|(s, _)| *s).collect();
    let mut domains = Vec::new();
    let mut ok = true;
    for arg in &args.args {
        let set = match arg {
            syn::GenericArgument::Type(t) => scalar_type_name(t),
            _ => None,
        };
        let Some(set) = set else {
            cx.push(diag::declared_axis_not_a_set(arg, kind.name(), &sets));
            ok = false;
            continue;
        };
        if Role::from_type(family, &set).is_some() || DeclKind::from_name(&set).is_some() {
            // `Traced<Labels>`: a label vector is not a real tensor
            cx.push(diag::declared_of_input_kind(arg, kind.name(), &set));
            ok = false;
            continue;
        }
        match family.sets().iter().find(|(s, _)| *s == set) {
            Some((_, d)) => domains.push(*d),
            None => {
                cx.push(diag::unknown_declared_set(arg, &set, family.name(), &sets));
                ok = false;
            }
        }
    }
    let want = if kind == DeclKind::Index { 2 } else { 1 };
    if ok && domains.len() < want {
        cx.push(diag::declared_without_axes(ty, kind.name(), &sets));
        return None;
    }
    if !ok {
        return None;
    }
    let indexes = if kind == DeclKind::Index {
        domains.pop()
    } else {
        None
    };
    if kind == DeclKind::Index && indexes == Some(Domain::Samples) {
        // labels into the batch are not a kind the kernels index with
        cx.push(diag::index_into_samples(
            ty,
            family.set_name(Domain::Samples),
        ));
        return None;
    }
    if kind == DeclKind::State && domains != [Domain::Samples] {
        cx.push(diag::state_axes(ty, family.set_name(Domain::Samples)));
        return None;
    }
    Some(DeclaredParam {
        name,
        kind,
        axes: domains,
        indexes,
        init: 0.0,
    })
}

fn check_signature(cx: &Ctxt, item: &ItemFn) {
    let sig = &item.sig;
    let name = sig.ident.to_string();
    let struct_name = crate::emit::struct_name(&name);
    if name.starts_with("r#") || syn::parse_str::<Ident>(&struct_name).is_err() {
        cx.push(diag::bad_loss_name(sig.ident.span(), &name));
    }
    if let Some(t) = &sig.constness {
        cx.push(diag::unsupported_item(t, "`const`"));
    }
    if let Some(t) = &sig.asyncness {
        cx.push(diag::unsupported_item(t, "`async`"));
    }
    if let Some(t) = &sig.unsafety {
        cx.push(diag::unsupported_item(t, "`unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        cx.push(diag::unsupported_item(abi, "an `extern` ABI"));
    }
    if !sig.generics.params.is_empty() {
        cx.push(diag::unsupported_item(&sig.generics, "a generic parameter"));
    }
    if let Some(w) = &sig.generics.where_clause {
        cx.push(diag::unsupported_item(w, "a `where` clause"));
    }
    if let Some(v) = &sig.variadic {
        cx.push(diag::unsupported_item(v, "a variadic parameter"));
    }
}

fn parse_output(cx: &Ctxt, item: &ItemFn, family: Option<FamilyKind>) -> Option<(Output, Span)> {
    let ReturnType::Type(_, ty) = &item.sig.output else {
        cx.push(diag::missing_output(item.sig.ident.span()));
        return None;
    };
    let name =
        scalar_type_name(ty).unwrap_or_else(|| ty.to_token_stream().to_string().replace(' ', ""));
    let outputs = family.map_or(FamilyKind::Logits.outputs(), |f| f.outputs());
    let accepted: Vec<&str> = outputs.iter().map(|(n, _)| *n).collect();
    let out = match outputs.iter().find(|(n, _)| *n == name) {
        Some((_, o)) => *o,
        None => {
            cx.push(diag::unknown_output(
                ty,
                &name,
                family.map(|f| f.name()),
                &accepted,
            ));
            return None;
        }
    };
    Some((out, ty.span()))
}

/// `Foo` for a path type `Foo`; `None` for anything else.
fn scalar_type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(tp) if tp.qself.is_none() => tp.path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
}

fn doc_lines(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A number literal, possibly negated: `1.5`, `-2`, `1e-5`. May be infinite (`1e999`):
/// see [`finite_number`].
pub fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Float(f) => f.base10_parse::<f64>().ok(),
            Lit::Int(i) => i.base10_parse::<f64>().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => number(&u.expr).map(|v| -v),
        Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

/// A number literal that fits an `f64`: `Ok(None)` for something else, `Err` (reported)
/// for a literal that overflows.
pub fn finite_number(cx: &Ctxt, expr: &Expr) -> Result<Option<f64>, ()> {
    match number(expr) {
        Some(v) if !v.is_finite() => {
            cx.push(diag::literal_out_of_range(expr));
            Err(())
        }
        v => Ok(v),
    }
}

fn parse_hyper(cx: &Ctxt, name: Ident, attr: &Attribute, ty: &Type) -> Option<Hyper> {
    let ty_kind = match scalar_type_name(ty).as_deref() {
        Some("f64") | Some("f32") => HyperTy::Real,
        Some("bool") => HyperTy::Flag,
        _ => {
            cx.push(diag::hyper_type(ty));
            return None;
        }
    };
    let mut default: Option<(f64, Expr)> = None;
    let mut invalid_default = false; // given but refused (and reported)
    let mut constraint = Constraint::None;
    let mut doc = String::new();
    let parsed = attr.parse_nested_meta(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "default" => {
                let expr: Expr = meta.value()?.parse()?;
                let value = match (&expr, ty_kind) {
                    (
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }),
                        HyperTy::Flag,
                    ) => Ok(Some(f64::from(u8::from(b.value)))),
                    (_, HyperTy::Real) => finite_number(cx, &expr),
                    _ => Ok(None),
                };
                match value {
                    Ok(Some(v)) => default = Some((v, expr)),
                    Ok(None) => {
                        invalid_default = true;
                        cx.push(diag::bad_default(
                            &expr,
                            if ty_kind == HyperTy::Flag {
                                "`bool`"
                            } else {
                                "number"
                            },
                        ))
                    }
                    // reported; NaN marks it so the constraint is not blamed too
                    Err(()) => default = Some((f64::NAN, expr)),
                }
            }
            "positive" => constraint = Constraint::Positive,
            "nonnegative" => constraint = Constraint::NonNegative,
            "range" => {
                let content;
                syn::parenthesized!(content in meta.input);
                let bounds = content.parse_terminated(Expr::parse, syn::Token![,])?;
                let nums: Vec<Option<f64>> = bounds.iter().map(number).collect();
                match nums.as_slice() {
                    [Some(lo), Some(hi)] if lo.is_finite() && hi.is_finite() && lo <= hi => {
                        constraint = Constraint::Range(*lo, *hi)
                    }
                    _ if bounds.is_empty() => cx.push(diag::bad_range(&meta.path)),
                    _ => cx.push(diag::bad_range(&bounds)),
                }
            }
            "doc" => {
                let lit: syn::LitStr = meta.value()?.parse()?;
                doc = lit.value();
            }
            _ => {
                let key = if key.is_empty() {
                    meta.path.to_token_stream().to_string().replace(' ', "")
                } else {
                    key
                };
                cx.push(diag::unknown_hyper_option(&meta.path, &key));
                // skip its value, so the options after it are still read
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _content;
                    syn::parenthesized!(_content in meta.input);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = parsed {
        cx.push(e);
        return None;
    }
    let Some((value, expr)) = default else {
        if invalid_default {
            return None;
        }
        cx.push(diag::hyper_without_default(
            name.span(),
            &name.to_string(),
            true,
        ));
        return None;
    };
    if value.is_nan() {
        return None; // an out-of-range literal, reported
    }
    if !constraint.holds(value) {
        cx.push(diag::default_violates(
            &expr,
            &name.to_string(),
            &expr.to_token_stream().to_string().replace(' ', ""),
            &constraint.keyword(),
            &constraint.describe(),
        ));
    }
    Some(Hyper {
        name,
        ty: ty_kind,
        default: value,
        constraint,
        doc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(args: TokenStream, item: TokenStream) -> (Option<LossDef>, Vec<String>) {
        let cx = Ctxt::new();
        let def = LossDef::from_syn(&cx, args, item).ok();
        (def, cx.messages())
    }

    #[test]
    fn inputs_hypers_and_output() {
        let (def, msgs) = parse(
            quote!(binary),
            quote! {
                /// Docs travel to the struct.
                pub fn fbeta(
                    cm: SoftConfusion,
                    #[hyper(default = 1.0, positive, doc = "the weight of recall")] beta: f64,
                    #[hyper(default = 1e-7, range(0.0, 0.1))] epsilon: f32,
                    #[hyper(default = false)] pure: bool,
                ) -> Scalar {
                    cm.tp
                }
            },
        );
        assert!(msgs.is_empty(), "{msgs:#?}");
        let Some(def) = def else {
            panic!("no definition")
        };
        assert_eq!(def.docs, [" Docs travel to the struct."]);
        assert_eq!(def.inputs.len(), 1);
        assert_eq!(def.inputs[0].name, "cm");
        assert_eq!(def.inputs[0].role, Role::SoftConfusion);
        let hypers: Vec<(String, HyperTy, f64, Constraint, String)> = def
            .hypers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    h.ty,
                    h.default,
                    h.constraint,
                    h.doc.clone(),
                )
            })
            .collect();
        assert_eq!(
            hypers,
            [
                (
                    "beta".into(),
                    HyperTy::Real,
                    1.0,
                    Constraint::Positive,
                    "the weight of recall".into()
                ),
                (
                    "epsilon".into(),
                    HyperTy::Real,
                    1e-7,
                    Constraint::Range(0.0, 0.1),
                    String::new()
                ),
                (
                    "pure".into(),
                    HyperTy::Flag,
                    0.0,
                    Constraint::None,
                    String::new()
                ),
            ]
        );
        assert_eq!(def.output.map(|(o, _)| o), Some(Output::Scalar));
        assert!(def.poisoned.is_empty());
    }

    #[test]
    fn constraints_in_words() {
        assert!(Constraint::Positive.holds(1e-300) && !Constraint::Positive.holds(0.0));
        assert!(Constraint::NonNegative.holds(0.0) && !Constraint::NonNegative.holds(-1e-300));
        assert!(Constraint::Range(0.0, 1.0).holds(1.0) && !Constraint::Range(0.0, 1.0).holds(1.5));
        assert_eq!(Constraint::Range(0.0, 1.0).keyword(), "range(0.0, 1.0)");
        assert_eq!(Constraint::Range(0.0, 1.0).describe(), "in [0.0, 1.0]");
        assert_eq!(Constraint::NonNegative.describe(), ">= 0");
    }

    #[test]
    fn hyper_parameter_mistakes() {
        let (def, msgs) = parse(
            quote!(logits),
            quote! {
                fn f(
                    z: Logits,
                    #[hyper(positive)] a: f64,
                    b: f64,
                    #[hyper(default = -1.0, positive)] c: f64,
                    #[hyper(default = 2.0, range(0.0, 1.0))] d: f64,
                    #[hyper(default = 1.0, postive)] e: f64,
                    #[hyper(default = 1)] g: bool,
                    #[hyper(default = 1.0)] h: usize,
                    #[hyper(default = 1e999)] j: f64,
                    #[hyper(default = 0.5, range(1.0, 0.0))] l: f64,
                ) -> PerSample {
                    0.0
                }
            },
        );
        assert_eq!(
            msgs,
            [
                "hyper-parameter `a` has no default; help: add `default = ..` to its `#[hyper(..)]`",
                "hyper-parameter `b` has no default; help: write `#[hyper(default = ..)] b: f64`",
                "the default `-1.0` of `c` violates `positive`: it must be > 0; help: change the default or the constraint",
                "the default `2.0` of `d` violates `range(0.0, 1.0)`: it must be in [0.0, 1.0]; help: change the default or the constraint",
                "unknown `#[hyper(..)]` option `postive`; help: did you mean `positive`? (the options are `default = ..`, `positive`, `nonnegative`, `range(lo, hi)` and `doc = \"..\"`)",
                "the default must be a `bool` literal; help: write `default = 1.0` (or `true`/`false` for `bool`)",
                "hyper-parameters are `f64`, `f32` or `bool`; help: declare it as `name: f64`",
                "this number does not fit in an `f64`; help: write a finite number such as `1e300`",
                "`range` takes two number literals, the lower bound first; help: write `range(0.0, 1.0)`",
            ]
        );
        // the refused ones are known, so the body does not report their uses again
        // (`c`, `d` and `l` keep a default and stay usable)
        let poisoned: Vec<String> = def
            .map(|d| d.poisoned.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(poisoned, ["a", "b", "g", "h", "j"]);
    }

    #[test]
    fn signature_mistakes() {
        let (_, msgs) = parse(
            quote!(logits),
            quote! {
                const fn f<T>(z: Logits, z: Labels, y: Labels, y2: Labels, p: Probs, mut w: Logits) -> PerAnchor where T: Copy {
                    0.0
                }
            },
        );
        assert_eq!(
            msgs,
            [
                "`const` is not supported on a `#[loss]` fn; help: write a plain `fn name(inputs, hyper-parameters) -> Kind { .. }`",
                "a generic parameter is not supported on a `#[loss]` fn; help: write a plain `fn name(inputs, hyper-parameters) -> Kind { .. }`",
                "a `where` clause is not supported on a `#[loss]` fn; help: write a plain `fn name(inputs, hyper-parameters) -> Kind { .. }`",
                "duplicate parameter `z`; help: rename one of them",
                "input of type `Labels` declared twice; help: the family provides it once; declare a further input as `Given<samples, classes>` (a constant) or `Traced<samples, classes>` (differentiable)",
                "the `logits` family provides no input of type `Probs`; help: it provides `Logits` and `Labels`",
                "`let mut` is not supported in a loss: values never change; help: remove `mut`",
                "input of type `Logits` declared twice; help: the family provides it once; declare a further input as `Given<samples, classes>` (a constant) or `Traced<samples, classes>` (differentiable)",
                "the `logits` family does not accept output kind `PerAnchor`; help: use `Scalar` or `PerSample`",
            ]
        );
        let (_, msgs) = parse(
            quote!(logits),
            quote!(
                fn f(z: Logit) {}
            ),
        );
        assert_eq!(
            msgs,
            [
                "the `logits` family provides no input of type `Logit`; help: did you mean `Logits`? (it provides `Logits` and `Labels`)",
                "missing output kind; help: write `-> Scalar` (one value per batch) or `-> PerSample` (averaged over the batch)",
            ]
        );
    }

    #[test]
    fn names_that_give_no_struct_or_field() {
        let (_, msgs) = parse(
            quote!(logits),
            quote!(
                fn __(r#type: Logits) -> PerSample {
                    0.0
                }
            ),
        );
        assert_eq!(msgs.len(), 2, "{msgs:#?}");
        assert!(msgs[0].starts_with("`__` cannot name a loss"));
        assert!(msgs[1].starts_with("the raw identifier `r#type` cannot name a parameter"));
        let (_, msgs) = parse(
            quote!(logits),
            quote!(
                fn self_() -> PerSample {
                    0.0
                }
            ),
        );
        assert!(
            msgs[0].starts_with("`self_` cannot name a loss"),
            "{msgs:#?}"
        );
    }

    #[test]
    fn an_unparsable_item_keeps_the_attribute_errors() {
        let cx = Ctxt::new();
        let err = LossDef::from_syn(
            &cx,
            quote!(logit),
            quote!(
                struct S;
            ),
        )
        .err();
        let msgs: Vec<String> = err
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(msgs.len(), 2, "{msgs:#?}");
        assert!(msgs[0].starts_with("unknown loss family `logit`"));
        assert_eq!(msgs[1], "expected `fn`");
    }

    #[test]
    fn number_literals() {
        let n = |e: Expr| number(&e);
        assert_eq!(n(syn::parse_quote!(1.5)), Some(1.5));
        assert_eq!(n(syn::parse_quote!(-2)), Some(-2.0));
        assert_eq!(n(syn::parse_quote!((-(1e-5)))), Some(-1e-5));
        assert_eq!(n(syn::parse_quote!(x)), None);
        assert_eq!(n(syn::parse_quote!(1e999)), Some(f64::INFINITY));
        let cx = Ctxt::new();
        assert_eq!(finite_number(&cx, &syn::parse_quote!(1e999)), Err(()));
        assert_eq!(finite_number(&cx, &syn::parse_quote!(2.5)), Ok(Some(2.5)));
        assert_eq!(cx.messages().len(), 1);
    }
}
