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
}

pub fn parse(cx: &Ctxt, args: TokenStream) -> syn::Result<LossAttr> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut attr = LossAttr {
        family: None,
        paper: String::new(),
    };
    let mut saw_family = false;
    for meta in &metas {
        match meta {
            Meta::Path(path) if path.get_ident().is_some() && !saw_family => {
                saw_family = true;
                let ident = path.get_ident().expect("checked above");
                match FamilyKind::from_name(&ident.to_string()) {
                    Ok(f) => attr.family = Some(f),
                    Err(true) => cx.push(diag::family_not_yet(ident.span(), &ident.to_string())),
                    Err(false) => cx.push(diag::unknown_family(
                        ident.span(),
                        &ident.to_string(),
                        FamilyKind::ALL_NAMES,
                    )),
                }
            }
            Meta::NameValue(nv) if nv.path.is_ident("paper") => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => attr.paper = s.value(),
                other => cx.push(diag::expected_string(other, "paper")),
            },
            other => {
                let name = other
                    .path()
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| quote::quote!(#other).to_string());
                cx.push(diag::unknown_loss_argument(other, &name));
            }
        }
    }
    if !saw_family {
        cx.push(diag::missing_family(Span::call_site()));
    }
    Ok(attr)
}
