//! The surface definition: the annotated `fn`, split into inputs (typed by role),
//! hyper-parameters (with defaults and constraints), the output kind and the body.
//! Every part keeps its syn tokens for error spans.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, Meta, Pat, ReturnType, Type, UnOp};

use crate::attr::{self, LossAttr};
use crate::ctxt::Ctxt;
use crate::diagnostics as diag;
use crate::family::{FamilyKind, Role};

/// A parsed `#[loss]` definition.
pub struct LossDef {
    pub attr: LossAttr,
    pub item: ItemFn,
    pub docs: Vec<String>,
    pub inputs: Vec<InputParam>,
    pub hypers: Vec<Hyper>,
    pub output: Option<(Output, Span)>,
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
    pub fn from_syn(cx: &Ctxt, args: TokenStream, item: TokenStream) -> syn::Result<LossDef> {
        let attr = attr::parse(cx, args)?;
        let item: ItemFn = syn::parse2(item)?;
        let docs = doc_lines(&item.attrs);
        check_signature(cx, &item);
        let family = attr.family;
        let mut def = LossDef {
            attr,
            docs,
            inputs: Vec::new(),
            hypers: Vec::new(),
            output: None,
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
            let name = pi.ident.clone();
            if seen.contains(&name.to_string()) {
                cx.push(diag::duplicate_parameter(name.span(), &name.to_string()));
                continue;
            }
            seen.push(name.to_string());
            let hyper_attr = pt.attrs.iter().find(|a| a.path().is_ident("hyper"));
            if let Some(attr) = hyper_attr {
                if let Some(h) = parse_hyper(cx, name, attr, &pt.ty) {
                    self.hypers.push(h);
                }
                continue;
            }
            if let Some(ty) = scalar_type_name(&pt.ty) {
                if ty == "f64" || ty == "f32" || ty == "bool" {
                    cx.push(diag::hyper_without_default(name.span(), &name.to_string()));
                    continue;
                }
            }
            let Some(family) = family else { continue };
            let ty_name = scalar_type_name(&pt.ty).unwrap_or_default();
            match Role::from_type(family, &ty_name) {
                Some(role) => {
                    if self.inputs.iter().any(|i| i.role == role) {
                        cx.push(diag::duplicate_input_role(pt.ty.span(), &ty_name));
                    } else {
                        self.inputs.push(InputParam { name, role });
                    }
                }
                None => cx.push(diag::unknown_input_type(
                    &pt.ty,
                    &ty_name,
                    family.name(),
                    &family.role_names(),
                )),
            }
        }
    }
}

fn check_signature(cx: &Ctxt, item: &ItemFn) {
    let sig = &item.sig;
    if let Some(t) = &sig.asyncness {
        cx.push(diag::unsupported_item(t, "`async`"));
    }
    if let Some(t) = &sig.unsafety {
        cx.push(diag::unsupported_item(t, "`unsafe`"));
    }
    if !sig.generics.params.is_empty() {
        cx.push(diag::unsupported_item(&sig.generics, "a generic parameter"));
    }
}

fn parse_output(cx: &Ctxt, item: &ItemFn, family: Option<FamilyKind>) -> Option<(Output, Span)> {
    let ReturnType::Type(_, ty) = &item.sig.output else {
        cx.push(diag::missing_output(item.sig.ident.span()));
        return None;
    };
    let name = scalar_type_name(ty).unwrap_or_else(|| quote::quote!(#ty).to_string());
    let accepted = ["Scalar", "PerSample"];
    let out = match name.as_str() {
        "Scalar" => Output::Scalar,
        "PerSample" => Output::PerSample,
        _ => {
            let family = family.map(|f| f.name()).unwrap_or("this");
            cx.push(diag::unknown_output(ty, &name, family, &accepted));
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

/// A number literal, possibly negated: `1.5`, `-2`, `1e-5`.
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
                    ) => Some(f64::from(u8::from(b.value))),
                    (_, HyperTy::Real) => number(&expr),
                    _ => None,
                };
                match value {
                    Some(v) => default = Some((v, expr)),
                    None => cx.push(diag::bad_default(
                        &expr,
                        if ty_kind == HyperTy::Flag {
                            "`bool`"
                        } else {
                            "number"
                        },
                    )),
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
                    [Some(lo), Some(hi)] if lo <= hi => constraint = Constraint::Range(*lo, *hi),
                    _ => cx.push(diag::arity(
                        &meta.path,
                        "range",
                        "two number literals `range(lo, hi)` with lo <= hi",
                    )),
                }
            }
            "doc" => {
                let lit: syn::LitStr = meta.value()?.parse()?;
                doc = lit.value();
            }
            _ => {
                cx.push(diag::unknown_hyper_option(&meta.path, &key));
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
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
        cx.push(diag::hyper_without_default(name.span(), &name.to_string()));
        return None;
    };
    if !constraint.holds(value) {
        cx.push(diag::default_violates(
            &expr,
            &name.to_string(),
            value,
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

use syn::parse::Parse;
