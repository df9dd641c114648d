//! The `#[loss(..)]` arguments: the family and an optional paper reference.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, Meta, Token};

use crate::ctxt::Ctxt;
use crate::diagnostics as diag;
use crate::family::FamilyKind;

/// What `#[loss(..)]` said.
pub struct LossAttr {
    pub family: Option<FamilyKind>,
    pub paper: String,
    /// `metric = SquaredEuclidean`: the pairs family's default metric.
    pub metric: Option<syn::Ident>,
}

/// The metrics a pairs loss may name as its default.
pub const METRICS: &[&str] = &["Cosine", "Dot", "Euclidean", "SquaredEuclidean"];

/// The families a definition can name today (the others are planned).
const AVAILABLE: [FamilyKind; 5] = [
    FamilyKind::Binary,
    FamilyKind::Logits,
    FamilyKind::Pairs,
    FamilyKind::Scores,
    FamilyKind::Dense,
];

pub fn parse(cx: &Ctxt, args: TokenStream) -> syn::Result<LossAttr> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut attr = LossAttr {
        family: None,
        paper: String::new(),
        metric: None,
    };
    let mut first_family: Option<String> = None;
    for meta in &metas {
        match meta {
            Meta::Path(path)
                if path.get_ident().is_some()
                    && !path.is_ident("paper")
                    && !path.is_ident("metric") =>
            {
                let Some(ident) = path.get_ident() else {
                    continue;
                };
                let name = ident.to_string();
                if let Some(first) = &first_family {
                    cx.push(diag::second_family(ident, first, &name));
                    continue;
                }
                first_family = Some(name.clone());
                match FamilyKind::from_name(&name) {
                    Ok(f) => attr.family = Some(f),
                    Err(true) => cx.push(diag::family_not_yet(ident.span(), &name)),
                    Err(false) => {
                        let known: Vec<&str> = AVAILABLE.iter().map(|f| f.name()).collect();
                        let planned: Vec<&str> = FamilyKind::ALL_NAMES
                            .iter()
                            .copied()
                            .filter(|n| !known.contains(n))
                            .collect();
                        cx.push(diag::unknown_family(ident.span(), &name, &known, &planned))
                    }
                }
            }
            Meta::NameValue(nv) if nv.path.is_ident("paper") => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => attr.paper = s.value(),
                other => cx.push(diag::expected_string(other, "paper")),
            },
            Meta::Path(p) if p.is_ident("paper") => cx.push(diag::expected_string(p, "paper")),
            Meta::NameValue(nv) if nv.path.is_ident("metric") => match &nv.value {
                Expr::Path(p)
                    if p.path
                        .get_ident()
                        .is_some_and(|i| METRICS.contains(&i.to_string().as_str())) =>
                {
                    attr.metric = p.path.get_ident().cloned();
                }
                other => cx.push(diag::unknown_metric(other, METRICS)),
            },
            other => {
                let path = other.path();
                let name = match path.get_ident() {
                    Some(i) => i.to_string(),
                    None => quote::quote!(#path).to_string().replace(' ', ""),
                };
                cx.push(diag::unknown_loss_argument(path, &name));
            }
        }
    }
    if first_family.is_none() {
        cx.push(diag::missing_family(Span::call_site()));
    }
    if let (Some(m), Some(f)) = (&attr.metric, attr.family) {
        if f != FamilyKind::Pairs {
            cx.push(diag::metric_outside_pairs(m));
        }
    }
    Ok(attr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(args: TokenStream) -> (Option<FamilyKind>, Vec<String>) {
        let cx = Ctxt::new();
        let family = parse(&cx, args).ok().and_then(|a| a.family);
        (family, cx.messages())
    }

    #[test]
    fn a_family_and_a_paper() {
        let cx = Ctxt::new();
        let attr = parse(&cx, quote!(binary, paper = "AnyLoss")).ok();
        assert!(cx.is_ok());
        let attr = attr.map(|a| (a.family, a.paper));
        assert_eq!(
            attr,
            Some((Some(FamilyKind::Binary), "AnyLoss".to_string()))
        );
    }

    #[test]
    fn unknown_family_suggests_the_closest() {
        let (family, msgs) = messages(quote!(logit));
        assert_eq!(family, None);
        assert_eq!(msgs, ["unknown loss family `logit`; help: did you mean `logits`? (the families are `binary`, `logits`, `pairs`, `scores` and `dense`)"]);
    }

    #[test]
    fn planned_family_is_not_yet_available() {
        let (_, msgs) = messages(quote!(views));
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].starts_with("the `views` family is not available yet"),
            "{msgs:?}"
        );
    }

    #[test]
    fn unknown_argument_missing_family_and_second_family() {
        let (_, msgs) = messages(quote!(reduction = "sum"));
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("unknown `#[loss(..)]` argument `reduction`"));
        assert!(msgs[1].starts_with("missing loss family"));
        let (family, msgs) = messages(quote!(logits, binary));
        assert_eq!(family, Some(FamilyKind::Logits));
        assert!(msgs[0].starts_with("a loss has one family, but `binary` follows `logits`"));
    }

    #[test]
    fn paper_takes_a_string() {
        let (_, msgs) = messages(quote!(binary, paper = 3));
        assert!(
            msgs[0].starts_with("`paper` takes a string literal"),
            "{msgs:?}"
        );
        let (_, msgs) = messages(quote!(binary, paper));
        assert!(
            msgs[0].starts_with("`paper` takes a string literal"),
            "{msgs:?}"
        );
    }
}
